"""``spinapse rtl generate``: the Verilog of an inference engine configuration.

The configuration is a TOML file with an ``[engine]`` table (see
:mod:`spinapse.rtl.engine_config`); without ``--config`` the packaged 784-256-256-10 default is
used. Prints the folding summary (cycles per image against the ideal bound) and writes the
Verilog atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spinapse.experiments.output import check_writable
from spinapse.io import write_text

GENERATE_HELP = """\
Writes the Verilog of a binarized inference engine (XNOR-popcount layers with folded-BatchNorm
thresholds, PE/SIMD folding per layer) and prints its folding summary.

The configuration is a TOML file with an [engine] table:

  [engine]
  widths = [784, 256, 256, 10]   # N_in, hidden..., classes
  pe = [32, 16, 10]              # per layer: neurons computed at once; divides its neuron count
  simd = [98, 64, 4]             # per layer: input bits per cycle; divides its input width
  in_width = 784                 # optional: image bits per input-stream beat (divides N_in)

Without --config the packaged example spinapse/configs/inference_engine.toml is used (the
784-256-256-10 engine, 64 cycles per layer). Conversion takes about 1-3 minutes for it.
"""


def _generate(args: argparse.Namespace) -> int:
    from spinapse.rtl.engine_config import default_engine_config, load_engine_config
    from spinapse.rtl.inference_engine import InferenceEngine
    from spinapse.rtl.verilog import convert

    config = load_engine_config(args.config) if args.config else default_engine_config()
    if not args.name.isidentifier():
        raise ValueError(f"--name must be a Verilog identifier, got {args.name!r}")
    check_writable(Path(args.output).parent, field="--output", hint="-o FOLDER/engine.v")
    # Conversion of the default engine takes minutes on a busy core: say so before it starts.
    bits = sum(f.n_in * f.n_out for f in config.layers)
    print(
        f"converting the {'-'.join(map(str, config.widths))} engine ({bits} weight bits) to "
        "Verilog; about 1-3 minutes for the default engine ...",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    text = convert(InferenceEngine(config), args.name)
    print(f"converted in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    path = write_text(args.output, text)
    schedule = config.schedule_cycles
    print(f"{path}: module {args.name}, widths {'-'.join(map(str, config.widths))}")
    for i, f in enumerate(config.layers):
        print(
            f"  layer {i}: {f.n_in}->{f.n_out} PE={f.pe} SIMD={f.simd} "
            f"cycles={f.cycles} weights={f.weight_depth}x{f.weight_width}b"
        )
    print(
        f"  cycles per image {schedule} (ideal {config.ideal_cycles}, "
        f"ratio {schedule / config.ideal_cycles:.3f}; all XNOR units busy: "
        f"{config.balanced_cycles:.1f}); latency {config.latency_cycles}"
    )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rtl",
        help="generate the Verilog of the RTL engines",
        description="Amaranth RTL of spinapse, converted to Verilog.",
    )
    sub = parser.add_subparsers(dest="rtl_cmd", metavar="COMMAND")
    sub.required = True
    p_gen = sub.add_parser(
        "generate",
        help="write the inference engine's Verilog",
        description=GENERATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_gen.add_argument(
        "--config",
        help="TOML file with an [engine] table (default: spinapse/configs/inference_engine.toml)",
    )
    p_gen.add_argument("-o", "--output", required=True, help="Verilog file to write")
    p_gen.add_argument("--name", default="inference_engine", help="top module name")
    p_gen.set_defaults(func=_generate)
