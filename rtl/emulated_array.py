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
Timing: that of :class:`spinapse.rtl.synapse_array.IdealSynapseArray`. The row memory is read
combinationally (as every simulated array here); on an FPGA it maps to LUT RAM.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp, row_memory

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
        peek_word = Signal(lanes * field)
        rd, _, wr = row_memory(m, self.bus, lanes * field, self.init, self.peek_row, peek_word)
        cmd = self.bus.cmd
        accepted = cmd.valid & cmd.ready
        writing = accepted & (cmd.payload.op == SynapseOp.WRITE)
        is_gate = cmd.payload.op == SynapseOp.GATE
        # Flattened table: entry (k << lb) | l.
        table = Array(Const(p, PROB_BITS + 1) for r in self.table for p in r)
        top = (1 << lb) - 1
        sensed, new_words = [], []
        for lane in range(lanes):
            word = rd.data[lane * field : (lane + 1) * field]
            w, lvl = word[0], word[1:]
            m.d.comb += [
                self.peek_bits[lane].eq(peek_word[lane * field]),
                self.peek_levels[lane * lb : (lane + 1) * lb].eq(
                    peek_word[lane * field + 1 : (lane + 1) * field]
                ),
            ]
            sensed.append(w)
            code = cmd.payload.code[lane * cb : (lane + 1) * cb]
            pol = cmd.payload.polarity[lane]
            pulse = cmd.payload.enable[lane] & (code != 0)
            state = Signal(32, init=self.seeds[lane], name=f"rng{lane}")
            nxt1 = state ^ (state << 13)[:32]
            nxt2 = nxt1 ^ (nxt1 >> 17)
            nxt3 = (nxt2 ^ (nxt2 << 5))[:32]
            with m.If(writing):
                m.d.sync += state.eq(nxt3)
            u = state[32 - PROB_BITS :]
            flip = pulse & (w != pol) & (u < table[Cat(lvl, code)])
            up = Mux(lvl + code > top, top, lvl + code)
            down = Mux(lvl < code, 0, lvl - code)
            gated = Mux(pulse, Mux(pol, up, down), lvl)[:lb]
            new_w = Mux(is_gate, w, w ^ flip)
            new_l = Mux(is_gate, gated, lvl)
            new_words.append(Cat(new_w, new_l))
        # WRITE and GATE both change the row: one write-back path for either op.
        _serve(m, self.bus, wr, Cat(*sensed), Cat(*new_words))
        return m


def _serve(m: Module, bus, wr, sensed, new_word) -> None:
    """:func:`spinapse.rtl.synapse_array.serve_commands` with two pulse ops writing back."""
    cmd, sense = bus.cmd, bus.sense
    with m.If(sense.valid & sense.ready):
        m.d.sync += sense.valid.eq(0)
    with m.If(cmd.valid & cmd.ready):
        with m.Switch(cmd.payload.op):
            with m.Case(SynapseOp.READ):
                m.d.sync += [sense.payload.eq(sensed), sense.valid.eq(1)]
            with m.Case(SynapseOp.WRITE, SynapseOp.GATE):
                m.d.comb += [wr.en.eq(1), wr.data.eq(new_word)]
