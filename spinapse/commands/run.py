"""``spinapse run``: the main job.

Runs the default experiment (or ``--config``) twice on the same seed, data and initial weights:
without metaplasticity (m = 0) and with the configured m, and prints the final accuracy of every
task for both, with the mean over all tasks but the last. The runs train in parallel on a
Dask cluster: a local one of ``--jobs`` worker processes, or a running scheduler
(``--scheduler``). With ``--seeds`` it repeats this per seed and prints the mean and
standard deviation over seeds. Files go to ``results/<name>/seed-<s>/`` (results.json,
accuracy.csv, curves.png, timing.json, config.json, checkpoints/) and
``results/<name>/summary.json``; results of another configuration there are never replaced
unless --overwrite is given.
"""

from __future__ import annotations

import argparse
import os

from spinapse.commands.train import add_experiment_parser, plural


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_experiment_parser(
        subparsers,
        "run",
        "main job: m = 0 against metaplastic m on permuted embedded digits",
        __doc__,
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        default=None,
        help="run these seeds (default: the configuration's seed)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="runs trained at once: worker processes of a local Dask cluster, each with "
        "--threads threads (default: 2, or 1 on a one-core machine; 1 trains in this process); "
        "results do not depend on it",
    )
    p.add_argument(
        "--scheduler",
        default="local",
        metavar="local|tcp://HOST:PORT",
        help="'local' (default): the --jobs processes on this machine; or the address of a "
        "running Dask scheduler, whose workers train the runs (--jobs is then ignored)",
    )
    p.add_argument(
        "--cosim-steps",
        type=int,
        default=200,
        metavar="N",
        help="end with a short co-simulation, RTL engine + mtj_mi_stt devices against its golden "
        "prediction: 2 tasks of N steps, 784-64-10, device mode (default 200; 0: skip)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # Heavy imports here, not at module level: 'spinapse --help' does not load torch.
    from spinapse.config import load_config
    from spinapse.experiments.checkpoint import prune_checkpoints
    from spinapse.experiments.cluster import check_scheduler
    from spinapse.experiments.continual import ContinualResult, checkpoint_folder
    from spinapse.experiments.experiment import build_tasks, set_threads
    from spinapse.experiments.output import claim
    from spinapse.experiments.report import summary_table
    from spinapse.experiments.study import mean_sd, run_jobs, seed_folder, summary, write_seed
    from spinapse.io import write_json

    set_threads(args.threads)
    if not args.jobs >= 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    check_scheduler(args.scheduler)
    if args.cosim_steps < 0 or args.cosim_steps > 3000:
        raise ValueError(f"--cosim-steps must be in [0, 3000], got {args.cosim_steps}")
    base = load_config(args.config, args.overrides)
    if base.method.kind != "meta":
        raise ValueError(
            "spinapse run compares m = 0 with metaplastic m: method.kind must be "
            "'meta' (use spinapse train for ewc)"
        )
    seeds = args.seeds if args.seeds is not None else [base.seed]
    if any(s < 0 for s in seeds):
        raise ValueError(f"--seeds must be >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct, got {seeds}")
    meta = base.method.meta
    meta_label = "m=" + (
        "-".join(f"{m:g}" for m in meta) if isinstance(meta, list) else f"{meta:g}"
    )
    labels = {"m=0": 0.0, meta_label: meta}
    # Before any work: every result folder is writable and holds no other configuration.
    claim(base.out_dir(), base.model_dump(mode="json"), overwrite=args.overwrite)
    for seed in seeds:
        cfg = base.model_copy(update={"seed": seed}).model_dump(mode="json")
        claim(seed_folder(base, seed), cfg, overwrite=args.overwrite)
    # Load the data once here: errors surface before any worker starts.
    build_tasks(base)
    jobs = [(seed, label, m) for seed in seeds for label, m in labels.items()]
    done = run_jobs(
        base,
        jobs,
        workers=args.jobs,
        threads=args.threads,
        resume=args.resume,
        progress=not args.no_progress,
        scheduler=args.scheduler,
    )
    if args.checkpoints == "last":
        for seed in seeds:
            for label in labels:
                prune_checkpoints(checkpoint_folder(seed_folder(base, seed), label))
    per_seed: dict[int, dict[str, ContinualResult]] = {}
    for seed in seeds:
        runs = {label: done[(seed, label)][0] for label in labels}
        timing = {label: done[(seed, label)][1] for label in labels}
        out = write_seed(base, seed, runs, timing, threads=args.threads, workers=args.jobs)
        per_seed[seed] = runs
        n_tasks = len(next(iter(runs.values())).acc)
        print(
            f"seed {seed}: final test accuracy (%) after {plural(n_tasks, 'task')}, "
            f"{plural(base.train.epochs, 'epoch')} each ({sum(timing.values()):.0f} s of "
            "training, summed over the runs)"
        )
        print(summary_table(runs))
        print(f"results: {out}\n")
    if args.cosim_steps > 0:  # issue 9: the full-system co-simulation check
        from spinapse.experiments.cosim_check import short_cosim

        short_cosim(base.out_dir() / "cosim_check", args.cosim_steps, not args.no_progress)
    names = next(iter(per_seed[seeds[0]].values())).task_names
    doc = summary(per_seed, list(labels))
    write_json(base.out_dir() / "summary.json", doc)
    if len(names) < 2:
        return 0
    if len(seeds) > 1:
        k = len(names)
        print(f"over seeds {seeds} (mean ± sd, %)")
        print("".ljust(24) + "".join(s.rjust(16) for s in labels))
        print(
            f"mean of tasks 1-{k - 1}".ljust(24)
            + "".join(mean_sd(doc["runs"][s]["mean_previous_percent"]).rjust(16) for s in labels)
        )
        print(
            f"task {k}".ljust(24)
            + "".join(mean_sd(doc["runs"][s]["last_percent"]).rjust(16) for s in labels)
        )
    m0, mm = doc["runs"]["m=0"], doc["runs"][meta_label]
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
