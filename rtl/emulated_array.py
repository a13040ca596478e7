"""A synthesizable synapse emulator behind ``SynapseArray``, calibrated on a device card.

Each synapse keeps, in the row memory, its binary weight ``W_b`` (P = +1 at bit 0 of its field)
and a quantised hidden-state level ``l`` in ``[0, 2**level_bits)`` (the magneto-ionic state ``c``
in ``[0, 1]`` at ``c = l / (2**level_bits - 1)``). Pulses, per enabled lane with code ``k != 0``:

- ``WRITE`` towards ``polarity``: a synapse already there is unchanged (the behavioural model's
  wrong-way flip probability, below 1e-12 at these currents, is taken as 0); otherwise it flips
  when its random draw ``u`` (16 bits) is below ``table[k][l]``, the switching probability in
  units of 2**-16 computed at build time from the behavioural model
  (:func:`spinapse.cosim.emulator_calibration.switching_table`).
- ``GATE``: ``l`` moves by ``k`` towards ``polarity`` (1: up, consolidating), saturating.
- ``READ``: the weight bits.

Random source: one xorshift32 generator per lane (Marsaglia, "Xorshift RNGs", J. Stat. Softw. 8,
2003; shifts 13, 17, 5), seeded at build time, advanced on every accepted ``WRITE``; ``u`` is its
top 16 bits. Shifts and XORs only: no multipliers (the ``lowbias32`` hash of the seeded arrays
needs two 32 x 32 multiplies per lane, which is what kept those arrays off the ECP5).
Timing: that of :class:`spinapse.rtl.synapse_array.IdealSynapseArray` (one command per cycle,
a ``READ`` answered from the next cycle, a pulse seen by the next command). The row memory has
one synchronous read port and one write port, so it maps to block RAM (DP16KD on the ECP5,
SB_RAM40_4K on the iCE40): a command reads its row in the cycle it is accepted (stage A) and
writes the pulsed word back in the next (stage B), a read-modify-write pipeline; the word
written in stage B is forwarded to a command of the same row accepted in that cycle (a
write-verify ``READ`` right after its ``WRITE``), so no command waits.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp

PROB_BITS = 16
"""Switching probabilities are stored in units of ``2**-PROB_BITS`` (65536 = always)."""


def xorshift32(x: int) -> int:
    """One step of Marsaglia's xorshift32 (13, 17, 5) on a nonzero 32-bit int (reference model)."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


