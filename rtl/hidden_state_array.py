"""A synapse array that keeps each synapse's hidden state (device mode of the update engine).

Model of a METASPIN-like device: a signed ``h_bits`` hidden state ``h`` per synapse (the
magneto-ionic state) whose sign is the binary weight read by ``READ``. A ``GATE`` pulse of code
``c > 0`` moves ``h`` by ``c`` towards ``polarity`` (saturating). Pulses that shrink ``|h|`` are
applied only with probability ``table[min(|h| >> index_shift, len - 1)] / 256`` (probabilistic
metaplasticity; the table is f_meta, so the expected step is the metaplastic step), using lane
``l``'s draw ``lowbias32(seed_l + n_l) >> 24`` and incrementing ``n_l``. Bit-exact with
:class:`spinapse.golden.integer_model.array_models.HiddenStateArrayModel`.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.lowbias32 import lowbias32
from spinapse.rtl.synapse_array import (
    SynapseArraySignature,
    SynapseOp,
    row_memory,
    serve_commands,
)


def pack_signed(values: Sequence[int], bits: int) -> int:
    """Pack signed ints into one word, element ``k`` at bits ``[k*bits, (k+1)*bits)``."""
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (k * bits)
    return word


class HiddenStateSynapseArray(wiring.Component):
    """Hidden-state synapses; timing of :class:`IdealSynapseArray` (``GATE`` takes one cycle).

    Parameters
    ----------
    rows, lanes, code_bits : int
        As :class:`SynapseArraySignature`.
    h_bits : int
        Width of the signed hidden state, in [2, 24].
    table : sequence of int
        Shrink-pulse probabilities in 1/256, each in [0, 256]
        (``golden.integer_model.fmeta_table``).
    index_shift : int
        Table bin width ``2**index_shift``, in [0, h_bits - 1].
    seeds : sequence of int
        One 32-bit seed per lane.
    init : list of list of int
        Initial hidden states ``[rows][lanes]``, each in the signed ``h_bits`` range.

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits))
    peek_row : In(range(rows))
    peek_bits : Out(lanes)
        Sign bits of that row.
    peek_h : Out(lanes * h_bits)
        Hidden states of that row (lane ``l`` at ``[l*h_bits, (l+1)*h_bits)``, two's complement).

    Raises
    ------
    ValueError
        If a parameter is out of range or shapes disagree.
    """

    def __init__(
        self,
        rows: int,
        lanes: int,
        code_bits: int,
        h_bits: int,
        table: Sequence[int],
        index_shift: int,
        seeds: Sequence[int],
        init,
    ) -> None:
        sig = SynapseArraySignature(rows, lanes, code_bits)
        if not (isinstance(h_bits, int) and 2 <= h_bits <= 24):
            raise ValueError(f"h_bits must be an int in [2, 24], got {h_bits!r}")
        if not (isinstance(index_shift, int) and 0 <= index_shift <= h_bits - 1):
            raise ValueError(f"index_shift must be an int in [0, {h_bits - 1}], got {index_shift}")
        if not table or any(not 0 <= int(p) <= 256 for p in table):
            raise ValueError("table must be a non-empty list of ints in [0, 256]")
        if len(seeds) != lanes or any(not 0 <= s < (1 << 32) for s in seeds):
            raise ValueError(f"seeds must be {lanes} integers in [0, 2**32)")
        lo, hi = -(1 << (h_bits - 1)), (1 << (h_bits - 1)) - 1
        if len(init) != rows or any(len(r) != lanes for r in init):
            raise ValueError(f"init must be [{rows}][{lanes}]")
        if any(not lo <= int(v) <= hi for r in init for v in r):
            raise ValueError(f"init hidden states must lie in [{lo}, {hi}]")
        self.h_bits, self.index_shift = h_bits, index_shift
        self.table, self.seeds = [int(p) for p in table], list(seeds)
        self.init = [pack_signed(r, h_bits) for r in init]
        super().__init__(
            {
                "bus": In(sig),
                "peek_row": In(range(rows)),
                "peek_bits": Out(lanes),
                "peek_h": Out(lanes * h_bits),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        sig = self.bus.signature
        hb, lanes = self.h_bits, sig.lanes
        rd, peek, wr = row_memory(m, self.bus, lanes * hb, self.init, self.peek_row, self.peek_h)
        cmd = self.bus.cmd
        lo, hi = -(1 << (hb - 1)), (1 << (hb - 1)) - 1
        table = Array(Const(p, 9) for p in self.table)
        last = len(self.table) - 1
        gating = cmd.valid & cmd.ready & (cmd.payload.op == SynapseOp.GATE)
        signs, new_h = [], []
        for lane in range(lanes):
            h = rd.data[lane * hb : (lane + 1) * hb].as_signed()
            m.d.comb += self.peek_bits[lane].eq(~peek.data[(lane + 1) * hb - 1])
            signs.append(~h[-1])
            code = cmd.payload.code[lane * sig.code_bits : (lane + 1) * sig.code_bits]
            pol = cmd.payload.polarity[lane]
            pulse = cmd.payload.enable[lane] & (code != 0)
            shrink = pulse & (~h[-1] != pol)
            mag = Mux(h[-1], -h, h).as_unsigned()
            idx = mag >> self.index_shift
            n = Signal(32, name=f"count{lane}")
            r = lowbias32(Const(self.seeds[lane], 32) + n)[24:32]
            prob = table[Mux(idx > last, last, idx)]
            apply = pulse & (~shrink | (r < prob))
            moved = Signal(signed(hb + 2), name=f"moved{lane}")
            m.d.comb += moved.eq(Mux(pol, h + code, h - code))
            sat = Mux(moved > hi, hi, Mux(moved < lo, lo, moved))
            new_h.append(Mux(apply, sat, h)[:hb])
            with m.If(gating & shrink):
                m.d.sync += n.eq(n + 1)
        serve_commands(m, self.bus, wr, Cat(*signs), SynapseOp.GATE, Cat(*new_h))
        return m
