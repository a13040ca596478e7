"""Score unit of the output layer: its BatchNorm as an integer affine map of the dot product.

For each of ``pe`` classes: ``score = A * (2 * count - N) + B`` with ``A`` a signed 16-bit scale
and ``B`` a signed 32-bit offset exported by :mod:`spinapse.golden.integer_model.inference` (both
carry the fraction width ``F`` of that export). The result width never overflows.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.folding import OFFSET_BITS, SCALE_BITS


def score_layout() -> data.StructLayout:
    """Parameter of one class: ``scale`` (signed 16 bits) then ``offset`` (signed 32 bits)."""
    return data.StructLayout({"scale": signed(SCALE_BITS), "offset": signed(OFFSET_BITS)})


class Score(wiring.Component):
    """Combinational integer scores of ``pe`` classes (no latency).

    Parameters
    ----------
    pe : int
        Classes scored in parallel, >= 1.
    n_in : int
        ``N``, the layer's input width, >= 1 (popcounts lie in ``[0, N]``).

    Members
    -------
    count : In(ArrayLayout(unsigned(bit_length(N)), pe))
    param : In(ArrayLayout(score_layout(), pe))
    score : Out(ArrayLayout(signed(W), pe))
        ``W = max(16 + bit_length(N) + 2, 32) + 1``.

    Raises
    ------
    ValueError
        If ``pe`` or ``n_in`` is not a positive integer.
    """

    def __init__(self, pe: int, n_in: int) -> None:
        for name, v in (("pe", pe), ("n_in", n_in)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self.pe, self.n_in = pe, n_in
        cw = n_in.bit_length()
        self.score_width = max(SCALE_BITS + cw + 2, OFFSET_BITS) + 1
        super().__init__(
            {
                "count": In(data.ArrayLayout(cw, pe)),
                "param": In(data.ArrayLayout(score_layout(), pe)),
                "score": Out(data.ArrayLayout(signed(self.score_width), pe)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        for j in range(self.pe):
            # 2 * count as a non-negative signed value, then minus N: the +-1 dot product.
            dot = Cat(Const(0, 1), self.count[j], Const(0, 1)).as_signed() - self.n_in
            p = self.param[j]
            m.d.comb += self.score[j].eq(p.scale * dot + p.offset)
        return m
