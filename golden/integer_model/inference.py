"""The integer inference model: what the RTL inference engine computes, bit for bit.

A trained float :class:`spinapse.golden.float_model.bnn.BNN` is exported (:func:`export_integer`) to
integers:

- Input: binarized pixels, bit ``1`` (meaning +1) where ``pixel / 255 >= 0.5``, else ``0`` (-1)
  (:func:`binarize_pixels`).
- Every layer: weight bits ``W_b`` (1 means +1) and the XNOR-popcount dot product
  ``dot = 2 * popcount(xnor(x, w)) - N`` with ``N`` the layer's input width. This equals the
  +-1 dot product ``sum(x_i * w_i)`` exactly.
- Hidden layers: BatchNorm then ``sign`` folded into one integer threshold ``T`` and a flip bit per
  neuron (FINN, Umuroglu et al., FPGA 2017, Sec. 4.2.2; sign flip for negative ``gamma``):
  ``bit = (dot >= T) XOR flip``. With ``s = sqrt(var + eps)`` and ``tau = mu - beta * s / gamma``:
  ``gamma > 0``: ``T = ceil(tau)``, flip 0; ``gamma < 0``: ``T = floor(tau) + 1``, flip 1 (the
  neuron is +1 when ``dot <= tau``); ``gamma == 0``: the output is the constant ``beta >= 0``
  (``T = -N`` or ``T = N + 1``, flip 0). ``T`` is clipped to ``[-N, N + 1]``, which changes no
  output because ``dot`` lies in ``[-N, N]``. The engine compares popcounts instead:
  ``dot >= T  <=>  popcount >= ceil((T + N) / 2)`` (:meth:`IntegerLayer.popcount_thresholds`).
- Output layer: BatchNorm is affine, ``z = a * dot + b`` with ``a = gamma / s`` and
  ``b = beta - gamma * mu / s``. The integer score is ``A * dot + B`` with
  ``A = round(a * 2**F)`` (16-bit signed) and ``B = round(b * 2**F)`` (32-bit signed), one
  fraction width ``F`` for the whole layer chosen as large as both ranges allow. The class is the
  first index of the largest score (``numpy.argmax``). Rounding ``A`` and ``B`` can flip the argmax
  of near-tied logits only; the accuracy report measures it.

BatchNorm statistics. Each layer's ``mu`` and ``var`` (biased) are the statistics of its
pre-activations over a whole data set (a task's training set), computed layer after layer with
the previous layers already binarized with those statistics: the float model's own population
statistics (``test_statistics = "population"``, :meth:`BNN.store_statistics`) read back with
:func:`stored_statistics` when the model's input is the engine's +-1 pixel coding, or
:func:`population_statistics` here, which binarizes the pixels first (for a model trained on
float pixels, whose stored statistics belong to another input). The float reference
(:func:`float_reference_logits`) is the float model evaluated with exactly those statistics and
binarized +-1 input, in float64; the integer model is compared with it.

Task-dependent BatchNorm: the weights are shared and the thresholds belong to a task; export one
:class:`IntegerBNN` per task (:func:`export_tasks`), each with that task's BatchNorm parameters
and statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from spinapse.golden.float_model.bnn import BNN

A_BITS = 16
"""Width of the output layer's signed score scale ``A``."""
B_BITS = 32
"""Width of the output layer's signed score offset ``B``."""
MAX_FRAC_BITS = 24
"""Upper bound on the output fraction width ``F``."""


