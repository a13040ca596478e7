"""Elastic weight consolidation (EWC), the consolidation baseline of the metaplasticity paper.

Source: Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 114,
3521 (2017), Eq. 3; used as a baseline by Laborieux et al., Nat. Commun. 12, 2549 (2021)
(Fisher from 5000 samples, lambda 5000).

After each task ``t`` the diagonal Fisher information ``F_t`` of the hidden weights ``W_h`` and
the anchor ``W*_t`` are stored; while learning later tasks the loss gains
``lambda / 2 * sum_t sum_i F_t,i (W_h,i - W*_t,i)^2``.

The BNN's BatchNorm uses batch statistics, so single-sample gradients are not defined: the Fisher
is estimated as the mean over mini-batches of the squared mini-batch gradient of the
cross-entropy on the true labels (the "empirical, batched" Fisher), scaled by the batch size so
that its magnitude matches the per-sample estimate for independent samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class EWC:
    """Diagonal-Fisher quadratic penalty on a list of parameters.

    Parameters
    ----------
    params : sequence of nn.Parameter
        The consolidated tensors (the BNN's hidden weights ``W_h``).
    lam : float
        ``lambda`` >= 0 (paper: 5000).

    Raises
    ------
    ValueError
        If ``lam`` is negative.
    """

    def __init__(self, params: Sequence[nn.Parameter], lam: float) -> None:
        if not lam >= 0.0:
            raise ValueError(f"ewc_lambda must be >= 0, got {lam}")
        self.params = list(params)
        self.lam = float(lam)
        self.fishers: list[list[torch.Tensor]] = []
        self.anchors: list[list[torch.Tensor]] = []

    def consolidate(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        samples: int,
        batch_size: int = 100,
    ) -> None:
        """Estimate ``F`` on the first ``samples`` items of ``(x, y)`` and store it with ``W*``.

        Parameters
        ----------
        x, y : torch.Tensor
            float32 ``[N, D]`` inputs and int64 ``[N]`` labels of the task just learned.
        samples : int
            >= 2; capped at ``N``.
        batch_size : int
            >= 2, mini-batch of the Fisher estimate.

        Raises
        ------
        ValueError
            If ``samples`` or ``batch_size`` is below 2.
        """
        if samples < 2 or batch_size < 2:
            raise ValueError(
                f"ewc_samples and batch size must be >= 2, got {samples}, {batch_size}"
            )
        n = min(samples, x.shape[0])
        fisher = [torch.zeros_like(p) for p in self.params]
        model.train()
        batches = 0
        for a in range(0, n, batch_size):
            b = min(a + batch_size, n)
            if b - a < 2:
                continue
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[a:b]), y[a:b]).backward()
            for f, p in zip(fisher, self.params):
                f.add_(p.grad.detach() ** 2 * (b - a))
            batches += 1
        model.zero_grad(set_to_none=True)
        self.fishers.append([f / max(batches, 1) for f in fisher])
        self.anchors.append([p.detach().clone() for p in self.params])

    def penalty(self) -> torch.Tensor:
        """``lambda / 2 * sum_t sum_i F_t,i (W_h,i - W*_t,i)^2`` as a scalar tensor (0 before
        the first consolidation); differentiable with respect to the parameters."""
        total = torch.zeros(())
        for fisher, anchor in zip(self.fishers, self.anchors):
            for f, a, p in zip(fisher, anchor, self.params):
                total = total + (f * (p - a) ** 2).sum()
        return 0.5 * self.lam * total

    def state_dict(self) -> dict:
        """Fishers and anchors (detached tensors) for checkpoints."""
        return {"lam": self.lam, "fishers": self.fishers, "anchors": self.anchors}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.lam = float(state["lam"])
        self.fishers = [list(f) for f in state["fishers"]]
        self.anchors = [list(a) for a in state["anchors"]]
