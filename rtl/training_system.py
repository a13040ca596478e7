"""The training engine wired to its synapse arrays: the unit that co-simulation and emulation run.

Array kinds behind the ``SynapseArray`` ports (chosen at build time):

- digital mode: :class:`~spinapse.rtl.stochastic_array.StochasticSynapseArray` with a run-time
  single-pulse success ``p_success / 256`` (``256``: the ideal deterministic array);
- device mode: :class:`~spinapse.rtl.hidden_state_array.HiddenStateSynapseArray`.

The host members of :class:`~spinapse.rtl.training_engine.TrainingEngine` are forwarded, plus
per-layer views of one row (``peek_row1`` ... ``peek_row<L>``, one per weight layer): sensed bits,
accumulators ``M``, and ``W_h`` (digital mode: the engine's memory; device mode: the array's hidden
state). The engine's memories (``M``, digital ``W_h``) are block RAM: they answer one clock after
``peek_row`` is set, while the engine is idle; the arrays' views (bits, hidden state) answer in
the same cycle. Set the row, wait one clock, then read all of them.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.hidden_state_array import HiddenStateSynapseArray
from spinapse.rtl.stochastic_array import StochasticSynapseArray
from spinapse.rtl.training_engine import TrainingEngine, host_members, layer_shapes


def _row_word(bits) -> int:
    return sum(1 << k for k, b in enumerate(bits) if b)


def digital_arrays(rule, init_wh, seeds) -> list[StochasticSynapseArray]:
    """The binary arrays of a digital-mode system, one per weight layer: seeded stochastic
    writes (run-time ``p_success`` in 1/256; 256 is the ideal array), ``W_b`` initialised to
    ``init_wh >= 0``.

    Parameters
    ----------
    rule : IntegerRule
    init_wh : sequence of ``L`` array-like of int
        Initial ``W_h`` of each layer, ``[rows, lanes]`` of :func:`layer_shapes`.
    seeds : sequence of ``L`` sequences of int
        Lane seeds (``golden.integer_model.array_models.lane_seeds``) of each layer.
    """
    return [
        StochasticSynapseArray(
            rows,
            lanes,
            rule.code_bits,
            seeds[k],
            init=[_row_word(int(w) >= 0 for w in row) for row in init_wh[k]],
        )
        for k, (rows, lanes) in enumerate(layer_shapes(rule))
    ]


def hidden_state_arrays(rule, init_wh, seeds, tables=None) -> list[HiddenStateSynapseArray]:
    """The arrays of a device-mode system, one per weight layer: the hidden state ``h`` in the
    array, gate pulses applied with the f_meta probability of the layer's table, ``W_b = h >= 0``.

    Parameters
    ----------
    rule : IntegerRule
    init_wh : sequence of ``L`` array-like of int
        Initial hidden states of each layer, ``[rows, lanes]`` of :func:`layer_shapes`.
    seeds : sequence of ``L`` sequences of int
        Lane seeds of each layer (``lane_seeds``).
    tables : sequence of ``L`` sequences of int, optional
        f_meta table of each layer (default ``rule.tables()``).
    """
    tables = rule.tables() if tables is None else tables
    return [
        HiddenStateSynapseArray(
            rows,
            lanes,
            rule.code_bits,
            rule.wh_bits,
            tables[k],
            rule.index_shift,
            seeds[k],
            [[int(v) for v in row] for row in init_wh[k]],
        )
        for k, (rows, lanes) in enumerate(layer_shapes(rule))
    ]


class TrainingSystem(wiring.Component):
    """Training engine plus one array per weight layer (``L = n_hidden_layers + 1``).

    Parameters
    ----------
    rule : object
        Integer rule constants (attributes of ``golden.integer_model.learning.IntegerRule``).
    mode : str
        ``"digital"`` (binary arrays) or ``"device"`` (hidden-state arrays).
    tables : sequence of ``L`` sequences of int
        f_meta table of each layer (engine in digital mode, arrays in device mode).
    init_wh : sequence of ``L`` lists of list of int
        Initial ``W_h`` of each layer, ``[rows][lanes]`` of
        :func:`~spinapse.rtl.training_engine.layer_shapes` (``[n_in][n_hidden]``, ...,
        ``[n_hidden][n_out]``).
    seeds : sequence of ``L`` sequences of int
        Lane seeds of each array (``golden.integer_model.learning.array_lane_seeds``).

    Members
    -------
    x, label, start, train, busy, done, pred, thr<l>, thr_load, thr<l>_in, acc_clear,
    writes, retries, failures
        As :class:`TrainingEngine`.
    p_success : In(9)
        Digital mode only: write success of every binary array in 1/256, in [0, 256].
    peek_row<l> : In(range(rows_l)); peek_bits<l> : Out(lanes_l); peek_acc<l>, peek_wh<l> : Out
        One per layer ``l = 1..L``; lane ``i`` of a packed word at ``[i * bits, (i + 1) * bits)``,
        two's complement; ``peek_acc`` (and ``peek_wh`` in digital mode) one clock after
        ``peek_row``.

    Raises
    ------
    ValueError
        If the mode is unknown, ``tables``/``init_wh``/``seeds`` do not hold one entry per layer,
        or a part rejects its parameters.
    """

    def __init__(self, rule, mode, tables, init_wh, seeds) -> None:
        if mode not in ("digital", "device"):
            raise ValueError(f"mode must be 'digital' or 'device', got {mode!r}")
        self.rule, self.mode = rule, mode
        self.shapes = shapes = layer_shapes(rule)
        for name, value in (("tables", tables), ("init_wh", init_wh), ("seeds", seeds)):
            if len(value) != len(shapes):
                raise ValueError(f"{name} must hold {len(shapes)} layers, got {len(value)}")
        if mode == "digital":
            self.engine = TrainingEngine(rule, mode, tables, init_wh)
            self.arrays = digital_arrays(rule, init_wh, seeds)
        else:
            self.engine = TrainingEngine(rule, mode, tables)
            self.arrays = hidden_state_arrays(rule, init_wh, seeds, tables)
        members = host_members(rule)
        if mode == "digital":
            members["p_success"] = In(9)
        for k, (rows, lanes) in enumerate(shapes, start=1):
            members[f"peek_row{k}"] = In(range(rows))
            members[f"peek_bits{k}"] = Out(lanes)
            members[f"peek_acc{k}"] = Out(lanes * rule.acc_bits)
            members[f"peek_wh{k}"] = Out(lanes * rule.wh_bits)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.engine = eng = self.engine
        for k, (arr, port) in enumerate(zip(self.arrays, eng.arrs), start=1):
            m.submodules[f"arr{k}"] = arr
            wiring.connect(m, port, arr.bus)
        if self.mode == "digital":
            for arr in self.arrays:
                m.d.comb += arr.p_success.eq(self.p_success)
        for name, member in host_members(self.rule).items():
            if member.flow == In:
                m.d.comb += getattr(eng, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(eng, name))
        for k, (arr, upd) in enumerate(zip(self.arrays, eng.upds), start=1):
            row = getattr(self, f"peek_row{k}")
            m.d.comb += [
                arr.peek_row.eq(row),
                upd.peek_row.eq(row),
                getattr(self, f"peek_bits{k}").eq(arr.peek_bits),
                getattr(self, f"peek_acc{k}").eq(upd.peek_acc),
            ]
            wh = upd.peek_wh if self.mode == "digital" else arr.peek_h
            m.d.comb += getattr(self, f"peek_wh{k}").eq(wh)
        return m
