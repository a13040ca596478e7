"""A fixed write-pulse code in front of an array: digital-mode engines on code-driven arrays.

The training engine in digital mode sends ``WRITE`` pulses with ``enable``/``polarity`` only (its
``code`` field is 0: an ideal or seeded binary array ignores it). Arrays whose pulse strength
is a per-lane code -- :class:`~spinapse.rtl.emulated_array.EmulatedSynapseArray` (switching
probability ``table[code][level]``, code 0 = no pulse) or the pulse drivers behind
:class:`~spinapse.rtl.pin_array.PinSynapseArray` -- need one. :class:`WriteCodeArray` wraps such
an array and sets every lane's code of a ``WRITE`` to a build-time constant (the write current
the lab chose for write-verify); other commands pass unchanged. Timing is the wrapped array's
(the adapter is combinational).
"""

from __future__ import annotations

from amaranth import Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from spinapse.rtl.synapse_array import SynapseOp

_FORWARDED = ("peek_row", "peek_bits", "peek_levels", "peek_h")


class WriteCodeArray(wiring.Component):
    """``array`` with every ``WRITE`` pulse's lane codes set to ``code``.

    Parameters
    ----------
    array : component
        Any array with a ``bus`` member (``In(SynapseArraySignature)``); its ``peek_row``,
        ``peek_bits``, ``peek_levels`` and ``peek_h`` members, where present, are forwarded.
    code : int
        Pulse code of every lane of a ``WRITE``, in ``[1, 2**code_bits - 1]``.

    Members
    -------
    bus : In(SynapseArraySignature)
        Same signature as ``array.bus``.

    Raises
    ------
    ValueError
        If ``code`` is out of range.
    """

    def __init__(self, array, code: int) -> None:
        sig = array.bus.signature.flip()
        top = (1 << sig.code_bits) - 1
        if not (isinstance(code, int) and 1 <= code <= top):
            raise ValueError(f"code must be an int in [1, {top}], got {code!r}")
        self.array, self.code = array, code
        members = {"bus": In(sig)}
        for name in _FORWARDED:
            if name in array.signature.members:
                members[name] = array.signature.members[name]
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.array = arr = self.array
        sig = self.bus.signature.flip()
        cmd, inner = self.bus.cmd, arr.bus.cmd
        word = sum(self.code << (lane * sig.code_bits) for lane in range(sig.lanes))
        codes = Const(word, sig.lanes * sig.code_bits)
        m.d.comb += [
            inner.valid.eq(cmd.valid),
            cmd.ready.eq(inner.ready),
            inner.payload.eq(cmd.payload),
            inner.payload.code.eq(Mux(cmd.payload.op == SynapseOp.WRITE, codes, cmd.payload.code)),
            self.bus.sense.valid.eq(arr.bus.sense.valid),
            self.bus.sense.payload.eq(arr.bus.sense.payload),
            arr.bus.sense.ready.eq(self.bus.sense.ready),
        ]
        for name in _FORWARDED:
            if name in self.signature.members:
                if name == "peek_row":
                    m.d.comb += arr.peek_row.eq(self.peek_row)
                else:
                    m.d.comb += getattr(self, name).eq(getattr(arr, name))
        return m
