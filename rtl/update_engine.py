"""The update engine of one layer: turns a row of integer gradients into ``W_h`` steps and pulses.

For one row ``r`` of a layer (``lanes`` synapses updated in parallel, SIMD) the engine reads the
row's accumulators ``M`` (and, in digital mode, hidden weights ``W_h``) from its own memories,
applies :mod:`spinapse.rtl.update_lane` in every lane, writes them back, and drives the layer's
:class:`~spinapse.rtl.synapse_array.SynapseArraySignature` port:

- ``mode="digital"``: ``W_h`` lives here. The row is sensed (``READ``); every lane whose sensed
  bit differs from ``W_h' >= 0`` gets a ``WRITE`` pulse, then the row is sensed again and the
  lanes still wrong are pulsed again, up to ``retry_limit`` retries (write-verify). Counters:
  ``writes`` += lanes of the first pulse, ``retries`` += lanes of each retry pulse,
  ``failures`` += lanes still wrong after the last retry.
- ``mode="device"``: no ``W_h`` memory. One ``GATE`` pulse per row carries, per lane,
  ``polarity = M' < 0`` and ``code = min(|M'| >> lr_shift, 2**code_bits - 1)`` (lanes with code 0
  are not enabled); the array's hidden state applies f_meta. ``writes`` += enabled lanes.

Handshake: assert ``start`` for one cycle with ``row`` while ``busy`` is low; keep ``grad`` stable
until ``done`` (a one-cycle pulse). ``clear`` (one cycle, while idle) sets every accumulator ``M``
to 0, one row per cycle (``rows + 1`` cycles, ``busy`` high, then ``done``): the host's task switch,
as the golden model restarts ``M`` at each new task. Latency from ``start`` to ``done`` inclusive,
with an array that answers in one cycle: 4 cycles per row in digital mode plus 3 per write-verify
attempt, 5 in device mode.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.rtl.hidden_state_array import pack_signed
from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp
from spinapse.rtl.update_lane import accumulate, fmeta_rom, gate_pulse, step_weight
from spinapse.rtl.xnor_popcount import popcount

MODES = ("digital", "device")


class UpdateEngine(wiring.Component):
    """Row-serial, lane-parallel metaplastic update of one ``rows x lanes`` layer.

    Parameters
    ----------
    rule : object
        Integer rule constants with the attributes of
        :class:`spinapse.golden.integer_model.learning.IntegerRule` (``wh_bits``, ``acc_bits``,
        ``leak_shift``, ``lr_shift``, ``index_shift``, ``code_bits``, ``retry_limit``).
    rows, lanes : int
        Layer shape (rows = inputs, lanes = neurons), each >= 1.
    grad_bits : int
        Width of one signed lane gradient, in [2, 17].
    mode : str
        ``"digital"`` or ``"device"``.
    table : sequence of int
        f_meta table (digital mode; ``golden.integer_model.fmeta_table``).
    init_wh : list of list of int, optional
        Initial ``W_h`` ``[rows][lanes]`` (digital mode; default 0).

    Members
    -------
    start : In(1); row : In(range(rows)); grad : In(lanes * grad_bits)
        Lane ``l``'s signed gradient at ``[l*grad_bits, (l+1)*grad_bits)``.
    clear : In(1)
        While idle: clear every ``M`` row (``start`` has priority).
    busy : Out(1); done : Out(1)
    arr : Out(SynapseArraySignature(rows, lanes, code_bits))
    writes, retries, failures : Out(32)
        Counters since reset (wrap at 2**32).
    peek_row : In(range(rows)); peek_acc : Out(lanes * acc_bits); peek_wh : Out(lanes * wh_bits)
        Host view of one row's memories (``peek_wh`` only in digital mode), valid one clock after
        ``peek_row`` while the engine is idle: the host shares the engine's synchronous read port,
        so each memory has one read and one write port and maps to block RAM (DP16KD on ECP5).

    Raises
    ------
    ValueError
        If a parameter is outside its range.
    """

    def __init__(self, rule, rows, lanes, grad_bits, mode, table, init_wh=None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        # 17: a hidden-to-hidden layer's gradient h_j * delta with a 16-bit delta.
        if not (isinstance(grad_bits, int) and 2 <= grad_bits <= 17):
            raise ValueError(f"grad_bits must be an int in [2, 17], got {grad_bits!r}")
        self.rule, self.rows, self.lanes = rule, rows, lanes
        self.grad_bits, self.mode = grad_bits, mode
        self.rom_values = [int(v) for v in table]
        if mode == "digital":
            fmeta_rom(self.rom_values)  # validates the entries where they enter
        init_wh = init_wh if init_wh is not None else [[0] * lanes for _ in range(rows)]
        if len(init_wh) != rows or any(len(r) != lanes for r in init_wh):
            raise ValueError(f"init_wh must be [{rows}][{lanes}]")
        self.init_wh = [pack_signed(r, rule.wh_bits) for r in init_wh]
        members = {
            "start": In(1),
            "clear": In(1),
            "row": In(range(rows)),
            "grad": In(lanes * grad_bits),
            "busy": Out(1),
            "done": Out(1),
            "arr": Out(SynapseArraySignature(rows, lanes, rule.code_bits)),
            "writes": Out(32),
            "retries": Out(32),
            "failures": Out(32),
            "peek_row": In(range(rows)),
            "peek_acc": Out(lanes * rule.acc_bits),
        }
        if mode == "digital":
            members["peek_wh"] = Out(lanes * rule.wh_bits)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        r, lanes = self.rule, self.lanes
        ab, wb, gb = r.acc_bits, r.wh_bits, self.grad_bits
        digital = self.mode == "digital"
        m.submodules.acc_mem = acc_mem = Memory(shape=lanes * ab, depth=self.rows, init=[])
        # One synchronous read port and one write port per memory (block RAM): the host's peek
        # shares the read port while the engine is idle.
        acc_rd = acc_mem.read_port()
        acc_wr = acc_mem.write_port()
        row_r = Signal(range(self.rows))
        idle = Signal()
        rd_addr = Signal(range(self.rows))
        m.d.comb += [
            rd_addr.eq(Mux(idle, self.peek_row, row_r)),
            acc_rd.addr.eq(rd_addr),
            acc_wr.addr.eq(row_r),
            self.peek_acc.eq(acc_rd.data),
        ]
        new_acc = []
        for lane in range(lanes):
            acc = acc_rd.data[lane * ab : (lane + 1) * ab].as_signed()
            grad = self.grad[lane * gb : (lane + 1) * gb].as_signed()
            new_acc.append(accumulate(m, r, acc, grad, f"l{lane}"))
        clearing = Signal()
        m.d.comb += acc_wr.data.eq(Mux(clearing, 0, Cat(*new_acc)))

        cmd, sense = self.arr.cmd, self.arr.sense
        m.d.comb += [cmd.payload.row.eq(row_r), sense.ready.eq(1)]
        pending = Signal(lanes)
        desired = Signal(lanes)
        attempts = Signal(range(r.retry_limit + 1))
        m.d.comb += [cmd.payload.enable.eq(pending), cmd.payload.polarity.eq(desired)]

        if digital:
            m.submodules.wh_mem = wh_mem = Memory(
                shape=lanes * wb, depth=self.rows, init=self.init_wh
            )
            wh_rd = wh_mem.read_port()
            wh_wr = wh_mem.write_port()
            m.d.comb += [
                wh_rd.addr.eq(rd_addr),
                wh_wr.addr.eq(row_r),
                self.peek_wh.eq(wh_rd.data),
            ]
            rom = fmeta_rom(self.rom_values)
            new_wh = []
            for lane in range(lanes):
                w = wh_rd.data[lane * wb : (lane + 1) * wb].as_signed()
                new_wh.append(step_weight(m, r, rom, w, new_acc[lane], f"l{lane}"))
            m.d.comb += wh_wr.data.eq(Cat(*new_wh))
            want = Cat(*[~w[-1] for w in new_wh])
            wrong = Signal(lanes)
            m.d.comb += wrong.eq(sense.payload ^ want)
            still = Signal(lanes)
            m.d.comb += still.eq(sense.payload ^ desired)
        else:
            pols, codes = zip(*[gate_pulse(m, r, a, f"l{lane}") for lane, a in enumerate(new_acc)])
            code_r = Signal(lanes * r.code_bits)
            m.d.comb += cmd.payload.code.eq(code_r)

        def send(op, then):
            # One ``cmd`` beat of ``op``, held until the array takes it (READ, WRITE, VERIFY).
            m.d.comb += [self.busy.eq(1), cmd.valid.eq(1), cmd.payload.op.eq(op)]
            with m.If(cmd.ready):
                m.next = then

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(self.start):
                    m.d.sync += row_r.eq(self.row)
                    m.next = "READ" if digital else "WAIT"
                with m.Elif(self.clear):
                    m.d.sync += row_r.eq(0)
                    m.next = "CLEAR"
            with m.State("CLEAR"):
                m.d.comb += [self.busy.eq(1), clearing.eq(1), acc_wr.en.eq(1)]
                with m.If(row_r == self.rows - 1):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += row_r.eq(row_r + 1)
            if digital:
                with m.State("READ"):
                    send(SynapseOp.READ, "SENSE")
                with m.State("SENSE"):
                    m.d.comb += self.busy.eq(1)
                    with m.If(sense.valid):
                        m.d.comb += [acc_wr.en.eq(1), wh_wr.en.eq(1)]
                        m.d.sync += [
                            pending.eq(wrong),
                            desired.eq(want),
                            attempts.eq(0),
                            self.writes.eq(self.writes + popcount(wrong)),
                        ]
                        with m.If(wrong == 0):
                            m.next = "DONE"
                        with m.Else():
                            m.next = "WRITE"
                with m.State("WRITE"):
                    send(SynapseOp.WRITE, "VERIFY")
                with m.State("VERIFY"):
                    send(SynapseOp.READ, "CHECK")
                with m.State("CHECK"):
                    m.d.comb += self.busy.eq(1)
                    with m.If(sense.valid):
                        with m.If(still == 0):
                            m.next = "DONE"
                        with m.Elif(attempts == r.retry_limit):
                            m.d.sync += self.failures.eq(self.failures + popcount(still))
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [
                                self.retries.eq(self.retries + popcount(still)),
                                pending.eq(still),
                                attempts.eq(attempts + 1),
                            ]
                            m.next = "WRITE"
            else:
                with m.State("WAIT"):
                    # The accumulator row is read in this cycle; its data is valid in CALC.
                    m.d.comb += self.busy.eq(1)
                    m.next = "CALC"
                with m.State("CALC"):
                    m.d.comb += [self.busy.eq(1), acc_wr.en.eq(1)]
                    enable = Cat(*[c != 0 for c in codes])
                    m.d.sync += [
                        pending.eq(enable),
                        desired.eq(Cat(*pols)),
                        code_r.eq(Cat(*codes)),
                        self.writes.eq(self.writes + popcount(enable)),
                    ]
                    m.next = "GATE"
                with m.State("GATE"):
                    m.d.comb += self.busy.eq(1)
                    m.d.comb += [cmd.valid.eq(pending != 0), cmd.payload.op.eq(SynapseOp.GATE)]
                    with m.If((pending == 0) | cmd.ready):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m
