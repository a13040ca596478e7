"""On-chip training engine: forward, integer error, backward, and the metaplastic update (batch 1).

Network ``n_in -> n_hidden -> ... -> n_hidden -> n_out`` with ``n_hidden_layers`` sign layers
(``L = n_hidden_layers + 1`` weight layers, 784-H-10 is ``L = 2``, the paper's 784-H-H-10 is
``L = 3``); rule and arithmetic of :class:`spinapse.golden.integer_model.learning.IntegerEngine`,
bit for bit (``docs/learning_rule.md``). Binary weights are never stored here: the engine senses
them through one :class:`~spinapse.rtl.synapse_array.SynapseArraySignature` port per layer
(``arr1``: ``n_in x n_hidden``, ``arr2`` ... ``arr{L-1}``: ``n_hidden x n_hidden``, ``arr{L}``:
``n_hidden x n_out``), so the same engine drives an ideal array, a stochastic one, a hidden-state
device array or real chips. One :class:`~spinapse.rtl.update_engine.UpdateEngine` per layer
(``upd1`` ... ``upd{L}``) updates ``M`` (and ``W_h``) row by row with one SIMD lane per neuron.

A step (``start`` with ``train = 1``), layers ``l = 1..L``:

1. ``FWD1``: ``READ`` rows ``0..n_in-1`` of ``arr1`` back to back; ``a1 += x_i ? +-1 : 0``.
2. ``FWD<l>`` for ``l >= 2``: ``READ`` the rows of ``arr<l>``; ``a_l += xnor(h_j, w) ? 1 : -1``.
   The sensed rows are kept for the backward pass: those of the output layer in registers
   (``n_hidden x n_out`` bits), those of a hidden-to-hidden layer in a ``Memory`` of
   ``n_hidden`` words of ``n_hidden`` bits (block RAM on an FPGA, 16 kbit at ``H = 128``).
3. ``FWD<l>_END``: ``c_l = a_l << thr_frac - T_l``; ``T_l += c_l >> thr_shift``; hidden layers:
   ``h_l = c_l >= 0`` and the STE mask ``|c_l| <= win_l << thr_frac`` (``win1`` for layer 1,
   ``win_hidden`` deeper); output layer: ``c_L`` registered, then ``OUT``: prediction
   (``argmax c_L``, lowest index on ties, a compare tree, :mod:`spinapse.rtl.argmax`) and error
   ``e`` (multi-class hinge).
4. ``BWD``: ``delta_{L-1} = mask_{L-1} * sat(W_b_L @ e, delta_bits)``, all neurons in one cycle.
5. ``BWD<l>`` for ``l = L-2 .. 1``: ``delta_l = mask_l * sat((W_b_{l+1} @ delta_{l+1}) >>
   back_shift, delta_bits)``, one neuron per cycle: row ``j`` of the kept ``W_b_{l+1}`` read from
   its memory, an adder tree over ``n_hidden`` signed terms (``n_hidden + 1`` cycles).
6. ``UPD<L>`` down to ``UPD1``: one start of the layer's update engine, which streams every row
   (one per cycle; it asks for row ``j``'s gradient ``input_j * delta_l`` on ``grad_row``:
   ``h_j`` in +-1 for ``l >= 2``, ``x_i`` in {0, 1} for ``l = 1``).

Why a memory and not a second read of the array in ``BWD<l>``: both take one cycle per row, so
the cycles are the same; the copy costs ``n_hidden**2`` bits per hidden-to-hidden layer (a tenth
of that layer's own ``M`` memory at ``acc_bits = 10``), and in exchange the gradient uses exactly
the bits the forward pass sensed (as the golden model states, and whatever the array's read
noise), and the arrays see the same traffic as a 784-H-10 engine (no extra sensing energy, no
extra row reads through a co-simulation bridge).

With ``train = 0`` the engine stops after the output layer's ``OUT`` (inference: ``pred``, no
threshold change). Cycles with an array that takes one command per cycle and answers a ``READ``
in the next (``spinapse.plan.cycles``): an inference ``sum_l (R_l + 2) + 2`` (``R_l`` the rows
of layer ``l``); a training step ``2 sum_l R_l + 5 L + 3`` in both modes (one row per cycle in
the forward pass and again in the update sweeps), plus 3 per write-verify attempt of a row in
digital mode, plus ``n_hidden + 1`` per ``BWD<l>``: 1709 for 784-64-10 against the bound of one
row per cycle in each phase, ``2 (784 + 64) = 1696`` (784-128-128-10: ``docs/learning_rule.md``).
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.rtl.argmax import Argmax
from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp
from spinapse.rtl.update_engine import UpdateEngine
from spinapse.rtl.update_lane import saturate
from spinapse.rtl.xnor_popcount import popcount, sum_tree

THR_BITS = 18
# Learned biases B (``bias_shift``): signed, saturated to this width (as the golden model's
# ``BIAS_BITS``).
BIAS_BITS = THR_BITS


def dev_bits(rule) -> int:
    """Unsigned width of the per-neuron deviations ``D`` (``dev_shift``) and of ``dev<l>``.

    ``D`` starts at ``win_l << thr_frac`` and moves towards ``|c + B|`` (the centred score,
    ``|a << thr_frac - T| < 2**THR_BITS``) by a floored fraction, so it stays in ``[0,
    max(win_l << thr_frac, 2**THR_BITS)]``: this width never overflows.
    """
    wins = [rule.win1] + [rule.win_hidden] * (getattr(rule, "n_hidden_layers", 1) - 1)
    return max(max(w << rule.thr_frac for w in wins).bit_length(), THR_BITS + 1)


def layer_shapes(rule) -> list[tuple[int, int]]:
    """``(rows, lanes)`` of each weight layer, input first: ``(n_in, n_hidden)``,
    ``(n_hidden, n_hidden)`` per extra hidden layer, ``(n_hidden, n_out)`` (``rule`` has the
    attributes of ``IntegerRule``; ``n_hidden_layers`` defaults to 1 when absent)."""
    n_hl = getattr(rule, "n_hidden_layers", 1)
    h = rule.n_hidden
    return [(rule.n_in, h)] + [(h, h)] * (n_hl - 1) + [(h, rule.n_out)]


def host_members(rule) -> dict:
    """Host-facing members of :class:`TrainingEngine`, in port order.

    :class:`~spinapse.rtl.training_system.TrainingSystem` forwards the same members, so both
    take them from here and cannot drift apart (names, widths and order become Verilog ports).
    With one hidden layer these are the ports of the 784-H-10 engine (``thr1``, ``thr2``, ...).
    """
    shapes = layer_shapes(rule)
    members = {
        "x": In(rule.n_in),
        "label": In(range(rule.n_out)),
        "start": In(1),
        "train": In(1),
        "busy": Out(1),
        "done": Out(1),
        "pred": Out(range(rule.n_out)),
    }
    for k, (_, lanes) in enumerate(shapes, start=1):
        members[f"thr{k}"] = Out(lanes * THR_BITS)
    members["thr_load"] = In(1)
    for k, (_, lanes) in enumerate(shapes, start=1):
        members[f"thr{k}_in"] = In(lanes * THR_BITS)
    members.update(acc_clear=In(1), writes=Out(32), retries=Out(32), failures=Out(32))
    if getattr(rule, "bias_shift", 0):
        for k, (_, lanes) in enumerate(shapes, start=1):
            members[f"bias{k}"] = Out(lanes * BIAS_BITS)
    if getattr(rule, "dev_shift", 0):
        for k in range(1, len(shapes)):
            members[f"dev{k}"] = Out(rule.n_hidden * dev_bits(rule))
    return members


def delta_widths(rule) -> list[int]:
    """Signed width of each hidden layer's ``delta`` register, layer 1 first.

    The last hidden layer's ``W_b_L @ e`` is at most ``2 (n_out - 1)`` in magnitude: it keeps
    that natural width (no saturation logic) when ``delta_bits`` cannot clip it, else
    ``delta_bits``. Deeper layers are ``delta_bits`` wide (saturated).
    """
    n_out = rule.n_out
    natural = (2 * (n_out - 1)).bit_length() + 1
    last = natural if 2 * (n_out - 1) <= (1 << (rule.delta_bits - 1)) - 1 else rule.delta_bits
    n_hl = getattr(rule, "n_hidden_layers", 1)
    return [rule.delta_bits] * (n_hl - 1) + [last]


class TrainingEngine(wiring.Component):
    """The learning engine of a binarized network with ``n_hidden_layers`` hidden layers.

    Parameters
    ----------
    rule : object
        Integer rule constants (attributes of
        :class:`spinapse.golden.integer_model.learning.IntegerRule`: widths, ``n_hidden_layers``
        in [1, 4], ``win1``, ``win_hidden``, ``back_shift``, ``delta_bits``, ...).
    mode : str
        ``"digital"`` (``W_h`` memories and write-verify) or ``"device"`` (gate pulses, hidden
        state in the array).
    tables : sequence of ``L`` sequences of int
        f_meta table of each layer, input layer first (used in digital mode).
    init_wh : sequence of ``L`` lists of list of int, optional
        Initial ``W_h`` of each layer (digital mode), ``[rows][lanes]`` of :func:`layer_shapes`.

    Members
    -------
    x : In(n_in)
        Input bits (bit ``i`` = pixel ``i``), sampled at ``start``.
    label : In(range(n_out)); start : In(1); train : In(1)
    busy : Out(1); done : Out(1)
        ``done`` pulses for one cycle at the end of a step.
    pred : Out(range(n_out))
        Prediction of the last step.
    thr1 ... thr<L> : Out(lanes * 18)
        Thresholds ``T_l`` (signed, units ``2**-thr_frac`` of XNOR-popcount), neuron ``j`` at
        ``[18 j, 18 j + 18)``; ``lanes`` = ``n_hidden``, the output layer's ``n_out``.
    thr_load : In(1); thr1_in ... thr<L>_in : In(lanes * 18)
        While idle, ``thr_load`` copies ``thr*_in`` into the thresholds (task switch).
    acc_clear : In(1)
        While idle (and without ``start``/``thr_load``): clear every accumulator ``M`` of every
        layer, and restart ``D`` and ``B`` where the rule builds them (task switch, no
        rebuild); ``busy`` for ``max(rows) + 3`` cycles.
    writes, retries, failures : Out(32)
        Sums of the update engines' counters.
    arr1 ... arr<L> : Out(SynapseArraySignature)
    upd1 ... upd<L> : UpdateEngine
        Submodules (their ``peek_*`` members give the host the ``M``/``W_h`` memories); also
        the list ``upds``.

    Raises
    ------
    ValueError
        If the mode, the number of tables or a shape is invalid, or the rule sets a field the
        RTL does not build (``norm_decay``, ``norm_gain``, ``stoch_round``, ``err_max``:
        golden-model studies of issue 13). ``dev_shift`` and ``bias_shift`` are built: ``D``
        per hidden neuron (restarted at ``win_l << thr_frac`` by ``acc_clear``, the task start)
        and ``B`` per neuron (18-bit, saturating; restarted at 0 by ``acc_clear``: to test
        task ``i`` with its saved thresholds, which include ``B``, load ``saved_i - B``), read
        back on ``dev<l>`` and ``bias<l>`` (ports present only when the field is set).
    """

    def __init__(self, rule, mode: str, tables, init_wh=None) -> None:
        self.rule, self.mode = rule, mode
        self.shapes = shapes = layer_shapes(rule)
        n_layers = len(shapes)
        if not 1 <= n_layers - 1 <= 4:
            raise ValueError(f"n_hidden_layers must be in [1, 4], got {n_layers - 1}")
        if len(tables) != n_layers:
            raise ValueError(f"tables must hold {n_layers} f_meta tables, got {len(tables)}")
        # Integer-rule fields measured in the golden model only (issue 13, off by default): a
        # rule that sets one must not build the default rule's hardware without a word.
        off = dict(norm_decay=0, norm_gain=0, stoch_round=False, err_max=1)
        for name, value in off.items():
            if getattr(rule, name, value) != value:
                raise ValueError(
                    f"IntegerRule.{name} = {getattr(rule, name)!r} is not built in the RTL "
                    f"(golden model only); the engine implements {name} = {value!r}"
                )
        # Thresholds hold a mean of (a << thr_frac), |a| <= rows: keep them inside THR_BITS.
        biggest = max(rows for rows, _ in shapes)
        if (biggest << (rule.thr_frac + 1)) >= 1 << (THR_BITS - 1):
            raise ValueError(
                f"{biggest} inputs with thr_frac={rule.thr_frac} overflow the {THR_BITS}-bit "
                "thresholds"
            )
        self.e_bits = (rule.n_out - 1).bit_length() + 1
        self.delta_widths = delta_widths(rule)
        self.delta_bits = self.delta_widths[-1]  # the last hidden layer's (784-H-10 name)
        # Gradient width of each layer: x_i * delta (x in {0, 1}), h_j * delta (h in +-1, so
        # -delta needs one bit more), h_j * e for the output layer.
        grad_bits = [self.delta_widths[0]] + [w + 1 for w in self.delta_widths[1:]]
        grad_bits.append(self.e_bits)
        self.grad_bits = grad_bits
        init_wh = init_wh if init_wh is not None else [None] * n_layers
        if len(init_wh) != n_layers:
            raise ValueError(f"init_wh must hold {n_layers} layers, got {len(init_wh)}")
        self.upds = [
            UpdateEngine(rule, rows, lanes, gb, mode, table, w)
            for (rows, lanes), gb, table, w in zip(shapes, grad_bits, tables, init_wh)
        ]
        for k, upd in enumerate(self.upds, start=1):
            setattr(self, f"upd{k}", upd)
        members = host_members(rule)
        for k, (rows, lanes) in enumerate(shapes, start=1):
            members[f"arr{k}"] = Out(SynapseArraySignature(rows, lanes, rule.code_bits))
        super().__init__(members)

    @property
    def arrs(self) -> list:
        """The array ports ``arr1 ... arr<L>``, input layer first."""
        return [getattr(self, f"arr{k}") for k in range(1, len(self.shapes) + 1)]

    def elaborate(self, platform) -> Module:
        m = Module()
        r, shapes, n_layers = self.rule, self.shapes, len(self.shapes)
        last = n_layers - 1
        n_in, n_h, n_out = r.n_in, r.n_hidden, r.n_out
        tf = r.thr_frac
        upds, arrs = self.upds, self.arrs
        for k, upd in enumerate(upds, start=1):
            m.submodules[f"upd{k}"] = upd
        for name in ("writes", "retries", "failures"):
            m.d.comb += getattr(self, name).eq(sum(getattr(u, name) for u in upds))

        biggest = max(rows for rows, _ in shapes)
        s = _State(
            x_r=Signal(n_in),
            x_sh=Signal(n_in),
            h_sh=Signal(n_h),
            label_r=Signal(range(n_out)),
            train_r=Signal(),
            issue=Signal(range(biggest + 1)),
            got=Signal(range(biggest + 1)),
        )
        # Per layer: accumulators a, thresholds t, centred scores c = a << thr_frac - t (what T
        # and D track), and with learned biases b the scores cb = c - b (what h, the STE mask
        # and the output error use; cb is c without them).
        s.a = [
            [Signal(signed(rows.bit_length() + 1), name=f"a{k + 1}_{j}") for j in range(lanes)]
            for k, (rows, lanes) in enumerate(shapes)
        ]
        s.t = [
            [Signal(signed(THR_BITS), name=f"t{k + 1}_{j}") for j in range(lanes)]
            for k, (_, lanes) in enumerate(shapes)
        ]
        s.c = []
        for k, (_, lanes) in enumerate(shapes):
            cs = [Signal(signed(THR_BITS + 1), name=f"c{k + 1}_{j}") for j in range(lanes)]
            for j in range(lanes):
                m.d.comb += cs[j].eq((s.a[k][j] << tf) - s.t[k][j])
            s.c.append(cs)
            m.d.comb += getattr(self, f"thr{k + 1}").eq(Cat(*s.t[k]))
        self.c_bits = THR_BITS + 1
        s.b, s.cb = [], s.c
        if r.bias_shift:
            self.c_bits = THR_BITS + 2
            s.b = [
                [Signal(signed(BIAS_BITS), name=f"b{k + 1}_{j}") for j in range(lanes)]
                for k, (_, lanes) in enumerate(shapes)
            ]
            s.cb = []
            for k, (_, lanes) in enumerate(shapes):
                cbs = [Signal(signed(self.c_bits), name=f"cb{k + 1}_{j}") for j in range(lanes)]
                m.d.comb += [cbs[j].eq(s.c[k][j] - s.b[k][j]) for j in range(lanes)]
                m.d.comb += getattr(self, f"bias{k + 1}").eq(Cat(*s.b[k]))
                s.cb.append(cbs)
        # Hidden layers with per-neuron STE windows: deviations D, restarted by acc_clear.
        s.d = []
        if r.dev_shift:
            db = dev_bits(r)
            wins = [r.win1] + [r.win_hidden] * (last - 1)
            for k in range(last):
                init = wins[k] << tf
                ds = [Signal(signed(db + 1), init=init, name=f"d{k + 1}_{j}") for j in range(n_h)]
                m.d.comb += getattr(self, f"dev{k + 1}").eq(Cat(*[d[:db] for d in ds]))
                s.d.append((ds, init))
        # Hidden layers: outputs h, STE masks, deltas.
        s.h = [Signal(n_h, name=f"h{k + 1}") for k in range(last)]
        s.mask = [Signal(n_h, name=f"mask{k + 1}") for k in range(last)]
        s.delta = [
            [Signal(signed(w), name=f"delta{k + 1}_{j}") for j in range(n_h)]
            for k, w in enumerate(self.delta_widths)
        ]
        s.e = [Signal(signed(self.e_bits), name=f"e_{k}") for k in range(n_out)]
        s.c_out = [Signal(signed(self.c_bits), name=f"c_out_{k}") for k in range(n_out)]
        # Sensed W_b kept for the backward pass: output layer in registers (as the 784-H-10
        # engine), each hidden-to-hidden layer in a memory (n_hidden x n_hidden bits).
        s.wb_out = Array(Signal(n_out, name=f"wb{n_layers}_{j}") for j in range(n_h))
        s.wb_mem = {}
        for k in range(1, last):
            mem = Memory(shape=n_h, depth=n_h, init=[])
            m.submodules[f"wb{k + 1}_mem"] = mem
            s.wb_mem[k] = (mem.write_port(), mem.read_port())

        self._gradients(m, s)
        with m.FSM() as fsm:
            self._idle(m, s)
            for k in range(n_layers):
                self._forward(m, s, k)
            self._backward(m, s)
            for k in range(last, -1, -1):
                then = f"UPD{k}_GO" if k > 0 else "DONE"
                self._sweep(m, s, k, then)
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        for k, (port, upd) in enumerate(zip(arrs, upds)):
            phase = fsm.ongoing(f"UPD{k + 1}_GO") | fsm.ongoing(f"UPD{k + 1}_WAIT")
            self._route(m, s, port, upd, phase)
        return m

    def _route(self, m, s, port, upd, phase_is_update) -> None:
        # Array ports: the forward reader owns them except during the layer's update phase.
        # The answers (``sense``, ``cmd.ready``) reach the update engine in every phase: it looks
        # at them only while it sweeps, which is inside its phase, and every beat of the forward
        # reader is taken before the phase starts. So no path runs from this engine's state
        # register through the multiplexer into the update engine's commit (at 25 MHz on the
        # ECP5 that path was the critical one).
        m.d.comb += [
            upd.arr.cmd.ready.eq(port.cmd.ready),
            upd.arr.sense.payload.eq(port.sense.payload),
            upd.arr.sense.valid.eq(port.sense.valid),
        ]
        with m.If(phase_is_update):
            m.d.comb += [
                port.cmd.payload.eq(upd.arr.cmd.payload),
                port.cmd.valid.eq(upd.arr.cmd.valid),
                port.sense.ready.eq(upd.arr.sense.ready),
            ]
        with m.Else():
            m.d.comb += [
                port.cmd.payload.op.eq(SynapseOp.READ),
                port.cmd.payload.row.eq(s.issue),
                port.sense.ready.eq(1),
            ]

    def _gradients(self, m, s) -> None:
        # Gradients of the row each update engine asks for on ``grad_row`` (combinational):
        # layer 1 x_i * delta_1 (x in {0, 1}); deeper layers h_j * delta_l (h in +-1); the output
        # layer h_j * e.
        last = len(self.shapes) - 1
        for k, upd in enumerate(self.upds):
            gb = self.grad_bits[k]
            if k == 0:
                x_i = s.x_r.bit_select(upd.grad_row, 1)
                lanes = [Mux(x_i, d, 0)[:gb] for d in s.delta[0]]
            else:
                h_j = s.h[k - 1].bit_select(upd.grad_row, 1)
                src = s.e if k == last else s.delta[k]
                lanes = [Mux(h_j, d, -d)[:gb] for d in src]
            m.d.comb += upd.grad.eq(Cat(*lanes))

    def _idle(self, m, s) -> None:
        with m.State("IDLE"):
            with m.If(self.start):
                m.d.sync += [
                    s.x_r.eq(self.x),
                    s.x_sh.eq(self.x),
                    s.label_r.eq(self.label),
                    s.train_r.eq(self.train),
                    s.issue.eq(0),
                    s.got.eq(0),
                    *[a.eq(0) for a in s.a[0]],
                ]
                m.next = "FWD1"
            with m.Elif(self.thr_load):
                for k, ts in enumerate(s.t):
                    src = getattr(self, f"thr{k + 1}_in")
                    for j, t in enumerate(ts):
                        m.d.sync += t.eq(src[j * THR_BITS : (j + 1) * THR_BITS])
            with m.Elif(self.acc_clear):
                m.next = "CLEAR_GO"
        with m.State("CLEAR_GO"):
            m.d.comb += [self.busy.eq(1), *[u.clear.eq(1) for u in self.upds]]
            # A task start: the deviations D restart at the fixed windows and the learned biases
            # B at 0 with M (the golden learner's reset_moments + reset_deviations +
            # reset_biases).
            for ds, init in s.d:
                m.d.sync += [d.eq(init) for d in ds]
            for bs in s.b:
                m.d.sync += [b.eq(0) for b in bs]
            m.next = "CLEAR_WAIT"
        with m.State("CLEAR_WAIT"):
            m.d.comb += self.busy.eq(1)
            idle = 1
            for u in self.upds:
                idle = idle & ~u.busy
            with m.If(idle):
                m.next = "IDLE"

    def _forward(self, m, s, k: int) -> None:
        # FWD<k+1>: stream the rows of layer k's array, accumulate; FWD<k+1>_END: threshold.
        r, last = self.rule, len(self.shapes) - 1
        rows, lanes = self.shapes[k]
        port = self.arrs[k]
        name = f"FWD{k + 1}"
        with m.State(name):
            m.d.comb += [self.busy.eq(1), port.cmd.valid.eq(s.issue < rows)]
            with m.If(port.cmd.valid & port.cmd.ready):
                m.d.sync += s.issue.eq(s.issue + 1)
            with m.If(port.sense.valid):
                bits = port.sense.payload
                for j in range(lanes):
                    a = s.a[k][j]
                    if k == 0:
                        m.d.sync += a.eq(a + Mux(s.x_sh[0], Mux(bits[j], 1, -1), 0))
                    else:
                        m.d.sync += a.eq(a + Mux(bits[j] == s.h_sh[0], 1, -1))
                if k == 0:
                    m.d.sync += s.x_sh.eq(s.x_sh >> 1)
                else:
                    m.d.sync += s.h_sh.eq(s.h_sh >> 1)
                m.d.sync += s.got.eq(s.got + 1)
                if k == last:
                    m.d.sync += s.wb_out[s.got].eq(bits)
                elif k in s.wb_mem:
                    wr = s.wb_mem[k][0]
                    m.d.comb += [wr.addr.eq(s.got), wr.data.eq(bits), wr.en.eq(1)]
                with m.If(s.got == rows - 1):
                    m.next = f"{name}_END"
        with m.State(f"{name}_END"):
            m.d.comb += self.busy.eq(1)
            c, cb = s.c[k], s.cb[k]
            with m.If(s.train_r):
                for j in range(lanes):
                    m.d.sync += s.t[k][j].eq(s.t[k][j] + (c[j] >> r.thr_shift))
            if k < last:
                win = (r.win1 if k == 0 else r.win_hidden) << r.thr_frac
                for j in range(lanes):
                    if s.d:
                        # Per-neuron window from D before this step's update, which moves D
                        # towards |c| (the centred score, without B) in the same cycle.
                        d = s.d[k][0][j]
                        mag = Mux(cb[j] < 0, -cb[j], cb[j])
                        ok = mag <= ((d * r.dev_quarters) >> 2)
                        cmag = Mux(c[j] < 0, -c[j], c[j])
                        with m.If(s.train_r):
                            m.d.sync += d.eq(d + ((cmag - d) >> r.dev_shift))
                    else:
                        ok = (cb[j] <= win) & (cb[j] >= -win)
                    m.d.sync += [s.h[k][j].eq(cb[j] >= 0), s.mask[k][j].eq(ok)]
                m.d.sync += [
                    s.h_sh.eq(Cat(*[cj >= 0 for cj in cb])),
                    s.issue.eq(0),
                    s.got.eq(0),
                    *[a.eq(0) for a in s.a[k + 1]],
                ]
                m.next = f"FWD{k + 2}"
            else:
                # The scores are registered here and compared in OUT: the threshold subtract
                # and the argmax are two clock periods, not one (the ECP5 critical path).
                m.d.sync += [cr.eq(cj) for cr, cj in zip(s.c_out, cb)]
                m.next = "OUT"
        if k == last:
            with m.State("OUT"):
                m.d.comb += self.busy.eq(1)
                self._output_error(m, s, s.c_out)
                with m.If(s.train_r):
                    m.next = "BWD"
                with m.Else():
                    m.next = "DONE"

    def _output_error(self, m, s, c) -> None:
        # Prediction: first index of the largest centred score (a balanced compare tree, lowest
        # index on ties); multi-class hinge error.
        r, n_out = self.rule, self.rule.n_out
        m.submodules.argmax = argmax = Argmax(n_out, self.c_bits)
        m.d.comb += [argmax.score[k].eq(c[k]) for k in range(n_out)]
        m.d.sync += self.pred.eq(argmax.index)
        c_y = Array(c)[s.label_r]
        viol = Cat(
            *[(c[k] + (r.margin << r.thr_frac) >= c_y) & (s.label_r != k) for k in range(n_out)]
        )
        count = popcount(viol)
        for k in range(n_out):
            m.d.sync += s.e[k].eq(Mux(s.label_r == k, -count, viol[k]))

    def _backward(self, m, s) -> None:
        r, last = self.rule, len(self.shapes) - 1
        n_h = r.n_hidden
        with m.State("BWD"):
            # Last hidden layer, every neuron in one cycle, from the kept output-layer rows.
            m.d.comb += self.busy.eq(1)
            width = self.delta_widths[-1]
            for j in range(n_h):
                terms = [Mux(s.wb_out[j][k], s.e[k], -s.e[k]) for k in range(r.n_out)]
                total = terms[0]
                for t in terms[1:]:
                    total = total + t
                if 2 * (r.n_out - 1) > (1 << (width - 1)) - 1:
                    total = saturate(m, total, width, f"bwd_sat_{j}")
                m.d.sync += s.delta[last - 1][j].eq(Mux(s.mask[last - 1][j], total, 0))
            m.d.sync += [s.issue.eq(0), s.got.eq(0)]
            m.next = f"BWD{last - 1}" if last >= 2 else f"UPD{last + 1}_GO"
        rd_valid = Signal()
        for k in range(last - 2, -1, -1):
            # BWD<k+1>: delta_{k+1} from the kept rows of layer k+2 (memory, one row per cycle;
            # the read port answers one cycle after its address).
            wr, rd = s.wb_mem[k + 1]
            with m.State(f"BWD{k + 1}"):
                m.d.comb += [self.busy.eq(1), rd.addr.eq(s.issue)]
                m.d.sync += rd_valid.eq(s.issue < n_h)
                with m.If(s.issue < n_h):
                    m.d.sync += s.issue.eq(s.issue + 1)
                with m.If(rd_valid):
                    src = s.delta[k + 1]
                    terms = [Mux(rd.data[i], src[i], -src[i]) for i in range(n_h)]
                    total = sum_tree(terms) >> r.back_shift
                    value = saturate(m, total, r.delta_bits, f"bwd{k + 1}_sat")
                    new = Mux(s.mask[k].bit_select(s.got, 1), value, 0)
                    d = s.delta[k]
                    m.d.sync += [*[d[j].eq(d[j + 1]) for j in range(n_h - 1)], d[-1].eq(new)]
                    m.d.sync += s.got.eq(s.got + 1)
                    with m.If(s.got == n_h - 1):
                        m.d.sync += [s.issue.eq(0), s.got.eq(0), rd_valid.eq(0)]
                        m.next = f"BWD{k}" if k >= 1 else f"UPD{last + 1}_GO"

    def _sweep(self, m, s, k: int, then: str) -> None:
        # UPD<k+1>_GO/_WAIT: one start of layer k's update engine, which streams every row (it
        # asks for row j's gradient on ``grad_row``, see ``_gradients``), then wait for done.
        upd = self.upds[k]
        name = f"UPD{k + 1}"
        with m.State(f"{name}_GO"):
            m.d.comb += [self.busy.eq(1), upd.start.eq(1)]
            if s.b and k == len(self.shapes) - 1:
                self._biases(m, s)
            m.next = f"{name}_WAIT"
        with m.State(f"{name}_WAIT"):
            m.d.comb += self.busy.eq(1)
            with m.If(upd.done):
                m.next = then

    def _biases(self, m, s) -> None:
        # B += sgn(delta) (|delta| >> (bias_shift - 1)), every neuron of every layer at once
        # (delta the final masked error, e for the output layer), saturated to BIAS_BITS; in the
        # first update cycle, which the forward pass no longer needs c in.
        sh = self.rule.bias_shift - 1
        srcs = [*s.delta, s.e]
        for k, (bs, ds) in enumerate(zip(s.b, srcs)):
            for j, (b, d) in enumerate(zip(bs, ds)):
                mag = Mux(d < 0, -d, d) >> sh
                total = b + Mux(d < 0, -mag, mag)
                m.d.sync += b.eq(saturate(m, total, BIAS_BITS, f"bias_sat{k + 1}_{j}"))


class _State:
    """The engine's registers, named, shared by the FSM builders of one ``elaborate``."""

    def __init__(self, **signals) -> None:
        self.__dict__.update(signals)