def binarize_pixels(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Pixel bits of images: 1 where ``x >= 0.5`` (x = pixel / 255 in [0, 1]), else 0.

    Parameters
    ----------
    x : array, float ``[B, D]``
        Images scaled to ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        uint8 ``[B, D]`` in {0, 1}.
    """
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return (a >= 0.5).astype(np.uint8)


def bits_to_pm1(bits: np.ndarray) -> np.ndarray:
    """Map bits {0, 1} to int32 {-1, +1} (bit 1 means +1)."""
    return bits.astype(np.int32) * 2 - 1


def xnor_popcount_dot(x_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """``dot[b, j] = 2 * popcount(xnor(x[b], w[j])) - N``, exact, int64 ``[B, out]``.

    ``x_bits`` uint8 ``[B, N]`` and ``w_bits`` uint8 ``[out, N]`` in {0, 1}. Computed as the +-1
    product (equal by ``xnor(a, b) = 1 <=> a == b``).

    Raises
    ------
    ValueError
        If the widths differ.
    """
    if x_bits.shape[-1] != w_bits.shape[-1]:
        raise ValueError(f"input width {x_bits.shape[-1]} != weight width {w_bits.shape[-1]}")
    return (bits_to_pm1(x_bits) @ bits_to_pm1(w_bits).T).astype(np.int64)


@dataclass(frozen=True)
class IntegerLayer:
    """One layer of the integer model.

    Attributes
    ----------
    weights : numpy.ndarray
        uint8 ``[out, N]`` weight bits (1 means +1).
    threshold : numpy.ndarray or None
        Hidden layers: int64 ``[out]`` thresholds ``T`` on ``dot`` in ``[-N, N + 1]``.
    flip : numpy.ndarray or None
        Hidden layers: uint8 ``[out]``; 1 inverts the comparison (negative ``gamma``).
    scale, offset : numpy.ndarray or None
        Output layer: int64 ``[out]`` ``A`` (16-bit signed) and ``B`` (32-bit signed).
    frac_bits : int
        Output layer: the fraction width ``F`` of ``A`` and ``B`` (0 for hidden layers).
    """

    weights: np.ndarray
    threshold: np.ndarray | None = None
    flip: np.ndarray | None = None
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None
    frac_bits: int = 0

    @property
    def is_output(self) -> bool:
        """True for the scoring (last) layer."""
        return self.scale is not None

    @property
    def n_in(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weights.shape[0])

    def popcount_thresholds(self) -> np.ndarray:
        """Thresholds on the popcount: ``t = ceil((T + N) / 2)`` in ``[0, N + 1]``, int64 ``[out]``.

        ``dot >= T  <=>  popcount >= t`` because ``dot = 2 * popcount - N``.

        Raises
        ------
        ValueError
            On the output layer (it has no thresholds).
        """
        if self.threshold is None:
            raise ValueError("the output layer has no thresholds")
        return -((-(self.threshold + self.n_in)) // 2)

    def forward(self, x_bits: np.ndarray) -> np.ndarray:
        """Hidden layer: output bits uint8 ``[B, out]``; output layer: scores int64 ``[B, out]``."""
        dot = xnor_popcount_dot(x_bits, self.weights)
        if self.is_output:
            return self.scale[None, :] * dot + self.offset[None, :]
        return ((dot >= self.threshold[None, :]).astype(np.uint8) ^ self.flip[None, :]).astype(
            np.uint8
        )


@dataclass(frozen=True)
class IntegerBNN:
    """The integer model: hidden layers then one output layer (see the module docstring).

    Attributes
    ----------
    layers : tuple of IntegerLayer
        Input side first; the last one is the output layer.
    """

    layers: tuple[IntegerLayer, ...]

    def __post_init__(self) -> None:
        if not self.layers or not self.layers[-1].is_output:
            raise ValueError(
                "an IntegerBNN needs at least one layer and must end in an output layer"
            )
        if any(layer.is_output for layer in self.layers[:-1]):
            raise ValueError("only the last layer may be an output layer")
        for a, b in zip(self.layers[:-1], self.layers[1:]):
            if a.n_out != b.n_in:
                raise ValueError(f"layer widths do not chain: {a.n_out} -> {b.n_in}")

    @property
    def widths(self) -> tuple[int, ...]:
        """``(N_in, hidden..., classes)``."""
        return (self.layers[0].n_in, *[layer.n_out for layer in self.layers])

    def scores(self, x_bits: np.ndarray) -> np.ndarray:
        """Integer scores int64 ``[B, classes]`` of input bits uint8 ``[B, N_in]``.

        Raises
        ------
        ValueError
            If the input width is not ``N_in``.
        """
        x_bits = np.asarray(x_bits, dtype=np.uint8)
        if x_bits.ndim != 2 or x_bits.shape[1] != self.widths[0]:
            raise ValueError(f"x_bits must be [B, {self.widths[0]}], got {x_bits.shape}")
        h = x_bits
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def predict(self, x_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(classes int64 [B], scores int64 [B, C])``; class = first index of the top score."""
        s = self.scores(x_bits)
        return np.argmax(s, axis=1).astype(np.int64), s


@dataclass(frozen=True)
class BNStatistics:
    """Per-layer BatchNorm mean and biased variance, float64 ``[out]`` each, input side first."""

    mean: tuple[np.ndarray, ...]
    var: tuple[np.ndarray, ...]


def _binary_weights(model: BNN) -> list[np.ndarray]:
    return [lin.binary_weight().cpu().numpy().astype(np.float64) for lin in model.linears]


def _bn_affine(model: BNN, i: int) -> tuple[np.ndarray, np.ndarray, float]:
    bn = model.bns[i]
    gamma = bn.weight.detach().cpu().numpy().astype(np.float64)
    beta = bn.bias.detach().cpu().numpy().astype(np.float64)
    return gamma, beta, float(bn.eps)


def population_statistics(model: BNN, x: np.ndarray | torch.Tensor) -> BNStatistics:
    """BatchNorm statistics of ``model`` over a whole data set, layer after layer.

    Layer ``l``'s mean and biased variance are those of its pre-activations ``W_b x`` over all of
    ``x`` (binarized with :func:`binarize_pixels`), where the hidden activations of earlier layers
    are computed with the statistics already found for them.

    Parameters
    ----------
    model : BNN
        A trained float model (its BatchNorm ``gamma``/``beta`` are used).
    x : array, float ``[B, D]``
        Images in ``[0, 1]`` (a task's training set), ``B >= 2``.

    Raises
    ------
    ValueError
        If ``x`` has fewer than two rows or the wrong width.
    """
    bits = binarize_pixels(x)
    if bits.ndim != 2 or bits.shape[0] < 2 or bits.shape[1] != model.widths[0]:
        raise ValueError(f"x must be [B >= 2, {model.widths[0]}], got {bits.shape}")
    h = bits_to_pm1(bits).astype(np.float64)
    means, vars_ = [], []
    weights = _binary_weights(model)
    for i, w in enumerate(weights):
        pre = h @ w.T
        mu = pre.mean(axis=0)
        var = pre.var(axis=0)
        means.append(mu)
        vars_.append(var)
        if i < len(weights) - 1:
            gamma, beta, eps = _bn_affine(model, i)
            z = gamma * (pre - mu) / np.sqrt(var + eps) + beta
            h = np.where(z >= 0, 1.0, -1.0)
    return BNStatistics(tuple(means), tuple(vars_))


def stored_statistics(model: BNN) -> BNStatistics:
    """The population statistics the float model holds (float32 buffers read as float64).

    Raises
    ------
    ValueError
        If a layer has none stored (:meth:`BNN.store_statistics` was not called).
    """
    for i, bn in enumerate(model.bns):
        if int(bn.stats_samples) == 0:
            raise ValueError(f"layer {i} has no stored BatchNorm statistics")
    return BNStatistics(
        tuple(bn.running_mean.detach().cpu().numpy().astype(np.float64) for bn in model.bns),
        tuple(bn.running_var.detach().cpu().numpy().astype(np.float64) for bn in model.bns),
    )


def float_reference_logits(
    model: BNN, stats: BNStatistics, x: np.ndarray | torch.Tensor
) -> np.ndarray:
    """Float model, binarized +-1 input, BatchNorm on ``stats``: logits float64 ``[B, C]``.

    This is the float accuracy the integer model is compared with.
    """
    h = bits_to_pm1(binarize_pixels(x)).astype(np.float64)
    weights = _binary_weights(model)
    for i, w in enumerate(weights):
        gamma, beta, eps = _bn_affine(model, i)
        z = gamma * (h @ w.T - stats.mean[i]) / np.sqrt(stats.var[i] + eps) + beta
        h = np.where(z >= 0, 1.0, -1.0) if i < len(weights) - 1 else z
    return h


def _hidden_thresholds(
    gamma: np.ndarray, beta: np.ndarray, mu: np.ndarray, var: np.ndarray, eps: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    s = np.sqrt(var + eps)
    t = np.empty(gamma.shape, dtype=np.int64)
    flip = np.zeros(gamma.shape, dtype=np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = mu - beta * s / gamma
    pos, neg, zero = gamma > 0, gamma < 0, gamma == 0
    t[pos] = np.ceil(np.clip(tau[pos], -n - 1, n + 2)).astype(np.int64)
    t[neg] = np.floor(np.clip(tau[neg], -n - 2, n + 1)).astype(np.int64) + 1
    flip[neg] = 1
    t[zero] = np.where(beta[zero] >= 0, -n, n + 1)
    return np.clip(t, -n, n + 1), flip


def _output_affine(
    gamma: np.ndarray, beta: np.ndarray, mu: np.ndarray, var: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, int]:
    s = np.sqrt(var + eps)
    a = gamma / s
    b = beta - gamma * mu / s
    a_max = (1 << (A_BITS - 1)) - 1
    b_max = (1 << (B_BITS - 1)) - 1
    frac = MAX_FRAC_BITS
    for limit, v in ((a_max, a), (b_max, b)):
        peak = float(np.max(np.abs(v)))
        if peak > 0:
            frac = min(frac, math.floor(math.log2(limit / peak)))
    scale = np.clip(np.round(a * 2.0**frac), -a_max - 1, a_max).astype(np.int64)
    offset = np.clip(np.round(b * 2.0**frac), -b_max - 1, b_max).astype(np.int64)
    return scale, offset, int(frac)


def export_integer(model: BNN, x_train: np.ndarray | torch.Tensor) -> IntegerBNN:
    """Export ``model`` (its current BatchNorm parameters) with statistics over ``x_train``.

    Parameters
    ----------
    model : BNN
        Trained float model.
    x_train : array, float ``[B, D]``
        The task's training images in ``[0, 1]`` (BatchNorm statistics come from them).

    Returns
    -------
    IntegerBNN

    Raises
    ------
    ValueError
        As :func:`population_statistics`.
    """
    stats = population_statistics(model, x_train)
    return export_with_statistics(model, stats)


def export_with_statistics(model: BNN, stats: BNStatistics) -> IntegerBNN:
    """Export ``model`` with given BatchNorm statistics (see :func:`export_integer`)."""
    layers = []
    n_layers = len(model.linears)
    for i, lin in enumerate(model.linears):
        w_bits = (lin.weight.detach().cpu().numpy() >= 0).astype(np.uint8)
        gamma, beta, eps = _bn_affine(model, i)
        mu, var = stats.mean[i], stats.var[i]
        if i < n_layers - 1:
            t, flip = _hidden_thresholds(gamma, beta, mu, var, eps, w_bits.shape[1])
            layers.append(IntegerLayer(weights=w_bits, threshold=t, flip=flip))
        else:
            scale, offset, frac = _output_affine(gamma, beta, mu, var, eps)
            layers.append(IntegerLayer(weights=w_bits, scale=scale, offset=offset, frac_bits=frac))
    return IntegerBNN(tuple(layers))


def export_tasks(
    model: BNN,
    bn_states: Sequence[Sequence[dict]],
    task_train_x: Sequence[np.ndarray | torch.Tensor],
) -> list[IntegerBNN]:
    """One integer model per task: shared weight bits, that task's BatchNorm folded in.

    Parameters
    ----------
    model : BNN
        Trained float model; its BatchNorm parameters are restored afterwards.
    bn_states : sequence
        Per task, the BatchNorm state saved by :meth:`BNN.bn_state` after training that task.
    task_train_x : sequence of arrays
        Per task, its training images (the statistics of that task's thresholds).

    Raises
    ------
    ValueError
        If the two sequences differ in length.
    """
    if len(bn_states) != len(task_train_x):
        raise ValueError(f"{len(bn_states)} BatchNorm states for {len(task_train_x)} tasks")
    saved = model.bn_state()
    try:
        out = []
        for state, x in zip(bn_states, task_train_x):
            model.load_bn_state(state)
            out.append(export_integer(model, x))
        return out
    finally:
        model.load_bn_state(saved)


def accuracy_report(
    model: BNN, x_train: np.ndarray | torch.Tensor, x_test: np.ndarray | torch.Tensor, y_test
) -> dict[str, float]:
    """Accuracy of the float reference and of the exported integer model on a test set.

    Returns
    -------
    dict
        ``float_accuracy`` and ``integer_accuracy`` (fractions in [0, 1]), ``difference_points``
        (integer minus float, in percentage points) and ``agreement`` (fraction of equal classes).
    """
    stats = population_statistics(model, x_train)
    integer = export_with_statistics(model, stats)
    y = y_test.cpu().numpy() if isinstance(y_test, torch.Tensor) else np.asarray(y_test)
    f_cls = np.argmax(float_reference_logits(model, stats, x_test), axis=1)
    i_cls, _ = integer.predict(binarize_pixels(x_test))
    f_acc = float(np.mean(f_cls == y))
    i_acc = float(np.mean(i_cls == y))
    return {
        "float_accuracy": f_acc,
        "integer_accuracy": i_acc,
        "difference_points": 100.0 * (i_acc - f_acc),
        "agreement": float(np.mean(f_cls == i_cls)),
    }
