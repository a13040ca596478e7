"""Device-aware training from an experiment configuration: ``spinapse train --synapse CARD``.

Builds the learner of ``cfg.synapse.mode`` (:mod:`spinapse.experiments.device_learner`) over the
same tasks, seed and BNN initialisation as the golden run, runs it through the shared continual
runner (:func:`spinapse.experiments.experiment.run_experiment`, checkpoints and resume included) and
returns the device report that goes into ``results.json`` under ``runs[label]["device"]``: device
write pulses, failed writes, flips, write/gate/read energy (J), per task and in total.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinapse.behavioral.card import load_card
from spinapse.config import ExperimentConfig
from spinapse.experiments.continual import ContinualResult
from spinapse.experiments.device_learner import DigitalDeviceLearner, HiddenStateDeviceLearner
from spinapse.experiments.experiment import build_model, build_tasks, run_experiment
from spinapse.experiments.output import claim


def device_label(cfg: ExperimentConfig) -> str:
    """Run label: ``digital-<card>-m=<meta>`` or ``device-<card>``."""
    s = cfg.synapse
    name = Path(s.card).stem
    if s.mode == "device":
        return f"device-{name}"
    meta = cfg.method.meta
    m = "-".join(f"{x:g}" for x in meta) if isinstance(meta, list) else f"{meta:g}"
    return f"digital-{name}-m={m}"


def build_device_learner(
    cfg: ExperimentConfig, tasks
) -> DigitalDeviceLearner | HiddenStateDeviceLearner:
    """The device learner of ``cfg.synapse`` for ``tasks`` (BNN initialised from ``cfg.seed``).

    Raises
    ------
    ValueError, FileNotFoundError
        If the card is missing, invalid or not an ``mtj_synapse``; if ``method.kind`` is not
        ``meta`` in digital mode.
    """
    s = cfg.synapse
    card = load_card(s.card)
    if card.kind != "mtj_synapse":
        raise ValueError(
            f"synapse.card: {card.name!r} is a {card.kind}; training needs mtj_synapse"
        )
    images = tasks[0].images
    model = build_model(cfg, images.in_features, images.n_classes)
    t = cfg.train
    if s.mode == "device":
        return HiddenStateDeviceLearner(
            model,
            card,
            seed=cfg.seed,
            lr=t.lr,
            batch_size=t.batch_size,
            test_batch_size=t.test_batch_size,
            write_amplitude=s.device_amplitude,
            flip_scale=s.flip_scale,
            consolidation_scale=s.consolidation_scale,
            gate_voltage=s.gate_voltage,
        )
    if cfg.method.kind != "meta":
        raise ValueError(
            "synapse.mode = 'digital' trains W_h with Adam_meta: method.kind must be 'meta'"
        )
    return DigitalDeviceLearner(
        model,
        card,
        cfg.method.meta_per_layer(len(model.linears)),
        seed=cfg.seed,
        lr=t.lr,
        weight_decay=t.weight_decay,
        batch_size=t.batch_size,
        test_batch_size=t.test_batch_size,
        write_amplitude=s.write_amplitude,
        write_width=s.write_width,
        max_tries=s.max_tries,
    )


def learner_settings(learner) -> dict[str, Any]:
    """The pulse settings of a device learner in SI units (for the report)."""
    if isinstance(learner, HiddenStateDeviceLearner):
        return {
            "mode": "device",
            "write_current_A": learner.write_current,
            "write_width_per_flip_scale_s": learner.t_ref,
            "flip_scale": learner.flip_scale,
            "consolidation_scale": learner.consolidation_scale,
            "gate_voltage_V": learner.gate_voltage,
            "gate_tau_s": learner.tau_gate,
        }
    return {
        "mode": "digital",
        "write_current_A": learner.write_current,
        "write_width_s": learner.write_width,
        "max_tries": learner.max_tries,
    }


def run_device_experiment(
    cfg: ExperimentConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    keep_checkpoints: str = "all",
    on_epoch: Callable[[], None] | None = None,
) -> tuple[str, ContinualResult, dict[str, Any]]:
    """Run the device learner of ``cfg``; return ``(label, result, device report)``.

    ``overwrite`` and ``keep_checkpoints``: see
    :func:`spinapse.experiments.experiment.run_experiment`. ``on_epoch`` is called after every
    training epoch (progress of runs in other processes).
    """
    claim(out_dir, cfg.model_dump(mode="json"), overwrite=overwrite)
    tasks = build_tasks(cfg)
    learner = build_device_learner(cfg, tasks)
    label = device_label(cfg)
    result = run_experiment(
        cfg,
        label,
        out_dir,
        tasks=tasks,
        learner=learner,
        resume=resume,
        progress=progress,
        overwrite=overwrite,
        keep_checkpoints=keep_checkpoints,
        on_epoch=on_epoch,
    )
    report = learner.device_report()
    report["card"] = learner.card.name
    report["settings"] = learner_settings(learner)
    report["per_task"] = [
        {k: v for k, v in entry.items() if k != "layers"} for entry in learner.log
    ]
    return label, result, report
