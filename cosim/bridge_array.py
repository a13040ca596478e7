"""RTL half of the co-simulation bridge: a ``SynapseArray`` whose pulses the host resolves.

:class:`BridgeSynapseArray` is the fourth implementation behind
:class:`~spinapse.rtl.synapse_array.SynapseArraySignature` (beside the ideal, stochastic and
hidden-state arrays), chosen at build time by :class:`~spinapse.cosim.bridge_system.BridgeSystem`.
It keeps a mirror of the sensed bits, one word per row, and answers ``READ`` from it at full
speed (timing of :class:`~spinapse.rtl.synapse_array.IdealSynapseArray`).

- ``WRITE`` (digital mode) with any enabled lane is latched on the ``pulse_*`` members and the
  array stalls (``cmd.ready`` low) until the host (cocotb, :mod:`spinapse.cosim.tb_bridge`) has
  applied that whole row's pulses to the physics models and returns the row's new bits on
  ``host_bits`` with a one-cycle ``host_ack``; the next command then sees them (write-verify
  reads the physics' result).
- ``GATE`` (device mode) is accepted at once and shown for one cycle on ``gate_beat`` (the
  payload stays on ``bus``): the owner logs it (:class:`~spinapse.cosim.bridge_system.
  BridgeSystem` keeps a per-row log memory) and the host applies a whole step's beats after
  ``done``. No stall is needed: the update engine sends at most one ``GATE`` per row per step
  and never reads a layer after updating it within the step, so the next step's forward pass is
  the first to see the new bits, which the host loads before starting it.

The mirror memory may belong to the owner (``memory=``): :class:`~spinapse.cosim.bridge_system.
BridgeSystem` keeps both in its top module, where the host writes rows directly through VPI
(initial weights, resume, and after each device-mode step the rows whose bits changed) without
simulated time. Host ports: ``peek_row``/``peek_bits`` show a row combinationally; ``reads``
counts accepted ``READ`` beats.
"""

from __future__ import annotations

from amaranth import Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp


class BridgeSynapseArray(wiring.Component):
    """Mirror of the sensed bits with host-resolved pulses.

    Parameters
    ----------
    rows, lanes, code_bits : int
        As :class:`~spinapse.rtl.synapse_array.SynapseArraySignature`.
    memory : amaranth.lib.memory.Memory, optional
        The mirror (``lanes`` bits wide, ``rows`` deep), added to the design by the caller;
        default: the array's own, whose rows the host cannot write.

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits))
    pulse_valid : Out(1)
        High from the cycle after a ``WRITE`` beat was accepted until ``host_ack``.
    gate_beat : Out(1)
        A ``GATE`` beat is accepted in this cycle (combinational).
    pulse_op : Out(2); pulse_row : Out(range(rows)); pulse_enable, pulse_polarity : Out(lanes)
    pulse_code : Out(lanes * code_bits)
        The latched beat (``SynapseOp`` value, lane ``l`` at bit ``l`` / at ``[l*b, (l+1)*b)``).
    host_ack : In(1); host_bits : In(lanes)
        Row ``pulse_row`` becomes ``host_bits``; ``pulse_valid`` falls in the same edge.
    peek_row : In(range(rows)); peek_bits : Out(lanes)
    reads : Out(32)

    Raises
    ------
    ValueError
        If a parameter is outside the signature's ranges, or ``memory`` has another shape.
    """

    def __init__(self, rows: int, lanes: int, code_bits: int, memory: Memory | None = None) -> None:
        sig = SynapseArraySignature(rows, lanes, code_bits)
        if memory is not None:
            width = Shape.cast(memory.shape).width
            if memory.depth != rows or width != lanes:
                raise ValueError(
                    f"memory must be {lanes} bits x {rows} rows, got {width} x {memory.depth}"
                )
        self.memory = memory
        super().__init__(
            {
                "bus": In(sig),
                "pulse_valid": Out(1),
                "pulse_op": Out(2),
                "pulse_row": Out(range(rows)),
                "pulse_enable": Out(lanes),
                "pulse_polarity": Out(lanes),
                "pulse_code": Out(lanes * code_bits),
                "host_ack": In(1),
                "host_bits": In(lanes),
                "peek_row": In(range(rows)),
                "peek_bits": Out(lanes),
                "reads": Out(32),
                "gate_beat": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        sig = self.bus.signature
        cmd, sense = self.bus.cmd, self.bus.sense
        mem = self.memory
        if mem is None:
            m.submodules.mem = mem = Memory(shape=sig.lanes, depth=sig.rows, init=[])
        rd = mem.read_port(domain="comb")
        peek = mem.read_port(domain="comb")
        wr = mem.write_port()
        acked = Signal()
        m.d.comb += [
            rd.addr.eq(cmd.payload.row),
            peek.addr.eq(self.peek_row),
            self.peek_bits.eq(peek.data),
            cmd.ready.eq((~sense.valid | sense.ready) & ~self.pulse_valid),
            acked.eq(self.pulse_valid & self.host_ack),
        ]
        with m.If(acked):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(self.pulse_row), wr.data.eq(self.host_bits)]
            m.d.sync += self.pulse_valid.eq(0)
        with m.If(sense.valid & sense.ready):
            m.d.sync += sense.valid.eq(0)
        with m.If(cmd.valid & cmd.ready):
            p = cmd.payload
            with m.Switch(p.op):
                with m.Case(SynapseOp.READ):
                    m.d.sync += [
                        sense.payload.eq(rd.data),
                        sense.valid.eq(1),
                        self.reads.eq(self.reads + 1),
                    ]
                with m.Case(SynapseOp.GATE):
                    m.d.comb += self.gate_beat.eq(1)
                with m.Case(SynapseOp.WRITE):
                    with m.If(p.enable != 0):
                        m.d.sync += [
                            self.pulse_valid.eq(1),
                            self.pulse_op.eq(p.op),
                            self.pulse_row.eq(p.row),
                            self.pulse_enable.eq(p.enable),
                            self.pulse_polarity.eq(p.polarity),
                            self.pulse_code.eq(p.code),
                        ]
        return m
