"""Multi-seed studies: m = 0 against metaplastic m over seeds, trained on a Dask cluster.

:func:`run_jobs` trains every ``(seed, label, m)`` run of one configuration: in this process when
one job runs at a time on the local machine, else as Dask tasks (:mod:`spinapse.experiments.
dask_runs`) on a local cluster of ``workers`` single-threaded processes or on a running scheduler,
each run with a fixed number of torch threads, so a run's numbers do not depend on where or with
how many others it runs. :func:`write_seed` writes each seed's result files and :func:`summary`
the study's ``summary.json`` (final accuracy per task, mean of the earlier tasks, newest task, per
seed).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from spinapse.config import ExperimentConfig
from spinapse.errors import UsageError
from spinapse.experiments.continual import ContinualResult
from spinapse.experiments.experiment import build_tasks, run_experiment, set_threads
from spinapse.experiments.report import percent, write_results
from spinapse.io import write_json

Job = tuple[int, str, float | list[float]]
"""One run of a study: ``(seed, label, m)``."""


def one_run(
    cfg_json: dict,
    seed: int,
    label: str,
    meta: float | list[float],
    resume: bool,
    threads: int,
    progress: bool = False,
    *,
    on_epoch: Callable[[], None] | None = None,
) -> tuple[dict, float]:
    """Train one (seed, m) run; return the result as a dict and its duration in seconds.

    Module-level so that Dask workers import it by name; ``on_epoch`` is called after every
    training epoch (progress events).
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
        on_epoch=on_epoch,
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
    scheduler: str = "local",
) -> dict[tuple[int, str], tuple[ContinualResult, float]]:
    """Run every ``(seed, label, m)`` job; return ``{(seed, label): (result, seconds)}``.

    ``scheduler = "local"`` with ``workers == 1`` trains in this process, one run after another;
    otherwise the runs are Dask tasks on a local cluster of ``workers`` processes or on the
    scheduler at ``scheduler`` (``tcp://HOST:PORT``). Each run uses ``threads`` torch threads,
    so results do not depend on ``workers`` or the scheduler.

    Raises
    ------
    UsageError
        After the other runs finished, if a run failed (its error, or its worker lost twice);
        their checkpoints let ``--resume`` reuse them.
    """
    cfg_json = base.model_dump(mode="json")
    out: dict[tuple[int, str], tuple[ContinualResult, float]] = {}
    if scheduler == "local" and workers == 1:
        for seed, label, m in jobs:
            res, sec = one_run(cfg_json, seed, label, m, resume, threads, progress)
            out[(seed, label)] = (ContinualResult(**res), sec)
        return out
    from spinapse.experiments.cluster import dask_client, describe
    from spinapse.experiments.dask_runs import Call, run_calls

    calls = [
        Call(f"seed-{seed}-{label}", one_run, (cfg_json, seed, label, m, resume, threads))
        for seed, label, m in jobs
    ]
    with dask_client(scheduler, workers=workers) as client:
        if progress:
            print(describe(client), file=sys.stderr, flush=True)
        outcomes = run_calls(
            client,
            calls,
            progress=progress,
            total_epochs=len(jobs) * base.train.epochs * task_count(base),
            desc=f"{len(jobs)} runs",
        )
    failed = [o for o in outcomes.values() if not o.ok]
    if failed:
        raise UsageError(
            "; ".join(
                f"run {o.key} failed after {o.attempts} attempt(s): {o.error}" for o in failed
            )
            + " (the finished runs are checkpointed: add --resume to reuse them)"
        )
    for (seed, label, _), call in zip(jobs, calls):
        res, sec = outcomes[call.key].value
        out[(seed, label)] = (ContinualResult(**res), sec)
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
