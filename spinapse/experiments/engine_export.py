"""A ``spinapse train`` result as an inference-engine image: integer model, writes, test set.

:func:`export_run` reads ``RESULTS_DIR/results.json`` (the run's configuration) and the last
checkpoint of a run (``checkpoints/<label>/task-<i>.pt``: the float BNN and the BatchNorm copy
stored at the end of each task), loads task ``t``'s BatchNorm copy and exports the network to
integers (:func:`spinapse.golden.integer_model.inference.export_integer`): BatchNorm statistics
over task ``t``'s training set with the pixels binarized as the engine sees them (the statistics
the float model stores belong to its float-pixel input, so they are recomputed). The result
carries the engine's write words (:func:`spinapse.cosim.engine_load.model_writes`) and task
``t``'s binarized test set. :func:`write_export` writes it into ``RESULTS_DIR/engine/``:
``<stem>.npz`` (integer model, images, labels), ``<stem>.bin`` (the host link's ``'W'`` command
stream that loads the engine: :mod:`spinapse.rtl.host_link`) and ``<stem>.json`` (what it is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spinapse.cosim.engine_load import model_writes
from spinapse.errors import UsageError
from spinapse.golden.integer_model.inference import IntegerBNN, binarize_pixels, export_integer
from spinapse.io import write_bytes, write_json
from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.host_link import link_sizes


@dataclass(frozen=True)
class EngineExport:
    """One task of a trained run, ready for the engine.

    Attributes
    ----------
    label : str
        Run label (``m=4.5``, ``ewc``...).
    task : int
        Task whose BatchNorm copy and test set are used.
    task_name : str
    integer : IntegerBNN
    writes : list of (sel, addr, data)
        Engine write words that load ``integer`` into ``config``.
    config : EngineConfig
    test_bits : numpy.ndarray
        uint8 ``[M, N_in]`` binarized test images of the task.
    test_y : numpy.ndarray
        int64 ``[M]`` labels.
    """

    label: str
    task: int
    task_name: str
    integer: IntegerBNN
    writes: list[tuple[int, int, int]]
    config: EngineConfig
    test_bits: np.ndarray
    test_y: np.ndarray

    @property
    def stem(self) -> str:
        """File stem ``<label>_task<t>`` with characters other than ``[A-Za-z0-9._-]`` as ``_``."""
        return re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.label}_task{self.task}")


def _last_checkpoint(folder: Path) -> Path:
    found = sorted(
        (int(m.group(1)), p)
        for p in folder.glob("task-*.pt")
        if (m := re.fullmatch(r"task-(\d+)\.pt", p.name))
    )
    if not found:
        raise UsageError(f"{folder}: no task-<i>.pt checkpoint (was the run finished?)")
    return found[-1][1]


@dataclass(frozen=True)
class TrainedRun:
    """One task of a ``spinapse train`` result, loaded: the float BNN with that task's BatchNorm
    copy (in eval mode), its task and the task's training images (float pixels in [0, 1])."""

    label: str
    task: int
    task_name: str
    model: torch.nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.model.widths)


_BN_KEYS = ("running_mean", "running_var", "stats_samples")


def _check_bn_format(root: Path, state: dict) -> None:
    """Refuse checkpoints written before BatchNorm stored its population statistics."""
    layers = [layer for copy in state.get("bn_copies") or [] for layer in copy]
    model_keys = set(state.get("model", {}))
    old = any(k not in layer for layer in layers for k in _BN_KEYS) or (
        layers and not any(k.endswith(".stats_samples") for k in model_keys)
    )
    if old:
        raise UsageError(
            f"{root}: the checkpoint was written before BatchNorm stored population statistics "
            "(its BatchNorm copies lack running_mean/running_var/stats_samples); spinapse "
            "changed that together with the embedded train/test split, so this run's test "
            "digits are no longer known and its thresholds cannot be folded: train it again "
            "with this version (spinapse train with the same --set options; its configuration "
            f"is in {root / 'config.json'}) and give the new folder"
        )


