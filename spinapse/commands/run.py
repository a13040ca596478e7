"""``spinapse run``: the main job.

Runs the default experiment (or ``--config``) twice on the same seed, data and initial weights:
without metaplasticity (m = 0) and with the configured m, and prints the final accuracy of every
task for both, with the mean over all tasks but the last. The runs train in parallel worker
processes (``--jobs``). With ``--seeds`` it repeats this per seed and prints the mean and
standard deviation over seeds. Files go to ``results/<name>/seed-<s>/`` (results.json,
accuracy.csv, curves.png, timing.json, checkpoints/) and ``results/<name>/summary.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from tqdm import tqdm

from spinapse.commands.train import add_experiment_parser, set_threads
from spinapse.config import ExperimentConfig, load_config
from spinapse.golden.continual import ContinualResult
from spinapse.golden.experiment import build_tasks, run_experiment
from spinapse.golden.report import summary_table, write_results
from spinapse.io import write_json


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
        help="runs trained at once in worker processes, each with --threads threads "
        "(default: 2, or 1 on a one-core machine); results do not depend on it",
    )
    p.set_defaults(func=main)


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _one_run(
    cfg_json: dict,
    seed: int,
    label: str,
    meta: float | list[float],
    resume: bool,
    threads: int,
    progress: bool,
    queue=None,
) -> tuple[dict, float]:
    """Train one (seed, m) run; returns the result as a dict and its duration in seconds.

    Top-level so that worker processes can run it; ``queue`` receives one item per epoch.
    """
    set_threads(threads)
    cfg = ExperimentConfig.model_validate(cfg_json).model_copy(update={"seed": seed})
    out = cfg.out_dir() / f"seed-{seed}"
    start = time.perf_counter()
    result = run_experiment(
        cfg,
        label,
        out,
        tasks=build_tasks(cfg),
        meta=meta,
        resume=resume,
        progress=progress,
        on_epoch=None if queue is None else (lambda: queue.put(1)),
    )
    return result.to_dict(), round(time.perf_counter() - start, 1)


def _run_jobs(
    base: ExperimentConfig,
    jobs: list[tuple[int, str, float | list[float]]],
    args: argparse.Namespace,
) -> dict[tuple[int, str], tuple[ContinualResult, float]]:
    """Run every (seed, label, m) job, ``args.jobs`` at a time in worker processes (each with
    ``args.threads`` torch threads, so results do not depend on ``--jobs``)."""
    cfg_json = base.model_dump(mode="json")
    out: dict[tuple[int, str], tuple[ContinualResult, float]] = {}
    if args.jobs == 1:
        for seed, label, m in jobs:
            res, sec = _one_run(
                cfg_json, seed, label, m, args.resume, args.threads, not args.no_progress
            )
            out[(seed, label)] = (ContinualResult(**res), sec)
        return out
    total = len(jobs) * base.train.epochs * _task_count(base)
    # fork where the platform has it: workers start in milliseconds instead of re-importing
    # torch; the parent has run no parallel torch kernel yet (one thread), so forking is safe.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures = {
            pool.submit(
                _one_run, cfg_json, seed, label, m, args.resume, args.threads, False, queue
            ): (seed, label)
            for seed, label, m in jobs
        }
        with tqdm(
            total=total,
            desc=f"{len(jobs)} runs, {args.jobs} jobs",
            unit="epoch",
            disable=args.no_progress,
            leave=False,
        ) as bar:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    bar.update(queue.get())
                for f in finished:
                    res, sec = f.result()
                    out[futures[f]] = (ContinualResult(**res), sec)
    return out


def _task_count(cfg: ExperimentConfig) -> int:
    if cfg.tasks.kind == "sequence":
        return 2 if cfg.data.source == "mnist-fashion" else 1
    return cfg.tasks.count


def main(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    if not args.jobs >= 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
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
    # Load the data once here: errors surface before any worker starts, and forked workers
    # inherit the loaded digits instead of reading them again.
    build_tasks(base)
    jobs = [(seed, label, m) for seed in seeds for label, m in labels.items()]
    done = _run_jobs(base, jobs, args)
    per_seed: dict[int, dict[str, ContinualResult]] = {}
    for seed in seeds:
        cfg = base.model_copy(update={"seed": seed})
        out = base.out_dir() / f"seed-{seed}"
        runs = {label: done[(seed, label)][0] for label in labels}
        timing = {label: done[(seed, label)][1] for label in labels}
        write_results(out, cfg.model_dump(mode="json"), runs, cfg.train.epochs)
        write_json(
            out / "timing.json", {"seconds": timing, "threads": args.threads, "jobs": args.jobs}
        )
        per_seed[seed] = runs
        n_tasks = len(next(iter(runs.values())).acc)
        print(
            f"seed {seed}: final test accuracy (%) after {n_tasks} tasks, "
            f"{cfg.train.epochs} epochs each ({sum(timing.values()):.0f} s of training, "
            "summed over the runs)"
        )
        print(summary_table(runs))
        print(f"results: {out}\n")
    names = next(iter(per_seed[seeds[0]].values())).task_names
    summary: dict = {"seeds": seeds, "runs": {}}
    for label in labels:
        finals = [[100 * a for a in per_seed[s][label].final()] for s in seeds]
        summary["runs"][label] = {
            "final_percent": finals,
            # None, not 0.0, when there is no earlier task to average.
            "mean_previous_percent": [
                sum(f[:-1]) / (len(f) - 1) if len(f) > 1 else None for f in finals
            ],
            "last_percent": [f[-1] for f in finals],
        }
    write_json(base.out_dir() / "summary.json", summary)
    if len(names) < 2:
        return 0
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