class EmulatedSynapseArray(wiring.Component):
    """Device-calibrated stochastic synapses (see the module docstring).

    Parameters
    ----------
    rows, lanes, code_bits : int
        As :class:`SynapseArraySignature`.
    level_bits : int
        Bits of the hidden-state level, in [1, 6].
    table : sequence of sequences of int
        ``table[k][l]``: ``2**code_bits`` rows (row 0, no pulse, is ignored) of
        ``2**level_bits`` switching probabilities, each in ``[0, 65536]``.
    seeds : sequence of int
        One nonzero 32-bit xorshift seed per lane.
    init_bits : list of int, optional
        Initial weight bits per row (bit ``l`` = lane ``l``); default all 0 (-1, AP).
    init_levels : list of list of int, optional
        Initial levels ``[rows][lanes]``; default all 0.

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits))
    peek_row : In(range(rows))
        Host view, through the command read port while no command is offered (``cmd.valid``
        low: the engine is idle): ``peek_bits``/``peek_levels`` show row ``peek_row`` as it
        was one cycle earlier (synchronous read), including a pulse written back in that cycle.
    peek_bits : Out(lanes)
        Weight bits of that row.
    peek_levels : Out(lanes * level_bits)
        Levels of that row (lane ``l`` at ``[l*level_bits, (l+1)*level_bits)``).

    Raises
    ------
    ValueError
        If a parameter is out of range or a shape disagrees.
    """

    def __init__(
        self,
        rows: int,
        lanes: int,
        code_bits: int,
        level_bits: int,
        table: Sequence[Sequence[int]],
        seeds: Sequence[int],
        init_bits=None,
        init_levels=None,
    ) -> None:
        sig = SynapseArraySignature(rows, lanes, code_bits)
        if not (isinstance(level_bits, int) and 1 <= level_bits <= 6):
            raise ValueError(f"level_bits must be an int in [1, 6], got {level_bits!r}")
        n_codes, n_levels = 1 << code_bits, 1 << level_bits
        if len(table) != n_codes or any(len(r) != n_levels for r in table):
            raise ValueError(f"table must be [{n_codes}][{n_levels}] (codes x levels)")
        if any(not 0 <= int(p) <= 1 << PROB_BITS for r in table for p in r):
            raise ValueError(f"table probabilities must lie in [0, {1 << PROB_BITS}]")
        if len(seeds) != lanes or any(not 0 < int(s) < (1 << 32) for s in seeds):
            raise ValueError(f"seeds must be {lanes} nonzero 32-bit integers")
        bits = list(init_bits) if init_bits is not None else [0] * rows
        levels = init_levels if init_levels is not None else [[0] * lanes] * rows
        if len(bits) != rows or len(levels) != rows or any(len(r) != lanes for r in levels):
            raise ValueError(
                f"init_bits must have {rows} words and init_levels be [{rows}][{lanes}]"
            )
        if any(not 0 <= int(v) < n_levels for r in levels for v in r):
            raise ValueError(f"levels must lie in [0, {n_levels - 1}]")
        self.level_bits = level_bits
        self.table = [[int(p) for p in r] for r in table]
        self.seeds = [int(s) for s in seeds]
        field = 1 + level_bits
        self.init = []
        for word, lv in zip(bits, levels):
            w = 0
            for lane in range(lanes):
                w |= (((int(word) >> lane) & 1) | (int(lv[lane]) << 1)) << (lane * field)
            self.init.append(w)
        super().__init__(
            {
                "bus": In(sig),
                "peek_row": In(range(rows)),
                "peek_bits": Out(lanes),
                "peek_levels": Out(lanes * level_bits),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        sig = self.bus.signature
        lanes, lb, cb = sig.lanes, self.level_bits, sig.code_bits
        field = 1 + lb
        cmd, sense = self.bus.cmd, self.bus.sense
        m.submodules.mem = mem = Memory(shape=lanes * field, depth=sig.rows, init=self.init)
        rd = mem.read_port()  # synchronous: block RAM (DP16KD, SB_RAM40_4K)
        wr = mem.write_port()
        accepted = cmd.valid & cmd.ready
        m.d.comb += cmd.ready.eq(~sense.valid | sense.ready)

        # Stage A (the cycle a command is accepted): read its row. With no command offered the
        # port reads the host's peek row; while an answer is stuck (cmd.ready low) it holds.
        addr = Mux(cmd.valid, cmd.payload.row, self.peek_row)
        m.d.comb += [rd.addr.eq(addr), rd.en.eq(cmd.ready)]
        b_valid = Signal()
        b = Signal.like(cmd.payload, name="b")
        m.d.sync += b_valid.eq(accepted)
        with m.If(accepted):
            m.d.sync += b.eq(cmd.payload)
        b_pulse = b_valid & ((b.op == SynapseOp.WRITE) | (b.op == SynapseOp.GATE))
        b_write = b_valid & (b.op == SynapseOp.WRITE)

        # Stage B (the next cycle): the row word arrives, the pulse's new word is written back.
        # A write of row r in this cycle and a read of row r at the same clock edge would give
        # the old word (read-first), so the new word is forwarded to the next stage B instead:
        # a WRITE in cycle t is seen by a READ or WRITE accepted in t + 1 (write-verify).
        fwd = Signal()
        new_word = Signal(lanes * field)
        fwd_word = Signal(lanes * field)
        word = Mux(fwd, fwd_word, rd.data)
        with m.If(rd.en):
            m.d.sync += [fwd.eq(b_pulse & (addr == b.row)), fwd_word.eq(new_word)]
        m.d.comb += [wr.addr.eq(b.row), wr.en.eq(b_pulse), wr.data.eq(new_word)]

        # Flattened table: entry (k << lb) | l.
        table = Array(Const(p, PROB_BITS + 1) for r in self.table for p in r)
        top = (1 << lb) - 1
        is_gate = b.op == SynapseOp.GATE
        sensed, new_words = [], []
        for lane in range(lanes):
            w, lvl = word[lane * field], word[lane * field + 1 : (lane + 1) * field]
            m.d.comb += [
                self.peek_bits[lane].eq(w),
                self.peek_levels[lane * lb : (lane + 1) * lb].eq(lvl),
            ]
            sensed.append(w)
            code = b.code[lane * cb : (lane + 1) * cb]
            pol = b.polarity[lane]
            pulse = b.enable[lane] & (code != 0)
            # Advanced once per WRITE, in the WRITE's stage B: each WRITE draws the same u as
            # when the row was read combinationally (same statistics for the same seeds).
            state = Signal(32, init=self.seeds[lane], name=f"rng{lane}")
            nxt1 = state ^ (state << 13)[:32]
            nxt2 = nxt1 ^ (nxt1 >> 17)
            nxt3 = (nxt2 ^ (nxt2 << 5))[:32]
            with m.If(b_write):
                m.d.sync += state.eq(nxt3)
            u = state[32 - PROB_BITS :]
            flip = pulse & (w != pol) & (u < table[Cat(lvl, code)])
            up = Mux(lvl + code > top, top, lvl + code)
            down = Mux(lvl < code, 0, lvl - code)
            gated = Mux(pulse, Mux(pol, up, down), lvl)[:lb]
            new_words.append(Cat(Mux(is_gate, w, w ^ flip), Mux(is_gate, gated, lvl)))
        m.d.comb += new_word.eq(Cat(*new_words))

        # READ: the answer is stage B's word, from the cycle after the READ until taken (the
        # read port and the forwarding registers hold while cmd.ready is low).
        with m.If(sense.valid & sense.ready):
            m.d.sync += sense.valid.eq(0)
        with m.If(accepted & (cmd.payload.op == SynapseOp.READ)):
            m.d.sync += sense.valid.eq(1)
        m.d.comb += sense.payload.eq(Cat(*sensed))
        return m
