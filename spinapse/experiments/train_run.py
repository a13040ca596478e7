"""One continual-learning run of a configuration, with its result files: what ``spinapse train``
does, and what every run of ``spinapse sweep`` does on whichever worker it lands.

Because both call :func:`train_run`, a run's ``results.json`` (and ``accuracy.csv``) is
byte-identical whether it ran alone, in a sweep, or on another machine of a cluster, as long as
the configuration and the number of torch threads are the same (the sums depend on the threads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinapse.config import ExperimentConfig, unused_fields
from spinapse.experiments.continual import ContinualResult
from spinapse.experiments.experiment import run_experiment
from spinapse.experiments.output import claim
from spinapse.experiments.report import write_results
from spinapse.io import write_json

RESULT_FILES = ("results.json", "accuracy.csv", "curves.png", "timing.json")
"""The files :func:`train_run` writes into ``cfg.out_dir()``, in the order it writes them."""


@dataclass
class TrainRun:
    """What one run produced.

    Attributes
    ----------
    label : str
        The run's key in ``results.json["runs"]`` (``m=4.5``, ``ewc``, ``digital-<card>-m=...``).
    result : ContinualResult
        Accuracy matrix, curves and losses.
    seconds : float
        Training time summed over the sessions of a resumed run, rounded to 0.1 s (also in
        ``timing.json``).
    files : dict of str to Path
        The written files by name (``RESULT_FILES``).
    device_report : dict or None
        Device writes and energies (J) of a device-backed run (``synapse.card`` set), else None.
    """

    label: str
    result: ContinualResult
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    device_report: dict[str, Any] | None = None


def label_for(cfg: ExperimentConfig) -> str:
    """Run label of a golden run: ``ewc`` or ``m=<meta>`` (per-layer values joined by ``-``)."""
    if cfg.method.kind == "ewc":
        return "ewc"
    meta = cfg.method.meta
    return "m=" + ("-".join(f"{m:g}" for m in meta) if isinstance(meta, list) else f"{meta:g}")


def train_run(
    cfg: ExperimentConfig,
    *,
    threads: int = 1,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    keep_checkpoints: str = "all",
    on_epoch: Callable[[], None] | None = None,
) -> TrainRun:
    """Train ``cfg`` (golden learner, or device-backed when ``synapse.card`` is set) and write
    ``results.json``, ``accuracy.csv``, ``curves.png`` and ``timing.json`` into
    ``cfg.out_dir()`` (atomically, through :mod:`spinapse.io`), after claiming the folder for
    ``cfg`` (``config.json``, :func:`spinapse.experiments.output.claim`).

    Parameters
    ----------
    cfg : ExperimentConfig
        The validated configuration; ``seed`` seeds weights, permutations and batch order.
    threads : int
        Torch CPU threads the caller has set (recorded in ``timing.json``; results depend on it).
    resume : bool
        Continue from the per-task checkpoints in ``out_dir/checkpoints/<label>``.
    progress : bool
        Show a tqdm bar of the epochs on stderr.
    overwrite, keep_checkpoints
        See :func:`spinapse.experiments.experiment.run_experiment`.
    on_epoch : callable, optional
        Called after every training epoch (progress of runs in other processes).

    Raises
    ------
    UsageError, ValueError, FileNotFoundError
        A folder holding another configuration's results, bad data folders, device cards,
        per-layer m, or a checkpoint of another configuration.
    """
    if cfg.synapse.card:  # a missing or bad card is reported before the folder is touched
        from spinapse.behavioral.card import load_card

        load_card(cfg.synapse.card)
    out = cfg.out_dir()
    # Before any work: the folder is writable and holds no other configuration's results.
    claim(out, cfg.model_dump(mode="json"), overwrite=overwrite)
    options = {
        "resume": resume,
        "progress": progress,
        "overwrite": overwrite,
        "keep_checkpoints": keep_checkpoints,
        "on_epoch": on_epoch,
    }
    device_report = None
    if cfg.synapse.card:
        from spinapse.experiments.device_training import run_device_experiment

        label, result, device_report = run_device_experiment(cfg, out, **options)
    else:
        label = label_for(cfg)
        result = run_experiment(cfg, label, out, **options)
    runs = {label: result}
    extras = {label: {"device": device_report}} if device_report is not None else None
    written = write_results(
        out, cfg.model_dump(mode="json"), runs, cfg.train.epochs, extras, unused_fields(cfg)
    )
    files = {Path(p).name: Path(p) for p in written.values()}
    # result.seconds sums every session of a resumed run (kept in the checkpoints).
    seconds = round(result.seconds, 1)
    files["timing.json"] = write_json(
        out / "timing.json", {"seconds": {label: seconds}, "threads": threads}
    )
    return TrainRun(label, result, seconds, files, device_report)


def finished(cfg: ExperimentConfig) -> bool:
    """Whether ``cfg.out_dir()`` holds every result file of a finished run of exactly ``cfg``.

    The files are the record: :func:`train_run` writes ``timing.json`` last, each file
    atomically, so all four present means the run finished.

    Raises
    ------
    ValueError
        If ``results.json`` there belongs to another configuration (the folder would be
        overwritten by a different run).
    """
    out = cfg.out_dir()
    if not all((out / name).is_file() for name in RESULT_FILES):
        return False
    stored = json.loads((out / "results.json").read_text("utf-8")).get("config")
    if stored != cfg.model_dump(mode="json"):
        raise ValueError(
            f"{out} holds a run of another configuration; remove it or change the "
            "sweep's name or results_dir"
        )
    return True
