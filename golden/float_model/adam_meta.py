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
import os
import shutil
import sys
from collections.abc import Iterable
from typing import Any

import torch

from spinapse.golden.float_model.binarized import binarize_into, mark_binary_written


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
        go in a group with ``meta = 0`` (plain Adam), as in the paper. A group may also give
        ``binary``: one ``W_b`` buffer per parameter (same shape and dtype, e.g.
        :meth:`BinaryLinear.current_binary`), written ``sign(W_h)`` in the same pass.
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
    fused : bool or None
        How groups with ``binary`` buffers (the weight matrices) are updated: ``True`` one pass
        per matrix compiled with ``torch.compile`` (a C++ compiler is needed), ``False`` the
        eager operations, ``None`` (default) compiled when a compiler is found, else eager;
        the choice is printed once per process on stderr. The eager path with ``m = 0`` is
        bit-identical to ``torch.optim.Adam``; the fused one agrees with it to float32 rounding
        (its ``tanh`` and operation order differ). Groups without ``binary`` are always eager.

    Notes
    -----
    Groups with ``meta > 0`` should hold only weight matrices: the attenuation uses
    ``sign(W_h)`` elementwise, which is what the paper applies to binarized weights only.
    State per parameter: ``step`` (float32 scalar tensor), ``exp_avg`` (``m_t``),
    ``exp_avg_sq`` (``v_t``), the names of ``torch.optim.Adam``. The eager path computes in
    place in the gradient and one scratch buffer per parameter (no new full-size tensor per
    step; the gradient holds garbage afterwards, it is cleared at the next ``zero_grad``).

    Raises
    ------
    ValueError
        When a hyper-parameter is outside the ranges above (the message names it), or a
        ``binary`` list does not match its group's parameters.
    RuntimeError
        With ``fused=True`` when no C++ compiler is found.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.005,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        meta: float = 0.0,
        fused: bool | None = None,
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
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta=meta, binary=None
        )
        super().__init__(params, defaults)
        for i, group in enumerate(self.param_groups):
            _check_meta(group["meta"], f"param_groups[{i}].meta")
            binary = group["binary"]
            if binary is not None and [tuple(b.shape) for b in binary] != [
                tuple(p.shape) for p in group["params"]
            ]:
                raise ValueError(f"param_groups[{i}].binary must give one W_b per parameter")
        has_binary = any(g["binary"] for g in self.param_groups)
        if fused is None:
            fused = has_binary and fused_update_available()
        elif fused:
            fused_update_available(required=True)
        self.fused = bool(fused)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - same contract as torch.optim.Optimizer.step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd, meta = group["lr"], group["eps"], group["weight_decay"], group["meta"]
            binary = group["binary"] or [None] * len(group["params"])
            for p, w_b in zip(group["params"], binary):
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t += 1
                step = step_t.item()
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                bc2_sqrt = bias_correction2**0.5
                hyper = (beta1, beta2, eps, wd, meta)
                if w_b is not None and self.fused:
                    try:
                        _fused_step(p, p.grad, exp_avg, exp_avg_sq, w_b, step_size, bc2_sqrt, hyper)
                    except Exception as exc:  # compilation failed: nothing was written yet
                        if _COMPILED.get("ran"):
                            raise
                        print(
                            f"AdamMeta: torch.compile failed ({exc!r}); eager update",
                            file=sys.stderr,
                        )
                        self.fused = False
                if not (w_b is not None and self.fused):
                    if "scratch" not in state:
                        state["scratch"] = torch.empty_like(p)
                    _eager_step(
                        p, p.grad, exp_avg, exp_avg_sq, state["scratch"], step_size, bc2_sqrt, hyper
                    )
                    if w_b is not None:
                        binarize_into(p, w_b)
                if w_b is not None:
                    mark_binary_written(p)
        return loss

    def state_dict(self) -> dict[str, Any]:  # noqa: D102 - scratch buffers are not state
        out = super().state_dict()
        out["state"] = {
            k: {n: v for n, v in s.items() if n != "scratch"} for k, s in out["state"].items()
        }
        return out


def _eager_step(p, grad, exp_avg, exp_avg_sq, scratch, step_size, bc2_sqrt, hyper) -> None:
    """One Adam_meta update in eager operations, in place (``grad`` and ``scratch`` reused).

    The operation order is ``torch.optim.Adam``'s single-tensor path, so that ``m = 0``
    reproduces it bit for bit (the in-place forms compute the same values).
    """
    beta1, beta2, eps, wd, meta = hyper
    if wd != 0:
        grad = grad.add_(p, alpha=wd)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    if meta > 0:
        # Attenuate only the applied step, only where it shrinks |W_h| (W_h and m_t of the same
        # sign); the stored moment exp_avg is left as it is. The gradient is not needed any
        # more and becomes the applied step: factor = 1 - [W_h m_t > 0] tanh^2(m |W_h|), i.e.
        # f_meta where the step shrinks |W_h| and exactly 1 elsewhere. Where W_h = 0, f_meta = 1,
        # so the sign convention there does not matter.
        torch.gt(torch.mul(p, exp_avg, out=grad), 0, out=grad)
        tanh2 = torch.abs(p, out=scratch).mul_(meta).tanh_().square_()
        applied = grad.mul_(tanh2).neg_().add_(1.0).mul_(exp_avg)
    else:
        applied = exp_avg
    denom = torch.sqrt(exp_avg_sq, out=scratch).div_(bc2_sqrt).add_(eps)
    p.addcdiv_(applied, denom, value=-step_size)


