"""``spinapse train``: one continual-learning run from a TOML configuration.

Reads the experiment (``--config FILE.toml``, or the packaged default), applies ``--set``
overrides, runs the learner of ``method`` through the task stream, writes
``results/<name>/{results.json, accuracy.csv, curves.png, timing.json, checkpoints/}`` and prints
the final accuracy of every task.
"""

from __future__ import annotations

import argparse
import json
import time

from spinapse.config import ExperimentConfig, field_help, load_config
from spinapse.errors import UsageError
from spinapse.experiments.experiment import run_experiment, set_threads
from spinapse.experiments.report import summary_table, write_results
from spinapse.io import write_json

OVERRIDE_HELP = (
    "override one configuration field, FIELD.SUB=VALUE with VALUE a TOML value, e.g. "
    "--set train.epochs=5 --set model.hidden=[256,256] --set method.meta=0 "
    "--set data.source=mnist; repeatable"
)


def add_experiment_parser(
    subparsers: argparse._SubParsersAction, verb: str, summary: str, doc: str
) -> argparse.ArgumentParser:
    """Add the parser of a verb that runs experiments (``train``, ``run``): its description is the
    second paragraph of ``doc``, every configuration field is listed in the epilog, and it takes
    ``--config``, ``--set``, ``--resume``, ``--no-progress`` and ``--threads``."""
    p = subparsers.add_parser(
        verb,
        help=summary,
        description=doc.split("\n\n")[1],
        epilog="configuration fields (TOML tables; set any with --set FIELD=VALUE):\n"
        + field_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="experiment configuration (default: the packaged default.toml)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="FIELD=VALUE",
        action="append",
        default=[],
        help=OVERRIDE_HELP,
    )
    p.add_argument(
        "--resume", action="store_true", help="continue a killed run from its per-task checkpoints"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: results are bit-reproducible)",
    )
    return p


def label_for(cfg: ExperimentConfig) -> str:
    """Run label: ``ewc`` or ``m=<meta>``."""
    if cfg.method.kind == "ewc":
        return "ewc"
    meta = cfg.method.meta
    return "m=" + ("-".join(f"{m:g}" for m in meta) if isinstance(meta, list) else f"{meta:g}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_experiment_parser(
        subparsers, "train", "one continual-learning run from a TOML configuration", __doc__
    )
    p.add_argument(
        "--synapse",
        metavar="CARD",
        help="hold the binary weights in simulated devices of this card (spinapse device list)",
    )
    p.add_argument(
        "--mode",
        choices=("digital", "device"),
        help="with --synapse: digital W_h + write-verify, or the device's hidden state c",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    overrides = list(args.overrides)
    if getattr(args, "synapse", None):
        overrides.append(f"synapse.card={json.dumps(args.synapse)}")
    if getattr(args, "mode", None):
        if not getattr(args, "synapse", None):
            raise UsageError("--mode needs --synapse CARD (see 'spinapse device list')")
        overrides.append(f"synapse.mode={json.dumps(args.mode)}")
    cfg = load_config(args.config, overrides)
    out = cfg.out_dir()
    label = label_for(cfg)
    device_report = None
    start = time.perf_counter()
    if cfg.synapse.card:
        from spinapse.experiments.device_training import run_device_experiment

        label, result, device_report = run_device_experiment(
            cfg, out, resume=args.resume, progress=not args.no_progress
        )
    else:
        result = run_experiment(cfg, label, out, resume=args.resume, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    runs = {label: result}
    extras = {label: {"device": device_report}} if device_report is not None else None
    files = write_results(out, cfg.model_dump(mode="json"), runs, cfg.train.epochs, extras)
    if device_report is not None:
        r = device_report
        print(
            f"device writes {r['device_writes']}, failed writes {r['failed_writes']}, "
            f"write energy {r['write_energy_J']:.3e} J, gate energy {r['gate_energy_J']:.3e} J"
        )
    write_json(
        out / "timing.json", {"seconds": {label: round(seconds, 1)}, "threads": args.threads}
    )
    print(f"final test accuracy (%) after {len(result.acc)} tasks, {cfg.train.epochs} epochs each")
    print(summary_table(runs))
    print(f"results: {files['json']} ({seconds:.0f} s)")
    return 0
