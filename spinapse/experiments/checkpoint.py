"""Per-task checkpoints of a continual-learning run, so that ``--resume`` loses and redoes nothing.

After task ``i`` the runner saves ``task-<i>.pt`` holding the learner's state, the results so far
and a fingerprint of the run (configuration as canonical JSON). Resuming loads the highest task
whose file is readable and whose fingerprint matches; a mismatch is an error, not a silent restart.
Files are written through :func:`spinapse.io.atomic_path`, so a kill never leaves half a file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from spinapse.io import atomic_path

_NAME = re.compile(r"^task-(\d+)\.pt$")


def checkpoint_path(folder: str | os.PathLike[str], task: int) -> Path:
    """``folder/task-<task>.pt``."""
    return Path(folder) / f"task-{task}.pt"


def save_checkpoint(folder: str | os.PathLike[str], task: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, lists, numbers, strings) as the checkpoint of ``task``."""
    path = checkpoint_path(folder, task)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def latest_checkpoint(
    folder: str | os.PathLike[str], fingerprint: str
) -> tuple[int, dict[str, Any]] | None:
    """The highest-numbered checkpoint in ``folder`` and its payload, or None if there is none.

    Raises
    ------
    ValueError
        If that checkpoint was written by a run with a different fingerprint (configuration).
    """
    root = Path(folder)
    if not root.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name)) is not None
    )
    if not found:
        return None
    task, path = found[-1]
    payload = torch.load(path, weights_only=True)
    if payload.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{path}: checkpoint belongs to a different configuration; remove "
            f"{root} or run without --resume"
        )
    return task, payload


def clear_checkpoints(folder: str | os.PathLike[str]) -> None:
    """Remove every ``task-<i>.pt`` in ``folder`` (a fresh run starts clean)."""
    root = Path(folder)
    if root.is_dir():
        for p in root.iterdir():
            if _NAME.match(p.name):
                p.unlink()


def prune_checkpoints(folder: str | os.PathLike[str]) -> None:
    """Keep only the highest-numbered ``task-<i>.pt`` in ``folder`` (all ``--resume`` needs)."""
    root = Path(folder)
    if not root.is_dir():
        return
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name)))
    for _, path in found[:-1]:
        path.unlink()
