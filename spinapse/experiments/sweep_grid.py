"""A sweep file: a base experiment plus a grid of configuration fields, expanded into runs.

A sweep file is an experiment TOML (the tables of ``spinapse train``'s configuration, each
optional) with one more table, ``[sweep]``::

    name = "m-sweep"              # the sweep's folder: results_dir/name
    [train]
    epochs = 40                   # applies to every run
    [sweep]
    base = "my_experiment.toml"   # optional, relative to this file; default: packaged default
    [sweep.grid]                  # every combination of these values is one run
    method.meta = [0, 4, 4.5, 5]  # bare dotted keys and quoted "method.meta" both work
    seed = [0, 1, 2]

``[[sweep.grid]]`` (an array of tables) unions several grids, e.g. an m sweep plus an EWC
baseline over the same seeds; a run that two grids give twice is run once. The first field of a
grid varies slowest. Fields are the configuration's (``spinapse train --help`` lists them);
``name`` and ``results_dir`` cannot be swept, since they place the runs.

Each run is a complete :class:`~spinapse.config.ExperimentConfig` whose ``results_dir`` is the
sweep's folder and whose ``name`` is made of the swept values (``meta-4.5_seed-0``): it writes
exactly what ``spinapse train`` writes for that configuration, into ``results_dir/name/name``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinapse.config import ExperimentConfig, apply_overrides, load_raw, validate
from spinapse.errors import UsageError

PLACED = ("name", "results_dir")
"""Fields a grid may not sweep: they place the runs' folders."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes
    ----------
    name : str
        Its folder name inside the sweep folder (also ``config.name``).
    values : dict
        The swept fields (dotted names) and this run's value of each.
    config : ExperimentConfig
        The complete configuration ``spinapse train`` would run.
    """

    name: str
    values: dict[str, Any]
    config: ExperimentConfig


@dataclass(frozen=True)
class Sweep:
    """A sweep expanded into runs.

    Attributes
    ----------
    base : ExperimentConfig
        The base experiment with the sweep file's tables and ``--set`` overrides applied.
    fields : list of str
        Every swept field (dotted), in the order first met.
    grids : list of dict
        Each grid as ``{field: [values]}``.
    runs : list of SweepRun
        In grid order, duplicates removed.
    """

    base: ExperimentConfig
    fields: list[str]
    grids: list[dict[str, list[Any]]]
    runs: list[SweepRun]

    @property
    def folder(self) -> Path:
        """``results_dir/name`` of the base: where the runs and the sweep report go."""
        return self.base.out_dir()


def _flatten(table: dict[str, Any], prefix: str, source: str) -> dict[str, list[Any]]:
    """``{"method": {"meta": [..]}}`` -> ``{"method.meta": [..]}`` (bare dotted TOML keys)."""
    out: dict[str, list[Any]] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{path}.", source))
            continue
        if not isinstance(value, list) or not value:
            raise UsageError(
                f"{source}: sweep.grid field {path} must be a non-empty list of values, "
                f"got {value!r}"
            )
        if path.split(".")[0] in PLACED:
            raise UsageError(
                f"{source}: sweep.grid cannot sweep {path}: name and results_dir place the runs"
            )
        out[path] = value
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _set(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    keys = path.split(".")
    out = _merge(raw, {})
    node = out
    for k in keys[:-1]:
        child = node.get(k, {})
        if not isinstance(child, dict):
            raise UsageError(f"sweep.grid field {path}: {k} is not a table")
        node[k] = dict(child)
        node = node[k]
    node[keys[-1]] = value
    return out


def _short_names(fields: list[str]) -> dict[str, str]:
    """The last part of each field (``meta``), or the whole path where two would clash."""
    last = [f.split(".")[-1] for f in fields]
    return {f: (s if last.count(s) == 1 else f) for f, s in zip(fields, last)}


def format_value(value: Any) -> str:
    """A swept value as it appears in run names and tables: ``4.5``, ``512x512``, ``mtj_mi_stt``
    (a card path shortened to its stem), ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(format_value(v) for v in value)
    if isinstance(value, str) and ("/" in value or value.endswith(".toml")):
        return Path(value).stem
    return str(value)


def run_name(values: dict[str, Any], short: dict[str, str]) -> str:
    """``meta-4.5_seed-0``: the swept values, safe as a folder and as ``config.name``."""
    parts = [f"{short[f]}-{format_value(v)}" for f, v in values.items()]
    name = _UNSAFE.sub("-", "_".join(parts)) or "run"
    if len(name) > 90:  # config.name allows 100 characters
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:80]}-{digest}"
    return name


def _grids(table: Any, source: str) -> list[dict[str, list[Any]]]:
    if isinstance(table, dict):
        table = [table]
    if not isinstance(table, list) or not table or not all(isinstance(t, dict) for t in table):
        raise UsageError(
            f"{source}: [sweep.grid] must be a table of fields (or [[sweep.grid]] tables), "
            "e.g. seed = [0, 1, 2]"
        )
    grids = [_flatten(t, "", source) for t in table]
    if any(not g for g in grids):
        raise UsageError(f"{source}: a sweep.grid table is empty")
    return grids


def load_sweep(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Sweep:
    """Read a sweep file, apply ``--set`` overrides to its base and expand the grid.

    Raises
    ------
    FileNotFoundError
        If the sweep file or its ``base`` does not exist.
    UsageError
        If ``[sweep]`` is missing or malformed, a grid value is not a non-empty list, or a
        grid sweeps ``name`` / ``results_dir``.
    ValueError
        If the base or any run is not a valid configuration (the message names the run's
        values and the field with its allowed range).
    """
    source = str(path)
    raw = load_raw(path)
    table = raw.pop("sweep", None)
    if not isinstance(table, dict) or "grid" not in table:
        raise UsageError(
            f"{source}: a sweep file needs a [sweep.grid] table, e.g. "
            "[sweep.grid] seed = [0, 1, 2] (see spinapse sweep --help)"
        )
    unknown = sorted(set(table) - {"base", "grid"})
    if unknown:
        raise UsageError(f"{source}: unknown [sweep] keys {unknown} (allowed: base, grid)")
    base_path = table.get("base")
    if base_path is not None:
        if not isinstance(base_path, str):
            raise UsageError(f"{source}: sweep.base must be a path string, got {base_path!r}")
        base_path = Path(path).parent / base_path
    merged = apply_overrides(_merge(load_raw(base_path), raw), overrides or [])
    base = validate(merged, source + (" with --set overrides" if overrides else ""))
    grids = _grids(table["grid"], source)
    fields = list(dict.fromkeys(f for g in grids for f in g))
    short = _short_names(fields)
    folder = base.out_dir().as_posix()
    runs: list[SweepRun] = []
    seen: dict[str, int] = {}
    names: set[str] = set()
    for grid in grids:
        for combo in itertools.product(*grid.values()):
            values = dict(zip(grid, combo))
            run_raw = merged
            for f, v in values.items():
                run_raw = _set(run_raw, f, v)
            name = run_name(values, short)
            stem, k = name, 1
            while name in names:
                k += 1
                name = f"{stem}-{k}"
            run_raw = {**run_raw, "name": name, "results_dir": folder}
            cfg = validate(run_raw, f"{source}, run {_describe(values)}")
            # The same configuration from two grids (or a repeated value) runs once.
            key = cfg.model_copy(update={"name": ""}).model_dump_json()
            if key in seen:
                continue
            seen[key] = len(runs)
            names.add(name)
            runs.append(SweepRun(name, values, cfg))
    return Sweep(base, fields, grids, runs)


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{f} = {v!r}" for f, v in values.items())
