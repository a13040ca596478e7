"""``spinapse fpga build``: a bitstream of the inference prototype for a board.

Elaborates the board top (:mod:`spinapse.boards.inference_top`: engine, host link, UART) for
``--board`` and builds it with YoWASP Yosys and nextpnr from PyPI (:mod:`spinapse.boards.build`).
Writes the bitstream, the tool logs and ``build.json`` (utilisation, Fmax per clock from
nextpnr's report, board clock, timing verdict, tool versions, build time) into ``--out``; exits
with an error when a tool fails or timing is not met at the board clock. The first YoWASP run on
a machine compiles the WebAssembly tools (minutes, cached in ``~/.cache/YoWASP``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spinapse.errors import UsageError


def _build(args: argparse.Namespace) -> int:
    from spinapse.boards.build import BuildError, build_board
    from spinapse.boards.inference_top import InferenceTop
    from spinapse.boards.targets import BOARDS
    from spinapse.rtl.engine_config import load_engine_config
    from spinapse.rtl.host_link import link_sizes
    from spinapse.rtl.uart import uart_divisor

    board = BOARDS[args.board]
    if args.design != "inference":
        raise UsageError(
            f"--design {args.design}: only 'inference' is built so far (the training system "
            "with the synapse emulator is not an FPGA design yet)"
        )
    try:
        config = load_engine_config(args.config) if args.config else board.engine
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(f"--config: {exc}") from None
    # The image memory where the board asks for it and the folding allows it.
    input_copy = board.input_copy or config.in_width != config.simd[0]
    clock_hz = board.engine_clock_hz or board.clock_hz
    if args.clock_mhz is not None:
        clock_hz = args.clock_mhz * 1e6
    try:
        pll = board.pll(clock_hz)
    except ValueError as exc:
        raise UsageError(f"--clock-mhz: {exc}") from None
    out = Path(args.out or f"build/{board.name}-{args.design}")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise UsageError(f"--out {out} exists and is not empty; pass --force to build into it")
    try:
        link_sizes(config)
        uart_divisor(clock_hz, args.baud)
    except ValueError as exc:
        raise UsageError(f"--baud/--config: {exc}") from None
    print(
        f"building {args.design} for {board.name} ({board.family}, "
        f"{board.clock_hz / 1e6:g} MHz oscillator, engine clock {clock_hz / 1e6:g} MHz"
        f"{' from the PLL' if pll else ''}): engine {config.name()}, UART {args.baud} baud -> {out}"
    )
    top = InferenceTop(config, baud=args.baud, input_copy=input_copy, pll=pll)
    try:
        rec = build_board(board, top, out, args.design, clock_hz)
    except BuildError as exc:
        raise UsageError(str(exc)) from None
    util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in rec["utilization"].items())
    fmax = ", ".join(f"{k} {v:.1f} MHz" for k, v in rec["fmax_mhz"].items())
    print(f"  utilisation: {util}")
    print(f"  Fmax: {fmax} (engine clock {rec['clock_mhz']:g} MHz, timing met)")
    print(f"  bitstream {out / rec['bitstream']}, record {out / 'build.json'} ({rec['build_s']} s)")
    return 0


def register(subparsers) -> None:
    from spinapse.boards.targets import BOARDS

    parser = subparsers.add_parser(
        "fpga",
        help="build FPGA bitstreams of the prototype",
        description="FPGA prototype of spinapse on open-toolchain boards.",
    )
    sub = parser.add_subparsers(dest="fpga_cmd", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser(
        "build",
        help="bitstream, utilisation and Fmax of a board's design",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    p.add_argument(
        "--design",
        default="inference",
        choices=("inference", "training"),
        help="inference engine behind the UART host link (default); training: not built yet",
    )
    p.add_argument(
        "--config",
        help="TOML with an [engine] table (default: the board's engine, see README)",
    )
    p.add_argument(
        "--clock-mhz",
        type=float,
        help="engine clock in MHz (default: the board's, README); on the ULX3S any other than "
        "the 25 MHz oscillator comes from the ECP5 PLL",
    )
    p.add_argument("--baud", type=int, default=115200, help="UART speed (default 115200)")
    p.add_argument("-o", "--out", help="build folder (default build/<board>-<design>)")
    p.add_argument("--force", action="store_true", help="build into a non-empty --out")
    p.set_defaults(func=_build)
