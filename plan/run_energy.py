"""Counted energies of a device-aware run, read from its ``results.json``: energy per sample.

What is read (and nothing else):

- a golden device-aware run (``spinapse train --synapse CARD --mode digital|device``): for each
  label in ``runs`` with a ``device`` record, its totals ``write_energy_J``, ``gate_energy_J``,
  ``read_energy_J``, ``device_writes``, ``gate_pulses``, ``reads``, ``flips``, ``card``,
  ``settings.mode``, the per-layer ``layers`` list and ``train_samples`` (training samples that
  reached an update);
- a co-simulation results file with the same record at the top level (``device``) or under
  ``runs``, same keys (``spinapse cosim``);
- when ``train_samples`` is missing (files written before it existed): the samples follow from
  the configuration for the embedded digits with permuted tasks,
  ``tasks.count * train.epochs * n``, ``n = data.n_train`` less the one-sample last batch the
  learner skips.

Energy per training sample = (write + gate + read energy counted by the run) / samples.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENERGY_KEYS = ("write_energy_J", "gate_energy_J", "read_energy_J")
COUNT_KEYS = ("device_writes", "gate_pulses", "reads", "flips")


@dataclass(frozen=True)
class CountedRun:
    """Totals of one device-aware run.

    Attributes
    ----------
    label, source : str
        Run label and the file it came from.
    mode, card : str
        ``"digital"``/``"device"`` and the device card name.
    samples : int
        Training samples.
    energy_J : dict[str, float]
        ``write``, ``gate``, ``read`` energy (J) over the run.
    counts : dict[str, int]
        ``device_writes`` (write pulses), ``gate_pulses``, ``reads``, ``flips``.
    widths : list of int
        Network ``[n_in, hidden..., n_out]`` when the configuration tells it, else empty.
    batch_size : int
        Samples per update step (1 for the on-chip engine).
    settings : dict
        Pulse settings of the run (SI units).
    """

    label: str
    source: str
    mode: str
    card: str
    samples: int
    energy_J: dict[str, float]
    counts: dict[str, int]
    widths: list[int] = field(default_factory=list)
    batch_size: int = 1
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total_energy_J(self) -> float:
        return sum(self.energy_J.values())

    def per_sample_J(self) -> dict[str, float]:
        """Energy per training sample (J) by kind and ``total``."""
        out = {k: v / self.samples for k, v in self.energy_J.items()}
        out["total"] = self.total_energy_J / self.samples
        return out

    def per_sample_counts(self) -> dict[str, float]:
        """Pulse and read counts per training sample."""
        return {k: v / self.samples for k, v in self.counts.items()}


def _samples_from_config(cfg: dict, where: str) -> int:
    try:
        data, tasks, train = cfg["data"], cfg["tasks"], cfg["train"]
        if data["source"] != "digits" or tasks["kind"] != "permuted":
            raise KeyError
        n, batch = int(data["n_train"]), int(train["batch_size"])
        n -= 1 if n % batch == 1 else 0
        return int(tasks["count"]) * int(train["epochs"]) * n
    except (KeyError, TypeError):
        raise ValueError(
            f"{where}: no 'train_samples' and the configuration does not fix the sample count "
            "(only embedded digits with permuted tasks do); re-run it to get 'train_samples'"
        ) from None


def _widths(cfg: dict) -> list[int]:
    try:
        if cfg["data"]["source"] in ("digits", "mnist", "fashion", "mnist-fashion"):
            return [784, *[int(h) for h in cfg["model"]["hidden"]], 10]
    except (KeyError, TypeError):
        pass
    return []


def _records(doc: dict) -> list[tuple[str, dict]]:
    found = []
    if isinstance(doc.get("device"), dict):
        found.append((str(doc.get("label", "cosim")), doc["device"]))
    for label, run in (doc.get("runs") or {}).items():
        if isinstance(run, dict) and isinstance(run.get("device"), dict):
            found.append((label, run["device"]))
    return found


def counted_runs(path: str | os.PathLike[str]) -> list[CountedRun]:
    """Every device-aware run recorded in the ``results.json`` at ``path``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not JSON, holds no device record, a record lacks an energy or count key, or
        the sample count cannot be known (the message names the file and the key).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON: {exc}") from None
    records = _records(doc) if isinstance(doc, dict) else []
    if not records:
        raise ValueError(
            f"{p}: no device record (runs.<label>.device or device): not a device-aware run; "
            "make one with 'spinapse train --synapse mtj_mi_stt --mode device'"
        )
    cfg = doc.get("config") or {}
    out = []
    for label, rec in records:
        where = f"{p}: runs.{label}.device"
        missing = [k for k in ENERGY_KEYS + COUNT_KEYS if k not in rec]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        samples = rec.get("train_samples")
        samples = int(samples) if samples else _samples_from_config(cfg, where)
        if samples < 1:
            raise ValueError(f"{where}: train_samples must be >= 1, got {samples}")
        settings = dict(rec.get("settings") or {})
        out.append(
            CountedRun(
                label=label,
                source=str(p),
                mode=str(settings.get("mode", rec.get("mode", ""))),
                card=str(rec.get("card", "")),
                samples=samples,
                energy_J={k.split("_")[0]: float(rec[k]) for k in ENERGY_KEYS},
                counts={k: int(rec[k]) for k in COUNT_KEYS},
                widths=_widths(cfg),
                batch_size=int((cfg.get("train") or {}).get("batch_size", 1)),
                settings=settings,
            )
        )
    return out
