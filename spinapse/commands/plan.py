"""``spinapse plan``: tape-out planning of the chip from the RTL, the device card and runs.

Reads a plan (--config FILE.toml with a [plan] table, or the packaged example), synthesises
the engines with Yosys (generic CMOS, cached by content hash), adds the memories, the synapse
array and its energies (device card physics), the counted runs' energy per training sample, the
cycle model and a scaling table, and writes results/<name>/{plan.json, report.md,
scaling_area.png, scaling_energy.png}; prints the summary table.
"""

from __future__ import annotations

import argparse
import time

from spinapse.commands.train import add_override_option
from spinapse.errors import UsageError
from spinapse.plan.memory import BIT_CELLS


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from spinapse.experiments.output import check_writable
    from spinapse.plan.chip_plan import make_plan
    from spinapse.plan.plan_config import load_plan
    from spinapse.plan.report import summary_text, write_plan

    plan, engine, base = load_plan(args.config, args.overrides)
    out = Path(args.output) if args.output else Path(plan.results_dir) / plan.name
    if (out / "plan.json").exists() and not args.overwrite:
        raise UsageError(
            f"{out / 'plan.json'} exists. Nothing was changed. Give this plan its own folder "
            "with --output DIR or --set plan.name=NEW_NAME, or replace it with --overwrite"
        )
    # Before minutes of synthesis: the folder can be created and written.
    check_writable(out, field="--output / plan.results_dir", hint="--output DIR")
    start = time.perf_counter()
    steps = len(plan.modes) * len(set(plan.synth_hidden)) + (engine is not None)
    bar = tqdm(total=steps, desc="synthesis", unit="design", disable=args.no_progress)

    started = []

    def progress(line: str) -> None:
        # Called before each design: the previous one is done.
        if started:
            bar.update(1)
        started.append(line)
        bar.set_postfix_str(line)

    try:
        result = make_plan(plan, engine, base, cache_dir=args.cache, progress=progress)
        bar.update(steps - bar.n)
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    files = write_plan(result, out)
    print(summary_text(result))
    print(f"report: {files['markdown']} ({time.perf_counter() - start:.0f} s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan",
        help="tape-out plan: logic, memory, synapse energy, latency and scaling of the chip",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="plan fields (their ranges and meaning): the packaged example, "
        "spinapse/configs/plan.toml, and spinapse.plan.plan_config; SRAM nodes: "
        + ", ".join(BIT_CELLS),
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="plan file with a [plan] table (default: the packaged example plan.toml)",
    )
    add_override_option(
        p, "override a field, e.g. --set plan.node='\"7nm\"' --set plan.clock_hz=2e8"
    )
    p.add_argument("-o", "--output", help="report folder (default results/<plan.name>)")
    p.add_argument("--cache", help="synthesis cache folder (default ~/.cache/spinapse/synth)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)
