"""``SynapseArray`` on pins: the engine drives an external spintronic array (mixed-signal).

:class:`PinSynapseArray` implements the engine side of :class:`SynapseArraySignature` by
forwarding every command to a chip through pins: the row address, per-lane ``enable``,
``polarity`` and ``code`` lines (the pulse drivers' inputs), one strobe per operation
(``write_en``: write-current pulse, ``gate_en``: gate-voltage pulse, ``read_en``: sense bias) and
the chip's ``ready`` and per-lane ``sense`` comparator outputs. Both inputs are asynchronous and
pass a 2-flip-flop synchroniser.

Sequence of one accepted command (clock cycles of the engine):

1. the address and lane lines change (held until the next command);
2. ``setup_cycles`` later the op's strobe rises and stays high ``pulse_cycles`` cycles (the pulse
   width; for ``READ`` the sense window); a ``READ`` samples the synchronised ``sense`` in the
   last cycle of the window (the comparators must be settled ``pulse_cycles - 2`` cycles after
   the strobe rises) and answers on ``sense`` (the stream) in the next cycle;
3. the strobe falls; the next command is accepted when the chip's synchronised ``ready`` is high
   (``cmd.ready`` low until then).

Pin table of the boards: ``docs/fpga_prototype.md``.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp


def pin_signature(rows: int, lanes: int, code_bits: int) -> wiring.Signature:
    """The pins, seen from the FPGA: outputs ``row``, ``enable``, ``polarity``, ``code``,
    ``write_en``, ``gate_en``, ``read_en``; inputs ``sense`` (``lanes``) and ``ready``."""
    return wiring.Signature(
        {
            "row": Out(max(1, (rows - 1).bit_length())),
            "enable": Out(lanes),
            "polarity": Out(lanes),
            "code": Out(lanes * code_bits),
            "write_en": Out(1),
            "gate_en": Out(1),
            "read_en": Out(1),
            "sense": In(lanes),
            "ready": In(1),
        }
    )


class PinSynapseArray(wiring.Component):
    """A synapse array outside the FPGA, behind ``SynapseArray`` (sequence in the module docstring).

    Parameters
    ----------
    rows, lanes, code_bits : int
        As :class:`SynapseArraySignature`.
    setup_cycles : int
        Cycles from the address/lane lines to the strobe, >= 1.
    pulse_cycles : int
        Strobe width in cycles, >= 3 (the sense synchroniser takes two).

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits))
    pins : Out(pin_signature(rows, lanes, code_bits))

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(
        self, rows: int, lanes: int, code_bits: int, setup_cycles: int = 1, pulse_cycles: int = 4
    ) -> None:
        sig = SynapseArraySignature(rows, lanes, code_bits)
        if not (isinstance(setup_cycles, int) and setup_cycles >= 1):
            raise ValueError(f"setup_cycles must be an int >= 1, got {setup_cycles!r}")
        if not (isinstance(pulse_cycles, int) and pulse_cycles >= 3):
            raise ValueError(f"pulse_cycles must be an int >= 3, got {pulse_cycles!r}")
        self.setup_cycles, self.pulse_cycles = setup_cycles, pulse_cycles
        super().__init__({"bus": In(sig), "pins": Out(pin_signature(rows, lanes, code_bits))})

    def elaborate(self, platform) -> Module:
        m = Module()
        cmd, sense, pins = self.bus.cmd, self.bus.sense, self.pins
        lanes = self.bus.signature.lanes
        ready = Signal()
        sensed = Signal(lanes)
        m.submodules.sync_ready = FFSynchronizer(pins.ready, ready)
        m.submodules.sync_sense = FFSynchronizer(pins.sense, sensed)
        op = Signal(SynapseOp)
        timer = Signal(range(max(self.setup_cycles, self.pulse_cycles) + 1))
        with m.If(sense.valid & sense.ready):
            m.d.sync += sense.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += cmd.ready.eq(ready & (~sense.valid | sense.ready))
                with m.If(cmd.valid & cmd.ready):
                    p = cmd.payload
                    m.d.sync += [
                        pins.row.eq(p.row),
                        pins.enable.eq(p.enable),
                        pins.polarity.eq(p.polarity),
                        pins.code.eq(p.code),
                        op.eq(p.op),
                        timer.eq(self.setup_cycles - 1),
                    ]
                    m.next = "SETUP"
            with m.State("SETUP"):
                with m.If(timer == 0):
                    m.d.sync += timer.eq(self.pulse_cycles - 1)
                    m.next = "PULSE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("PULSE"):
                m.d.comb += [
                    pins.write_en.eq(op == SynapseOp.WRITE),
                    pins.gate_en.eq(op == SynapseOp.GATE),
                    pins.read_en.eq(op == SynapseOp.READ),
                ]
                with m.If(timer == 0):
                    with m.If(op == SynapseOp.READ):
                        m.d.sync += [sense.payload.eq(sensed), sense.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m
