"""The continual-learning runner: learn tasks in sequence, test every task after each one.

Protocol of Laborieux et al., Nat. Commun. 12, 2549 (2021): tasks are learned one after another
for a fixed number of epochs; after each task (and optionally after each epoch) every task of the
stream is tested. The accuracy matrix ``acc[i][j]`` is the test accuracy on task ``j`` after
learning task ``i`` (fractions in ``[0, 1]``).

Determinism: the batch order of task ``i`` comes from a generator seeded with ``(seed, i)`` only,
and the learner's state is checkpointed after each task, so an interrupted run resumed from its
checkpoints gives exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from spinapse.data.tasks import Task
from spinapse.experiments.checkpoint import (
    checkpoint_path,
    clear_checkpoints,
    latest_checkpoint,
    save_checkpoint,
)
from spinapse.experiments.learner import Learner


@dataclass
class ContinualResult:
    """Accuracies of one run.

    Attributes
    ----------
    task_names : list of str
        One per task.
    acc : list of list of float
        ``acc[i][j]``: accuracy on task ``j`` after task ``i``, ``[T][T]``.
    curve : list of dict
        One entry per evaluation point: ``{"task": i, "epoch": e, "acc": [T floats]}``; ``epoch``
        counts from 1 within task ``i``. Per epoch when ``eval_every_epoch``, else per task end.
    loss : list of list of float
        Mean training loss of each epoch, ``[T][epochs]``.
    seconds : float
        Wall-clock seconds spent on the tasks learned so far, summed over every session of a
        resumed run (kept in the checkpoints, not in :meth:`to_dict`, so that results.json
        stays the same for the same seed and configuration).
    """

    task_names: list[str]
    acc: list[list[float]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    loss: list[list[float]] = field(default_factory=list)
    seconds: float = field(default=0.0, compare=False)

    def final(self) -> list[float]:
        """Accuracy on every task after the last task learned so far."""
        return list(self.acc[-1]) if self.acc else []

    def to_dict(self) -> dict[str, Any]:
        """The accuracies as plain lists and dicts (no timing)."""
        out = asdict(self)
        del out["seconds"]
        return out


def task_generator(seed: int, task: int) -> torch.Generator:
    """The batch-order generator of ``task``: seeded from ``(seed, task)`` alone."""
    state = np.random.SeedSequence([seed, task]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def fingerprint(obj: Any) -> str:
    """Canonical JSON of ``obj`` (the run's configuration), used to match checkpoints."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def run_continual(
    tasks: Sequence[Task],
    learner: Learner,
    epochs: int,
    seed: int,
    *,
    eval_every_epoch: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    run_fingerprint: str = "",
    label: str = "",
    progress: bool = True,
    after_task: Callable[[int, ContinualResult], None] | None = None,
    on_epoch: Callable[[], None] | None = None,
    keep_checkpoints: str = "all",
) -> ContinualResult:
    """Learn ``tasks`` in order with ``learner`` and test every task after each one.

    Parameters
    ----------
    tasks : sequence of Task
        The stream (:mod:`spinapse.data.tasks`).
    learner : Learner
        What is trained (:class:`spinapse.experiments.learner.GoldenLearner` or a device learner).
    epochs : int
        Epochs per task, >= 1.
    seed : int
        >= 0; seeds the batch order of each task (the learner is seeded by whoever builds it).
    eval_every_epoch : bool
        Also test every task after each epoch (for the curves).
    checkpoint_dir : path, optional
        Where ``task-<i>.pt`` is written after each task; None disables checkpoints.
    resume : bool
        Continue from the latest checkpoint in ``checkpoint_dir`` (must match
        ``run_fingerprint``); without it, old checkpoints there are removed first.
    label : str
        Shown on the progress bar.
    progress : bool
        Show a tqdm progress bar on stderr.
    after_task : callable, optional
        Called with ``(i, result)`` after task ``i`` is checkpointed (tests use it to simulate
        a kill).
    on_epoch : callable, optional
        Called without arguments after every training epoch (progress of parallel runs).
    keep_checkpoints : {"all", "last"}
        Keep every task's checkpoint, or only the newest (``--resume`` needs only that one; a
        device-mode task of the default network writes about 57 MB).

    Raises
    ------
    ValueError
        If ``epochs < 1``, ``seed < 0``, the stream is empty, a checkpoint does not match, or
        ``keep_checkpoints`` is not ``"all"`` or ``"last"``.
    """
    if keep_checkpoints not in ("all", "last"):
        raise ValueError(f"keep_checkpoints must be 'all' or 'last', got {keep_checkpoints!r}")
    if epochs < 1:
        raise ValueError(f"train.epochs must be >= 1, got {epochs}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not tasks:
        raise ValueError("the task stream is empty")
    result = ContinualResult([t.name for t in tasks])
    first = 0
    if checkpoint_dir is not None:
        if resume:
            found = latest_checkpoint(checkpoint_dir, run_fingerprint)
            if found is not None:
                done, payload = found
                learner.load_state_dict(payload["learner"])
                result = ContinualResult(**payload["result"])
                result.seconds = float(payload.get("seconds", 0.0))
                first = done + 1
        else:
            clear_checkpoints(checkpoint_dir)
    tests = [t.test() for t in tasks]

    def test_all() -> list[float]:
        return [learner.evaluate(j, x, y) for j, (x, y) in enumerate(tests)]

    bar = tqdm(
        total=len(tasks) * epochs,
        initial=first * epochs,
        desc=label or "train",
        disable=not progress,
        unit="epoch",
        leave=False,
    )
    try:
        for i in range(first, len(tasks)):
            started = time.perf_counter()
            x, y = tasks[i].train()
            generator = task_generator(seed, i)
            learner.start_task(i)
            losses = []
            for e in range(1, epochs + 1):
                losses.append(learner.train_epoch(x, y, generator))
                bar.update(1)
                if on_epoch is not None:
                    on_epoch()
                # Tasks are numbered from 1 wherever a user reads them (tables, bars).
                bar.set_postfix(task=f"{i + 1}/{len(tasks)}", loss=f"{losses[-1]:.3f}")
                if eval_every_epoch and e < epochs:
                    result.curve.append({"task": i, "epoch": e, "acc": test_all()})
            learner.end_task(i, x, y)
            row = test_all()
            result.acc.append(row)
            result.curve.append({"task": i, "epoch": epochs, "acc": row})
            result.loss.append(losses)
            result.seconds += time.perf_counter() - started
            if checkpoint_dir is not None:
                save_checkpoint(
                    checkpoint_dir,
                    i,
                    {
                        "fingerprint": run_fingerprint,
                        "learner": learner.state_dict(),
                        "result": result.to_dict(),
                        "seconds": result.seconds,
                    },
                )
                if keep_checkpoints == "last" and i > 0:
                    checkpoint_path(checkpoint_dir, i - 1).unlink(missing_ok=True)
            if after_task is not None:
                after_task(i, result)
    finally:
        bar.close()
    return result


def checkpoint_folder(out_dir: str | os.PathLike[str], label: str) -> Path:
    """``out_dir/checkpoints/<label>``."""
    return Path(out_dir) / "checkpoints" / label
