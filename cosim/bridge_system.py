"""The training engine wired to two bridge arrays: the unit of the full-system co-simulation.

Same engine as :class:`~spinapse.rtl.training_system.TrainingSystem` (not a fork: the unchanged
:class:`~spinapse.rtl.training_engine.TrainingEngine`), with
:class:`~spinapse.cosim.bridge_array.BridgeSynapseArray` behind both ``SynapseArray`` ports, so
that every binary weight and hidden state lives in the torch device models on the host side.
Members: the engine's host members, per layer ``k`` the bridge's host ports suffixed ``k``
(``pulse_valid1``, ``host_bits2``, ...), the engine's ``peek_acc{k}`` / ``peek_wh{k}`` (digital
mode) on ``peek_row{k}``, and ``host_wait`` (a pulse of either layer waits for the host).

The arrays' mirrors of the sensed bits are memories of this (top) module, ``mirror{k}[row]``
(lane ``l`` at bit ``l``): the host writes initial weights and changed rows into them through VPI,
without simulated time, while the engine is idle.

Device mode: the ``GATE`` beats of a step are logged here, in the top module so that the host
reads them directly through VPI (``log{k}[row]``: ``enable``, ``polarity``, ``code`` packed
``Cat``-wise, lane ``l`` at bit ``l`` of each field), with ``gated{k}`` (bit ``r``: row ``r`` got a
beat since the last ``start``). One host call per step then applies them all.
"""

from __future__ import annotations

from amaranth import Cat, ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.cosim.bridge_array import BridgeSynapseArray
from spinapse.rtl.training_engine import TrainingEngine, host_members

PERIOD_NS = 10
"""Clock period of the co-simulation (ns); the design generates its own clock
(:func:`spinapse.cosim.bridge_case.bridge_verilog`)."""

INPUT_LATENCY = 1
"""Cycles between a host input (``start``, ``x``, ``thr_load``, ``host_ack``, ...) at the top
module's port and the engine or array that takes it (a register stage of :class:`_Shell`); only
``peek_row`` acts at once."""

OUTPUT_LATENCY = 1
"""Cycles by which the outputs the host reads while the engine is idle (``pred``, ``thr*``, the
counters, ``reads*``, ``gated*``, the peeks) trail the engine; ``busy``, ``done``, ``host_wait``
and the ``pulse_*`` members act at once."""

_HOST_IN = ("host_ack", "host_bits")
_HOST_OUT = (
    "pulse_valid",
    "pulse_op",
    "pulse_row",
    "pulse_enable",
    "pulse_polarity",
    "pulse_code",
    "peek_bits",
    "reads",
)


