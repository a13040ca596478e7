"""Argmax of the class scores: the first index of the largest signed score.

A balanced comparison tree (depth ``ceil(log2(C))``); on equal scores the lower index wins, as
``numpy.argmax`` does, so the engine's class equals the integer model's bit for bit.
"""

from __future__ import annotations

from amaranth import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class Argmax(wiring.Component):
    """Combinational argmax of ``n`` signed scores (no latency).

    Parameters
    ----------
    n : int
        Number of scores, >= 2.
    width : int
        Bits of a signed score, >= 2.

    Members
    -------
    score : In(ArrayLayout(signed(width), n))
    index : Out(bit_length(n - 1))
        First index of the maximum.

    Raises
    ------
    ValueError
        If ``n < 2`` or ``width < 2``.
    """

    def __init__(self, n: int, width: int) -> None:
        if not isinstance(n, int) or n < 2:
            raise ValueError(f"n must be an integer >= 2, got {n!r}")
        if not isinstance(width, int) or width < 2:
            raise ValueError(f"width must be an integer >= 2, got {width!r}")
        self.n = n
        super().__init__(
            {
                "score": In(data.ArrayLayout(signed(width), n)),
                "index": Out((n - 1).bit_length()),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        # Candidates are (index, score) pairs in index order; a right candidate replaces the
        # left one only when strictly larger, which keeps the lowest index on ties.
        cands = [(i, self.score[i]) for i in range(self.n)]
        while len(cands) > 1:
            nxt = []
            for k in range(0, len(cands) - 1, 2):
                (ia, sa), (ib, sb) = cands[k], cands[k + 1]
                take_b = sb > sa
                nxt.append((Mux(take_b, ib, ia), Mux(take_b, sb, sa)))
            if len(cands) % 2:
                nxt.append(cands[-1])
            cands = nxt
        m.d.comb += self.index.eq(cands[0][0])
        return m
