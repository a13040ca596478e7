"""``spinapse rtl generate``: the Verilog of an inference engine configuration.

The configuration is a TOML file with an ``[engine]`` table (see
:mod:`spinapse.rtl.engine_config`); without ``--config`` the packaged 784-256-256-10 default is
used. Prints the folding summary (cycles per image against the ideal bound) and writes the
Verilog atomically.
"""

from __future__ import annotations

import argparse

from spinapse.io import write_text


def _generate(args: argparse.Namespace) -> int:
    from spinapse.rtl.engine_config import default_engine_config, load_engine_config
    from spinapse.rtl.inference_engine import InferenceEngine
    from spinapse.rtl.verilog import convert

    config = load_engine_config(args.config) if args.config else default_engine_config()
    if not args.name.isidentifier():
        raise ValueError(f"--name must be a Verilog identifier, got {args.name!r}")
    text = convert(InferenceEngine(config), args.name)
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
    p_gen = sub.add_parser("generate", help="write the inference engine's Verilog")
    p_gen.add_argument("--config", help="TOML file with an [engine] table (default: packaged)")
    p_gen.add_argument("-o", "--output", required=True, help="Verilog file to write")
    p_gen.add_argument("--name", default="inference_engine", help="top module name")
    p_gen.set_defaults(func=_generate)