class BridgeSystem(wiring.Component):
    """Training engine plus two host-resolved arrays.

    Parameters
    ----------
    rule : object
        Integer rule constants (``golden.integer_model.learning.IntegerRule``).
    mode : str
        ``"digital"`` (``W_h`` in the engine, write-verify) or ``"device"`` (gate pulses).
    tables : pair of sequence of int
        f_meta tables (used by the engine in digital mode).
    init_wh : pair of list of list of int, optional
        Initial ``W_h`` of the engine (digital mode); the arrays' bits are loaded by the host.
    waves_port : bool
        Add an input ``waves_on`` (unused by the logic): the waveform build
        (:func:`spinapse.cosim.bridge_case.bridge_verilog`) starts its trace on its rising edge.

    Raises
    ------
    ValueError
        If the mode is unknown or a part rejects its parameters.
    """

    def __init__(self, rule, mode, tables, init_wh=None, waves_port: bool = False) -> None:
        if mode not in ("digital", "device"):
            raise ValueError(f"mode must be 'digital' or 'device', got {mode!r}")
        self.rule, self.mode = rule, mode
        self.engine = TrainingEngine(rule, mode, tables, init_wh if mode == "digital" else None)
        shapes = [(rule.n_in, rule.n_hidden), (rule.n_hidden, rule.n_out)]
        self.mirrors = [Memory(shape=lanes, depth=r, init=[]) for r, lanes in shapes]
        self.arrays = [
            BridgeSynapseArray(r, lanes, rule.code_bits, memory=mem)
            for (r, lanes), mem in zip(shapes, self.mirrors)
        ]
        members = host_members(rule)
        for k, arr in enumerate(self.arrays, start=1):
            for name, member in arr.signature.members.items():
                if name in _HOST_IN or name in _HOST_OUT or name == "peek_row":
                    members[f"{name}{k}"] = member
            rows, lanes = shapes[k - 1]
            members[f"peek_acc{k}"] = Out(lanes * rule.acc_bits)
            if mode == "digital":
                members[f"peek_wh{k}"] = Out(lanes * rule.wh_bits)
            if mode == "device":
                members[f"gated{k}"] = Out(rows)
                members[f"peek_log{k}"] = Out(lanes * (2 + rule.code_bits))
        members["host_wait"] = Out(1)
        if waves_port:
            members["waves_on"] = In(1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.shell = shell = _Shell(self)
        # The mirrors of the sensed bits, in this (top) module so that the host writes their
        # rows through VPI; the arrays below read and write them through their ports.
        m.submodules.mirror1, m.submodules.mirror2 = self.mirrors
        for name, member in self.signature.members.items():
            if name == "waves_on" or name.startswith("peek_log"):
                continue
            if member.flow == In:
                m.d.comb += getattr(shell, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(shell, name))
        if self.mode == "device":
            for k in (1, 2):
                self._gate_log(m, k, shell)
        return m

    def _gate_log(self, m: Module, k: int, shell) -> None:
        # The log sits in this (top) module: Verilator keeps top-level memories visible to VPI
        # with --public-depth 1, so the host reads a step's rows without simulated time.
        sig = self.arrays[k - 1].bus.signature
        log = Memory(shape=sig.lanes * (2 + sig.code_bits), depth=sig.rows, init=[])
        m.submodules[f"log{k}"] = log
        wr = log.write_port()
        peek = log.read_port(domain="comb")
        m.d.comb += [
            wr.en.eq(getattr(shell, f"gate_beat{k}")),
            wr.addr.eq(getattr(shell, f"gate_row{k}")),
            wr.data.eq(getattr(shell, f"gate_data{k}")),
            peek.addr.eq(getattr(self, f"peek_row{k}")),
            getattr(self, f"peek_log{k}").eq(peek.data),
        ]


class _Shell(wiring.Component):
    """Engine and arrays one level below the ports-only top, on a registered reset.

    Verilator re-evaluates, on every evaluation of the model (at least twice per clock), all
    logic that reads a top-level input or a public signal; with ``--public-depth 1`` every
    signal of the top module is public. With the engine wired in the top module, and every
    register's next state reading ``rst`` (a top input), that was nearly the whole design, so
    the model cost about 9 us per cycle. Here the wiring between engine and arrays sits one
    level down, and the reset the engine sees is a register of ``rst`` (one cycle later,
    invisible to the host); every host input but ``peek_row`` passes a register
    (``INPUT_LATENCY``), and so does every output the host reads only while the engine is idle
    (``OUTPUT_LATENCY``): a register exported straight to a port shares storage with the public
    top-level wire, which put the logic reading it back into the input region. Same idea as
    :class:`spinapse.cosim.engine_cosim._PortsOnlyTop`.
    """

    def __init__(self, system: BridgeSystem) -> None:
        self.system = system
        members = {
            name: member
            for name, member in system.signature.members.items()
            if name != "waves_on" and not name.startswith("peek_log")
        }
        if system.mode == "device":
            for k, arr in enumerate(system.arrays, start=1):
                sig = arr.bus.signature
                members[f"gate_beat{k}"] = Out(1)
                members[f"gate_row{k}"] = Out(range(sig.rows))
                members[f"gate_data{k}"] = Out(sig.lanes * (2 + sig.code_bits))
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        sys_ = self.system
        m.domains.core = core = ClockDomain("core", local=True)
        rst_q = Signal(init=1, reset_less=True)
        m.d.sync += rst_q.eq(ResetSignal("sync"))
        m.d.comb += [core.clk.eq(ClockSignal("sync")), core.rst.eq(rst_q)]
        eng = sys_.engine
        arrays = sys_.arrays
        m.submodules.engine = DomainRenamer("core")(eng)
        m.submodules.arr1 = DomainRenamer("core")(arrays[0])
        m.submodules.arr2 = DomainRenamer("core")(arrays[1])
        wiring.connect(m, eng.arr1, arrays[0].bus)
        wiring.connect(m, eng.arr2, arrays[1].bus)
        held = {}

        def hold(name: str):
            # One register stage (no reset): logic that reads a host input leaves Verilator's
            # input region; every host input but peek_row reaches the engine and the arrays
            # INPUT_LATENCY cycles later, in the order the host sent it.
            port = getattr(self, name)
            held[name] = q = Signal.like(port, name=f"{name}_q", reset_less=True)
            m.d.sync += q.eq(port)
            return q

        def show(name: str, value) -> None:
            # Outputs the host reads only while the engine is idle (counters, thresholds, the
            # prediction, peeks, the gate-log flags) pass one register: exported directly, the
            # register behind them would share storage with the public top-module wire, and the
            # logic that reads it would join Verilator's input region (OUTPUT_LATENCY).
            port = getattr(self, name)
            q = Signal.like(port, name=f"{name}_r", reset_less=True)
            m.d.sync += q.eq(value)
            m.d.comb += port.eq(q)

        for name, member in host_members(sys_.rule).items():
            if member.flow == In:
                m.d.comb += getattr(eng, name).eq(hold(name))
            elif name in ("busy", "done"):
                m.d.comb += getattr(self, name).eq(getattr(eng, name))
            else:
                show(name, getattr(eng, name))
        for k, (arr, upd) in enumerate(zip(arrays, (eng.upd1, eng.upd2)), start=1):
            row = getattr(self, f"peek_row{k}")
            m.d.comb += [arr.peek_row.eq(row), upd.peek_row.eq(row)]
            for name in _HOST_IN:
                m.d.comb += getattr(arr, name).eq(hold(f"{name}{k}"))
            for name in _HOST_OUT:
                if name in ("reads", "peek_bits"):
                    show(f"{name}{k}", getattr(arr, name))
                else:
                    m.d.comb += getattr(self, f"{name}{k}").eq(getattr(arr, name))
            show(f"peek_acc{k}", upd.peek_acc)
            if sys_.mode == "digital":
                show(f"peek_wh{k}", upd.peek_wh)
            else:
                p = arr.bus.cmd.payload
                m.d.comb += [
                    getattr(self, f"gate_beat{k}").eq(arr.gate_beat),
                    getattr(self, f"gate_row{k}").eq(p.row),
                    getattr(self, f"gate_data{k}").eq(Cat(p.enable, p.polarity, p.code)),
                ]
                gated = Signal(len(getattr(self, f"gated{k}")), name=f"gated{k}_core")
                with m.If(held["start"]):
                    m.d.core += gated.eq(0)
                with m.Elif(arr.gate_beat):
                    m.d.core += gated.bit_select(p.row, 1).eq(1)
                show(f"gated{k}", gated)
        m.d.comb += self.host_wait.eq(arrays[0].pulse_valid | arrays[1].pulse_valid)
        return m
