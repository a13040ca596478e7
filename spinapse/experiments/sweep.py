"""Run a sweep's runs on a Dask cluster, each one :func:`~spinapse.experiments.train_run.train_run`.

Every run trains on a worker with the same function as ``spinapse train`` and sends its result
files back as bytes; this process writes them (atomically) into ``<sweep folder>/<run name>/``,
so a cluster without a shared file system works too, and the files are what
``spinapse train --config <run>/config.toml`` writes alone, byte for byte.

Resume: a run whose folder already holds all its result files for the same configuration is
skipped (the files are the record); an unfinished one continues from its per-task checkpoints
when it lands on a worker that has them (the same machine), else starts over.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from spinapse.config import ExperimentConfig
from spinapse.experiments.continual import ContinualResult
from spinapse.experiments.dask_runs import Call, Outcome, run_calls
from spinapse.experiments.experiment import set_threads
from spinapse.experiments.study import task_count
from spinapse.experiments.sweep_grid import Sweep, SweepRun
from spinapse.experiments.train_run import RESULT_FILES, finished, train_run
from spinapse.io import write_bytes, write_text


@dataclass
class RunRecord:
    """One run of a sweep as the report sees it.

    Attributes
    ----------
    run : SweepRun
        Name, swept values and configuration.
    status : str
        ``"done"`` (trained now), ``"skipped"`` (finished by an earlier invocation),
        ``"failed"`` or ``"pending"`` (not run yet: ``spinapse sweep --report``).
    attempts : int
        Attempts made now (0 for a skipped run; 2 after a lost worker).
    label : str or None
        The run's key in its ``results.json``.
    result : ContinualResult or None
        None for a failed run.
    seconds : float or None
        Training time from ``timing.json``.
    error, traceback : str or None
        Of a failed run.
    """

    run: SweepRun
    status: str
    attempts: int = 0
    label: str | None = None
    result: ContinualResult | None = None
    seconds: float | None = None
    error: str | None = None
    traceback: str | None = None


def sweep_task(
    cfg_json: dict[str, Any], threads: int, *, on_epoch: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Worker side of one run: train it (resuming from checkpoints found here) and return
    ``{"label", "seconds", "files": {name: bytes}}``."""
    set_threads(threads)
    cfg = ExperimentConfig.model_validate(cfg_json)
    run = train_run(cfg, threads=threads, resume=True, progress=False, on_epoch=on_epoch)
    return {
        "label": run.label,
        "seconds": run.seconds,
        "files": {name: run.files[name].read_bytes() for name in RESULT_FILES},
    }


def config_toml(run: SweepRun, sweep_name: str) -> str:
    """The run's full configuration as TOML, which ``spinapse train --config`` re-runs alone."""
    head = (
        f"# run {run.name} of sweep {sweep_name}; swept: "
        + ", ".join(f"{k} = {json.dumps(v)}" for k, v in run.values.items())
        + "\n# spinapse train --config <this file> re-runs it alone, into this folder\n"
    )
    return head + tomli_w.dumps(run.config.model_dump(mode="json"))


def read_record(run: SweepRun) -> RunRecord:
    """The record of a finished run from its files."""
    out = run.config.out_dir()
    doc = json.loads((out / "results.json").read_text("utf-8"))
    (label, body), *_ = doc["runs"].items()
    fields = ContinualResult.__dataclass_fields__
    result = ContinualResult(**{k: v for k, v in body.items() if k in fields})
    seconds = json.loads((out / "timing.json").read_text("utf-8"))["seconds"].get(label)
    return RunRecord(run, "skipped", 0, label, result, seconds)


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name in RESULT_FILES:  # timing.json last: all four present means finished
        path = folder / name
        if not path.is_file() or path.read_bytes() != files[name]:
            write_bytes(path, files[name])


def pending_runs(sweep: Sweep) -> tuple[list[SweepRun], list[RunRecord]]:
    """Split the runs into those still to train and the records of those already finished.

    Raises
    ------
    ValueError
        If a run's folder holds a finished run of another configuration.
    """
    todo, done = [], []
    for run in sweep.runs:
        if finished(run.config):
            done.append(read_record(run))
        else:
            todo.append(run)
    return todo, done


def run_sweep(
    client,
    sweep: Sweep,
    runs: list[SweepRun],
    *,
    threads: int = 1,
    progress: bool = True,
) -> list[RunRecord]:
    """Train ``runs`` (of ``sweep``) on ``client``'s cluster and write their files as they
    finish; return one record per run, in the order of ``runs``.

    A failed run (error raised, or its worker lost twice) is recorded with its error; the
    others go on.
    """
    name = sweep.base.name
    for run in runs:
        write_text(run.config.out_dir() / "config.toml", config_toml(run, name))
    by_name = {r.name: r for r in runs}

    def done(outcome: Outcome) -> None:
        if outcome.ok:
            _write_files(by_name[outcome.key].config.out_dir(), outcome.value["files"])

    calls = [Call(r.name, sweep_task, (r.config.model_dump(mode="json"), threads)) for r in runs]
    epochs = sum(task_count(r.config) * r.config.train.epochs for r in runs)
    outcomes = run_calls(
        client, calls, progress=progress, total_epochs=epochs, desc=f"sweep {name}", on_done=done
    )
    records = []
    for run in runs:
        o = outcomes[run.name]
        if not o.ok:
            records.append(
                RunRecord(run, "failed", o.attempts, error=o.error, traceback=o.traceback)
            )
            continue
        rec = read_record(run)
        rec.status, rec.attempts = "done", o.attempts
        records.append(rec)
    return records
