"""A fixed write-pulse code between a digital-mode engine and a pulse-code synapse array.

The digital-mode update engine (:mod:`spinapse.rtl.update_engine`) decides *which* synapses to
write (write-verify of ``W_b`` against ``W_h >= 0``) but sends its ``WRITE`` pulses with code 0:
an ideal or stochastic binary array needs no amplitude. A device-like array such as
:class:`~spinapse.rtl.emulated_array.EmulatedSynapseArray` switches with a probability that
depends on the pulse code (the write current). :class:`FixedWriteCode` passes every command
through unchanged except that a ``WRITE`` carries ``code`` in every lane: the pulse amplitude is
a build-time choice, and write-verify retries the synapses that did not switch. ``READ`` and
``GATE`` keep their codes; ``sense`` is passed back untouched. No register, no latency.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp


class FixedWriteCode(wiring.Component):
    """``array`` behind a port that sets the code of every lane of each ``WRITE`` to ``code``.

    Parameters
    ----------
    array : Component
        A synapse array with a ``bus`` member (``In(SynapseArraySignature(...))``); its
        ``peek_row``/``peek_bits`` members, when it has them, are forwarded.
    code : int
        The write code, in ``[1, 2**code_bits - 1]`` of the array's signature.

    Members
    -------
    bus : In(array.bus.signature)
        The engine's port (same geometry as the array's).
    peek_row : In(range(rows)); peek_bits : Out(lanes)
        Only when ``array`` has them.

    Raises
    ------
    ValueError
        If ``code`` is outside ``[1, 2**code_bits - 1]`` or ``array`` has no ``bus``.
    """

    def __init__(self, array, code: int) -> None:
        members = array.signature.members
        if "bus" not in members:
            raise ValueError("array must have a 'bus' member (a SynapseArraySignature port)")
        bus = members["bus"]
        sig = bus.signature.flip() if bus.flow == In else bus.signature
        if bus.flow != In or not isinstance(sig, SynapseArraySignature):
            raise ValueError(f"array.bus must be In(SynapseArraySignature(...)), got {bus!r}")
        if not (isinstance(code, int) and 1 <= code < (1 << sig.code_bits)):
            raise ValueError(
                f"code must be an int in [1, {(1 << sig.code_bits) - 1}], got {code!r}"
            )
        self.array, self.code = array, code
        self.lanes, self.code_bits = sig.lanes, sig.code_bits
        own = {"bus": bus}
        for name in ("peek_row", "peek_bits"):
            if name in members:
                own[name] = members[name]
        super().__init__(own)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.array = array = self.array
        src, dst = self.bus.cmd, array.bus.cmd
        fixed = Cat(*[Const(self.code, self.code_bits)] * self.lanes)
        m.d.comb += [
            dst.valid.eq(src.valid),
            src.ready.eq(dst.ready),
            dst.payload.eq(src.payload),
            dst.payload.code.eq(Mux(src.payload.op == SynapseOp.WRITE, fixed, src.payload.code)),
            self.bus.sense.valid.eq(array.bus.sense.valid),
            self.bus.sense.payload.eq(array.bus.sense.payload),
            array.bus.sense.ready.eq(self.bus.sense.ready),
        ]
        if "peek_row" in self.signature.members:
            m.d.comb += array.peek_row.eq(self.peek_row)
        if "peek_bits" in self.signature.members:
            m.d.comb += self.peek_bits.eq(array.peek_bits)
        return m
