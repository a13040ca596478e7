"""A binary synapse array whose write pulses succeed with a seeded probability (write-verify tests).

Each lane ``l`` keeps a 32-bit draw counter ``n_l``; a ``WRITE`` pulse on an enabled lane draws
``r = lowbias32(seed_l + n_l) >> 24``, increments ``n_l`` and switches the synapse only if
``r < p_success``. This is the model of
:class:`spinapse.golden.integer_model.array_models.BinaryArrayModel`, bit for bit (stochastic
single-pulse switching of a magnetic tunnel junction reduced to a seeded coin). The probability is a
run-time input, so one build serves the ideal array (``p_success = 256``: every pulse switches) and
the stochastic ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.lowbias32 import lowbias32
from spinapse.rtl.synapse_array import (
    SynapseArraySignature,
    SynapseOp,
    row_memory,
    serve_commands,
)


class StochasticSynapseArray(wiring.Component):
    """Binary synapses with stochastic single-pulse writes; timing of :class:`IdealSynapseArray`.

    Parameters
    ----------
    rows, lanes, code_bits : int
        As :class:`SynapseArraySignature`.
    seeds : sequence of int
        One 32-bit seed per lane (``golden.integer_model.array_models.lane_seeds``).
    init : list of int, optional
        Initial row words (bit ``l`` = lane ``l``); default all 0.

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits))
    p_success : In(9)
        Probability (1/256 units) that one pulse switches a lane, in [0, 256]; sampled on each
        ``WRITE`` (values above 256 act as 256).
    peek_row : In(range(rows)); peek_bits : Out(lanes)
        Combinational view of one row for the host and tests.

    Raises
    ------
    ValueError
        If a seed is not 32-bit or lengths disagree.
    """

    def __init__(
        self,
        rows: int,
        lanes: int,
        code_bits: int,
        seeds: Sequence[int],
        init=None,
    ) -> None:
        sig = SynapseArraySignature(rows, lanes, code_bits)
        if len(seeds) != lanes or any(not 0 <= s < (1 << 32) for s in seeds):
            raise ValueError(f"seeds must be {lanes} integers in [0, 2**32)")
        self.init = list(init) if init is not None else [0] * rows
        if len(self.init) != rows:
            raise ValueError(f"init must have {rows} row words, got {len(self.init)}")
        self.seeds = list(seeds)
        super().__init__(
            {
                "bus": In(sig),
                "p_success": In(9),
                "peek_row": In(range(rows)),
                "peek_bits": Out(lanes),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        sig = self.bus.signature
        rd, _, wr = row_memory(m, self.bus, sig.lanes, self.init, self.peek_row, self.peek_bits)
        cmd = self.bus.cmd
        en, pol = cmd.payload.enable, cmd.payload.polarity
        ok = Signal(sig.lanes)
        writing = cmd.valid & cmd.ready & (cmd.payload.op == SynapseOp.WRITE)
        for lane in range(sig.lanes):
            n = Signal(32, name=f"count{lane}")
            r = lowbias32(Const(self.seeds[lane], 32) + n)[24:32]
            m.d.comb += ok[lane].eq(en[lane] & (r < self.p_success))
            with m.If(writing & en[lane]):
                m.d.sync += n.eq(n + 1)
        serve_commands(m, self.bus, wr, rd.data, SynapseOp.WRITE, (rd.data & ~ok) | (pol & ok))
        return m
