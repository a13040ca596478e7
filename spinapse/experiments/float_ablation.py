"""Float-side ablation of issue 13: walk the float golden BNN toward the integer rule.

The float golden model (Laborieux et al., Nat. Commun. 12, 2549 (2021): Adam_meta, batch 20,
BatchNorm on batch statistics in training and stored population statistics at test, softmax
cross-entropy, float pixels) and the bit-exact integer rule
(:mod:`spinapse.golden.integer_model.learning`: binarized pixels, batch 1, multi-class hinge
error with a margin, fixed STE windows in popcount units, tracked thresholds, a leaky
accumulator ``M`` whose step is proportional to it) differ in several ways at once. This module
trains one float network whose every such difference is a switch (:class:`AblationConfig`), on
the same data, tasks, permutations, initial weights and sample orders as
:func:`spinapse.experiments.integer_continual.compare_integer_float` (5 permuted tasks of the
embedded digits, :func:`spinapse.experiments.continual.run_continual`), so that the accuracy
each difference costs can be measured one at a time. With :data:`BASELINE` the network is the
float golden model of that comparison (``BNN`` + ``GoldenLearner``, lr 0.005, weight decay 1e-7,
batch 20); the switches:

- ``inputs``: ``"float"`` pixels in [0, 1]; ``"binary"`` bits ``pixel >= 0.5`` (what
  :class:`spinapse.experiments.integer_learner.IntegerLearner` feeds the engine); ``"thermo"``
  ``thermo_k`` bits per pixel, bit ``j`` (``j = 1..k``) ``pixel > j / (k + 1)``, layer 1 then
  ``784 k`` wide (bit planes concatenated: column ``(j - 1) 784 + i`` is bit ``j`` of pixel ``i``).
- ``batch``: samples per step (>= 1). Batch 1 needs ``stats = "ema"``.
- ``optimizer``: ``"adam"`` (Adam_meta, :func:`spinapse.golden.float_model.adam_meta.
  bnn_optimizer`) or ``"sgdm"``: the integer accumulator without its integer rounding,
  ``M <- M (1 - 2**-leak_shift) + g``, ``W_h <- W_h - lr f M`` with ``f = f_meta(W_h)`` where
  ``sign(W_h) = sign(M)`` (the step shrinks ``|W_h|``) and 1 elsewhere; no normalisation by a
  second moment, no dead zone.
- ``loss``: ``"ce"`` softmax cross-entropy; ``"hinge"`` the integer rule's multi-class hinge
  ``sum_{k != y} max(0, z_k + margin - z_y)`` (its gradient is ``e_k = 1`` for every violating
  ``k``, ``e_y = -(number of violators)``: the integer ``e``); ``"sqhinge"``
  ``sum_{k != y} max(0, z_k + margin - z_y)**2 / 2`` (error proportional to the violation).
  Mean over the batch. ``margin`` is in the units of the output ``z``: BatchNorm-normalised
  units with ``norm = "bn"`` (the integer margin of 20 popcount units is ``20 / sqrt(128) =
  1.77`` there: an output popcount over 128 +-1 inputs has a standard deviation of about
  ``sqrt(128)``), popcount units with ``norm = "thr"``.
- ``norm``: ``"bn"`` BatchNorm (subtract the mean, divide by the standard deviation, learned
  ``gamma``, ``beta``); ``"thr"`` a per-neuron threshold only, ``z = a - T`` with ``T`` the mean
  pre-activation (no scale, nothing learned: the integer ``c = a - T``).
- ``stats``: what the mean (and variance) are in training: ``"batch"`` the training batch's
  (gradient through them, as BatchNorm), ``"batch-detached"`` the same values without
  the gradient through them (the backward sees a constant mean and scale), ``"ema"`` an
  exponential mean over past samples with ``2**-thr_shift`` per sample (detached; the
  integer ``T += c >> thr_shift``), initialised at each task start from the task's first 256
  training samples (the integer rule starts at ``T = 0``). At test every mode uses
  population statistics of the task's training set, stored at its end (the float model's
  BatchNorm and ``IntegerLearner(population_thresholds=True)``).
- ``window``: the STE mask of the hidden sign activations, ``|z| <= w``: ``"bn"`` ``w = 1``
  (one standard deviation when ``norm = "bn"``, the float model); ``"fixed"`` ``w = win1`` on
  layer 1 and ``win_hidden`` after it (popcount units, for ``norm = "thr"``); ``"std"`` ``w`` =
  the neuron's standard deviation of the pre-activation (the training statistics above).

Output: ``results.json`` (configuration, per variant and seed the accuracy matrix ``acc[i][j]``
= task ``j + 1`` after task ``i + 1``, right-after-training accuracies, seconds) and
``results.csv`` (``variant, seed, task, right_after, after_last``), rewritten atomically
(:mod:`spinapse.io`) after every run. Measured table: ``docs/rule_ablation.md``.

Command line: ``python -m spinapse.experiments.float_ablation --help``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spinapse.golden.float_model.adam_meta import bnn_optimizer, f_meta
from spinapse.golden.float_model.binarized import BinaryLinear, binarize

INPUTS = ("float", "binary", "thermo")
OPTIMIZERS = ("adam", "sgdm")
LOSSES = ("ce", "hinge", "sqhinge")
NORMS = ("bn", "thr")
STATS = ("batch", "batch-detached", "ema")
WINDOWS = ("bn", "fixed", "std")


@dataclass(frozen=True)
class AblationConfig:
    """One point of the ablation (see the module docstring for each switch).

    Attributes
    ----------
    hidden : tuple of int
        Hidden widths, each >= 1 (issue 13: ``(128, 128)``).
    inputs : {"float", "binary", "thermo"}
    thermo_k : int
        Bits per pixel of ``"thermo"``, in [1, 8].
    batch : int
        Samples per step, in [1, 1000]; a last batch smaller than ``min(batch, 2)`` is dropped
        (as the float golden model does for batch statistics).
    optimizer : {"adam", "sgdm"}
    lr : float
        Learning rate, > 0 (Adam_meta: 0.005 per step; ``"sgdm"``: float ``W_h`` units per unit
        of ``M``).
    weight_decay : float
        Adam_meta's coupled L2 decay, >= 0 (the golden learner: 1e-7); ``"sgdm"`` has none.
    leak_shift : int
        ``"sgdm"``: ``M`` keeps ``1 - 2**-leak_shift`` per step, in [1, 8] (integer rule: 3).
    quantum : float
        ``"sgdm"``: the applied step of ``W_h`` is rounded to a multiple of ``quantum`` (the
        integer ``W_h`` unit, ``2**-frac_bits``; issue-5 rule ``2**-6``): toward zero, as the
        integer rule's right shift truncates, or stochastically with ``stoch_round``; 0 (the
        default) is no rounding. In [0, 1].
    stoch_round : bool
        Round up with the probability of the remainder (``"sgdm"`` with ``quantum > 0``).
    m : float
        f_meta ``m`` of every layer, >= 0 (issue 13 float model: 12).
    loss : {"ce", "hinge", "sqhinge"}
    margin : float
        Hinge margin in output units, >= 0.
    norm : {"bn", "thr"}
    affine : bool
        ``norm = "bn"`` only: learn ``gamma`` and ``beta`` (BatchNorm's affine); False keeps
        ``gamma = 1``, ``beta = 0`` (a pure standardisation; ``"thr"`` never learns any).
    stats : {"batch", "ema"}
    thr_shift : int
        ``"ema"``: ``2**-thr_shift`` per sample, in [0, 12] (integer rule: 5).
    window : {"bn", "fixed", "std"}
    win1, win_hidden : float
        ``"fixed"`` windows of layer 1 and of later hidden layers, > 0 (issue 13 rule: 16, 11).
    eps : float
        Added to the variance before its square root, > 0 (BatchNorm: 1e-5).

    Raises
    ------
    ValueError
        Naming the field, when a value is outside its range or a combination cannot train
        (batch 1 with batch statistics).
    """

    hidden: tuple[int, ...] = (128, 128)
    inputs: str = "float"
    thermo_k: int = 3
    batch: int = 20
    optimizer: str = "adam"
    lr: float = 0.005
    weight_decay: float = 1e-7
    leak_shift: int = 3
    quantum: float = 0.0
    stoch_round: bool = False
    m: float = 12.0
    loss: str = "ce"
    margin: float = 20.0 / math.sqrt(128.0)
    norm: str = "bn"
    affine: bool = True
    stats: str = "batch"
    thr_shift: int = 5
    window: str = "bn"
    win1: float = 16.0
    win_hidden: float = 11.0
    eps: float = 1e-5

    def __post_init__(self) -> None:
        choices = {
            "inputs": INPUTS,
            "optimizer": OPTIMIZERS,
            "loss": LOSSES,
            "norm": NORMS,
            "stats": STATS,
            "window": WINDOWS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        ints = {"thermo_k": (1, 8), "batch": (1, 1000), "leak_shift": (1, 8), "thr_shift": (0, 12)}
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if not (isinstance(v, int) and lo <= v <= hi):
                raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {v!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty tuple of widths >= 1, got {self.hidden}")
        for name in ("lr", "win1", "win_hidden", "eps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("weight_decay", "m", "margin"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (math.isfinite(self.quantum) and 0 <= self.quantum <= 1):
            raise ValueError(f"quantum must be a number in [0, 1], got {self.quantum!r}")
        if self.batch == 1 and self.stats == "batch":
            raise ValueError("batch 1 needs stats 'ema' (batch statistics need >= 2 samples)")

    @property
    def n_in(self) -> int:
        """Layer-1 width: 784, or ``784 thermo_k`` for thermometer inputs."""
        return 784 * (self.thermo_k if self.inputs == "thermo" else 1)


def encode(x: torch.Tensor, cfg: AblationConfig) -> torch.Tensor:
    """Input coding of ``cfg.inputs``: float32 ``[N, 784]`` pixels in [0, 1] -> float32
    ``[N, cfg.n_in]`` (float pixels, bits ``pixel >= 0.5``, or thermometer bit planes)."""
    if cfg.inputs == "float":
        return x
    if cfg.inputs == "binary":
        return (x >= 0.5).to(x.dtype)
    k = cfg.thermo_k
    return torch.cat([(x > j / (k + 1)).to(x.dtype) for j in range(1, k + 1)], dim=1)


class _SignWindow(torch.autograd.Function):
    """``sign(z)`` (``0 -> +1``); backward passes the gradient where ``|z| <= w``."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward((z.abs() <= w).to(z.dtype))
        return binarize(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def sign_window(z: torch.Tensor, w: torch.Tensor | float) -> torch.Tensor:
    """Sign activation with the STE mask ``|z| <= w`` (``w`` a scalar or ``[features]``)."""
    return _SignWindow.apply(z, torch.as_tensor(w, dtype=z.dtype))


class AblationNorm(nn.Module):
    """Per-neuron normalisation of :class:`AblationConfig` (``norm``, ``stats``).

    Shapes: ``forward(a)`` float32 ``[B, C]`` -> ``z`` ``[B, C]``. Buffers ``ema_mean``,
    ``ema_var`` (training, ``"ema"``), ``pop_mean``, ``pop_var`` (test); ``std`` after a
    forward is the detached standard deviation used (``[C]``, for ``window = "std"``).
    """

    def __init__(self, n: int, cfg: AblationConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.scale = cfg.norm == "bn"
        if self.scale:
            self.weight = nn.Parameter(torch.ones(n), requires_grad=cfg.affine)
            self.bias = nn.Parameter(torch.zeros(n), requires_grad=cfg.affine)
        for name in ("ema_mean", "pop_mean"):
            self.register_buffer(name, torch.zeros(n))
        for name in ("ema_var", "pop_var"):
            self.register_buffer(name, torch.ones(n))
        self.std = torch.ones(n)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if self.training and cfg.stats == "batch-detached":
            mean = a.detach().mean(dim=0)
            var = a.detach().var(dim=0, unbiased=False)
        elif self.training and cfg.stats == "batch":
            if self.scale:
                # Exactly what TaskBatchNorm computes in training (the float golden model).
                var = a.detach().var(dim=0, unbiased=False)
                self.std = (var + cfg.eps).sqrt()
                return F.batch_norm(a, None, None, self.weight, self.bias, True, 0.0, cfg.eps)
            mean = a.mean(dim=0)
            self.std = (a.detach().var(dim=0, unbiased=False) + cfg.eps).sqrt()
            return a - mean
        elif self.training:
            mean, var = self.ema_mean.clone(), self.ema_var.clone()
            with torch.no_grad():
                keep = (1.0 - 2.0**-cfg.thr_shift) ** a.shape[0]
                self.ema_mean.mul_(keep).add_(a.detach().mean(dim=0), alpha=1 - keep)
                dev = (a.detach() - mean).square().mean(dim=0)
                self.ema_var.mul_(keep).add_(dev, alpha=1 - keep)
        else:
            mean, var = self.pop_mean, self.pop_var
        self.std = (var + cfg.eps).sqrt()
        z = a - mean
        if self.scale:
            z = z / self.std * self.weight + self.bias
        return z


class AblationNet(nn.Module):
    """Binarized MLP ``cfg.n_in -> cfg.hidden -> 10`` with the switches of ``cfg``.

    Built like :class:`spinapse.golden.float_model.bnn.BNN` (the same :class:`BinaryLinear`
    layers drawn in the same order, so the same ``torch.manual_seed`` gives the same initial
    ``W_h``). ``forward(h)``: float32 ``[B, cfg.n_in]`` (already :func:`encode`-d) -> output
    ``z`` ``[B, 10]``.
    """

    def __init__(self, cfg: AblationConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [cfg.n_in, *[int(h) for h in cfg.hidden], 10]
        self.linears = nn.ModuleList(BinaryLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.bns = nn.ModuleList(AblationNorm(b, cfg) for b in widths[1:])

    def _window(self, i: int, norm: AblationNorm) -> torch.Tensor | float:
        if self.cfg.window == "bn":
            return 1.0
        if self.cfg.window == "fixed":
            return self.cfg.win1 if i == 0 else self.cfg.win_hidden
        return norm.std

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = len(self.linears)
        for i, (lin, norm) in enumerate(zip(self.linears, self.bns)):
            h = norm(lin(h))
            if i < n - 1:
                h = sign_window(h, self._window(i, norm))
        return h

    def bn_parameters(self) -> list[nn.Parameter]:
        """Learned ``gamma``, ``beta`` of every layer (empty with ``norm = "thr"`` or
        ``affine = False``)."""
        return [p for b in self.bns for p in b.parameters() if p.requires_grad]

    @torch.no_grad()
    def store_statistics(self, h: torch.Tensor, into: str = "pop") -> None:
        """Mean and biased variance of each layer's pre-activation over ``h`` (``[N >= 2,
        n_in]``, encoded), layer after layer with the earlier layers normalised by the
        statistics just stored, into ``pop_*`` (test) or ``ema_*`` (training start)."""
        n = len(self.linears)
        for i, (lin, norm) in enumerate(zip(self.linears, self.bns)):
            a = F.linear(h, lin.binary_weight()).to(torch.float64)
            mean, var = a.mean(dim=0), a.var(dim=0, unbiased=False)
            getattr(norm, f"{into}_mean").copy_(mean)
            getattr(norm, f"{into}_var").copy_(var)
            if i < n - 1:
                z = (a - mean).to(torch.float32)
                if norm.scale:
                    z = z / (var.to(torch.float32) + self.cfg.eps).sqrt() * norm.weight + norm.bias
                h = binarize(z)


def multiclass_hinge(z: torch.Tensor, y: torch.Tensor, margin: float, squared: bool = False):
    """Multi-class hinge ``mean_b sum_{k != y_b} max(0, z_bk + margin - z_by)`` (``squared``:
    ``max(...)**2 / 2``). ``z`` float ``[B, C]``, ``y`` int64 ``[B]`` -> scalar.

    Its gradient with respect to ``z_b`` (times ``B``) is the integer rule's output error: 1
    for every ``k`` with ``z_k + margin > z_y``, minus their number at ``y`` (squared: the
    violation instead of 1)."""
    zy = z.gather(1, y[:, None])
    v = (z - zy + margin).clamp(min=0)
    v = v.scatter(1, y[:, None], 0.0)
    per = 0.5 * v.square() if squared else v
    return per.sum(dim=1).mean()


class SGDMeta(torch.optim.Optimizer):
    """Momentum SGD like the integer accumulator, with f_meta (``"sgdm"``).

    Per parameter: ``M <- M (1 - 2**-leak_shift) + g``; the step ``-lr M`` is scaled by
    ``f_meta(W_h, meta)`` where it shrinks ``|W_h|`` (``W_h M > 0``), as Adam_meta does
    (Laborieux et al. 2021, Eq. 1). Groups: ``meta`` (>= 0) per group. With ``quantum > 0``
    the step ``lr f M`` is rounded to a multiple of ``quantum``: toward zero, or up with the
    probability of the remainder (``stoch_round``, torch's global generator).
    """

    def __init__(
        self,
        params,
        lr: float,
        leak_shift: int = 3,
        meta: float = 0.0,
        quantum: float = 0.0,
        stoch_round: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(lr=lr, leak=2.0**-leak_shift, meta=meta, quantum=quantum, stoch=stoch_round),
        )

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "M" not in state:
                    state["M"] = torch.zeros_like(p)
                acc = state["M"]
                acc.mul_(1.0 - group["leak"]).add_(p.grad)
                step = acc
                if group["meta"] > 0:
                    shrink = (p * acc) > 0
                    step = torch.where(shrink, acc * f_meta(p, group["meta"]), acc)
                step = step * group["lr"]
                q = group["quantum"]
                if q > 0:
                    units = step.abs() / q
                    whole = units.floor()
                    if group["stoch"]:
                        whole = whole + (torch.rand_like(units) < units - whole).to(units.dtype)
                    step = torch.sign(step) * whole * q
                p.sub_(step)


class AblationLearner:
    """A :class:`spinapse.experiments.learner.Learner` for :class:`AblationNet`.

    The golden learner's task protocol: a fresh optimiser at each task start, normalisation
    state (statistics, ``gamma``, ``beta``) copied at each task end with the population
    statistics of that task's training set, each finished task tested with its own copy.

    Parameters
    ----------
    cfg : AblationConfig
    seed : int
        ``torch.manual_seed(seed)`` before the network is built (as the comparison does).
    """

    def __init__(self, cfg: AblationConfig, seed: int) -> None:
        torch.manual_seed(seed)
        self.cfg = cfg
        self.net = AblationNet(cfg)
        self.copies: list[dict[str, torch.Tensor]] = []
        self.optimizer = self._fresh()
        self._warm = True

    def _norm_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.net.bns.state_dict().items()}

    def _fresh(self) -> torch.optim.Optimizer:
        cfg, net = self.cfg, self.net
        meta = [cfg.m] * len(net.linears)
        if cfg.optimizer == "adam":
            return bnn_optimizer(net, meta, cfg.lr, cfg.weight_decay, fused=False)
        groups: list[dict[str, Any]] = [
            {"params": [lin.weight], "meta": cfg.m} for lin in net.linears
        ]
        if net.bn_parameters():
            groups.append({"params": net.bn_parameters(), "meta": 0.0})
        return SGDMeta(
            groups,
            lr=cfg.lr,
            leak_shift=cfg.leak_shift,
            quantum=cfg.quantum,
            stoch_round=cfg.stoch_round,
        )

    def start_task(self, index: int) -> None:
        self.optimizer = self._fresh()
        self._warm = True

    def _loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.cfg.loss == "ce":
            return F.cross_entropy(z, y)
        return multiclass_hinge(z, y, self.cfg.margin, squared=self.cfg.loss == "sqhinge")

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        cfg, net = self.cfg, self.net
        h = encode(x, cfg)
        if self._warm and cfg.stats == "ema":
            net.store_statistics(h[:256], into="ema")
        self._warm = False
        net.train()
        order = torch.randperm(x.shape[0], generator=generator)
        total, steps = 0.0, 0
        smallest = min(cfg.batch, 2)
        for idx in torch.split(order, cfg.batch):
            if idx.numel() < smallest:
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(net(h[idx]), y[idx])
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    def end_task(self, index: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(self.copies) != index:
            raise ValueError(f"end_task({index}) after {len(self.copies)} finished tasks")
        self.net.store_statistics(encode(x, self.cfg))
        self.copies.append(self._norm_state())

    @torch.no_grad()
    def evaluate(self, index: int, x: torch.Tensor, y: torch.Tensor) -> float:
        current = self._norm_state()
        if index < len(self.copies):
            self.net.bns.load_state_dict(self.copies[index])
        self.net.eval()
        try:
            pred = self.net(encode(x, self.cfg)).argmax(dim=1)
        finally:
            self.net.bns.load_state_dict(current)
        return float((pred == y).to(torch.float64).mean())

    def state_dict(self) -> dict[str, Any]:
        return {"net": copy.deepcopy(self.net.state_dict()), "copies": copy.deepcopy(self.copies)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.copies = copy.deepcopy(state["copies"])
        self.optimizer = self._fresh()


#: The float golden model of the issue-13 comparison (784-128-128-10, m = 12).
BASELINE = AblationConfig()

_HINGE_BN = 20.0 / math.sqrt(128.0)
_THR = dict(norm="thr", window="fixed")
_B1 = dict(batch=1, stats="ema")

#: Named variants: overrides of :data:`BASELINE`. ``a``..``e`` one difference each;
#: ``cum-*`` the differences added in the order inputs, loss, normalisation, batch, optimiser.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "a-binary": dict(inputs="binary"),
    "b-b20-ema": dict(stats="ema"),
    "b-b1": dict(_B1),
    "b-b1-lr/sqrt20": dict(_B1, lr=0.005 / math.sqrt(20.0)),
    "b-b1-lr/20": dict(_B1, lr=0.005 / 20),
    "b-sgdm-lr0.01": dict(optimizer="sgdm", lr=0.01),
    "b-sgdm-lr0.001": dict(optimizer="sgdm", lr=0.001),
    "b-b1-sgdm-lr0.001": dict(_B1, optimizer="sgdm", lr=0.001),
    "b-b1-sgdm-lr0.0001": dict(_B1, optimizer="sgdm", lr=0.0001),
    "c-hinge": dict(loss="hinge", margin=_HINGE_BN),
    "c-hinge-m1": dict(loss="hinge", margin=1.0),
    "c-sqhinge": dict(loss="sqhinge", margin=_HINGE_BN),
    "d-thr-fixed": dict(_THR),
    "d-thr-std": dict(norm="thr", window="std"),
    "d-thr-fixed-ema": dict(_THR, stats="ema"),
    "d-thr-fixed-hinge20": dict(_THR, loss="hinge", margin=20.0),
    "d-thr-std-hinge20": dict(norm="thr", window="std", loss="hinge", margin=20.0),
    "d-bn-noaffine": dict(affine=False),
    "d-bn-detached": dict(stats="batch-detached"),
    "d-thr-fixed-hinge20-detached": dict(_THR, loss="hinge", margin=20.0, stats="batch-detached"),
    "d-thr-fixed-hinge20-ema": dict(_THR, loss="hinge", margin=20.0, stats="ema"),
    "b-sgdm-lr0.03": dict(optimizer="sgdm", lr=0.03),
    "b-sgdm-lr0.1": dict(optimizer="sgdm", lr=0.1),
    "b-sgdm-lr0.3": dict(optimizer="sgdm", lr=0.3),
    "e-thermo2": dict(inputs="thermo", thermo_k=2),
    "e-thermo3": dict(inputs="thermo", thermo_k=3),
    "cum-a": dict(inputs="binary"),
    "cum-ac": dict(inputs="binary", loss="hinge", margin=_HINGE_BN),
    "cum-acd": dict(inputs="binary", loss="hinge", margin=20.0, **_THR),
    "cum-acd-std": dict(inputs="binary", loss="hinge", margin=20.0, norm="thr", window="std"),
    "cum-acdb1": dict(inputs="binary", loss="hinge", margin=20.0, **_THR, **_B1, lr=0.005 / 20),
    "cum-acdb1-sgdm": dict(
        inputs="binary", loss="hinge", margin=20.0, **_THR, **_B1, optimizer="sgdm", lr=2.0**-9
    ),
}


def variant(name_or_spec: str) -> tuple[str, AblationConfig]:
    """A named :data:`VARIANTS` entry, optionally followed by ``,field=value`` overrides
    (``"cum-acd,margin=10"``; values parsed as int, float or text by the field's type).

    Raises
    ------
    ValueError
        Unknown variant or field, or a value out of range (from :class:`AblationConfig`).
    """
    name, *sets = name_or_spec.split(",")
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    over = dict(VARIANTS[name])
    fields = {f.name: f for f in dataclasses.fields(AblationConfig)}
    for item in sets:
        key, _, value = item.partition("=")
        if key not in fields or not value:
            raise ValueError(
                f"override {item!r}: expected FIELD=VALUE with a field of {list(fields)}"
            )
        default = getattr(BASELINE, key)
        if isinstance(default, bool):
            over[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            over[key] = int(value)
        elif isinstance(default, float):
            over[key] = float(value)
        elif isinstance(default, tuple):
            over[key] = tuple(int(v) for v in value.split("x"))
        else:
            over[key] = value
    return name_or_spec, dataclasses.replace(BASELINE, **over)


def run_one(cfg: AblationConfig, seed: int, n_tasks: int, epochs: int) -> dict[str, Any]:
    """Train ``cfg`` on the first ``n_tasks`` of the 5 permuted tasks of ``seed`` (those of
    :func:`spinapse.experiments.integer_continual.compare_integer_float`) for ``epochs`` each.

    Returns ``{"acc": matrix (fractions), "right_after": [acc[i][i]], "after_last":
    acc[-1], "mean_earlier_after_last": float or None, "seconds": float}``.
    """
    from spinapse.data.digits import load_digits
    from spinapse.data.tasks import permuted_tasks
    from spinapse.experiments.continual import run_continual

    if not 1 <= n_tasks <= 5 or epochs < 1 or seed < 0:
        raise ValueError(
            f"need n_tasks in [1, 5], epochs >= 1, seed >= 0; got {n_tasks}, {epochs}, {seed}"
        )
    tasks = permuted_tasks(load_digits(), 5, seed)[:n_tasks]
    t0 = time.perf_counter()
    res = run_continual(tasks, AblationLearner(cfg, seed), epochs, seed, progress=False)
    acc = res.acc
    last = acc[-1]
    return {
        "acc": acc,
        "right_after": [acc[i][i] for i in range(len(acc))],
        "after_last": last,
        "mean_earlier_after_last": (sum(last[:-1]) / (len(last) - 1)) if len(last) > 1 else None,
        "seconds": time.perf_counter() - t0,
    }


def csv_text(doc: dict[str, Any]) -> str:
    """``variant, seed, task, right_after, after_last`` (tasks from 1, accuracies in %)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["variant", "seed", "task", "right_after", "after_last"])
    for r in doc["runs"]:
        for j, (ra, al) in enumerate(zip(r["right_after"], r["after_last"])):
            w.writerow([r["variant"], r["seed"], j + 1, f"{100 * ra:.2f}", f"{100 * al:.2f}"])
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Command line (``--help``)."""
    from tqdm import tqdm

    from spinapse.io import write_json, write_text

    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="variants: " + ", ".join(VARIANTS),
    )
    p.add_argument("--variants", nargs="+", default=["base"],
                   help="named variants, each optionally with ,FIELD=VALUE overrides")  # fmt: skip
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--tasks", type=int, default=1, help="permuted tasks to learn, 1..5")
    p.add_argument("--epochs", type=int, default=2, help="epochs per task, >= 1")
    p.add_argument("--out", default="results/float-ablation", help="results folder")
    p.add_argument("--findings", default=None,
                   help="also append one line per run to this text file")  # fmt: skip
    args = p.parse_args(argv)
    specs = [variant(v) for v in args.variants]  # bad names fail before any work
    torch.set_num_threads(1)
    out = Path(args.out)
    doc: dict[str, Any] = {
        "settings": {"tasks": args.tasks, "epochs": args.epochs, "seeds": args.seeds},
        "runs": [],
    }
    jobs = [(name, cfg, s) for name, cfg in specs for s in args.seeds]
    for name, cfg, seed in tqdm(jobs, desc="runs", unit="run"):
        r = run_one(cfg, seed, args.tasks, args.epochs)
        r |= {"variant": name, "seed": seed, "config": dataclasses.asdict(cfg)}
        doc["runs"].append(r)
        write_json(out / "results.json", doc)
        write_text(out / "results.csv", csv_text(doc))
        after = " ".join(f"{100 * a:.1f}" for a in r["right_after"])
        mean = r["mean_earlier_after_last"]
        line = (
            f"{name} seed {seed} tasks {args.tasks} epochs {args.epochs}: right after {after}"
            + (f"; mean earlier after last {100 * mean:.1f}" if mean is not None else "")
            + f" ({r['seconds']:.0f} s)"
        )
        tqdm.write(line)
        if args.findings:
            with open(args.findings, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
