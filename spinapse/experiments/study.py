"""Multi-seed studies: m = 0 against metaplastic m over seeds, trained in worker processes.

:func:`run_jobs` trains every ``(seed, label, m)`` run of one configuration, ``jobs`` at a time in
worker processes with a fixed number of torch threads each, so a run's numbers do not depend on
how many run at once. :func:`write_study` writes each seed's result files and ``summary.json``
(final accuracy per task, mean of the earlier tasks, newest task, per seed).
"""

from __future__ import annotations

import multiprocessing
import statistics
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from spinapse.config import ExperimentConfig
from spinapse.experiments.continual import ContinualResult
from spinapse.experiments.experiment import build_tasks, run_experiment, set_threads
from spinapse.experiments.report import percent, write_results
from spinapse.io import write_json

Job = tuple[int, str, float | list[float]]
"""One run of a study: ``(seed, label, m)``."""


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
    # result.seconds sums every session of a resumed run (kept in its checkpoints).
    return result.to_dict(), round(result.seconds, 1)


def task_count(cfg: ExperimentConfig) -> int:
    """Number of tasks in the stream of ``cfg`` (without loading the data)."""
    if cfg.tasks.kind == "sequence":
        return 2 if cfg.data.source == "mnist-fashion" else 1
    return cfg.tasks.count


def run_jobs(
    base: ExperimentConfig,
    jobs: list[Job],
    *,
    workers: int,
    threads: int,
    resume: bool,
    progress: bool,
) -> dict[tuple[int, str], tuple[ContinualResult, float]]:
    """Run every ``(seed, label, m)`` job, ``workers`` at a time in worker processes (each with
    ``threads`` torch threads, so results do not depend on ``workers``).

    Returns ``{(seed, label): (result, seconds)}``.
    """
    cfg_json = base.model_dump(mode="json")
    out: dict[tuple[int, str], tuple[ContinualResult, float]] = {}
    if workers == 1:
        for seed, label, m in jobs:
            res, sec = _one_run(cfg_json, seed, label, m, resume, threads, progress)
            out[(seed, label)] = (ContinualResult(**res), sec)
        return out
    total = len(jobs) * base.train.epochs * task_count(base)
    # fork where the platform has it: workers start in milliseconds instead of re-importing
    # torch; the parent has run no parallel torch kernel yet (one thread), so forking is safe.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures = {
            pool.submit(_one_run, cfg_json, seed, label, m, resume, threads, False, queue): (
                seed,
                label,
            )
            for seed, label, m in jobs
        }
        with tqdm(
            total=total,
            desc=f"{len(jobs)} runs, {workers} jobs",
            unit="epoch",
            disable=not progress,
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


def mean_sd(values: list[float]) -> str:
    """``"mean ± sd"`` with one decimal (the value alone for one element)."""
    if len(values) == 1:
        return percent(values[0])
    return f"{percent(statistics.mean(values))} ± {percent(statistics.stdev(values))}"


def seed_folder(base: ExperimentConfig, seed: int) -> Path:
    """``results/<name>/seed-<s>``."""
    return base.out_dir() / f"seed-{seed}"


def write_seed(
    base: ExperimentConfig,
    seed: int,
    runs: dict[str, ContinualResult],
    timing: dict[str, float],
    *,
    threads: int,
    workers: int,
) -> Path:
    """Write one seed's ``results.json``, ``accuracy.csv``, ``curves.png`` and ``timing.json``."""
    cfg = base.model_copy(update={"seed": seed})
    out = seed_folder(base, seed)
    write_results(out, cfg.model_dump(mode="json"), runs, cfg.train.epochs)
    write_json(out / "timing.json", {"seconds": timing, "threads": threads, "jobs": workers})
    return out


def summary(per_seed: dict[int, dict[str, ContinualResult]], labels: list[str]) -> dict:
    """The study's ``summary.json``: per label, final accuracy (%) per task and seed, mean of the
    earlier tasks (None for a one-task stream) and the newest task."""
    seeds = list(per_seed)
    doc: dict = {"seeds": seeds, "runs": {}}
    for label in labels:
        # Percentages of counts over a test set: 6 decimals keep them exact and drop float
        # noise (14.649999999999999).
        finals = [[round(100 * a, 6) for a in per_seed[s][label].final()] for s in seeds]
        doc["runs"][label] = {
            "final_percent": finals,
            # None, not 0.0, when there is no earlier task to average.
            "mean_previous_percent": [
                round(sum(f[:-1]) / (len(f) - 1), 6) if len(f) > 1 else None for f in finals
            ],
            "last_percent": [f[-1] for f in finals],
        }
    return doc
