"""Adam with the metaplastic attenuation of the hidden weights (``Adam_meta``).

Source: Laborieux et al., "Synaptic metaplasticity in binarized neural networks",
Nat. Commun. 12, 2549 (2021), Methods, Eq. (1) and the "Adam_meta" algorithm.

For a weight matrix with metaplasticity ``m`` and Adam's first moment ``m_t``:

- ``f_meta(W_h) = 1 - tanh^2(m * |W_h|)``;
- where ``sign(W_h) * m_t > 0`` (the step would shrink ``|W_h|``, pushing ``W_b`` towards a flip),
  the applied step is ``f_meta(W_h) * m_t / (sqrt(v_hat) + eps)``; elsewhere it is Adam's step;
- the stored moments are never attenuated; updates that grow ``|W_h|`` are never attenuated.

With ``m = 0`` every operation is the one of ``torch.optim.Adam`` (single-tensor path, coupled L2
weight decay), so the result is bit-identical to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def f_meta(w_h: torch.Tensor, m: float) -> torch.Tensor:
    """Metaplastic attenuation ``1 - tanh^2(m * |W_h|)``, same shape and dtype as ``w_h``.

    Values lie in ``(0, 1]``; ``m = 0`` gives exactly 1. Example: ``m = 1.35``, ``|W_h| = 1``
    gives 0.236 (Laborieux et al. 2021, Eq. 1).

    Raises
    ------
    ValueError
        If ``m`` is negative or not finite.
    """
    _check_meta(m, "m")
    return 1.0 - torch.tanh(m * w_h.abs()) ** 2


def _check_meta(m: float, field: str) -> None:
    if not (math.isfinite(m) and m >= 0.0):
        raise ValueError(f"{field} must be a finite number >= 0, got {m}")


class AdamMeta(torch.optim.Optimizer):
    """Adam whose steps that shrink ``|W_h|`` are scaled by ``f_meta(W_h)``.

    Parameters
    ----------
    params : iterable of tensors or of dicts (parameter groups)
        Each group may set its own ``meta`` (``m`` of that layer, >= 0). BatchNorm parameters
        go in a group with ``meta = 0`` (plain Adam), as in the paper.
    lr : float
        Learning rate, > 0 (paper: 0.005).
    betas : (float, float)
        Moment decay rates, each in [0, 1) (paper: 0.9, 0.999).
    eps : float
        Denominator term, > 0 (1e-8).
    weight_decay : float
        Coupled L2 decay added to the gradient before the moments, >= 0 (paper: 1e-7).
    meta : float
        Default ``m`` for groups that do not set one, >= 0.

    Notes
    -----
    Groups with ``meta > 0`` should hold only weight matrices: the attenuation uses
    ``sign(W_h)`` elementwise, which is what the paper applies to binarized weights only.
    State per parameter: ``step`` (float32 scalar tensor), ``exp_avg`` (``m_t``),
    ``exp_avg_sq`` (``v_t``), the names of ``torch.optim.Adam``.

    Raises
    ------
    ValueError
        When a hyper-parameter is outside the ranges above (the message names it).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.005,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        meta: float = 0.0,
    ) -> None:
        if not lr > 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        for name, b in zip(("betas[0]", "betas[1]"), betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        if not eps > 0.0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        _check_meta(meta, "meta")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta=meta)
        super().__init__(params, defaults)
        for i, group in enumerate(self.param_groups):
            _check_meta(group["meta"], f"param_groups[{i}].meta")

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - same contract as torch.optim.Optimizer.step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd, meta = group["lr"], group["eps"], group["weight_decay"], group["meta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                # The operation order is torch.optim.Adam's single-tensor path, so that m = 0
                # reproduces it bit for bit.
                step_t += 1
                if wd != 0:
                    grad = grad.add(p, alpha=wd)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = step_t.item()
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
                if meta > 0:
                    # Attenuate only the applied step, only where it shrinks |W_h| (W_h and m_t
                    # of the same sign); the stored moment exp_avg is left as it is. Where
                    # W_h = 0, f_meta = 1, so the sign convention there does not matter.
                    shrinking = (p * exp_avg) > 0
                    fm = torch.tanh(p.abs().mul_(meta)).square_().neg_().add_(1.0)
                    applied = torch.where(shrinking, fm.mul_(exp_avg), exp_avg)
                else:
                    applied = exp_avg
                p.addcdiv_(applied, denom, value=-step_size)
        return loss


def bnn_optimizer(model: Any, meta: Iterable[float], lr: float, weight_decay: float) -> AdamMeta:
    """A fresh :class:`AdamMeta` for a BNN, as the paper's task protocol starts each task.

    ``model`` provides ``weight_parameters()`` (the ``W_h`` of each layer, input side first) and
    ``bn_parameters()``, as :class:`spinapse.golden.float_model.bnn.BNN` does. Layer ``i`` gets
    ``meta[i]`` as its ``m``; BatchNorm parameters get plain Adam (``m = 0``), as in Laborieux et
    al. (2021).
    """
    groups: list[dict[str, Any]] = [
        {"params": [w], "meta": m} for w, m in zip(model.weight_parameters(), meta)
    ]
    groups.append({"params": model.bn_parameters(), "meta": 0.0})
    return AdamMeta(groups, lr=lr, weight_decay=weight_decay)
