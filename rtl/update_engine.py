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

One ``start`` (a cycle while ``busy`` is low) sweeps every row ``0 .. rows - 1`` of the layer,
streamed: in the cycle row ``r`` is committed (its ``M'``, ``W_h'`` written back) row ``r + 1``
is read from memory (one synchronous read port per memory) and, in digital mode, its ``READ`` is
issued. ``grad_row`` follows the read address: the engine registers ``grad`` (combinational from
``grad_row``: the owner's gradient of that row) in the cycle the row's ``M`` is read, so the
owner's row selection is not in the same cycle as the lane arithmetic. ``done`` pulses for one
cycle at the end.

- Digital mode: each lane has two stages, so no path runs from a memory's read data to the
  commit: row ``r + 1``'s ``M'``, step size and f_meta factor are computed from its read data
  and registered while row ``r`` is committed (its ``W_h`` step, saturation and write-verify
  decision from those registers); the read port is then at row ``r + 2``. The stage fills in
  the cycle the first ``READ`` is in flight, so the cycle counts are those of a single stage.
  Row ``r``'s sense beat decides; if no lane needs a ``WRITE`` the next row is
  committed in the next cycle. Otherwise the ``READ`` of row ``r + 1`` is already in flight
  (speculative); its beat is kept in a register while row ``r`` is pulsed and verified (rows are
  independent, so that beat is still the row's true state) and used when the sweep resumes, so
  each row is read once per sweep plus once per verify, as before streaming; only the order of
  commands differs (``READ r + 1`` before ``WRITE r``).
- Device mode: row ``r``'s ``GATE`` beat is registered in the cycle ``r`` is committed and
  offered on ``cmd`` in the next, while row ``r + 1`` is committed; ``cmd.ready`` low stalls
  the sweep (nothing is committed until the beat is taken). Rows with no enabled lane send no
  beat.

Cycles from ``start`` to ``done`` inclusive, with an array that takes one command per cycle and
answers a ``READ`` in the next (the ideal, stochastic and hidden-state arrays): ``rows + 2``,
plus 3 per write-verify attempt of a row in digital mode (``WRITE``, verify ``READ``, check).
``clear`` (one cycle, while idle) sets every accumulator ``M`` to 0, one row per cycle
(``rows + 1`` cycles, ``busy`` high, then ``done``): the host's task switch, as the golden
model restarts ``M`` at each new task.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.rtl.hidden_state_array import pack_signed
from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp
from spinapse.rtl.update_lane import accumulate, apply_step, attenuated, fmeta_rom, gate_pulse
from spinapse.rtl.xnor_popcount import popcount

MODES = ("digital", "device")


class UpdateEngine(wiring.Component):
    """Row-streamed, lane-parallel metaplastic update of one ``rows x lanes`` layer.

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
    start : In(1)
        While idle: sweep every row.
    grad_row : Out(range(rows + 2)); grad : In(lanes * grad_bits)
        The row whose gradient the engine may register in this cycle (digital mode: a
        register, in the sweep the row the read port moves to next, else 0; device mode: the
        row its memories read; the
        row is committed one or more cycles later; up to ``rows + 1`` at the end of a sweep,
        whose gradient is not used), and that gradient: lane ``l``'s signed
        value at ``[l*grad_bits, (l+1)*grad_bits)``, combinational from ``grad_row`` and constant
        from ``start`` to ``done``.
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
            "grad_row": Out(range(rows + 2)),
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
        r, lanes, rows = self.rule, self.lanes, self.rows
        ab, gb = r.acc_bits, self.grad_bits
        digital = self.mode == "digital"
        m.d.comb += self.arr.sense.ready.eq(1)

        # ``row``: the row whose M (and W_h) is read back and stepped this cycle (the sweep's
        # commit pointer, ``rows`` when every row is committed). Each memory has one synchronous
        # read port and one write port (block RAM): the read port is at the row committed next
        # (``row + 1`` in a cycle that commits ``row``, so a row is never read and written in the
        # same cycle), and at ``peek_row`` for the host while the engine is idle.
        row = Signal(range(rows + 1))
        commit = Signal()
        sweeping = Signal()
        starting = Signal()
        clearing = Signal()
        # Digital mode has one more stage between the read and the commit (see ``_digital``):
        # ``filled`` is high once the stage holds the row to commit, ``advance`` loads it.
        filled, advance = Signal(), Signal()
        rd_addr = Signal(range(rows + 2))
        rd_q, rd_q1 = Signal(range(rows + 2)), Signal(range(rows + 2))
        m.d.sync += [rd_q.eq(rd_addr), rd_q1.eq(rd_addr + 1)]
        with m.If(starting):
            m.d.comb += rd_addr.eq(0)
        with m.Elif(sweeping):
            if digital:
                # ``row + filled + advance``, from registers: the address the port holds
                # (``rd_q``, that is ``row + filled``) or the next (``rd_q1``), selected by
                # ``advance``, so no adder sits between the sense beat and the address.
                m.d.comb += rd_addr.eq(Mux(advance, rd_q1, rd_q))
            else:
                m.d.comb += rd_addr.eq(row + commit)
        with m.Else():
            m.d.comb += rd_addr.eq(self.peek_row)
        # The gradient is asked for one cycle ahead, at the row the read port is at, and
        # registered beside the memories' registered read data: ``grad_q`` is always the
        # gradient of the row whose ``M`` is on ``acc_rd.data``. This cuts the owner's
        # ``grad_row`` -> ``grad`` selection (a ``rows``-way bit multiplexer in the training
        # engine) from the lane arithmetic without a cycle: the read is one cycle either way.
        grad_q = Signal(lanes * gb)
        if digital:
            # In the sweep the port either holds (``grad_q`` is that row's already) or moves to
            # ``rd_q1``: ask for ``rd_q1``'s gradient, a register, and load it on ``advance``,
            # so the owner's selection does not start at the sense beat either.
            # ``grad_row`` is itself a register: ``rd_q1`` in the sweep, 0 otherwise (the row
            # the sweep starts with), so neither the state nor ``advance`` is in front of the
            # owner's row selection.
            g_row = Signal(range(rows + 2))
            m.d.sync += g_row.eq(Mux(starting | sweeping, rd_addr + 1, 0))
            m.d.comb += self.grad_row.eq(g_row)
            m.d.sync += grad_q.eq(Mux(~sweeping | advance, self.grad, grad_q))
        else:
            m.d.comb += self.grad_row.eq(rd_addr)
            m.d.sync += grad_q.eq(self.grad)

        m.submodules.acc_mem = acc_mem = Memory(shape=lanes * ab, depth=rows, init=[])
        acc_rd, acc_wr = acc_mem.read_port(), acc_mem.write_port()
        m.d.comb += [
            acc_rd.addr.eq(rd_addr),
            acc_wr.addr.eq(row),
            acc_wr.en.eq(commit | clearing),
            self.peek_acc.eq(acc_rd.data),
        ]
        new_acc = []
        for lane in range(lanes):
            acc = acc_rd.data[lane * ab : (lane + 1) * ab].as_signed()
            grad = grad_q[lane * gb : (lane + 1) * gb].as_signed()
            new_acc.append(accumulate(m, r, acc, grad, f"l{lane}"))
        if digital:
            # M' of the row to commit, registered with the rest of the lane's first stage.
            acc_q = Signal(lanes * ab)
            m.d.comb += advance.eq(commit | ~filled)
            m.d.sync += filled.eq(sweeping)
            with m.If(advance):
                m.d.sync += acc_q.eq(Cat(*new_acc))
            m.d.comb += acc_wr.data.eq(Mux(clearing, 0, acc_q))
        else:
            m.d.comb += acc_wr.data.eq(Mux(clearing, 0, Cat(*new_acc)))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += starting.eq(1)
                    m.d.sync += row.eq(0)
                    m.next = "SWEEP"
                with m.Elif(self.clear):
                    m.d.sync += row.eq(0)
                    m.next = "CLEAR"
            with m.State("CLEAR"):
                m.d.comb += [self.busy.eq(1), clearing.eq(1)]
                with m.If(row == rows - 1):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += row.eq(row + 1)
            if digital:
                self._digital(m, row, commit, sweeping, new_acc, acc_q, rd_addr, filled, advance)
            else:
                self._device(m, row, commit, sweeping, new_acc)
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m

    def _digital(self, m, row, commit, sweeping, new_acc, acc_q, rd_addr, filled, advance):
        # Rows stream: READ row i is issued while row i - 1 is committed, its M and W_h are read
        # from memory in the same cycle, and its sense beat arrives with them one cycle later.
        # The sense of row r decides whether r needs write-verify; the READ of row r + 1 was then
        # already issued (speculatively): its beat is kept in ``held`` while r is written and
        # verified, and consumed when the sweep resumes, so every row is read exactly once per
        # sweep (plus one verify READ per attempt) and the array sees the counts it always saw.
        r, lanes, rows = self.rule, self.lanes, self.rows
        wb = r.wh_bits
        cmd, sense = self.arr.cmd, self.arr.sense
        m.submodules.wh_mem = wh_mem = Memory(shape=lanes * wb, depth=rows, init=self.init_wh)
        wh_rd, wh_wr = wh_mem.read_port(), wh_mem.write_port()
        rom = fmeta_rom(self.rom_values)
        # Two stages per lane, so that no path runs from a memory's read data to the commit
        # decision: stage 1 (the row's read data) computes M', the step size D and f_meta
        # (``update_lane.attenuated``) into registers; stage 2 (the commit) the step, W_h' and
        # the write-verify decision. Rows are independent, so stage 1 may hold row r + 1 while
        # r is committed or in write-verify: it loads on ``advance`` (a commit, or the first
        # cycle of the sweep) and the read port runs one row ahead of it.
        new_wh = []
        for lane in range(lanes):
            w = wh_rd.data[lane * wb : (lane + 1) * wb].as_signed()
            d, f = attenuated(m, r, rom, w, new_acc[lane], f"l{lane}")
            w_q = Signal(signed(wb), name=f"l{lane}_wh_q")
            d_q = Signal.like(d, name=f"l{lane}_d_q")
            f_q = Signal.like(f, name=f"l{lane}_f_q")
            # (A Mux, not an ``If``: this runs inside the FSM's scope.)
            m.d.sync += [
                w_q.eq(Mux(advance, w, w_q)),
                d_q.eq(Mux(advance, d, d_q)),
                f_q.eq(Mux(advance, f, f_q)),
            ]
            acc = acc_q[lane * r.acc_bits : (lane + 1) * r.acc_bits].as_signed()
            new_wh.append(apply_step(m, r, w_q, acc, d_q, f_q, f"l{lane}"))
        m.d.comb += [
            wh_rd.addr.eq(rd_addr),
            wh_wr.addr.eq(row),
            wh_wr.en.eq(commit),
            wh_wr.data.eq(Cat(*new_wh)),
            self.peek_wh.eq(wh_rd.data),
        ]
        issue = Signal(range(rows + 1))  # next row to READ in the sweep
        held, held_valid = Signal(lanes), Signal()
        spec = Signal()  # a speculative READ's beat is still to come (write-verify states)
        wrow = Signal(range(rows))  # the row in write-verify
        pending, desired = Signal(lanes), Signal(lanes)
        attempts = Signal(range(r.retry_limit + 1))
        sensed = Mux(held_valid, held, sense.payload)
        want = Cat(*[~w[-1] for w in new_wh])
        wrong = Signal(lanes)
        m.d.comb += wrong.eq(sensed ^ want)
        still = Signal(lanes)
        m.d.comb += still.eq(sense.payload ^ desired)
        m.d.comb += [cmd.payload.enable.eq(pending), cmd.payload.polarity.eq(desired)]

        def keep_speculative_beat():
            with m.If(sense.valid & spec):
                m.d.sync += [held.eq(sense.payload), held_valid.eq(1), spec.eq(0)]

        def send(op, then):
            m.d.comb += [cmd.valid.eq(1), cmd.payload.op.eq(op), cmd.payload.row.eq(wrow)]
            with m.If(cmd.ready):
                m.next = then

        with m.State("SWEEP"):
            m.d.comb += [self.busy.eq(1), sweeping.eq(1)]
            # At most one READ beyond the row being committed: the one a write-verify may hold.
            issuing = Signal()
            m.d.comb += [
                cmd.valid.eq((issue < rows) & (issue <= row + 1)),
                cmd.payload.op.eq(SynapseOp.READ),
                cmd.payload.row.eq(issue),
                issuing.eq(cmd.valid & cmd.ready),
            ]
            with m.If(issuing):
                m.d.sync += issue.eq(issue + 1)
            with m.If(~filled & sense.valid):  # only an array that answers in the same cycle
                m.d.sync += [held.eq(sense.payload), held_valid.eq(1)]
            with m.If(filled & (held_valid | sense.valid)):
                m.d.comb += commit.eq(1)
                m.d.sync += [
                    row.eq(row + 1),
                    held_valid.eq(0),
                    pending.eq(wrong),
                    desired.eq(want),
                    attempts.eq(0),
                    wrow.eq(row),
                    spec.eq(issue + issuing != row + 1),
                    self.writes.eq(self.writes + popcount(wrong)),
                ]
                with m.If(wrong != 0):
                    m.next = "WRITE"
                with m.Elif(row == rows - 1):
                    m.d.sync += issue.eq(0)  # for the next sweep (nothing is held now)
                    m.next = "DONE"
        with m.State("WRITE"):
            m.d.comb += [self.busy.eq(1), sweeping.eq(1)]
            keep_speculative_beat()
            send(SynapseOp.WRITE, "VERIFY")
        with m.State("VERIFY"):
            m.d.comb += [self.busy.eq(1), sweeping.eq(1)]
            keep_speculative_beat()
            send(SynapseOp.READ, "CHECK")
        with m.State("CHECK"):
            m.d.comb += [self.busy.eq(1), sweeping.eq(1)]
            keep_speculative_beat()
            with m.If(sense.valid & ~spec):
                with m.If(still == 0):
                    m.next = "SWEEP"
                with m.Elif(attempts == r.retry_limit):
                    m.d.sync += self.failures.eq(self.failures + popcount(still))
                    m.next = "SWEEP"
                with m.Else():
                    m.d.sync += [
                        self.retries.eq(self.retries + popcount(still)),
                        pending.eq(still),
                        attempts.eq(attempts + 1),
                    ]
                    m.next = "WRITE"
                with m.If(((still == 0) | (attempts == r.retry_limit)) & (row == rows)):
                    m.d.sync += issue.eq(0)
                    m.next = "DONE"

    def _device(self, m, row, commit, sweeping, new_acc) -> None:
        # Rows stream: row r's M is read while row r - 1 is stepped and its GATE beat registered,
        # and row r - 2's beat is on ``cmd``. A beat the array does not take (``cmd.ready`` low)
        # stalls the sweep: nothing advances until it is taken.
        r, lanes, rows = self.rule, self.lanes, self.rows
        cmd = self.arr.cmd
        pols, codes = zip(*[gate_pulse(m, r, a, f"l{lane}") for lane, a in enumerate(new_acc)])
        beat = Signal()  # the beat register holds a row's GATE (or an empty row)
        g_row = Signal(range(rows))
        pending, desired = Signal(lanes), Signal(lanes)
        code_r = Signal(lanes * r.code_bits)
        m.d.comb += [
            cmd.payload.op.eq(SynapseOp.GATE),
            cmd.payload.row.eq(g_row),
            cmd.payload.enable.eq(pending),
            cmd.payload.polarity.eq(desired),
            cmd.payload.code.eq(code_r),
        ]
        free = Signal()
        m.d.comb += free.eq(~beat | (pending == 0) | cmd.ready)
        with m.State("SWEEP"):
            m.d.comb += [self.busy.eq(1), sweeping.eq(1), cmd.valid.eq(beat & (pending != 0))]
            with m.If(free):
                m.d.sync += beat.eq(0)
                with m.If(row < rows):
                    m.d.comb += commit.eq(1)
                    enable = Cat(*[c != 0 for c in codes])
                    m.d.sync += [
                        row.eq(row + 1),
                        beat.eq(1),
                        g_row.eq(row),
                        pending.eq(enable),
                        desired.eq(Cat(*pols)),
                        code_r.eq(Cat(*codes)),
                        self.writes.eq(self.writes + popcount(enable)),
                    ]
                with m.Else():  # every row stepped, the last beat taken
                    m.next = "DONE"
