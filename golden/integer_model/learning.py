"""Bit-exact integer model of the on-chip metaplastic learning rule (what the RTL computes).

Source of the rule: Laborieux et al., Nat. Commun. 12, 2549 (2021) (f_meta, Adam_meta), turned
into integer arithmetic as derived in ``docs/learning_rule.md``. Network: binarized input bits
``x`` (``n_in``) -> ``n_hidden_layers`` layers of ``n_hidden`` sign neurons -> ``n_out``
outputs, batch 1; ``L = n_hidden_layers + 1`` weight layers, ``l = 1..L``.

Per step (``x`` in {0, 1}^n_in, label ``y``), all integers; ``h_0 = x`` and, for ``l >= 2``, the
input of layer ``l`` is ``h_{l-1}`` in {-1, +1}:

1. ``a_l = h_{l-1} @ W_b_l`` (XNOR-popcount); ``c_l = a_l * 2**thr_frac - T_l``;
   hidden layers: ``h_l = sign(c_l)`` (``0 -> +1``), STE mask
   ``|c_l| <= win_l * 2**thr_frac`` (``win_1 = win1``, ``win_l = win_hidden`` for ``l >= 2``);
   every layer: ``T_l += c_l >> thr_shift`` (training only).
2. Output error (multi-class hinge) on ``c_L``: ``e_k = 1`` for every ``k != y`` with
   ``c_L[k] + margin * 2**thr_frac >= c_L[y]``, ``e_y = -sum_k e_k``; ``delta_L = e``.
3. Last hidden layer: ``delta_{L-1} = mask_{L-1} * sat(W_b_L @ e, delta_bits)``; earlier hidden
   layers: ``delta_l = mask_l * sat((W_b_{l+1} @ delta_{l+1}) >> back_shift, delta_bits)``
   (arithmetic shift), with ``W_b`` as sensed in the forward pass; ``G_l = h_{l-1}^T delta_l``.
4. Layers are updated from ``l = L`` down to ``l = 1``, per weight:
   ``M <- sat(M - sgn(M)(|M| >> leak_shift) + G)``;
   ``F = table[|W_h| >> index_shift]`` if ``sgn(W_h) == sgn(M)`` (the step shrinks ``|W_h|``)
   else ``2**8``; ``W_h <- sat(W_h - sgn(M)((|M| F) >> (8 + lr_shift)))``. With the issue-13
   fields (``norm_decay``, ``norm_gain``, ``stoch_round``; off by default) the shift becomes
   ``8 + lr_shift - norm_gain + s_ij``, ``s_ij ~ log2 sqrt(v_ij)`` from a factored second
   moment (per-row and per-lane registers, Shazeer & Stern, ICML 2018), rounded stochastically.
5. Digital mode: the array bit is written (write-verify, ``retry_limit`` retries) wherever it
   differs from ``W_h >= 0``. Device mode: no ``W_h`` memory; a gate pulse of polarity
   ``-sgn(M)`` and code ``min(|M| >> lr_shift, 2**code_bits - 1)`` goes to the hidden-state
   array, which applies ``f_meta`` itself (see :mod:`spinapse.golden.integer_model.array_models`).

Issue-13 forward/backward fields (default off, the rule above bit for bit): ``in_levels``
(thermometer-coded pixels, :func:`encode_pixels`), ``err_max``/``err_shift`` (step 2 becomes
``e_k = min(1 + (v_k >> err_shift), err_max)`` with ``v_k = c_L[k] + margin * 2**thr_frac -
c_L[y]``) and ``dev_shift`` (step 1's mask becomes ``|c_l| <= (D_l * dev_quarters) >> 2`` with the
per-neuron mean absolute deviation ``D_l += (|c_l| - D_l) >> dev_shift``); see
:class:`IntegerRule`.

Arrays are stored ``[rows = presynaptic, lanes = postsynaptic]``: layer 1 ``[n_in, n_hidden]``,
hidden layers ``[n_hidden, n_hidden]``, layer ``L`` ``[n_hidden, n_out]``
(:meth:`IntegerRule.layer_shapes`). Thresholds ``T_l`` are kept per task by the host. With
``n_hidden_layers = 1`` this is exactly the 784-H-10 rule of issue 5 (``delta_bits = 8`` cannot
saturate ``W_b_2 @ e``, at most ``2 (n_out - 1) <= 126`` in magnitude).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spinapse.golden.integer_model.array_models import (
    BinaryArrayModel,
    HiddenStateArrayModel,
    _LaneDraws,
    lane_seeds,
    lowbias32,
)
from spinapse.golden.integer_model.fmeta_table import F_BITS, F_ONE, fmeta_table

MODES = ("digital", "device")

#: XORed into the lane seeds of a layer's array to seed its stochastic-rounding draws (a
#: separate counter-based stream per lane: ``lowbias32(lane_seed ^ ROUND_SALT)``).
ROUND_SALT = 0x9E3779B9


@dataclass(frozen=True)
class IntegerRule:
    """Build-time constants of the integer rule (the RTL is built from the same object).

    Attributes
    ----------
    n_in, n_hidden, n_out : int
        Layer widths (>= 2 each); every hidden layer has ``n_hidden`` neurons.
    n_hidden_layers : int
        Hidden layers, in [1, 4] (784-H-H-10 is 2); ``L = n_hidden_layers + 1`` weight layers.
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
    fmeta_floor : int
        Consolidation that saturates: every table entry is at least ``fmeta_floor / 256``
        (``table[k] = max(round(256 f_meta), fmeta_floor)``), so a consolidated weight keeps a
        minimum plasticity; in [0, 256], 0 is the plain f_meta table.
    thr_frac, thr_shift : int
        Threshold fraction bits in [0, 8] and tracking shift in [0, 12] (``T`` moves by
        ``c >> thr_shift`` per step, an exponential mean of the pre-activation).
    win1 : int
        STE window on the first hidden layer's pre-activations, in popcount units, >= 1.
    win_hidden : int
        STE window of the hidden layers after the first (XNOR-popcount of ``n_hidden`` +-1
        inputs), >= 1. Default 8 = sqrt(64): a sum of ``n_hidden`` random +-1 products has
        standard deviation ``sqrt(n_hidden)``, and the float STE passes one BatchNorm standard
        deviation (use about ``sqrt(n_hidden)``, e.g. 11 for 128).
    back_shift : int
        Arithmetic right shift of the error sent back through a hidden-to-hidden layer, in
        [0, 12] (``W_b_{l+1} @ delta_{l+1}`` sums ``n_hidden`` terms, so it grows by about
        ``sqrt(n_hidden)`` per layer).
    delta_bits : int
        Signed saturating width of every hidden ``delta``, in [2, 16].
    margin : int
        Hinge margin of the output error, in XNOR-popcount units, >= 0.
    init_range : int
        ``W_h`` starts uniform in ``[-init_range, init_range - 1]``, >= 1.
    code_bits : int
        Width of a gate-pulse code (device mode), in [1, 8].
    retry_limit : int
        Write-verify retries after the first pulse (digital mode), in [0, 15].
    norm_decay : int
        Per-weight step normalisation (issue 13; digital mode only), 0 = off (the rule of
        issue 5). With ``d = norm_decay`` in [1, 14] every layer keeps a factored second
        moment of its gradient ``G = h_in^T delta`` (Shazeer & Stern, "Adafactor", ICML 2018:
        row and column statistics instead of one per weight): per row
        ``P_i <- P_i - (P_i >> d) + (h_in_i^2 << d)`` and per lane
        ``Q_j <- Q_j - (Q_j >> d) + (delta_j^2 << d)``, so ``P_i Q_j / 2**(4d)`` estimates
        Adam's ``v`` (``beta2 = 1 - 2**-d``) of weight ``(i, j)``. The step is divided by
        ``2**s_ij ~ sqrt(P_i Q_j)`` with ``s_ij = ((bl(P_i) + bl(Q_j) + 1) >> 1) + c`` (``bl``:
        bit length, a leading-one detector) and ``c = max(d + 1 - bl(t), 0)`` the log2 bias
        correction of the ``t``-th step of the task (Adam's ``1 - beta2**t``).
    norm_gain : int
        Left shift of the normalised step, in [0, 48]: the step is
        ``(|M| F) >> (8 + lr_shift + s_ij - norm_gain)`` (a left shift where that is negative);
        with ``norm_decay = 0``, ``s_ij = 0`` (a gain for a ``W_h`` with more fraction bits).
    stoch_round : bool
        Round the step's final right shift stochastically (digital mode only): add ``T`` random
        low bits of a per-lane ``lowbias32`` counter draw (one draw per synapse per step, rows
        in order) before truncating, so a step below one unit of ``W_h`` moves it with the
        probability of its fraction instead of never.
    in_levels : int
        Thermometer code of the input pixels (issue 13), in [1, 8]: each pixel ``p`` in [0, 1]
        becomes ``in_levels`` bits, bit ``j`` (1-based) set where ``p >= j / (in_levels + 1)``
        (:func:`encode_pixels`), so layer 1 sees grey levels as the float model does (the paper
        feeds it unbinarized pixels). ``n_in`` counts the bits (784 pixels at 3 levels:
        ``n_in = 2352``) and must be a multiple of ``in_levels``; 1 is the plain
        ``p >= 0.5`` bit. The engine is unchanged, only layer 1 is wider.
    err_max, err_shift : int
        Graded output error (issue 13): a violating class ``k`` (``v_k = c_L[k] + margin *
        2**thr_frac - c_L[y] >= 0``) gets ``e_k = min(1 + (v_k >> err_shift), err_max)``
        instead of 1, so the error grows with the hinge violation as the softmax gradient
        grows with the logit gap; ``e_y = -sum_k e_k`` as before. ``err_max`` in [1, 64]
        (1: the 0/1 error of issue 5), ``err_shift`` in [0, 16] (units of
        ``2**-thr_frac`` popcounts per grade). A subtract, a shift and a saturation per output.
    dev_shift : int
        Per-neuron STE windows (issue 13), in [0, 12], 0 = off (fixed ``win_l``). Each hidden
        neuron tracks the mean absolute deviation ``D`` of its pre-activation around its
        threshold, ``D <- D + ((|c| - D) >> dev_shift)`` (training steps; ``D`` starts at
        ``win_l * 2**thr_frac`` at each task start, :meth:`IntegerEngine.reset_deviations`), and
        the STE passes ``|c| <= (D * dev_quarters) >> 2``.
    dev_quarters : int
        Width of the per-neuron STE window in quarters of ``D``, in [1, 16] [5]: for a Gaussian
        pre-activation the standard deviation is ``sqrt(pi / 2) = 1.25`` mean absolute
        deviations, so the default 5 (``D + (D >> 2)``) is the float STE's ``|x| <= 1`` after
        BatchNorm, one standard deviation of each neuron. Unused when ``dev_shift = 0``.
    bias_shift : int
        Learned per-neuron biases (issue 13), in [0, 12], 0 = off: the counterpart of
        BatchNorm's learned shift ``beta``, which a tracked mean ``T`` alone lacks. Every
        neuron of every layer (hidden and output) keeps ``B`` (units ``2**-thr_frac``,
        :attr:`IntegerEngine.bias`); the layer computes ``c = a * 2**thr_frac - T - B``, ``T``
        still tracks the mean of ``a * 2**thr_frac - T`` (so it does not absorb ``B``), and
        after the backward pass ``B <- sat(B + sgn(delta) (|delta| >> (bias_shift - 1)))``
        (saturated to :data:`BIAS_BITS` = 18 signed bits, as the engine's registers)
        (``delta`` the layer's masked error, ``e`` for the output layer: gradient descent on
        ``c``, rounded towards zero). ``B`` restarts at 0 at each task start
        (:meth:`IntegerEngine.reset_biases`, with ``M``, ``T`` and ``D``: a bias carried over
        from the last task's permutation leaves neurons outside their STE windows on the new
        one, and the rule fell 6.9 points below the float model, see
        ``docs/learning_rule.md``); the thresholds saved for a task
        (:meth:`IntegerEngine.population_thresholds`, or the learner's copy of ``T``) include
        it, so testing is unchanged.
    """

    n_in: int = 784
    n_hidden: int = 64
    n_out: int = 10
    n_hidden_layers: int = 1
    wh_bits: int = 10
    frac_bits: int = 6
    acc_bits: int = 10
    leak_shift: int = 3
    lr_shift: int = 3
    dead_zone: int = 8
    m: float = 1.35
    m_out: float | None = None
    index_shift: int = 3
    fmeta_floor: int = 0
    thr_frac: int = 2
    thr_shift: int = 5
    win1: int = 32
    win_hidden: int = 8
    back_shift: int = 0
    delta_bits: int = 8
    margin: int = 10
    init_range: int = 8
    code_bits: int = 4
    retry_limit: int = 3
    norm_decay: int = 0
    norm_gain: int = 0
    stoch_round: bool = False
    in_levels: int = 1
    err_max: int = 1
    err_shift: int = 0
    dev_shift: int = 0
    dev_quarters: int = 5
    bias_shift: int = 0

    def __post_init__(self) -> None:
        ranges = {
            "n_in": (2, 4096),
            "n_hidden": (2, 1024),
            "n_out": (2, 64),
            "n_hidden_layers": (1, 4),
            "wh_bits": (4, 16),
            "frac_bits": (0, 12),
            "acc_bits": (4, 16),
            "leak_shift": (1, 8),
            "lr_shift": (0, 12),
            "index_shift": (0, self.wh_bits - 1),
            "fmeta_floor": (0, 256),
            "thr_frac": (0, 8),
            "thr_shift": (0, 12),
            "win1": (1, 1 << 16),
            "win_hidden": (1, 1 << 16),
            "back_shift": (0, 12),
            "delta_bits": (2, 16),
            "margin": (0, 1 << 16),
            "init_range": (1, 1 << (self.wh_bits - 2)),
            "code_bits": (1, 8),
            "retry_limit": (0, 15),
            "norm_decay": (0, 14),
            "norm_gain": (0, 48),
            "in_levels": (1, 8),
            "err_max": (1, 64),
            "err_shift": (0, 16),
            "dev_shift": (0, 12),
            "dev_quarters": (1, 16),
            "bias_shift": (0, 12),
        }
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if not (isinstance(v, int) and lo <= v <= hi):
                raise ValueError(f"IntegerRule.{name} must be an int in [{lo}, {hi}], got {v!r}")
        if self.n_in % self.in_levels:
            raise ValueError(
                f"IntegerRule.n_in must be a multiple of in_levels = {self.in_levels} "
                f"(pixels x levels), got {self.n_in}"
            )
        if not isinstance(self.stoch_round, bool):
            raise ValueError(f"IntegerRule.stoch_round must be a bool, got {self.stoch_round!r}")
        for name in ("m", "m_out"):
            v = getattr(self, name)
            if v is None and name == "m_out":
                continue
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ValueError(f"IntegerRule.{name} must be a finite number >= 0, got {v!r}")

    @property
    def normalised(self) -> bool:
        """Whether the step uses the issue-13 extensions (``norm_decay``, ``norm_gain`` or
        ``stoch_round``); ``False`` is the rule of issue 5, bit for bit."""
        return self.norm_decay > 0 or self.norm_gain > 0 or self.stoch_round

    @property
    def n_layers(self) -> int:
        """Weight layers ``L = n_hidden_layers + 1``."""
        return self.n_hidden_layers + 1

    def layer_shapes(self) -> list[tuple[int, int]]:
        """``[rows, lanes]`` of each weight layer, input first: ``(n_in, n_hidden)``, then
        ``(n_hidden, n_hidden)`` per extra hidden layer, then ``(n_hidden, n_out)``."""
        h = self.n_hidden
        return [(self.n_in, h)] + [(h, h)] * (self.n_hidden_layers - 1) + [(h, self.n_out)]

    def windows(self) -> list[int]:
        """STE window of each hidden layer (popcount units): ``win1``, then ``win_hidden``."""
        return [self.win1] + [self.win_hidden] * (self.n_hidden_layers - 1)

    def tables(self) -> list[list[int]]:
        """The f_meta lookup table of each weight layer (:func:`fmeta_table`): ``m`` for the
        hidden layers, ``m_out`` (default ``m``) for the output layer; ``L`` tables."""
        m_out = self.m if self.m_out is None else self.m_out
        ms = [self.m] * self.n_hidden_layers + [m_out]
        tables = [fmeta_table(m, self.wh_bits, self.frac_bits, self.index_shift) for m in ms]
        return [[max(v, self.fmeta_floor) for v in t] for t in tables]

    def as_dict(self) -> dict:
        """Plain dict of the constants (for result files)."""
        return asdict(self)


#: Width of a learned bias ``B`` (:attr:`IntegerRule.bias_shift`): signed, saturating, as the
#: engine's 18-bit ``B`` registers (the width of its thresholds).
BIAS_BITS = 18


def _sat(x: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (a leading-one detector): 0 -> 0, 1 -> 1,
    2..3 -> 2, 4..7 -> 3, ..."""
    out = np.zeros(x.shape, dtype=np.int64)
    x = x.copy()
    for b in (32, 16, 8, 4, 2, 1):
        big = x >= (1 << b)
        out += np.where(big, b, 0)
        x = np.where(big, x >> b, x)
    return out + (x > 0)


def _shift_round(num: np.ndarray, shift, rand: np.ndarray | None = None) -> np.ndarray:
    """``num >> shift`` (``num`` >= 0 int64 ``[rows, lanes]``, ``shift`` int or int64 array;
    a left shift where ``shift < 0``). With ``rand`` (int64 ``[rows, lanes]``, 32-bit draws),
    rounded stochastically: ``(num + (rand mod 2**min(shift, 32))) >> shift``, i.e. rounded up
    with probability ``(num mod 2**shift) / 2**shift`` (for ``shift`` <= 32)."""
    shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), num.shape)
    right = np.maximum(shift, 0)
    if rand is not None:
        num = num + (rand & ((np.int64(1) << np.minimum(right, 32)) - 1))
    return np.where(shift >= 0, num >> right, num << np.maximum(-shift, 0))


def encode_pixels(pixels, levels: int = 1) -> np.ndarray:
    """Input bits of the engine from pixels: the thermometer code of :attr:`IntegerRule.in_levels`.

    ``pixels`` float ``[..., P]`` in [0, 1] (numpy array or torch tensor); returns bool
    ``[..., P * levels]``, pixel ``i`` giving bits ``i * levels + j - 1`` for ``j = 1..levels``,
    bit ``j`` set where ``pixel >= j / (levels + 1)``. ``levels = 1`` is ``pixel >= 0.5``, the
    issue-5 coding. A thermometer code is monotone: ``levels + 1`` grey levels, and the number
    of set bits is the pixel's level.

    Raises
    ------
    ValueError
        If ``levels`` is not an int in [1, 8].
    """
    if not (isinstance(levels, int) and 1 <= levels <= 8):
        raise ValueError(f"levels must be an int in [1, 8], got {levels!r}")
    x = np.asarray(pixels.numpy() if hasattr(pixels, "numpy") else pixels)
    if levels == 1:
        return x >= 0.5
    # Compare in float64 against (j / (levels + 1)) computed the same way for every pixel.
    cuts = np.arange(1, levels + 1, dtype=np.float64) / (levels + 1)
    bits = x.astype(np.float64)[..., None] >= cuts
    return bits.reshape(*x.shape[:-1], x.shape[-1] * levels)


def _pm(bits: np.ndarray) -> np.ndarray:
    return np.where(bits, 1, -1).astype(np.int64)


def initial_w_h(rule: IntegerRule, seed: int) -> list[np.ndarray]:
    """Seeded initial ``W_h`` of every layer, int64 of :meth:`IntegerRule.layer_shapes`, uniform
    in ``[-init_range, init_range - 1]``, drawn layer after layer from one
    ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    r = rule.init_range
    return [rng.integers(-r, r, size=s).astype(np.int64) for s in rule.layer_shapes()]


def array_lane_seeds(rule: IntegerRule, array_seed: int) -> list[list[int]]:
    """Lane seeds of each layer's array: layer ``k`` (0-based) uses
    ``lane_seeds(array_seed * L + k, lanes_k)`` (``L = 2``: ``array_seed * 2 + k`` as before).

    Raises
    ------
    ValueError
        If ``array_seed * L + L - 1`` is not below ``2**15``.
    """
    n = rule.n_layers
    if not 0 <= array_seed * n + n - 1 < (1 << 15):
        raise ValueError(
            f"array_seed must be in [0, {((1 << 15) - n) // n}] for {n} layers, got {array_seed}"
        )
    return [lane_seeds(array_seed * n + k, s[1]) for k, s in enumerate(rule.layer_shapes())]


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
        Seed of the arrays' lane draws (:func:`array_lane_seeds`), ``array_seed * L + L - 1``
        below 32768.
    arrays : sequence of ``L`` array objects, optional
        Synapse arrays, one per weight layer (input layer first), to use instead of the seeded
        models (components passed in, e.g. physics device models over the initial weights of
        :func:`initial_w_h`): digital mode needs
        ``bits`` (bool ``[rows, lanes]``), ``sense()`` and ``write(row, enable, polarity)``;
        device mode ``sense()`` and ``gate_all(polarity, code)``. ``p_success`` and
        ``array_seed`` are then unused.

    Attributes
    ----------
    w_h : list of numpy.ndarray
        int64 per layer, shapes :meth:`IntegerRule.layer_shapes` (digital mode: the engine
        memory; device mode: the arrays' hidden states).
    acc : list of numpy.ndarray
        Accumulators ``M``, same shapes.
    thr : list of numpy.ndarray
        Thresholds ``T_l`` int64 ``[lanes_l]`` per layer (``[n_hidden]`` ... ``[n_out]``),
        units ``2**-thr_frac``.
    bias : list of numpy.ndarray
        Learned biases ``B_l`` (:attr:`IntegerRule.bias_shift`), same shapes and units; zeros
        when off.
    dev : list of numpy.ndarray
        Per-neuron mean absolute deviations ``D_l`` of the hidden layers
        (:attr:`IntegerRule.dev_shift`), int64 ``[n_hidden]``, units ``2**-thr_frac``.
    arrays : list
        The ``L`` synapse-array models.
    last_error : numpy.ndarray or None
        int64 ``[n_out]``, the output error ``e`` of the last :meth:`step` (diagnostics).
    counters : Counters

    Raises
    ------
    ValueError
        If ``mode``, a seed or the number of ``arrays`` is invalid.
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
        shapes = r.layer_shapes()
        w_h = initial_w_h(rule, seed)
        self.thr = [np.zeros(s[1], dtype=np.int64) for s in shapes]
        self.bias = [np.zeros(s[1], dtype=np.int64) for s in shapes]
        self.tables = [np.asarray(t, dtype=np.int64) for t in r.tables()]
        self.counters = Counters()
        self.last_error: np.ndarray | None = None
        if r.normalised and mode != "digital":
            raise ValueError(
                "norm_decay, norm_gain and stoch_round are digital-mode fields (device mode "
                "keeps no W_h in the engine); set them to 0 / False for mode='device'"
            )
        self.reset_moments()
        self.reset_deviations()
        self.round_draws = (
            [
                _LaneDraws(lowbias32(np.asarray(sd, dtype=np.uint64) ^ np.uint64(ROUND_SALT)))
                for sd in array_lane_seeds(rule, array_seed)
            ]
            if r.stoch_round
            else None
        )
        if arrays is not None:
            if len(arrays) != r.n_layers:
                raise ValueError(
                    f"arrays must hold {r.n_layers} arrays (one per layer), got {len(arrays)}"
                )
            self._w_h = w_h if mode == "digital" else None
            self.arrays = list(arrays)
            return
        seeds = array_lane_seeds(rule, array_seed)
        if mode == "digital":
            self._w_h = w_h
            self.arrays = [BinaryArrayModel(w >= 0, p_success, sd) for w, sd in zip(w_h, seeds)]
        else:
            self._w_h = None
            self.arrays = [
                HiddenStateArrayModel(w, r.wh_bits, t, r.index_shift, sd)
                for w, t, sd in zip(w_h, r.tables(), seeds)
            ]

    def reset_moments(self) -> None:
        """Zero the optimizer state of a task start: ``M``, the row and lane second moments
        ``P``, ``Q`` and the step count ``t`` (the paper's fresh optimizer per task)."""
        shapes = self.rule.layer_shapes()
        self.acc = [np.zeros(s, dtype=np.int64) for s in shapes]
        self.row_moment = [np.zeros(s[0], dtype=np.int64) for s in shapes]
        self.lane_moment = [np.zeros(s[1], dtype=np.int64) for s in shapes]
        self.norm_t = 0

    def reset_deviations(self) -> None:
        """Restart the per-neuron deviations ``D`` (:attr:`IntegerRule.dev_shift`) at the fixed
        windows: ``dev[l]`` int64 ``[n_hidden]`` = ``win_l * 2**thr_frac`` per hidden layer
        (a task start, with the thresholds)."""
        r = self.rule
        self.dev = [np.full(r.n_hidden, w << r.thr_frac, dtype=np.int64) for w in r.windows()]

    def reset_biases(self) -> None:
        """Restart the learned biases ``B`` (:attr:`IntegerRule.bias_shift`) at 0: ``bias[l]``
        int64 ``[lanes_l]`` (a task start, with the thresholds and deviations)."""
        self.bias = [np.zeros_like(b) for b in self.bias]

    def start_task(self) -> None:
        """A task start, as the RTL's ``thr_load`` of zeros then ``acc_clear``: fresh moments
        (:meth:`reset_moments`), thresholds ``T`` at 0, :meth:`reset_deviations` and
        :meth:`reset_biases`. ``W_h`` and the arrays are kept."""
        self.reset_moments()
        self.thr = [np.zeros_like(t) for t in self.thr]
        self.reset_deviations()
        self.reset_biases()

    @property
    def w_h(self) -> list[np.ndarray]:
        if self.mode == "digital":
            return self._w_h
        return [a.h for a in self.arrays]

    def w_b(self) -> list[np.ndarray]:
        """Binary weights sensed from the arrays, bool ``[rows, lanes]`` per layer."""
        return [a.sense() for a in self.arrays]

    def _forward(self, xb: np.ndarray, thr: list[np.ndarray]):
        """Inputs of each layer (``x`` {0, 1}, then ``h`` +-1, int64), +-1 weights and ``c``."""
        r = self.rule
        wb = [_pm(b) for b in self.w_b()]
        ins, cs = [xb.astype(np.int64)], []
        for k in range(r.n_layers):
            c = ((ins[k] @ wb[k]) << r.thr_frac) - thr[k]
            cs.append(c)
            if k < r.n_layers - 1:
                ins.append(_pm(c >= 0))
        return ins, wb, cs

    def population_thresholds(self, xb: np.ndarray) -> list[np.ndarray]:
        """Thresholds from population statistics of the current weights (issue 13): layer by
        layer, ``T_l = floor(mean over the samples of a_l * 2**thr_frac) + B_l`` (``B_l`` the
        learned biases, :attr:`IntegerRule.bias_shift`; 0 without them), the input of layer
        ``l + 1`` binarized with the new ``T_l``; the integer counterpart of the float model's
        BatchNorm population statistics, computed by the host at the end of a task.

        ``xb`` bool ``[N, n_in]`` (N >= 1, e.g. the task's training set); returns ``L`` int64
        arrays ``[lanes_l]`` in units of ``2**-thr_frac``.

        Raises
        ------
        ValueError
            If ``xb`` is not ``[N, n_in]`` with ``N >= 1``.
        """
        xb = np.asarray(xb, dtype=bool)
        if xb.ndim != 2 or xb.shape[0] < 1 or xb.shape[1] != self.rule.n_in:
            raise ValueError(f"xb must have shape (N >= 1, {self.rule.n_in}), got {xb.shape}")
        r = self.rule
        h, out = xb.astype(np.int64), []
        for b, bias in zip(self.w_b(), self.bias):
            a = (h @ _pm(b)) << r.thr_frac
            t = a.sum(axis=0) // a.shape[0] + bias
            out.append(t)
            h = _pm(a - t >= 0)
        return out

    def predict(self, xb: np.ndarray, thr: list[np.ndarray] | None = None) -> np.ndarray:
        """Class of each input: ``xb`` bool ``[N, n_in]`` -> int64 ``[N]`` (first argmax).

        ``thr`` defaults to the current thresholds (task-dependent thresholds: pass a saved list,
        one array per layer).
        """
        thr = self.thr if thr is None else thr
        _, _, cs = self._forward(np.asarray(xb, dtype=bool), thr)
        return np.argmax(cs[-1], axis=-1)

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
        n = r.n_layers
        thr = [t + b for t, b in zip(self.thr, self.bias)] if r.bias_shift else self.thr
        ins, wb, cs = self._forward(np.asarray(xb, dtype=bool), thr)
        # The centred pre-activation that T and D track (c without the learned bias).
        centred = [c + b for c, b in zip(cs, self.bias)] if r.bias_shift else cs
        if r.dev_shift:
            masks = [np.abs(c) <= ((d * r.dev_quarters) >> 2) for c, d in zip(cs, self.dev)]
            for k, d in enumerate(self.dev):
                self.dev[k] = d + ((np.abs(centred[k]) - d) >> r.dev_shift)
        else:
            masks = [np.abs(c) <= (w << r.thr_frac) for c, w in zip(cs, r.windows())]
        for k in range(n):
            self.thr[k] = self.thr[k] + (centred[k] >> r.thr_shift)
        c_out = cs[-1]
        v = c_out + (r.margin << r.thr_frac) - c_out[label]
        viol = v >= 0
        viol[label] = False
        if r.err_max > 1:
            e = np.where(viol, np.minimum(1 + (v >> r.err_shift), r.err_max), 0)
        else:
            e = viol.astype(np.int64)
        e[label] = -int(e.sum())
        self.last_error = e
        deltas = [e]
        for k in range(n - 2, -1, -1):
            back = wb[k + 1] @ deltas[0]
            if k < n - 2:
                back = back >> r.back_shift
            deltas.insert(0, np.where(masks[k], _sat(back, r.delta_bits), 0))
        if r.bias_shift:
            for k, d in enumerate(deltas):
                step = np.sign(d) * (np.abs(d) >> (r.bias_shift - 1))
                self.bias[k] = _sat(self.bias[k] + step, BIAS_BITS)
        # Output layer first, down to layer 1, as the RTL does it (the layers touch disjoint
        # state and the gradients use the W_b sensed in the forward pass, so order is free).
        if r.norm_decay:
            self.norm_t = min(self.norm_t + 1, 1 << r.norm_decay)
        for k in range(n - 1, -1, -1):
            shift = self._norm_shift(k, ins[k], deltas[k])
            self._update(k, np.outer(ins[k], deltas[k]), shift)
        return int(np.argmax(c_out))

    def _norm_shift(self, k: int, inp: np.ndarray, delta: np.ndarray) -> np.ndarray | int:
        """Update layer ``k``'s row and lane moments with this step's ``h_in`` and ``delta``
        and return ``s_ij`` (int64 ``[rows, lanes]``; 0 without normalisation)."""
        d = self.rule.norm_decay
        if d == 0:
            return 0
        p, q = self.row_moment[k], self.lane_moment[k]
        p = p - (p >> d) + ((inp * inp) << d)
        q = q - (q >> d) + ((delta * delta) << d)
        self.row_moment[k], self.lane_moment[k] = p, q
        corr = max(d + 1 - self.norm_t.bit_length(), 0)
        return ((_bit_length(p)[:, None] + _bit_length(q)[None, :] + 1) >> 1) + corr

    def _update(self, k: int, grad: np.ndarray, norm_shift: np.ndarray | int = 0) -> None:
        """Lane arithmetic of layer ``k`` for gradient ``grad`` (int64 ``[rows, lanes]``);
        ``norm_shift`` is ``s_ij`` of :meth:`_norm_shift` (0 without normalisation)."""
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
            if not r.normalised:
                step = (mag * f) >> (F_BITS + r.lr_shift)
            else:
                shift = F_BITS + r.lr_shift - r.norm_gain + norm_shift
                rand = None
                if r.stoch_round:
                    rand = self.round_draws[k].raw_rows(w.shape[0]).astype(np.int64)
                step = _shift_round(mag * f, shift, rand)
            w = _sat(w - sgn * step, r.wh_bits)
            self._w_h[k] = w
            self._write_verify(self.arrays[k], w >= 0)
        else:
            code = np.minimum(mag >> r.lr_shift, (1 << r.code_bits) - 1)
            self.arrays[k].gate_all(m_new < 0, code)
            self.counters.writes += int((code > 0).sum())

    def _write_verify(self, array: BinaryArrayModel, want: np.ndarray) -> None:
        c = self.counters
        if type(array) is BinaryArrayModel and array.p_success >= 256:
            # Ideal array: every first pulse succeeds and no lane draws, so the row-by-row loop
            # below reduces to this (same bits, same counters).
            todo = array.bits != want
            c.writes += int(todo.sum())
            array.bits[todo] = want[todo]
            return
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
