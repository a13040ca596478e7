"""Bit-exact integer model of the on-chip metaplastic learning rule (what the RTL computes).

Source of the rule: Laborieux et al., Nat. Commun. 12, 2549 (2021) (f_meta, Adam_meta), turned
into integer arithmetic as derived in ``docs/learning_rule.md``. Network: binarized input bits
``x`` (``n_in``) -> ``n_hidden`` sign neurons -> ``n_out`` outputs, batch 1.

Per step (``x`` in {-1, +1}^n_in, label ``y``), all integers:

1. ``a1 = x @ W_b1`` (XNOR-popcount); ``c1 = a1 * 2**thr_frac - T1``; ``h = sign(c1)``;
   STE mask ``|c1| <= win1 * 2**thr_frac``; ``T1 += c1 >> thr_shift`` (training only).
2. ``a2 = h @ W_b2``; ``c2 = a2 * 2**thr_frac - T2``; ``T2 += c2 >> thr_shift``.
3. Output error (multi-class hinge): ``e_k = 1`` for every ``k != y`` with
   ``c2_k + margin * 2**thr_frac >= c2_y``, ``e_y = -sum_k e_k``.
4. ``delta_j = mask_j * sum_k e_k W_b2[j, k]``; gradients ``G2 = h^T e``, ``G1 = x^T delta``.
5. Per weight: ``M <- sat(M - sgn(M)(|M| >> leak_shift) + G)``;
   ``F = table[|W_h| >> index_shift]`` if ``sgn(W_h) == sgn(M)`` (the step shrinks ``|W_h|``)
   else ``2**8``; ``W_h <- sat(W_h - sgn(M)((|M| F) >> (8 + lr_shift)))``.
6. Digital mode: the array bit is written (write-verify, ``retry_limit`` retries) wherever it
   differs from ``W_h >= 0``. Device mode: no ``W_h`` memory; a gate pulse of polarity
   ``-sgn(M)`` and code ``min(|M| >> lr_shift, 2**code_bits - 1)`` goes to the hidden-state
   array, which applies ``f_meta`` itself (see :mod:`spinapse.golden.integer_model.array_models`).

Arrays are stored ``[rows = presynaptic, lanes = postsynaptic]``: layer 1 ``[n_in, n_hidden]``,
layer 2 ``[n_hidden, n_out]``. Thresholds ``T`` are kept per task by the host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spinapse.golden.integer_model.array_models import (
    BinaryArrayModel,
    HiddenStateArrayModel,
    lane_seeds,
)
from spinapse.golden.integer_model.fmeta_table import F_BITS, F_ONE, fmeta_table

MODES = ("digital", "device")


@dataclass(frozen=True)
class IntegerRule:
    """Build-time constants of the integer rule (the RTL is built from the same object).

    Attributes
    ----------
    n_in, n_hidden, n_out : int
        Layer widths (>= 2 each).
    wh_bits : int
        Signed saturating width of ``W_h`` (and of the device hidden state), in [4, 16].
    frac_bits : int
        ``W_h`` integer ``w`` stands for ``w / 2**frac_bits`` in f_meta's argument, in [0, 12].
    acc_bits : int
        Signed saturating width of the gradient accumulator ``M``, in [4, 16].
    leak_shift : int
        ``M`` loses ``|M| >> leak_shift`` per step (first-moment decay ``1 - 2**-leak_shift``),
        in [1, 8].
    lr_shift : int
        Power-of-two learning rate: step ``(|M| - dead_zone)+ >> lr_shift`` before f_meta,
        in [0, 12].
    dead_zone : int
        ``|M|`` below this makes no step (a consistency filter: a zero-mean gradient keeps
        ``|M|`` small), in [0, 2**(acc_bits - 1)].
    m : float
        Metaplasticity of the hidden layer's f_meta table (>= 0; 0 disables consolidation).
    m_out : float or None
        Metaplasticity of the output layer (``None``: same as ``m``).
    index_shift : int
        f_meta table bin width ``2**index_shift``, in [0, wh_bits - 1].
    thr_frac, thr_shift : int
        Threshold fraction bits in [0, 8] and tracking shift in [0, 12] (``T`` moves by
        ``c >> thr_shift`` per step, an exponential mean of the pre-activation).
    win1 : int
        STE window on hidden pre-activations, in XNOR-popcount units, >= 1.
    margin : int
        Hinge margin of the output error, in XNOR-popcount units, >= 0.
    init_range : int
        ``W_h`` starts uniform in ``[-init_range, init_range - 1]``, >= 1.
    code_bits : int
        Width of a gate-pulse code (device mode), in [1, 8].
    retry_limit : int
        Write-verify retries after the first pulse (digital mode), in [0, 15].
    """

    n_in: int = 784
    n_hidden: int = 64
    n_out: int = 10
    wh_bits: int = 10
    frac_bits: int = 6
    acc_bits: int = 10
    leak_shift: int = 3
    lr_shift: int = 3
    dead_zone: int = 8
    m: float = 1.35
    m_out: float | None = None
    index_shift: int = 3
    thr_frac: int = 2
    thr_shift: int = 5
    win1: int = 32
    margin: int = 10
    init_range: int = 8
    code_bits: int = 4
    retry_limit: int = 3

    def __post_init__(self) -> None:
        ranges = {
            "n_in": (2, 4096),
            "n_hidden": (2, 1024),
            "n_out": (2, 64),
            "wh_bits": (4, 16),
            "frac_bits": (0, 12),
            "acc_bits": (4, 16),
            "leak_shift": (1, 8),
            "lr_shift": (0, 12),
            "index_shift": (0, self.wh_bits - 1),
            "thr_frac": (0, 8),
            "thr_shift": (0, 12),
            "win1": (1, 1 << 16),
            "margin": (0, 1 << 16),
            "init_range": (1, 1 << (self.wh_bits - 2)),
            "code_bits": (1, 8),
            "retry_limit": (0, 15),
        }
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if not (isinstance(v, int) and lo <= v <= hi):
                raise ValueError(f"IntegerRule.{name} must be an int in [{lo}, {hi}], got {v!r}")
        for name in ("m", "m_out"):
            v = getattr(self, name)
            if v is None and name == "m_out":
                continue
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ValueError(f"IntegerRule.{name} must be a finite number >= 0, got {v!r}")

    def tables(self) -> list[list[int]]:
        """The f_meta lookup tables of the two layers (:func:`fmeta_table`)."""
        m_out = self.m if self.m_out is None else self.m_out
        return [
            fmeta_table(m, self.wh_bits, self.frac_bits, self.index_shift) for m in (self.m, m_out)
        ]

    def as_dict(self) -> dict:
        """Plain dict of the constants (for result files)."""
        return asdict(self)


def _sat(x: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _pm(bits: np.ndarray) -> np.ndarray:
    return np.where(bits, 1, -1).astype(np.int64)


def initial_w_h(rule: IntegerRule, seed: int) -> list[np.ndarray]:
    """Seeded initial ``W_h`` of both layers: int64 ``[n_in, n_hidden]``, ``[n_hidden, n_out]``,
    uniform in ``[-init_range, init_range - 1]`` (``numpy.random.default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    shapes = [(rule.n_in, rule.n_hidden), (rule.n_hidden, rule.n_out)]
    r = rule.init_range
    return [rng.integers(-r, r, size=s).astype(np.int64) for s in shapes]


@dataclass
class Counters:
    """Host-readable counters: lane pulses written, retry pulses, failed writes."""

    writes: int = 0
    retries: int = 0
    failures: int = 0


class IntegerEngine:
    """The integer engine state and its training step (batch 1).

    Parameters
    ----------
    rule : IntegerRule
        Build-time constants.
    mode : str
        ``"digital"`` (``W_h`` memory, write-verify) or ``"device"`` (hidden state in the array).
    seed : int
        Seed of the initial ``W_h`` (``numpy.random.default_rng(seed)``), >= 0.
    p_success : int
        Single-pulse write success of the binary array in 1/256 (digital mode), [0, 256].
    array_seed : int
        Seed of the array's lane draws (:func:`lane_seeds`), in [0, 32768).
    arrays : pair of array objects, optional
        Synapse arrays to use instead of the seeded models (components passed in, e.g. physics
        device models over the initial weights of :func:`initial_w_h`): digital mode needs
        ``bits`` (bool ``[rows, lanes]``), ``sense()`` and ``write(row, enable, polarity)``;
        device mode ``sense()`` and ``gate_all(polarity, code)``. ``p_success`` and
        ``array_seed`` are then unused.

    Attributes
    ----------
    w_h : list of numpy.ndarray
        int64 ``[n_in, n_hidden]`` and ``[n_hidden, n_out]`` (digital mode: the engine memory;
        device mode: the arrays' hidden states).
    acc : list of numpy.ndarray
        Accumulators ``M``, same shapes.
    thr : list of numpy.ndarray
        Thresholds ``T1`` int64 ``[n_hidden]``, ``T2`` ``[n_out]`` (units ``2**-thr_frac``).
    arrays : list
        The two synapse-array models.
    counters : Counters

    Raises
    ------
    ValueError
        If ``mode`` or a seed is invalid.
    """

    def __init__(
        self,
        rule: IntegerRule,
        mode: str = "digital",
        seed: int = 0,
        p_success: int = 256,
        array_seed: int = 1,
        arrays=None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.rule, self.mode = rule, mode
        r = rule
        shapes = [(r.n_in, r.n_hidden), (r.n_hidden, r.n_out)]
        w_h = initial_w_h(rule, seed)
        self.acc = [np.zeros(s, dtype=np.int64) for s in shapes]
        self.thr = [np.zeros(r.n_hidden, dtype=np.int64), np.zeros(r.n_out, dtype=np.int64)]
        self.tables = [np.asarray(t, dtype=np.int64) for t in r.tables()]
        self.counters = Counters()
        seeds = [lane_seeds(array_seed * 2 + k, s[1]) for k, s in enumerate(shapes)]
        if arrays is not None:
            if len(arrays) != 2:
                raise ValueError(f"arrays must be a pair (one per layer), got {len(arrays)}")
            self._w_h = w_h if mode == "digital" else None
            self.arrays = list(arrays)
        elif mode == "digital":
            self._w_h = w_h
            self.arrays = [BinaryArrayModel(w >= 0, p_success, sd) for w, sd in zip(w_h, seeds)]
        else:
            self._w_h = None
            self.arrays = [
                HiddenStateArrayModel(w, r.wh_bits, t, r.index_shift, sd)
                for w, t, sd in zip(w_h, r.tables(), seeds)
            ]

    @property
    def w_h(self) -> list[np.ndarray]:
        if self.mode == "digital":
            return self._w_h
        return [a.h for a in self.arrays]

    def w_b(self) -> list[np.ndarray]:
        """Binary weights sensed from the arrays, bool ``[rows, lanes]`` per layer."""
        return [a.sense() for a in self.arrays]

    def _forward(self, xb: np.ndarray, thr: list[np.ndarray]):
        r = self.rule
        x = xb.astype(np.int64)
        wb1, wb2 = (_pm(b) for b in self.w_b())
        a1 = x @ wb1
        c1 = (a1 << r.thr_frac) - thr[0]
        h = c1 >= 0
        a2 = _pm(h) @ wb2
        c2 = (a2 << r.thr_frac) - thr[1]
        return x, wb2, c1, h, c2

    def predict(self, xb: np.ndarray, thr: list[np.ndarray] | None = None) -> np.ndarray:
        """Class of each input: ``xb`` bool ``[N, n_in]`` -> int64 ``[N]`` (first argmax).

        ``thr`` defaults to the current thresholds (task-dependent thresholds: pass a saved pair).
        """
        thr = self.thr if thr is None else thr
        _, _, _, _, c2 = self._forward(np.asarray(xb, dtype=bool), thr)
        return np.argmax(c2, axis=-1)

    def step(self, xb: np.ndarray, label: int) -> int:
        """One training step on bool ``[n_in]`` input bits with integer label in ``[0, n_out)``.

        Returns the prediction made by the forward pass of this step (before the update).

        Raises
        ------
        ValueError
            If ``label`` is outside ``[0, n_out)`` or ``xb`` has the wrong shape.
        """
        if not 0 <= int(label) < self.rule.n_out:
            raise ValueError(f"label must be in [0, {self.rule.n_out}), got {label}")
        if np.shape(xb) != (self.rule.n_in,):
            raise ValueError(f"xb must have shape ({self.rule.n_in},), got {np.shape(xb)}")
        r = self.rule
        x, wb2, c1, h, c2 = self._forward(np.asarray(xb, dtype=bool), self.thr)
        mask = np.abs(c1) <= (r.win1 << r.thr_frac)
        self.thr[0] = self.thr[0] + (c1 >> r.thr_shift)
        self.thr[1] = self.thr[1] + (c2 >> r.thr_shift)
        viol = c2 + (r.margin << r.thr_frac) >= c2[label]
        viol[label] = False
        e = viol.astype(np.int64)
        e[label] = -int(e.sum())
        delta = np.where(mask, wb2 @ e, 0)
        grads = [np.outer(x, delta), np.outer(_pm(h), e)]
        # Layer 2 first, as the RTL does it; the layers touch disjoint state, so order is free.
        for k in (1, 0):
            self._update(k, grads[k])
        return int(np.argmax(c2))

    def _update(self, k: int, grad: np.ndarray) -> None:
        r = self.rule
        m_old = self.acc[k]
        mag = np.abs(m_old)
        m_new = _sat(m_old - np.sign(m_old) * (mag >> r.leak_shift) + grad, r.acc_bits)
        self.acc[k] = m_new
        mag = np.maximum(np.abs(m_new) - r.dead_zone, 0)
        sgn = np.sign(m_new)
        if self.mode == "digital":
            w = self._w_h[k]
            shrink = (w >= 0) == (m_new > 0)
            table = self.tables[k]
            idx = np.minimum(np.abs(w) >> r.index_shift, table.shape[0] - 1)
            f = np.where(shrink, table[idx], F_ONE)
            step = (mag * f) >> (F_BITS + r.lr_shift)
            w = _sat(w - sgn * step, r.wh_bits)
            self._w_h[k] = w
            self._write_verify(self.arrays[k], w >= 0)
        else:
            code = np.minimum(mag >> r.lr_shift, (1 << r.code_bits) - 1)
            self.arrays[k].gate_all(m_new < 0, code)
            self.counters.writes += int((code > 0).sum())

    def _write_verify(self, array: BinaryArrayModel, want: np.ndarray) -> None:
        c = self.counters
        for row in np.flatnonzero((array.bits != want).any(axis=1)):
            todo = array.bits[row] != want[row]
            c.writes += int(todo.sum())
            array.write(row, todo, want[row])
            for _ in range(self.rule.retry_limit):
                todo = array.bits[row] != want[row]
                if not todo.any():
                    break
                c.retries += int(todo.sum())
                array.write(row, todo, want[row])
            c.failures += int((array.bits[row] != want[row]).sum())
