"""``spinapse train``: one continual-learning run from a TOML configuration.

Reads the experiment (--config FILE.toml, or the packaged default), applies --set overrides,
trains the learner of 'method' (or of the device card given with --synapse) through the task
stream and prints the final accuracy of every task. Files go to results_dir/name/ (default
results/default/): results.json (configuration, accuracy matrix, device report), accuracy.csv,
curves.png, timing.json, config.json (the configuration the folder belongs to) and
checkpoints/. A folder that holds results of another configuration is never replaced unless
--overwrite is given; --resume continues an interrupted run from its last finished task.
"""

from __future__ import annotations

import argparse
import json

from spinapse.config import field_help

OVERRIDE_HELP = (
    "override one configuration field, FIELD.SUB=VALUE with VALUE a TOML value, e.g. "
    "--set train.epochs=5 --set model.hidden=[256,256] --set method.meta=0 "
    "--set data.source=mnist; repeatable"
)

FIELDS_EPILOG = """configuration fields (TOML tables; set any with --set FIELD=VALUE), with default,
allowed values and meaning:
{fields}

A field that the run does not read is refused when given a value other than its default:
golden runs (no --synapse) read no synapse.* setting, method.kind = 'meta' no ewc_*, digital
mode none of the 'device:' settings, device mode no method.*, train.weight_decay or 'digital:'
setting. results.json lists them under unused_fields."""


def add_override_option(parser: argparse.ArgumentParser, help: str = OVERRIDE_HELP) -> None:
    """Add the repeatable ``--set FIELD=VALUE`` option (into ``args.overrides``) that every verb
    reading a TOML configuration takes."""
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="FIELD=VALUE",
        action="append",
        default=[],
        help=help,
    )


def add_experiment_parser(
    subparsers: argparse._SubParsersAction, verb: str, summary: str, doc: str
) -> argparse.ArgumentParser:
    """Add the parser of a verb that runs experiments (``train``, ``run``): its description is the
    second paragraph of ``doc``, every configuration field is listed in the epilog, and it takes
    ``--config``, ``--set``, ``--resume``, ``--overwrite``, ``--checkpoints``,
    ``--no-progress`` and ``--threads``."""
    p = subparsers.add_parser(
        verb,
        help=summary,
        description=doc.split("\n\n")[1].replace("``", "'"),
        epilog=FIELDS_EPILOG.format(fields=field_help()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="experiment configuration (default: the packaged default.toml)",
    )
    add_override_option(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last finished task (same configuration)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results of another configuration in the same folder (default: refuse)",
    )
    p.add_argument(
        "--checkpoints",
        choices=("all", "last"),
        default="all",
        help="keep every task's checkpoint or only the last one, which is all --resume needs "
        "(default: all; a device-mode task of the default network is about 57 MB)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: results are bit-reproducible)",
    )
    return p


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


def plural(n: int, word: str) -> str:
    """``"1 epoch"``, ``"5 epochs"``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def device_summary(report: dict) -> str:
    """The printed line of a device run's report: what each count means."""
    r = report
    mode = r.get("settings", {}).get("mode")
    if mode == "device":
        failed = (
            f"{r['failed_writes']} of them trial pulses that did not switch (by design: "
            "the switching probability falls with c)"
        )
    else:
        failed = f"{r['failed_writes']} writes still wrong after the last write-verify try"
    return (
        f"device writes {r['device_writes']} pulses ({r['flips']} flips; {failed}); "
        f"write energy {r['write_energy_J']:.3e} J, gate energy {r['gate_energy_J']:.3e} J"
    )


def main(args: argparse.Namespace) -> int:
    # Heavy imports here, not at module level: 'spinapse --help' does not load torch.
    from spinapse.config import load_config
    from spinapse.errors import UsageError
    from spinapse.experiments.experiment import set_threads
    from spinapse.experiments.report import summary_table
    from spinapse.experiments.train_run import train_run

    set_threads(args.threads)
    overrides = list(args.overrides)
    if getattr(args, "synapse", None):
        overrides.append(f"synapse.card={json.dumps(args.synapse)}")
    if getattr(args, "mode", None):
        if not getattr(args, "synapse", None):
            raise UsageError("--mode needs --synapse CARD (see 'spinapse device list')")
        overrides.append(f"synapse.mode={json.dumps(args.mode)}")
    cfg = load_config(args.config, overrides)
    run = train_run(
        cfg,
        threads=args.threads,
        resume=args.resume,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        keep_checkpoints=args.checkpoints,
    )
    result, runs, files = run.result, {run.label: run.result}, run.files
    if run.device_report is not None:
        print(device_summary(run.device_report))
    print(
        f"final test accuracy (%) after {plural(len(result.acc), 'task')}, "
        f"{plural(cfg.train.epochs, 'epoch')} each"
    )
    print(summary_table(runs))
    secs = f"{result.seconds:.1f}" if result.seconds < 10 else f"{result.seconds:.0f}"
    resumed = ", summed over the sessions of the resumed run" if args.resume else ""
    print(f"results: {files['results.json']} ({secs} s of training{resumed})")
    return 0
