"""Result folders checked and claimed before any work starts.

- :func:`check_writable`: the folder can be created and written, tested with a real file, so a
  bad ``results_dir`` (``/dev/null/x``, a read-only disk) stops at once instead of after hours
  of training.
- :func:`claim`: a result folder belongs to one configuration. Its ``config.json`` (written
  before work starts) records it; a later run with another configuration into the same folder is
  refused with the fields that differ, unless it is allowed to replace the old results. The same
  configuration may run again (it gives the same files) or ``--resume``.
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


def check_writable(folder: str | os.PathLike[str], field: str = "results_dir") -> Path:
    """Create ``folder`` (and its parents) and check that a file can be written in it.

    Raises
    ------
    UsageError
        Naming ``field``, the folder and the operating system's reason.
    """
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(
            f"{field}: cannot write results into {path} ({exc.strerror or exc}); "
            f"choose a writable folder, e.g. --set {field}=results"
        ) from None
    return path


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
    if record.is_file() and not overwrite:
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
