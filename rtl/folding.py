"""PE/SIMD folding of a binarized network onto the inference engine, and its memory layout.

A layer with ``N`` inputs and ``M`` neurons is folded (FINN, Umuroglu et al., FPGA 2017, Sec. 4.3)
onto ``PE`` processing elements (neurons computed in parallel) that each take ``SIMD`` input bits
per cycle: it takes ``SF = N / SIMD`` input folds times ``NF = M / PE`` neuron folds cycles. Both
divisions must be exact; a folding that cannot serve a size is refused at elaboration with
``ValueError``.

Memory layout (what the run-time write port of the engine addresses):

- Weight memory of layer ``l``: depth ``NF * SF``, word ``PE * SIMD`` bits. Word ``g * SF + s``
  holds, at bit ``j * SIMD + k``, the weight bit of neuron ``g * PE + j`` for input
  ``s * SIMD + k`` (1 means +1).
- Parameter memory of a hidden layer: depth ``NF``, word ``PE * (TW + 1)`` bits with
  ``TW = bit_length(N + 1)``: for PE ``j``, bits ``[j*(TW+1), j*(TW+1)+TW)`` hold the popcount
  threshold ``t`` (unsigned, ``0 <= t <= N + 1``) and bit ``j*(TW+1)+TW`` the flip bit; the neuron
  outputs ``(popcount >= t) XOR flip``.
- Parameter memory of the output layer: depth ``NF``, word ``PE * 48`` bits: for PE ``j``, bits
  ``[48 j, 48 j + 16)`` the signed scale ``A`` and ``[48 j + 16, 48 j + 48)`` the signed offset
  ``B`` (two's complement); the score is ``A * (2 * popcount - N) + B``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCALE_BITS = 16
"""Width of the output layer's signed scale ``A``."""
OFFSET_BITS = 32
"""Width of the output layer's signed offset ``B``."""
LAYER_LATENCY = 5
"""Cycles a layer's run lasts beyond its ``SF * NF`` issue cycles: from the ``start`` cycle, the
memory read, the registered memory output, the registered partial popcounts, the accumulator
and the threshold/score register (see :mod:`spinapse.rtl.layer`)."""
POPCOUNT_CHUNK = 32
"""Input bits per registered partial popcount: a ``SIMD``-bit XNOR-popcount is summed as
``ceil(SIMD / 32)`` registered partial counts (one register stage inside the tree)."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class LayerFolding:
    """One layer's sizes and folding (see the module docstring).

    Parameters
    ----------
    n_in, n_out : int
        Input width ``N`` and neuron count ``M``, >= 1.
    pe, simd : int
        Neurons in parallel (divides ``n_out``) and input bits per cycle (divides ``n_in``).
    output : bool
        True for the scoring layer.

    Raises
    ------
    ValueError
        If a size is not a positive integer or the folding does not divide the layer exactly.
    """

    n_in: int
    n_out: int
    pe: int
    simd: int
    output: bool = False

    def __post_init__(self) -> None:
        for name in ("n_in", "n_out", "pe", "simd"):
            _positive_int(name, getattr(self, name))
        if self.n_in % self.simd:
            raise ValueError(
                f"SIMD={self.simd} must divide the layer input width N={self.n_in} "
                f"(divisors allowed: {_divisors(self.n_in)})"
            )
        if self.n_out % self.pe:
            raise ValueError(
                f"PE={self.pe} must divide the layer neuron count M={self.n_out} "
                f"(divisors allowed: {_divisors(self.n_out)})"
            )

    @property
    def sf(self) -> int:
        """Input folds ``N / SIMD``."""
        return self.n_in // self.simd

    @property
    def nf(self) -> int:
        """Neuron folds ``M / PE``."""
        return self.n_out // self.pe

    @property
    def cycles(self) -> int:
        """Compute cycles of one image through this layer, ``SF * NF``."""
        return self.sf * self.nf

    @property
    def run_cycles(self) -> int:
        """Cycles from a ``start`` cycle to the cycle ``done`` is high, ``SF * NF + 5``."""
        return self.cycles + LAYER_LATENCY

    @property
    def count_width(self) -> int:
        """Bits of a popcount over ``N`` inputs (0..N)."""
        return self.n_in.bit_length()

    @property
    def threshold_width(self) -> int:
        """``TW``: bits of a popcount threshold (0..N+1)."""
        return (self.n_in + 1).bit_length()

    @property
    def score_width(self) -> int:
        """Bits of a signed output score ``A * dot + B`` (never overflows)."""
        return max(SCALE_BITS + self.count_width + 2, OFFSET_BITS) + 1

    @property
    def weight_width(self) -> int:
        return self.pe * self.simd

    @property
    def weight_depth(self) -> int:
        return self.nf * self.sf

    @property
    def param_width(self) -> int:
        return self.pe * (SCALE_BITS + OFFSET_BITS if self.output else self.threshold_width + 1)

    @property
    def param_depth(self) -> int:
        return self.nf

    def weight_words(self, w_bits: np.ndarray) -> list[int]:
        """Weight-memory words (ints) of weight bits uint8 ``[M, N]``.

        Raises
        ------
        ValueError
            If the shape is not ``[M, N]`` or a value is not 0/1.
        """
        w = np.asarray(w_bits)
        if w.shape != (self.n_out, self.n_in) or not np.isin(w, (0, 1)).all():
            raise ValueError(
                f"weights must be 0/1 of shape {(self.n_out, self.n_in)}, got {w.shape}"
            )
        # [NF, PE, SF, SIMD] -> [NF, SF, PE, SIMD]: one word per (g, s), PE-major inside a word.
        blocks = w.reshape(self.nf, self.pe, self.sf, self.simd).transpose(0, 2, 1, 3)
        return [_bits_to_int(b.reshape(-1)) for b in blocks.reshape(self.weight_depth, -1)]

    def threshold_words(self, t_popcount: np.ndarray, flip: np.ndarray) -> list[int]:
        """Parameter words of a hidden layer from popcount thresholds and flip bits (``[M]``).

        Raises
        ------
        ValueError
            On the output layer, a wrong shape, ``t`` outside ``[0, N + 1]`` or flip not 0/1.
        """
        if self.output:
            raise ValueError("threshold_words is for hidden layers; use score_words")
        t = np.asarray(t_popcount, dtype=np.int64)
        f = np.asarray(flip, dtype=np.int64)
        if t.shape != (self.n_out,) or f.shape != (self.n_out,):
            raise ValueError(f"thresholds and flips must have shape ({self.n_out},)")
        if t.min() < 0 or t.max() > self.n_in + 1:
            raise ValueError(f"popcount thresholds must lie in [0, {self.n_in + 1}]")
        if not np.isin(f, (0, 1)).all():
            raise ValueError("flip bits must be 0 or 1")
        tw = self.threshold_width
        words = []
        for g in range(self.nf):
            word = 0
            for j in range(self.pe):
                n = g * self.pe + j
                word |= (int(t[n]) | (int(f[n]) << tw)) << (j * (tw + 1))
            words.append(word)
        return words

    def score_words(self, scale: np.ndarray, offset: np.ndarray) -> list[int]:
        """Parameter words of the output layer from ``A`` (16-bit) and ``B`` (32-bit), ``[M]``.

        Raises
        ------
        ValueError
            On a hidden layer, a wrong shape or a value outside its signed range.
        """
        if not self.output:
            raise ValueError("score_words is for the output layer; use threshold_words")
        a = np.asarray(scale, dtype=np.int64)
        b = np.asarray(offset, dtype=np.int64)
        if a.shape != (self.n_out,) or b.shape != (self.n_out,):
            raise ValueError(f"scale and offset must have shape ({self.n_out},)")
        for name, v, bits in (("scale A", a, SCALE_BITS), ("offset B", b, OFFSET_BITS)):
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            if v.min() < lo or v.max() > hi:
                raise ValueError(f"{name} must lie in [{lo}, {hi}]")
        words = []
        width = SCALE_BITS + OFFSET_BITS
        for g in range(self.nf):
            word = 0
            for j in range(self.pe):
                n = g * self.pe + j
                field = (int(a[n]) & ((1 << SCALE_BITS) - 1)) | (
                    (int(b[n]) & ((1 << OFFSET_BITS) - 1)) << SCALE_BITS
                )
                word |= field << (j * width)
            words.append(word)
        return words


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _bits_to_int(bits: np.ndarray) -> int:
    # Bit i of the result is bits[i] (little-endian bit order).
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


@dataclass(frozen=True)
class EngineConfig:
    """Network shape and per-layer folding of an inference engine.

    Parameters
    ----------
    widths : sequence of int
        ``(N_in, hidden..., classes)``, at least two entries, each >= 1; ``classes >= 2``.
    pe, simd : sequence of int
        One per layer (``len(widths) - 1``); see :class:`LayerFolding`.
    in_width : int, optional
        Image bits per input-stream beat; must divide ``N_in``. Default ``N_in`` (one beat per
        image).

    Raises
    ------
    ValueError
        If a field is out of range or a folding does not divide its layer.
    """

    widths: tuple[int, ...]
    pe: tuple[int, ...]
    simd: tuple[int, ...]
    in_width: int = 0

    def __post_init__(self) -> None:
        widths = tuple(_positive_int("widths[]", w) for w in self.widths)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "pe", tuple(int(p) for p in self.pe))
        object.__setattr__(self, "simd", tuple(int(s) for s in self.simd))
        if len(widths) < 2:
            raise ValueError(f"widths needs at least an input and an output width, got {widths}")
        if widths[-1] < 2:
            raise ValueError(f"the number of classes (widths[-1]) must be >= 2, got {widths[-1]}")
        n = len(widths) - 1
        if len(self.pe) != n or len(self.simd) != n:
            raise ValueError(
                f"pe and simd need one entry per layer ({n}), "
                f"got {len(self.pe)} and {len(self.simd)}"
            )
        if self.in_width == 0:
            object.__setattr__(self, "in_width", widths[0])
        _positive_int("in_width", self.in_width)
        if widths[0] % self.in_width:
            raise ValueError(f"in_width={self.in_width} must divide the input width {widths[0]}")
        for i in range(n):
            try:
                self.layer(i)
            except ValueError as exc:
                raise ValueError(f"layer {i} ({widths[i]}->{widths[i + 1]}): {exc}") from None

    @classmethod
    def from_lists(
        cls, widths: Sequence[int], pe: Sequence[int], simd: Sequence[int], in_width: int = 0
    ) -> EngineConfig:
        return cls(tuple(widths), tuple(pe), tuple(simd), in_width)

    @property
    def n_layers(self) -> int:
        return len(self.widths) - 1

    def layer(self, i: int) -> LayerFolding:
        """Folding of layer ``i`` (0 = input side)."""
        return LayerFolding(
            self.widths[i], self.widths[i + 1], self.pe[i], self.simd[i], i == self.n_layers - 1
        )

    @property
    def layers(self) -> tuple[LayerFolding, ...]:
        return tuple(self.layer(i) for i in range(self.n_layers))

    @property
    def input_beats(self) -> int:
        """Input-stream beats per image."""
        return self.widths[0] // self.in_width

    @property
    def xnor_ops(self) -> int:
        """XNOR operations per image, ``sum(N_l * M_l)``."""
        return sum(a * b for a, b in zip(self.widths[:-1], self.widths[1:]))

    @property
    def ideal_cycles(self) -> int:
        """Ideal cycles per image of the layer pipeline: the slowest layer's XNOR operations over
        its ``PE * SIMD``, ``max_l(N_l * M_l / (PE_l * SIMD_l))``."""
        return max(layer.cycles for layer in self.layers)

    @property
    def balanced_cycles(self) -> float:
        """XNOR operations per image over all the engine's XNOR units,
        ``sum(N_l * M_l) / sum(PE_l * SIMD_l)``: the bound of a perfectly balanced folding
        (equals :attr:`ideal_cycles` when every layer takes the same number of cycles)."""
        return self.xnor_ops / sum(layer.pe * layer.simd for layer in self.layers)

    @property
    def schedule_cycles(self) -> int:
        """Cycles per image in steady state with an always-valid producer and an always-ready
        consumer: ``max(max_l(SF_l * NF_l + 6), beats, C)`` with ``C`` classes (the argmax scan;
        see :mod:`spinapse.rtl.inference_engine`)."""
        return max(
            max(layer.run_cycles + 1 for layer in self.layers), self.input_beats, self.widths[-1]
        )

    @property
    def latency_cycles(self) -> int:
        """Cycles from the edge that takes an image's last beat to its result being valid, in an
        otherwise empty engine: ``sum_l(SF_l * NF_l + 6) + C`` (``C`` classes: the argmax scan)."""
        return sum(layer.run_cycles + 1 for layer in self.layers) + self.widths[-1]

    @property
    def class_width(self) -> int:
        return max(1, (self.widths[-1] - 1).bit_length())

    @property
    def score_width(self) -> int:
        return self.layer(self.n_layers - 1).score_width

    @property
    def write_addr_width(self) -> int:
        depth = max(max(ly.weight_depth, ly.param_depth) for ly in self.layers)
        return max(1, (depth - 1).bit_length())

    @property
    def write_data_width(self) -> int:
        return max(max(ly.weight_width, ly.param_width) for ly in self.layers)

    @property
    def write_select_width(self) -> int:
        return max(1, (2 * self.n_layers - 1).bit_length())

    def image_words(self, bits: np.ndarray) -> list[int]:
        """Input-stream beats (ints) of one image's bits uint8 ``[N_in]``; bit ``i`` is pixel ``i``.

        Raises
        ------
        ValueError
            If the shape is not ``[N_in]``.
        """
        b = np.asarray(bits, dtype=np.uint8)
        if b.shape != (self.widths[0],):
            raise ValueError(f"image must have {self.widths[0]} bits, got shape {b.shape}")
        return [_bits_to_int(c) for c in b.reshape(self.input_beats, self.in_width)]

    def name(self) -> str:
        """A short identifier, e.g. ``784-64-10_pe8-10_simd56-16_in784``."""
        j = "-".join
        return (
            f"{j(map(str, self.widths))}_pe{j(map(str, self.pe))}"
            f"_simd{j(map(str, self.simd))}_in{self.in_width}"
        )
