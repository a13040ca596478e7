"""On-chip training engine: forward, integer error, backward, and the metaplastic update (batch 1).

Network ``n_in -> n_hidden (sign) -> n_out``; rule and arithmetic of
:class:`spinapse.golden.integer_model.learning.IntegerEngine`, bit for bit
(``docs/learning_rule.md``). Binary weights are never stored here: the engine senses them through
two :class:`~spinapse.rtl.synapse_array.SynapseArraySignature` ports (``arr1``: ``n_in x n_hidden``,
``arr2``: ``n_hidden x n_out``), so the same engine drives an ideal array, a stochastic one, a
hidden-state device array or real chips. One :class:`~spinapse.rtl.update_engine.UpdateEngine`
per layer updates ``M`` (and ``W_h``) row by row with ``n_hidden`` / ``n_out`` SIMD lanes.

A step (``start`` with ``train = 1``):

1. ``FWD1``: ``READ`` rows ``0..n_in-1`` of ``arr1`` back to back; ``a1 += x_i ? +-1 : 0``.
2. ``FWD1_END``: ``c1 = a1 << thr_frac - T1``; ``h = c1 >= 0``; STE mask; ``T1 += c1 >>
   thr_shift``.
3. ``FWD2``: ``READ`` rows of ``arr2`` (kept for the backward pass); ``a2 += xnor(h_j, w) ? 1 :
   -1``.
4. ``FWD2_END``: ``c2``, ``T2`` update, prediction (``argmax c2``, lowest index on ties), error
   ``e`` (multi-class hinge).
5. ``BWD``: ``delta_j = mask_j * sum_k e_k W_b2[j, k]``.
6. ``UPD2`` then ``UPD1``: every row through the layer's update engine (gradient
   ``e_k * h_j`` resp. ``x_i * delta_j``).

With ``train = 0`` the engine stops after step 4 (inference: ``pred``, no threshold change).
Cycles per training step with an ideal array: about ``(n_in + n_hidden) * 5`` in digital mode
(plus 3 per write-verify attempt of a row) and ``(n_in + n_hidden) * 6`` in device mode
(measured for 784-32-10: 4124 and 4903).
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp
from spinapse.rtl.update_engine import UpdateEngine
from spinapse.rtl.xnor_popcount import popcount

THR_BITS = 18


def host_members(rule) -> dict:
    """Host-facing members of :class:`TrainingEngine`, in port order.

    :class:`~spinapse.rtl.training_system.TrainingSystem` forwards the same members, so both
    take them from here and cannot drift apart (names, widths and order become Verilog ports).
    """
    n_in, n_h, n_out = rule.n_in, rule.n_hidden, rule.n_out
    return {
        "x": In(n_in),
        "label": In(range(n_out)),
        "start": In(1),
        "train": In(1),
        "busy": Out(1),
        "done": Out(1),
        "pred": Out(range(n_out)),
        "thr1": Out(n_h * THR_BITS),
        "thr2": Out(n_out * THR_BITS),
        "thr_load": In(1),
        "thr1_in": In(n_h * THR_BITS),
        "thr2_in": In(n_out * THR_BITS),
        "acc_clear": In(1),
        "writes": Out(32),
        "retries": Out(32),
        "failures": Out(32),
    }


class TrainingEngine(wiring.Component):
    """The learning engine of a two-layer binarized network.

    Parameters
    ----------
    rule : object
        Integer rule constants (attributes of
        :class:`spinapse.golden.integer_model.learning.IntegerRule`).
    mode : str
        ``"digital"`` (``W_h`` memories and write-verify) or ``"device"`` (gate pulses, hidden
        state in the array).
    tables : pair of sequence of int
        f_meta table of each layer (used in digital mode).
    init_wh : pair of list of list of int, optional
        Initial ``W_h`` of each layer (digital mode), ``[n_in][n_hidden]`` and
        ``[n_hidden][n_out]``.

    Members
    -------
    x : In(n_in)
        Input bits (bit ``i`` = pixel ``i``), sampled at ``start``.
    label : In(range(n_out)); start : In(1); train : In(1)
    busy : Out(1); done : Out(1)
        ``done`` pulses for one cycle at the end of a step.
    pred : Out(range(n_out))
        Prediction of the last step.
    thr1 : Out(n_hidden * 18); thr2 : Out(n_out * 18)
        Thresholds ``T`` (signed, units ``2**-thr_frac`` of XNOR-popcount), neuron ``j`` at
        ``[18 j, 18 j + 18)``.
    thr_load : In(1); thr1_in : In(n_hidden * 18); thr2_in : In(n_out * 18)
        While idle, ``thr_load`` copies ``thr*_in`` into the thresholds (task switch).
    acc_clear : In(1)
        While idle (and without ``start``/``thr_load``): clear every accumulator ``M`` of both
        layers (task switch, no rebuild); ``busy`` for ``max(n_in, n_hidden) + 3`` cycles.
    writes, retries, failures : Out(32)
        Sums of both update engines' counters.
    arr1, arr2 : Out(SynapseArraySignature)
    upd1, upd2 : UpdateEngine
        Submodules (their ``peek_*`` members give the host the ``M``/``W_h`` memories).

    Raises
    ------
    ValueError
        If the mode or a shape is invalid.
    """

    def __init__(self, rule, mode: str, tables, init_wh=None) -> None:
        self.rule, self.mode = rule, mode
        n_in, n_h, n_out = rule.n_in, rule.n_hidden, rule.n_out
        # Thresholds hold a mean of (a << thr_frac), |a| <= n_in: keep them inside THR_BITS.
        if (max(n_in, n_h) << (rule.thr_frac + 1)) >= 1 << (THR_BITS - 1):
            raise ValueError(
                f"n_in={n_in} with thr_frac={rule.thr_frac} overflows the {THR_BITS}-bit thresholds"
            )
        self.e_bits = (n_out - 1).bit_length() + 1
        self.delta_bits = (2 * (n_out - 1)).bit_length() + 1
        init_wh = init_wh if init_wh is not None else (None, None)
        self.upd1 = UpdateEngine(rule, n_in, n_h, self.delta_bits, mode, tables[0], init_wh[0])
        self.upd2 = UpdateEngine(rule, n_h, n_out, self.e_bits, mode, tables[1], init_wh[1])
        super().__init__(
            {
                **host_members(rule),
                "arr1": Out(SynapseArraySignature(n_in, n_h, rule.code_bits)),
                "arr2": Out(SynapseArraySignature(n_h, n_out, rule.code_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        r = self.rule
        n_in, n_h, n_out = r.n_in, r.n_hidden, r.n_out
        tf = r.thr_frac
        m.submodules.upd1 = upd1 = self.upd1
        m.submodules.upd2 = upd2 = self.upd2
        for name in ("writes", "retries", "failures"):
            m.d.comb += getattr(self, name).eq(getattr(upd1, name) + getattr(upd2, name))

        x_r = Signal(n_in)
        x_sh = Signal(n_in)
        h_sh = Signal(n_h)
        label_r = Signal(range(n_out))
        train_r = Signal()
        issue = Signal(range(n_in + 1))
        got = Signal(range(n_in + 1))
        row = Signal(range(n_in + 1))
        a1 = [Signal(signed(n_in.bit_length() + 1), name=f"a1_{j}") for j in range(n_h)]
        a2 = [Signal(signed(n_h.bit_length() + 1), name=f"a2_{k}") for k in range(n_out)]
        t1 = [Signal(signed(THR_BITS), name=f"t1_{j}") for j in range(n_h)]
        t2 = [Signal(signed(THR_BITS), name=f"t2_{k}") for k in range(n_out)]
        h = Signal(n_h)
        mask = Signal(n_h)
        wb2 = Array(Signal(n_out, name=f"wb2_{j}") for j in range(n_h))
        e = [Signal(signed(self.e_bits), name=f"e_{k}") for k in range(n_out)]
        delta = [Signal(signed(self.delta_bits), name=f"delta_{j}") for j in range(n_h)]
        m.d.comb += [self.thr1.eq(Cat(*t1)), self.thr2.eq(Cat(*t2))]

        c1 = [Signal(signed(THR_BITS + 1), name=f"c1_{j}") for j in range(n_h)]
        c2 = [Signal(signed(THR_BITS + 1), name=f"c2_{k}") for k in range(n_out)]
        for j in range(n_h):
            m.d.comb += c1[j].eq((a1[j] << tf) - t1[j])
        for k in range(n_out):
            m.d.comb += c2[k].eq((a2[k] << tf) - t2[k])

        # Array ports: the forward reader owns them except during the layer's update phase.
        def route(port, upd, phase_is_update):
            with m.If(phase_is_update):
                m.d.comb += [
                    port.cmd.payload.eq(upd.arr.cmd.payload),
                    port.cmd.valid.eq(upd.arr.cmd.valid),
                    upd.arr.cmd.ready.eq(port.cmd.ready),
                    upd.arr.sense.payload.eq(port.sense.payload),
                    upd.arr.sense.valid.eq(port.sense.valid),
                    port.sense.ready.eq(upd.arr.sense.ready),
                ]
            with m.Else():
                m.d.comb += [
                    port.cmd.payload.op.eq(SynapseOp.READ),
                    port.cmd.payload.row.eq(issue),
                    port.sense.ready.eq(1),
                ]

        # Gradients of the row being updated (held while the update engine works on it).
        e_h = Cat(*[Mux(h.bit_select(row, 1), e[k], -e[k])[: self.e_bits] for k in range(n_out)])
        x_i = x_r.bit_select(row, 1)
        g1 = Cat(*[Mux(x_i, delta[j], 0)[: self.delta_bits] for j in range(n_h)])
        m.d.comb += [upd2.grad.eq(e_h), upd2.row.eq(row), upd1.grad.eq(g1), upd1.row.eq(row)]

        def sweep(name, upd, rows, then, rewind):
            # States <name>_GO/<name>_WAIT: rows 0..rows-1 of one layer through its update engine,
            # one start/done per row; ``rewind`` sets ``row`` back to 0 for the next sweep.
            with m.State(f"{name}_GO"):
                m.d.comb += [self.busy.eq(1), upd.start.eq(1)]
                m.next = f"{name}_WAIT"
            with m.State(f"{name}_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(upd.done):
                    with m.If(row == rows - 1):
                        if rewind:
                            m.d.sync += row.eq(0)
                        m.next = then
                    with m.Else():
                        m.d.sync += row.eq(row + 1)
                        m.next = f"{name}_GO"

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        x_r.eq(self.x),
                        x_sh.eq(self.x),
                        label_r.eq(self.label),
                        train_r.eq(self.train),
                        issue.eq(0),
                        got.eq(0),
                        *[a.eq(0) for a in a1],
                    ]
                    m.next = "FWD1"
                with m.Elif(self.thr_load):
                    for j in range(n_h):
                        m.d.sync += t1[j].eq(self.thr1_in[j * THR_BITS : (j + 1) * THR_BITS])
                    for k in range(n_out):
                        m.d.sync += t2[k].eq(self.thr2_in[k * THR_BITS : (k + 1) * THR_BITS])
                with m.Elif(self.acc_clear):
                    m.next = "CLEAR_GO"
            with m.State("CLEAR_GO"):
                m.d.comb += [self.busy.eq(1), upd1.clear.eq(1), upd2.clear.eq(1)]
                m.next = "CLEAR_WAIT"
            with m.State("CLEAR_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(~upd1.busy & ~upd2.busy):
                    m.next = "IDLE"
            with m.State("FWD1"):
                m.d.comb += [self.busy.eq(1), self.arr1.cmd.valid.eq(issue < n_in)]
                with m.If(self.arr1.cmd.valid & self.arr1.cmd.ready):
                    m.d.sync += issue.eq(issue + 1)
                with m.If(self.arr1.sense.valid):
                    bits = self.arr1.sense.payload
                    for j in range(n_h):
                        step = Mux(bits[j], 1, -1)
                        m.d.sync += a1[j].eq(a1[j] + Mux(x_sh[0], step, 0))
                    m.d.sync += [x_sh.eq(x_sh >> 1), got.eq(got + 1)]
                    with m.If(got == n_in - 1):
                        m.next = "FWD1_END"
            with m.State("FWD1_END"):
                m.d.comb += self.busy.eq(1)
                win = r.win1 << tf
                for j in range(n_h):
                    m.d.sync += [
                        h[j].eq(c1[j] >= 0),
                        mask[j].eq((c1[j] <= win) & (c1[j] >= -win)),
                    ]
                    with m.If(train_r):
                        m.d.sync += t1[j].eq(t1[j] + (c1[j] >> r.thr_shift))
                m.d.sync += [
                    h_sh.eq(Cat(*[c >= 0 for c in c1])),
                    issue.eq(0),
                    got.eq(0),
                    *[a.eq(0) for a in a2],
                ]
                m.next = "FWD2"
            with m.State("FWD2"):
                m.d.comb += [self.busy.eq(1), self.arr2.cmd.valid.eq(issue < n_h)]
                with m.If(self.arr2.cmd.valid & self.arr2.cmd.ready):
                    m.d.sync += issue.eq(issue + 1)
                with m.If(self.arr2.sense.valid):
                    bits = self.arr2.sense.payload
                    for k in range(n_out):
                        m.d.sync += a2[k].eq(a2[k] + Mux(bits[k] == h_sh[0], 1, -1))
                    m.d.sync += [h_sh.eq(h_sh >> 1), got.eq(got + 1), wb2[got].eq(bits)]
                    with m.If(got == n_h - 1):
                        m.next = "FWD2_END"
            with m.State("FWD2_END"):
                m.d.comb += self.busy.eq(1)
                with m.If(train_r):
                    for k in range(n_out):
                        m.d.sync += t2[k].eq(t2[k] + (c2[k] >> r.thr_shift))
                # Prediction: first index of the largest centred score.
                best, best_v = 0, c2[0]
                for k in range(1, n_out):
                    better = c2[k] > best_v
                    best, best_v = Mux(better, k, best), Mux(better, c2[k], best_v)
                m.d.sync += self.pred.eq(best)
                c2_y = Array(c2)[label_r]
                viol = Cat(
                    *[(c2[k] + (r.margin << tf) >= c2_y) & (label_r != k) for k in range(n_out)]
                )
                count = popcount(viol)
                for k in range(n_out):
                    m.d.sync += e[k].eq(Mux(label_r == k, -count, viol[k]))
                with m.If(train_r):
                    m.next = "BWD"
                with m.Else():
                    m.next = "DONE"
            with m.State("BWD"):
                m.d.comb += self.busy.eq(1)
                for j in range(n_h):
                    terms = [Mux(wb2[j][k], e[k], -e[k]) for k in range(n_out)]
                    total = terms[0]
                    for t in terms[1:]:
                        total = total + t
                    m.d.sync += delta[j].eq(Mux(mask[j], total, 0))
                m.d.sync += row.eq(0)
                m.next = "UPD2_GO"
            sweep("UPD2", upd2, n_h, then="UPD1_GO", rewind=True)
            sweep("UPD1", upd1, n_in, then="DONE", rewind=False)
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        route(self.arr1, upd1, fsm.ongoing("UPD1_GO") | fsm.ongoing("UPD1_WAIT"))
        route(self.arr2, upd2, fsm.ongoing("UPD2_GO") | fsm.ongoing("UPD2_WAIT"))
        return m
