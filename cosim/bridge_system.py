"""The training engine wired to two bridge arrays: the unit of the full-system co-simulation.

Same engine as :class:`~spinapse.rtl.training_system.TrainingSystem` (not a fork: the unchanged
:class:`~spinapse.rtl.training_engine.TrainingEngine`), with
:class:`~spinapse.cosim.bridge_array.BridgeSynapseArray` behind both ``SynapseArray`` ports, so
that every binary weight and hidden state lives in the torch device models on the host side.
Members: the engine's host members, per layer ``k`` the bridge's host ports suffixed ``k``
(``pulse_valid1``, ``host_bits2``, ...), the engine's ``peek_acc{k}`` / ``peek_wh{k}`` (digital
mode) on ``peek_row{k}``, and ``host_wait`` (a pulse of either layer waits for the host).

Device mode: the ``GATE`` beats of a step are logged here, in the top module so that the host
reads them directly through VPI (``log{k}[row]``: ``enable``, ``polarity``, ``code`` packed
``Cat``-wise, lane ``l`` at bit ``l`` of each field), with ``gated{k}`` (bit ``r``: row ``r`` got a
beat since the last ``start``). One host call per step then applies them all.
"""

from __future__ import annotations

from amaranth import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.cosim.bridge_array import BridgeSynapseArray
from spinapse.rtl.training_engine import TrainingEngine, host_members

_HOST_IN = ("host_ack", "host_bits", "load_en", "load_row", "load_bits")
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
        self.arrays = [BridgeSynapseArray(r, lanes, rule.code_bits) for r, lanes in shapes]
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
        m.submodules.engine = eng = self.engine
        m.submodules.arr1, m.submodules.arr2 = self.arrays
        wiring.connect(m, eng.arr1, self.arrays[0].bus)
        wiring.connect(m, eng.arr2, self.arrays[1].bus)
        for name, member in host_members(self.rule).items():
            if member.flow == In:
                m.d.comb += getattr(eng, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(eng, name))
        for k, (arr, upd) in enumerate(zip(self.arrays, (eng.upd1, eng.upd2)), start=1):
            row = getattr(self, f"peek_row{k}")
            m.d.comb += [arr.peek_row.eq(row), upd.peek_row.eq(row)]
            for name in _HOST_IN:
                m.d.comb += getattr(arr, name).eq(getattr(self, f"{name}{k}"))
            for name in _HOST_OUT:
                m.d.comb += getattr(self, f"{name}{k}").eq(getattr(arr, name))
            m.d.comb += getattr(self, f"peek_acc{k}").eq(upd.peek_acc)
            if self.mode == "digital":
                m.d.comb += getattr(self, f"peek_wh{k}").eq(upd.peek_wh)
            else:
                self._gate_log(m, k, arr, row)
        m.d.comb += self.host_wait.eq(self.arrays[0].pulse_valid | self.arrays[1].pulse_valid)
        return m

    def _gate_log(self, m: Module, k: int, arr, peek_row) -> None:
        # The log sits in this (top) module: Verilator keeps top-level memories visible to VPI
        # with --public-depth 1, so the host reads a step's rows without simulated time.
        sig = arr.bus.signature
        log = Memory(shape=sig.lanes * (2 + sig.code_bits), depth=sig.rows, init=[])
        m.submodules[f"log{k}"] = log
        wr = log.write_port()
        peek = log.read_port(domain="comb")
        p = arr.bus.cmd.payload
        gated = getattr(self, f"gated{k}")
        m.d.comb += [
            wr.en.eq(arr.gate_beat),
            wr.addr.eq(p.row),
            wr.data.eq(Cat(p.enable, p.polarity, p.code)),
            peek.addr.eq(peek_row),
            getattr(self, f"peek_log{k}").eq(peek.data),
        ]
        with m.If(self.start):
            m.d.sync += gated.eq(0)
        with m.Elif(arr.gate_beat):
            m.d.sync += gated.bit_select(p.row, 1).eq(1)
