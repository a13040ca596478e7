"""Result folders checked and claimed before any work starts.

- :func:`check_writable`: the folder can be created and written, tested with a real file, so a
  bad ``results_dir`` (``/dev/null/x``, a read-only disk) stops at once instead of after hours
  of training.
- :func:`claim`: a result folder belongs to one configuration. Its ``config.json`` (written
  before work starts) records it; a later run with another configuration into a folder that
  holds results (``results.json``, ``summary.json`` or checkpoints of an interrupted run) is
  refused with the fields that differ, unless it is allowed to replace them. The same
  configuration may run again (it gives the same files) or ``--resume``; a claim whose run
  failed before writing anything does not block the next one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spinapse.errors import UsageError
from spinapse.io import write_json

CLAIM = "config.json"
"""Name of the file that records the configuration a result folder belongs to."""


def check_writable(
    folder: str | os.PathLike[str],
    field: str = "results_dir",
    hint: str = "--set results_dir=results",
) -> Path:
    """Create ``folder`` (and its parents) and check that a file can be written in it.

    ``field`` names the setting the folder comes from, ``hint`` how to choose another.

    Raises
    ------
    UsageError
        Naming ``field``, the folder and the reason (a file where a folder is needed, no
        permission, read-only file system, ...).
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except (FileExistsError, NotADirectoryError):
        raise UsageError(
            f"{field}: cannot write results into {path}: a file stands where a folder is "
            f"needed; choose another folder ({hint})"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"{field}: cannot write results into {path} ({exc.strerror or exc}); "
            f"choose a writable folder ({hint})"
        ) from None
    return path


def has_results(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds result files or checkpoints of a run."""
    path = Path(folder)
    if (path / "results.json").is_file() or (path / "summary.json").is_file():
        return True
    ckpt = path / "checkpoints"
    return ckpt.is_dir() and any(ckpt.glob("*/task-*.pt"))


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"field: old -> new"`` for every leaf that differs between two nested configurations."""
    a, b = _flat(old), _flat(new)
    return [
        f"{k}: {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def claim(
    folder: str | os.PathLike[str], config: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """Check that ``folder`` is writable and holds no results of another configuration, then
    record ``config`` in ``folder/config.json``.

    Parameters
    ----------
    folder : path
        The result folder of one run or one seed.
    config : mapping
        The configuration as JSON-ready nested dicts (``ExperimentConfig.model_dump(mode="json")``).
    overwrite : bool
        Allow replacing results of another configuration (``--overwrite``).

    Raises
    ------
    UsageError
        If the folder cannot be written, or it holds results of another configuration and
        ``overwrite`` is false (the message lists the fields that differ).
    """
    path = check_writable(folder)
    record = path / CLAIM
    if record.is_file() and not overwrite and has_results(path):
        try:
            old = json.loads(record.read_text("utf-8")).get("config", {})
        except (OSError, ValueError):
            old = {}
        diff = differences(old, config)
        if diff:
            shown = "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
            raise UsageError(
                f"{path} holds results of another configuration ({shown}). Nothing was "
                "changed. Give this run its own folder with --set name=NEW_NAME, or replace "
                "those results with --overwrite"
            )
    write_json(record, {"config": dict(config)})
    return path
