"""``spinapse fpga build``: a bitstream of the inference or the training prototype for a board.

Elaborates the board top (:mod:`spinapse.boards.inference_top`: engine, host link, UART; or
:mod:`spinapse.boards.training_top`: training engine, two device-calibrated synapse emulators,
host link, UART) for ``--board`` and builds it with YoWASP Yosys and nextpnr from PyPI
(:mod:`spinapse.boards.build`). With ``--array pins`` the training system's arrays are a chip
on the board's ``synapse_array`` pins instead of the emulators. The engine clock is the board's
default (the ULX3S: 75 MHz from the ECP5 PLL) or ``--clock-mhz``. Writes the bitstream, the
tool logs and ``build.json`` (utilisation, Fmax per clock from nextpnr's report, clocks, timing
verdict, tool versions, wall and tool CPU time) into ``--out``; exits with an error when a tool
fails or timing is not met at the engine clock. The first YoWASP run on a machine compiles the
WebAssembly tools (minutes, cached in ``~/.cache/YoWASP``).
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
    training = args.design == "training"
    if training and board.training_hidden is None:
        raise UsageError(
            f"--design training: {board.name} carries no training system (it does not fit; "
            "see docs/fpga_prototype.md); boards with one: "
            + ", ".join(n for n, b in BOARDS.items() if b.training_hidden)
        )
    if training and args.config:
        raise UsageError("--config sets the inference engine; the training system takes --hidden")
    if not training and (
        args.hidden is not None or args.write_code is not None or args.array != "emulator"
    ):
        raise UsageError("--hidden, --write-code and --array are options of --design training")
    try:
        config = load_engine_config(args.config) if args.config else board.engine
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(f"--config: {exc}") from None
    # The image memory where the board asks for it and the folding allows it.
    input_copy = board.input_copy or config.in_width != config.simd[0]
    if training:
        clock_hz = board.training_clock_hz or board.clock_hz
    else:
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
    extra = None
    if training:
        from spinapse.boards.training_top import TrainingTop
        from spinapse.experiments.board_training import (
            emulated_training_system,
            pin_training_system,
        )

        hidden = args.hidden if args.hidden is not None else board.training_hidden
        code = args.write_code if args.write_code is not None else 2
        try:
            if args.array == "pins":
                system = pin_training_system(board.name, hidden, write_code=code)
            else:
                system = emulated_training_system(hidden, card=args.card, write_code=code)
        except (ValueError, FileNotFoundError) as exc:
            raise UsageError(f"--hidden/--write-code/--card/--array: {exc}") from None
        extra = system.describe()
        if args.array == "pins":
            what = (
                f"training {extra['network']}, arrays on the synapse_array pins (write code {code})"
            )
        else:
            what = f"training {extra['network']}, emulated arrays ({args.card}, write code {code})"
        top = TrainingTop(
            system.rule,
            system.tables,
            system.init_wh,
            system.arrays,
            system.model,
            baud=args.baud,
            pll=pll,
            pin_bank=system.pin_bank,
        )
    else:
        what = f"engine {config.name()}"
        top = InferenceTop(config, baud=args.baud, input_copy=input_copy, pll=pll)
    print(
        f"building {args.design} for {board.name} ({board.family}, "
        f"{board.clock_hz / 1e6:g} MHz oscillator, clock {clock_hz / 1e6:g} MHz"
        f"{' from the PLL' if pll else ''}): {what}, UART {args.baud} baud -> {out}"
    )
    try:
        rec = build_board(
            board,
            top,
            out,
            args.design,
            clock_hz,
            extra,
            collision_free=not training,
            # The training system: router2 (it routed where router1 did not finish) and
            # placement without timing weights (nextpnr's annealing refinement took 923 s of
            # wall time for 784-32-10 with them); its clock leaves the slack that needs.
            nextpnr_extra="--router router2 --no-tmdriv" if training else "",
        )
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
        help="inference engine behind the UART host link (default), or the training system "
        "(training engine, digital mode, and its two synapse arrays)",
    )
    p.add_argument(
        "--array",
        default="emulator",
        choices=("emulator", "pins"),
        help="training: the arrays, device-calibrated emulators in the fabric (default) or a "
        "chip on the synapse_array pins, both layers serialised over the pin bank's lanes "
        "(docs/fpga_prototype.md)",
    )
    p.add_argument(
        "--hidden", type=int, help="training: hidden neurons of 784-H-10 (default: the board's)"
    )
    p.add_argument(
        "--write-code",
        type=int,
        help="training: code of the WRITE pulses, 1..3 = 0.9, 1.1, 1.3 x Ic0 (default 2)",
    )
    p.add_argument(
        "--card", default="mtj_mi_stt", help="training: device card of the emulator calibration"
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