def load_trained_run(results_dir: str | Path, task: int = 0, run: str | None = None) -> TrainedRun:
    """Load task ``task`` of run ``run`` (default: the only run) of a ``spinapse train`` result.

    Raises
    ------
    UsageError
        If the folder has no ``results.json`` or checkpoint, the run or task does not exist, the
        run is device-backed, or the checkpoint predates the BatchNorm statistics format.
    """
    from spinapse.config import ExperimentConfig
    from spinapse.experiments.experiment import build_model, build_tasks

    root = Path(results_dir)
    path = root / "results.json"
    if not path.is_file():
        raise UsageError(f"{root}: no results.json (give the folder a 'spinapse train' wrote)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    cfg = ExperimentConfig.model_validate(doc["config"])
    if cfg.synapse.card:
        raise UsageError(f"{root}: a device-backed run; export takes runs of the float model")
    labels = sorted(doc.get("runs", {}))
    if run is None:
        if len(labels) != 1:
            raise UsageError(f"{root} holds runs {labels}: choose one with --run")
        run = labels[0]
    if run not in labels:
        raise UsageError(f"--run {run!r} not in {root}; allowed: {labels}")
    state = torch.load(_last_checkpoint(root / "checkpoints" / run), weights_only=True)["learner"]
    _check_bn_format(root, state)
    copies = state["bn_copies"]
    if not 0 <= task < len(copies):
        n = len(copies)
        raise UsageError(f"--task {task}: the run stored {n} tasks (0..{n - 1})")
    tasks = build_tasks(cfg)
    x_train, y_train = tasks[task].train()
    x_test, y_test = tasks[task].test()
    widths = (x_train.shape[1], *cfg.model.hidden, 10)
    model = build_model(cfg, widths[0], widths[-1])
    model.load_state_dict(state["model"])
    model.load_bn_state(copies[task])
    model.eval()
    return TrainedRun(run, task, tasks[task].name, model, x_train, y_train, x_test, y_test)


def export_run(
    results_dir: str | Path, config: EngineConfig, task: int = 0, run: str | None = None
) -> EngineExport:
    """Export task ``task`` of run ``run`` (default: the only run) of a ``spinapse train`` result.

    Raises
    ------
    UsageError
        As :func:`load_trained_run`, or if the network's widths differ from the engine's.
    """
    loaded = load_trained_run(results_dir, task, run)
    widths = loaded.widths
    if tuple(widths) != tuple(config.widths):
        raise UsageError(
            f"the trained network is {'-'.join(map(str, widths))}, the engine "
            f"{'-'.join(map(str, config.widths))}: train with model.hidden = "
            f"{list(config.widths[1:-1])} or give an engine --config with these widths"
        )
    integer = export_integer(loaded.model, loaded.x_train)
    try:
        writes = model_writes(config, integer)
    except ValueError as exc:
        raise UsageError(f"the exported model does not fit the engine: {exc}") from None
    return EngineExport(
        label=loaded.label,
        task=task,
        task_name=loaded.task_name,
        integer=integer,
        writes=writes,
        config=config,
        test_bits=binarize_pixels(loaded.x_test),
        test_y=loaded.y_test.numpy().astype(np.int64),
    )


def write_command_stream(config: EngineConfig, writes) -> bytes:
    """The host link's ``'W'`` commands of ``writes`` as one byte string."""
    dw = link_sizes(config)["write_data"]
    out = bytearray()
    for sel, addr, data in writes:
        out += b"W" + bytes([sel]) + int(addr).to_bytes(2, "little")
        out += int(data).to_bytes(dw, "little")
    return bytes(out)


def write_export(exp: EngineExport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<stem>.npz``, ``<stem>.bin`` and ``<stem>.json`` into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    arrays = {"test_bits": exp.test_bits, "test_y": exp.test_y}
    for i, layer in enumerate(exp.integer.layers):
        arrays[f"layer{i}_weights"] = layer.weights
        for name in ("threshold", "flip", "scale", "offset"):
            value = getattr(layer, name, None)
            if value is not None:
                arrays[f"layer{i}_{name}"] = np.asarray(value)
        if getattr(layer, "frac_bits", None) is not None:
            arrays[f"layer{i}_frac_bits"] = np.asarray(layer.frac_bits)
    import io as _io

    buf = _io.BytesIO()
    np.savez_compressed(buf, **arrays)
    cls, _ = exp.integer.predict(exp.test_bits)
    c = exp.config
    paths = {
        "npz": write_bytes(out / f"{exp.stem}.npz", buf.getvalue()),
        "bin": write_bytes(out / f"{exp.stem}.bin", write_command_stream(c, exp.writes)),
    }
    paths["json"] = write_json(
        out / f"{exp.stem}.json",
        {
            "run": exp.label,
            "task": exp.task,
            "task_name": exp.task_name,
            "engine": {
                "widths": list(c.widths),
                "pe": list(c.pe),
                "simd": list(c.simd),
                "in_width": c.in_width,
            },
            "writes": len(exp.writes),
            "command_stream_bytes": paths["bin"].stat().st_size,
            "test_images": int(len(exp.test_y)),
            "integer_accuracy": float(np.mean(cls == exp.test_y)),
            "files": {k: p.name for k, p in paths.items()},
        },
    )
    return paths
