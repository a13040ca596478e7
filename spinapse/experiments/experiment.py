"""Assemble a continual-learning experiment from its configuration: tasks, learner, run, files.

The command-line verbs (``spinapse train``, ``spinapse run``) are thin layers over
:func:`run_experiment`. A variant that needs a different learner (device-backed synapses) passes
its own ``learner`` built with the same tasks and seed; the runner and result files are shared.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from spinapse.config import ExperimentConfig
from spinapse.data.digits import load_digits
from spinapse.data.idx_folder import load_idx_folder
from spinapse.data.image_set import ImageSet
from spinapse.data.tasks import Task, permuted_tasks, sequence_tasks, split_class_tasks
from spinapse.experiments.continual import (
    ContinualResult,
    checkpoint_folder,
    fingerprint,
    run_continual,
)
from spinapse.experiments.learner import GoldenLearner, Learner
from spinapse.experiments.output import claim
from spinapse.golden.float_model.bnn import BNN
from spinapse.golden.float_model.ewc import EWC


def set_threads(n: int) -> None:
    """Fix torch's CPU threads (the sums, hence the results, depend on it).

    Raises
    ------
    ValueError
        If ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def _idx_dir(value: str, field: str) -> str:
    if not value:
        raise ValueError(f"{field} must name the folder holding the IDX files for this source")
    return value


def load_sets(cfg: ExperimentConfig) -> list[ImageSet]:
    """The image sets named by ``data.source`` (one, or MNIST then Fashion-MNIST).

    Raises
    ------
    ValueError, FileNotFoundError
        If an IDX folder is not given, missing or malformed.
    """
    d = cfg.data
    if d.source == "digits":
        return [load_digits(d.n_train, d.split_seed)]
    sets = []
    if d.source in ("mnist", "mnist-fashion"):
        sets.append(load_idx_folder(_idx_dir(d.mnist_dir, "data.mnist_dir"), "mnist"))
    if d.source in ("fashion", "mnist-fashion"):
        sets.append(load_idx_folder(_idx_dir(d.fashion_dir, "data.fashion_dir"), "fashion"))
    return sets


def build_tasks(cfg: ExperimentConfig) -> list[Task]:
    """The task stream of ``cfg.tasks`` over the sets of ``cfg.data`` (seeded by ``cfg.seed``).

    Raises
    ------
    ValueError
        If ``tasks.kind`` needs one set and ``data.source`` gives two, or the reverse.
    """
    sets = load_sets(cfg)
    kind = cfg.tasks.kind
    if kind == "sequence":
        return sequence_tasks(sets)
    if len(sets) != 1:
        raise ValueError(
            f"tasks.kind = {kind!r} needs a single data set; data.source = "
            f"{cfg.data.source!r} gives {len(sets)} (use tasks.kind = 'sequence')"
        )
    if kind == "permuted":
        return permuted_tasks(sets[0], cfg.tasks.count, cfg.seed)
    return split_class_tasks(sets[0], cfg.tasks.count)


def build_model(cfg: ExperimentConfig, in_features: int, n_classes: int) -> BNN:
    """The BNN of ``cfg.model``, initialised from ``cfg.seed`` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        bn = cfg.batchnorm
        return BNN(
            in_features,
            cfg.model.hidden,
            n_classes,
            init_width=cfg.model.init_width,
            bn_eps=bn.eps,
            bn_momentum=bn.momentum,
            bn_gamma_init=bn.gamma_init,
            test_statistics=bn.test_statistics,
        )


def build_learner(
    cfg: ExperimentConfig, tasks: list[Task], meta: float | list[float] | None = None
) -> GoldenLearner:
    """The golden learner of ``cfg.method`` (``meta`` replaces ``method.meta`` when given).

    Raises
    ------
    ValueError
        If ``method.meta`` does not match the number of layers.
    """
    images = tasks[0].images
    model = build_model(cfg, images.in_features, images.n_classes)
    method = cfg.method
    layers = len(model.linears)
    if method.kind == "ewc":
        per_layer = [0.0] * layers
        ewc = EWC(model.weight_parameters(), method.ewc_lambda)
    else:
        chosen = method if meta is None else method.model_copy(update={"meta": meta})
        per_layer = chosen.meta_per_layer(layers)
        ewc = None
    t = cfg.train
    return GoldenLearner(
        model,
        per_layer,
        lr=t.lr,
        weight_decay=t.weight_decay,
        batch_size=t.batch_size,
        test_batch_size=t.test_batch_size,
        ewc=ewc,
        ewc_samples=method.ewc_samples,
    )


def run_experiment(
    cfg: ExperimentConfig,
    label: str,
    out_dir: str | os.PathLike[str],
    *,
    tasks: list[Task] | None = None,
    learner: Learner | None = None,
    meta: float | list[float] | None = None,
    resume: bool = False,
    progress: bool = True,
    after_task: Callable[[int, ContinualResult], None] | None = None,
    on_epoch: Callable[[], None] | None = None,
    overwrite: bool = False,
    keep_checkpoints: str = "all",
) -> ContinualResult:
    """Run one learner through the task stream with checkpoints in
    ``out_dir/checkpoints/<label>``.

    ``tasks`` and ``learner`` default to :func:`build_tasks` and :func:`build_learner`. Before
    any work, ``out_dir`` is checked to be writable and claimed for ``cfg``
    (:func:`spinapse.experiments.output.claim`): results of another configuration there are not
    replaced unless ``overwrite``. ``keep_checkpoints``: see
    :func:`spinapse.experiments.continual.run_continual`.

    Raises
    ------
    spinapse.errors.UsageError
        If ``out_dir`` cannot be written or belongs to another configuration.
    """
    claim(out_dir, cfg.model_dump(mode="json"), overwrite=overwrite)
    tasks = build_tasks(cfg) if tasks is None else tasks
    learner = build_learner(cfg, tasks, meta) if learner is None else learner
    print_meta: Any = cfg.method.meta if meta is None else meta
    fp = fingerprint({"config": cfg.model_dump(mode="json"), "label": label, "meta": print_meta})
    return run_continual(
        tasks,
        learner,
        cfg.train.epochs,
        cfg.seed,
        eval_every_epoch=cfg.train.eval_every_epoch,
        checkpoint_dir=checkpoint_folder(Path(out_dir), label),
        resume=resume,
        run_fingerprint=fp,
        label=label,
        progress=progress,
        after_task=after_task,
        on_epoch=on_epoch,
        keep_checkpoints=keep_checkpoints,
    )
