"""Threshold unit: BatchNorm and sign of a hidden layer folded into one comparison per neuron.

For each of ``pe`` neurons: ``bit = (count >= t) XOR flip``, where ``count`` is the neuron's
popcount over its ``N`` inputs and ``t`` in ``[0, N + 1]`` the popcount threshold exported by
:mod:`spinapse.golden.integer_model.inference` (``t = ceil((T + N) / 2)`` for the dot threshold
``T``; ``flip`` is 1 for a negative BatchNorm ``gamma``). Source: FINN, Umuroglu et al. (FPGA 2017).
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


def threshold_layout(threshold_width: int) -> data.StructLayout:
    """Parameter of one neuron: ``t`` (unsigned, ``threshold_width`` bits) then ``flip`` (1 bit)."""
    return data.StructLayout({"t": threshold_width, "flip": 1})


class Threshold(wiring.Component):
    """Combinational threshold comparison of ``pe`` popcounts (no latency).

    Parameters
    ----------
    pe : int
        Neurons compared in parallel, >= 1.
    count_width : int
        Bits of a popcount, >= 1.
    threshold_width : int
        Bits of a threshold ``t``, >= ``count_width`` (``t`` may be ``N + 1``).

    Members
    -------
    count : In(ArrayLayout(unsigned(count_width), pe))
    param : In(ArrayLayout(threshold_layout(threshold_width), pe))
    bits : Out(pe)
        ``bits[j] = (count[j] >= param[j].t) ^ param[j].flip``.

    Raises
    ------
    ValueError
        If a width or ``pe`` is not a positive integer or ``threshold_width < count_width``.
    """

    def __init__(self, pe: int, count_width: int, threshold_width: int) -> None:
        for name, v in (
            ("pe", pe),
            ("count_width", count_width),
            ("threshold_width", threshold_width),
        ):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if threshold_width < count_width:
            raise ValueError(
                f"threshold_width ({threshold_width}) must be >= count_width ({count_width})"
            )
        self.pe = pe
        super().__init__(
            {
                "count": In(data.ArrayLayout(count_width, pe)),
                "param": In(data.ArrayLayout(threshold_layout(threshold_width), pe)),
                "bits": Out(pe),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        for j in range(self.pe):
            p = self.param[j]
            m.d.comb += self.bits[j].eq((self.count[j] >= p.t) ^ p.flip)
        return m
