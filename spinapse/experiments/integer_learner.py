"""The integer engine behind the continual-learning runner's ``Learner`` protocol.

:class:`IntegerLearner` wraps :class:`spinapse.golden.integer_model.learning.IntegerEngine` so that
:func:`spinapse.experiments.continual.run_continual` trains it exactly like the float golden BNN:
the same tasks, the same seeded sample order per task (``torch.randperm`` of the runner's
generator), batch 1. Task protocol (``docs/learning_rule.md``): at each task start the
accumulators ``M`` and the thresholds restart from 0 (the paper's fresh optimizer and a new
BatchNorm copy), and the per-neuron deviations ``D`` (``IntegerRule.dev_shift``) restart at the
fixed windows and the learned biases (``IntegerRule.bias_shift``) restart at 0 (they are
folded into the saved thresholds); at each task end the thresholds are saved, and task ``i`` is
tested with its own saved thresholds (task-dependent thresholds, as the float model keeps
BatchNorm per task).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, encode_pixels


class IntegerLearner:
    """The integer metaplastic engine as a :class:`spinapse.experiments.learner.Learner`.

    Parameters
    ----------
    rule : IntegerRule
    mode : str
        ``"digital"`` or ``"device"``.
    seed : int
        Seed of the initial ``W_h``, >= 0.
    p_success, array_seed : int
        Array settings (see :class:`IntegerEngine`).
    population_thresholds : bool
        At each task end save thresholds recomputed from the task's training set
        (:meth:`IntegerEngine.population_thresholds`, the float model's BatchNorm population
        statistics) instead of the engine's tracked ``T`` (an exponential mean over the last
        ``2**thr_shift`` steps only). Training is unchanged.

    Notes
    -----
    Inputs are float pixels ``[N, n_in / in_levels]`` in [0, 1], coded to bits here
    (:func:`~spinapse.golden.integer_model.learning.encode_pixels`: ``pixel >= 0.5``, or the
    thermometer code of ``rule.in_levels``).
    ``train_epoch`` returns the fraction of training steps whose forward pass was wrong (the
    engine has no cross-entropy).
    """

    def __init__(
        self,
        rule: IntegerRule,
        mode: str = "digital",
        seed: int = 0,
        p_success: int = 256,
        array_seed: int = 1,
        population_thresholds: bool = False,
    ) -> None:
        self.engine = IntegerEngine(rule, mode, seed, p_success, array_seed)
        self.population_thresholds = population_thresholds
        self.thr_copies: list[list[np.ndarray]] = []

    def start_task(self, index: int) -> None:
        self.engine.start_task()

    def _bits(self, x: torch.Tensor) -> np.ndarray:
        r = self.engine.rule
        if x.shape[-1] * r.in_levels != r.n_in:
            raise ValueError(
                f"inputs have {x.shape[-1]} pixels; the rule needs n_in / in_levels = "
                f"{r.n_in} / {r.in_levels}"
            )
        return encode_pixels(x, r.in_levels)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        bits = self._bits(x)
        labels = y.numpy()
        order = torch.randperm(x.shape[0], generator=generator).numpy()
        wrong = 0
        for i in order:
            wrong += self.engine.step(bits[i], int(labels[i])) != labels[i]
        return wrong / max(len(order), 1)

    def end_task(self, index: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(self.thr_copies) != index:
            raise ValueError(f"end_task({index}) after {len(self.thr_copies)} finished tasks")
        if self.population_thresholds:
            self.thr_copies.append(self.engine.population_thresholds(self._bits(x)))
        else:
            e = self.engine
            self.thr_copies.append([t + b for t, b in zip(e.thr, e.bias)])

    def evaluate(self, index: int, x: torch.Tensor, y: torch.Tensor) -> float:
        thr = self.thr_copies[index] if index < len(self.thr_copies) else None
        pred = self.engine.predict(self._bits(x), thr)
        return float((pred == y.numpy()).mean())

    def state_dict(self) -> dict[str, Any]:
        return {"engine": copy.deepcopy(self.engine), "thr_copies": copy.deepcopy(self.thr_copies)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.engine = copy.deepcopy(state["engine"])
        self.thr_copies = copy.deepcopy(state["thr_copies"])