def _fused_body(p, grad, exp_avg, exp_avg_sq, w_b, scalars):
    # One pass over the matrix: every output element depends on the same element of the inputs,
    # so Inductor emits a single loop that reads p, grad, m, v and writes p, m, v, W_b. All
    # hyper-parameters come in one tensor, so one compiled kernel serves every layer, step and
    # m (m = 0 gives f_meta = 1 exactly; wd = 0 adds exactly 0).
    step_size, bc2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps, wd, meta = scalars.unbind()
    g = grad + wd * p
    m = torch.lerp(exp_avg, g, one_minus_beta1)
    v = exp_avg_sq * beta2 + one_minus_beta2 * g * g
    denom = torch.sqrt(v) / bc2_sqrt + eps
    fm = 1.0 - torch.tanh(meta * torch.abs(p)) ** 2
    applied = torch.where(p * m > 0, fm * m, m)
    new_p = p - step_size * (applied / denom)
    exp_avg.copy_(m)
    exp_avg_sq.copy_(v)
    p.copy_(new_p)
    w_b.copy_(torch.where(new_p >= 0, 1.0, -1.0))


_COMPILED: dict[str, Any] = {}


def _fused_step(p, grad, exp_avg, exp_avg_sq, w_b, step_size, bc2_sqrt, hyper) -> None:
    fn = _COMPILED.get("fn")
    if fn is None:
        fn = _COMPILED["fn"] = torch.compile(_fused_body, dynamic=True, fullgraph=True)
    beta1, beta2, eps, wd, meta = hyper
    # 1 - beta in double first, as the eager path rounds it.
    values = [step_size, bc2_sqrt, 1 - beta1, beta2, 1 - beta2, eps, wd, meta]
    scalars = torch.tensor(values, dtype=p.dtype)
    fn(p.view(-1), grad.view(-1), exp_avg.view(-1), exp_avg_sq.view(-1), w_b.view(-1), scalars)
    _COMPILED["ran"] = True


_FUSED_CHOICE: dict[str, bool] = {}


def fused_update_available(required: bool = False) -> bool:
    """Whether the fused (compiled) update can run here: a C++ compiler for Inductor's CPU code.

    Looked up once per process (``CXX`` or ``g++``/``c++``/``clang++`` on PATH) and announced on
    stderr with the path the optimiser takes.

    Raises
    ------
    RuntimeError
        If ``required`` and no compiler is found.
    """
    if "ok" not in _FUSED_CHOICE:
        cxx = os.environ.get("CXX") or next(
            (c for c in ("g++", "c++", "clang++") if shutil.which(c)), None
        )
        ok = bool(cxx) and shutil.which(cxx) is not None
        _FUSED_CHOICE["ok"] = ok
        msg = (
            f"AdamMeta: fused W_h/W_b update compiled with torch.compile ({cxx})"
            if ok
            else "AdamMeta: no C++ compiler found (CXX, g++, c++, clang++): eager update"
        )
        print(msg, file=sys.stderr)
    if required and not _FUSED_CHOICE["ok"]:
        raise RuntimeError("fused=True needs a C++ compiler for torch.compile (set CXX)")
    return _FUSED_CHOICE["ok"]


def bnn_optimizer(
    model: Any, meta: Iterable[float], lr: float, weight_decay: float, fused: bool | None = None
) -> AdamMeta:
    """A fresh :class:`AdamMeta` for a BNN, as the paper's task protocol starts each task.

    ``model`` provides ``linears`` (:class:`BinaryLinear` layers, input side first, whose
    ``W_b`` buffers the update writes) and ``bn_parameters()``, as
    :class:`spinapse.golden.float_model.bnn.BNN` does. ``fused`` as in :class:`AdamMeta`.
    Layer ``i`` gets ``meta[i]`` as its ``m``; BatchNorm parameters get plain Adam (``m = 0``),
    as in Laborieux et al. (2021).
    """
    groups: list[dict[str, Any]] = [
        {"params": [lin.weight], "meta": m, "binary": [lin.current_binary()]}
        for lin, m in zip(model.linears, meta)
    ]
    groups.append({"params": model.bn_parameters(), "meta": 0.0})
    return AdamMeta(groups, lr=lr, weight_decay=weight_decay, fused=fused)
