"""The learner: what the continual-learning runner trains, behind four hooks.

The runner (:mod:`spinapse.experiments.continual`) only calls ``start_task``, ``train_epoch``,
``end_task`` and ``evaluate``, and saves/restores ``state_dict``. Anything that implements
:class:`Learner` can be run through the same protocol: the float golden BNN here, a device-backed
learner (synapses of ``spinapse.behavioral``) later.

:class:`GoldenLearner` implements the task protocol of Laborieux et al., Nat. Commun. 12, 2549
(2021): a fresh optimiser (moments reset) at each task start; BatchNorm keeps training, a copy of
its parameters is stored at each task end, and each finished task is evaluated with its own copy
(task-dependent BN). Training uses batch statistics. At test time, with the default
``test_statistics = "population"``, each task's copy also holds the population statistics of
that task's training set, computed at its end (:meth:`BNN.store_statistics`); a task not finished
yet is tested with the current BatchNorm and statistics refreshed on the training set of the task
in progress. With ``"batch"`` the authors' per-test-batch statistics are used instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from spinapse.golden.float_model.adam_meta import AdamMeta, bnn_optimizer
from spinapse.golden.float_model.bnn import BNN
from spinapse.golden.float_model.ewc import EWC
from spinapse.golden.float_model.training import evaluate, train_epoch


@runtime_checkable
class Learner(Protocol):
    """The runner's view of a trainable system.

    ``x`` are float32 ``[N, D]`` inputs, ``y`` int64 ``[N]`` labels; tasks are numbered from 0.
    """

    def start_task(self, index: int) -> None:
        """Prepare to learn task ``index`` (e.g. a fresh optimiser)."""

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        """One pass over the task's training set in the order drawn from ``generator``; returns
        the mean training loss."""

    def end_task(self, index: int, x: torch.Tensor, y: torch.Tensor) -> None:
        """Task ``index`` is learned (``x``, ``y``: its training set): consolidate, store copies."""

    def evaluate(self, index: int, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy in ``[0, 1]`` on task ``index``'s test set, leaving the learner unchanged."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after ``end_task`` (tensors and plain values)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""


class GoldenLearner:
    """The float metaplastic BNN with Adam_meta (and optionally EWC), task-dependent BN.

    Parameters
    ----------
    model : BNN
        The network; its hidden weights get ``meta[i]``, BatchNorm gets plain Adam.
    meta : sequence of float
        ``m`` of each layer (input side first), >= 0; all zeros is the non-metaplastic baseline.
    lr, weight_decay : float
        Adam_meta settings (paper: 0.005, 1e-7).
    batch_size, test_batch_size : int
        >= 2 and >= 1 (paper: 100, 1000); the test batch size changes nothing but memory unless
        the model evaluates with ``test_statistics = "batch"``.
    ewc : EWC, optional
        When given, its penalty is added to the loss and it consolidates at each task end on
        ``ewc_samples`` training samples.

    Raises
    ------
    ValueError
        If ``meta`` does not have one value per layer, or a value is out of range.
    """

    def __init__(
        self,
        model: BNN,
        meta: Sequence[float],
        lr: float = 0.005,
        weight_decay: float = 1e-7,
        batch_size: int = 100,
        test_batch_size: int = 1000,
        ewc: EWC | None = None,
        ewc_samples: int = 1000,
    ) -> None:
        if len(meta) != len(model.linears):
            raise ValueError(
                f"meta has {len(meta)} values, the model has {len(model.linears)} layers"
            )
        self.model = model
        self.meta = [float(m) for m in meta]
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.batch_size, self.test_batch_size = int(batch_size), int(test_batch_size)
        self.ewc, self.ewc_samples = ewc, int(ewc_samples)
        self.bn_copies: list[list[dict[str, torch.Tensor]]] = []
        # Training set of the task in progress, whose statistics are stale after an epoch.
        self._current_x: torch.Tensor | None = None
        self._stale = False
        self.optimizer = self._fresh_optimizer()

    def _uses_population(self) -> bool:
        return self.model.test_statistics == "population"

    def _refresh_statistics(self) -> None:
        if self._stale and self._current_x is not None and self._uses_population():
            self.model.store_statistics(self._current_x)
        self._stale = False

    def _fresh_optimizer(self) -> AdamMeta:
        return bnn_optimizer(self.model, self.meta, self.lr, self.weight_decay)

    def start_task(self, index: int) -> None:
        self.optimizer = self._fresh_optimizer()

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        penalty = self.ewc.penalty if self.ewc is not None and self.ewc.fishers else None
        loss = train_epoch(self.model, self.optimizer, x, y, self.batch_size, generator, penalty)
        self._current_x, self._stale = x, True
        return loss

    def end_task(self, index: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(self.bn_copies) != index:
            raise ValueError(f"end_task({index}) after {len(self.bn_copies)} finished tasks")
        self._current_x, self._stale = x, True
        self._refresh_statistics()
        self.bn_copies.append(self.model.bn_state())
        if self.ewc is not None:
            self.ewc.consolidate(self.model, x, y, self.ewc_samples, self.batch_size)

    def evaluate(self, index: int, x: torch.Tensor, y: torch.Tensor) -> float:
        if index >= len(self.bn_copies):
            # A task not finished yet (or the one in progress) is tested with the current BN.
            self._refresh_statistics()
            return evaluate(self.model, x, y, self.test_batch_size)
        current = self.model.bn_state()
        self.model.load_bn_state(self.bn_copies[index])
        try:
            return evaluate(self.model, x, y, self.test_batch_size)
        finally:
            self.model.load_bn_state(current)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "bn_copies": self.bn_copies,
            "ewc": self.ewc.state_dict() if self.ewc is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.bn_copies = [list(c) for c in state["bn_copies"]]
        if self.ewc is not None:
            self.ewc.load_state_dict(state["ewc"])
        self.optimizer = self._fresh_optimizer()
