"""``spinapse run``: the main job.

Runs the default experiment (or ``--config``) twice on the same seed, data and initial weights:
without metaplasticity (m = 0) and with the configured m, and prints the final accuracy of every
task for both, with the mean over all tasks but the last. With ``--seeds`` it repeats this per
seed and prints the mean and standard deviation over seeds. Files go to
``results/<name>/seed-<s>/`` (results.json, accuracy.csv, curves.png, timing.json, checkpoints/)
and ``results/<name>/summary.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from spinapse.commands.train import add_config_arguments, set_threads
from spinapse.config import field_help, load_config
from spinapse.golden.continual import ContinualResult
from spinapse.golden.experiment import build_tasks, run_experiment
from spinapse.golden.report import summary_table, write_results
from spinapse.io import write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="main job: m = 0 against metaplastic m on permuted embedded digits",
        description=__doc__.split("\n\n")[1],
        epilog="configuration fields (TOML tables; set any with --set FIELD=VALUE):\n"
        + field_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        default=None,
        help="run these seeds (default: the configuration's seed)",
    )
    p.set_defaults(func=main)


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    base = load_config(args.config, args.overrides)
    if base.method.kind != "meta":
        raise ValueError(
            "spinapse run compares m = 0 with metaplastic m: method.kind must be "
            "'meta' (use spinapse train for ewc)"
        )
    seeds = args.seeds if args.seeds is not None else [base.seed]
    if any(s < 0 for s in seeds):
        raise ValueError(f"--seeds must be >= 0, got {seeds}")
    meta = base.method.meta
    meta_label = "m=" + (
        "-".join(f"{m:g}" for m in meta) if isinstance(meta, list) else f"{meta:g}"
    )
    labels = {"m=0": 0.0, meta_label: meta}
    per_seed: dict[int, dict[str, ContinualResult]] = {}
    for seed in seeds:
        cfg = base.model_copy(update={"seed": seed})
        out = base.out_dir() / f"seed-{seed}"
        tasks = build_tasks(cfg)
        runs: dict[str, ContinualResult] = {}
        timing: dict[str, float] = {}
        for label, m in labels.items():
            start = time.perf_counter()
            runs[label] = run_experiment(
                cfg,
                label,
                out,
                tasks=tasks,
                meta=m,
                resume=args.resume,
                progress=not args.no_progress,
            )
            timing[label] = round(time.perf_counter() - start, 1)
        write_results(out, cfg.model_dump(mode="json"), runs, cfg.train.epochs)
        write_json(out / "timing.json", {"seconds": timing, "threads": args.threads})
        per_seed[seed] = runs
        print(
            f"seed {seed}: final test accuracy (%) after {len(tasks)} tasks, "
            f"{cfg.train.epochs} epochs each ({sum(timing.values()):.0f} s)"
        )
        print(summary_table(runs))
        print(f"results: {out}\n")
    names = next(iter(per_seed[seeds[0]].values())).task_names
    summary: dict = {"seeds": seeds, "runs": {}}
    for label in labels:
        finals = [[100 * a for a in per_seed[s][label].final()] for s in seeds]
        summary["runs"][label] = {
            "final_percent": finals,
            "mean_previous_percent": [sum(f[:-1]) / max(len(f) - 1, 1) for f in finals],
            "last_percent": [f[-1] for f in finals],
        }
    write_json(base.out_dir() / "summary.json", summary)
    if len(seeds) > 1:
        k = len(names)
        print(f"over seeds {seeds} (mean ± sd, %)")
        print("".ljust(24) + "".join(s.rjust(16) for s in labels))
        print(
            f"mean of tasks 1-{k - 1}".ljust(24)
            + "".join(
                _mean_sd(summary["runs"][s]["mean_previous_percent"]).rjust(16) for s in labels
            )
        )
        print(
            f"task {k}".ljust(24)
            + "".join(_mean_sd(summary["runs"][s]["last_percent"]).rjust(16) for s in labels)
        )
    m0, mm = summary["runs"]["m=0"], summary["runs"][meta_label]
    gain = [b - a for a, b in zip(m0["mean_previous_percent"], mm["mean_previous_percent"])]
    gap = [b - a for a, b in zip(m0["last_percent"], mm["last_percent"])]
    print(
        f"{meta_label} minus m=0 per seed: mean of earlier tasks "
        + ", ".join(f"{g:+.1f}" for g in gain)
        + " points; last task "
        + ", ".join(f"{g:+.1f}" for g in gap)
        + " points"
    )
    return 0
