"""XNOR-popcount PE array: ``PE`` neurons times ``SIMD`` input bits per cycle.

Each PE ``j`` counts the positions where its ``SIMD`` weight bits equal the shared input bits:
``count[j] = popcount(xnor(x, w[j]))``. The +-1 dot product of the slice is ``2 * count - SIMD``
(bit 1 means +1); the layer accumulates counts over its input folds. Source of the arithmetic:
Courbariaux/Hubara et al., "Binarized Neural Networks" (2016); Umuroglu et al., FINN (2017).
"""

from __future__ import annotations

from amaranth import Module, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


def popcount(bits: Value) -> Value:
    """Number of ones in ``bits`` as a balanced adder tree (depth ``ceil(log2(len))``).

    The result is unsigned and ``len(bits).bit_length()`` bits wide (Amaranth widens each sum).
    """
    terms = [bits[i] for i in range(len(bits))]
    if not terms:
        raise ValueError("popcount of an empty value")
    return sum_tree(terms)


def sum_tree(terms: list[Value]) -> Value:
    """Sum of unsigned ``terms`` as a balanced adder tree (each sum widened by Amaranth)."""
    if not terms:
        raise ValueError("sum of no terms")
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            pairs.append(terms[-1])
        terms = pairs
    return terms[0]


class XnorPopcount(wiring.Component):
    """Combinational array of ``pe`` XNOR-popcount units over ``simd`` bits (no latency).

    Parameters
    ----------
    pe, simd : int
        Number of PEs (>= 1) and input bits per PE (>= 1).

    Members
    -------
    x : In(simd)
        Input bits shared by every PE.
    w : In(pe * simd)
        Weight bits; PE ``j`` uses bits ``[j * simd, (j + 1) * simd)``.
    count : Out(ArrayLayout(unsigned(bit_length(simd)), pe))
        ``count[j] = popcount(~(x ^ w[j]))``, in ``[0, simd]``.

    Raises
    ------
    ValueError
        If ``pe`` or ``simd`` is not a positive integer.
    """

    def __init__(self, pe: int, simd: int) -> None:
        for name, v in (("pe", pe), ("simd", simd)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self.pe, self.simd = pe, simd
        super().__init__(
            {
                "x": In(simd),
                "w": In(pe * simd),
                "count": Out(data.ArrayLayout(simd.bit_length(), pe)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        for j in range(self.pe):
            xnor = ~(self.x ^ self.w[j * self.simd : (j + 1) * self.simd])
            m.d.comb += self.count[j].eq(popcount(xnor))
        return m


class RegisteredXnorPopcount(wiring.Component):
    """Array of ``pe`` XNOR-popcount units with one register stage inside each popcount tree.

    The ``simd`` bits are cut into chunks of ``chunk`` bits (the last may be shorter); each
    chunk's popcount is registered at the clock edge, and ``count`` is the combinational sum of
    the registered chunk counts. So ``count`` shows, one cycle later, the counts of the ``x`` and
    ``w`` presented in the previous cycle (latency 1, one result per cycle). The critical path is
    a ``chunk``-bit tree, or the ``ceil(simd / chunk)``-way sum, instead of a ``simd``-bit tree.
    Arithmetic as in :class:`XnorPopcount`.

    Parameters
    ----------
    pe, simd : int
        Number of PEs (>= 1) and input bits per PE (>= 1).
    chunk : int
        Bits per registered partial count, >= 1.

    Members
    -------
    x : In(simd)
    w : In(pe * simd)
        As in :class:`XnorPopcount`.
    count : Out(ArrayLayout(unsigned(bit_length(simd)), pe))
        ``popcount(~(x ^ w[j]))`` of the values one clock edge earlier.

    Raises
    ------
    ValueError
        If ``pe``, ``simd`` or ``chunk`` is not a positive integer.
    """

    def __init__(self, pe: int, simd: int, chunk: int) -> None:
        for name, v in (("pe", pe), ("simd", simd), ("chunk", chunk)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self.pe, self.simd, self.chunk = pe, simd, chunk
        super().__init__(
            {
                "x": In(simd),
                "w": In(pe * simd),
                "count": Out(data.ArrayLayout(simd.bit_length(), pe)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        bounds = [(a, min(a + self.chunk, self.simd)) for a in range(0, self.simd, self.chunk)]
        for j in range(self.pe):
            xnor = ~(self.x ^ self.w[j * self.simd : (j + 1) * self.simd])
            parts = []
            for k, (a, b) in enumerate(bounds):
                part = Signal((b - a).bit_length(), name=f"pe{j}_part{k}")
                m.d.sync += part.eq(popcount(xnor[a:b]))
                parts.append(part)
            m.d.comb += self.count[j].eq(sum_tree(parts))
        return m
