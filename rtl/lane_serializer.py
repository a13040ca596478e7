"""Wide ``SynapseArray`` ports over one narrow one: a training engine's rows on a pin bank.

A training engine senses and pulses whole rows (``n_hidden`` lanes for layer 1, ``n_out`` for
layer 2), but a board's connector carries the lines of a few lanes only (the pin bank of
:class:`~spinapse.rtl.pin_array.PinSynapseArray`: 4 lanes on the ULX3S). :class:`LaneSerializer`
takes the engine's ports ``bus1 ... busN`` (``rows_k x lanes_k``) and moves each command over
one ``narrow`` port of ``group`` lanes, one lane group after the other:

- lane group ``g`` of port ``k``'s row ``r`` is the narrow row ``(k << (R + G)) | (r << G) | g``
  (``G`` bits of group, ``R`` of row, ``K`` of port; widths in :attr:`LaneSerializer.fields`),
  so the chip decodes port, row and lane group from the address lines;
- ``READ``: one narrow ``READ`` per group, ``g = 0, 1, ...``; the sensed bits are gathered and
  the wide ``sense`` beat is answered after the last group;
- ``WRITE``/``GATE``: one narrow command per group with at least one ``enable`` lane; groups with
  none are skipped (a write-verify pulse usually touches a few lanes);
- lanes above ``lanes_k`` in the last group are sent disabled (and sensed bits there dropped).

Timing: a wide command is accepted in ``IDLE`` (``cmd.ready`` high on the lowest-numbered port
that offers one, and only while no wide answer is waiting); ``cmd.ready`` is low on every port
while its groups go out. Each group takes one narrow transfer (the narrow array's own time, for
a pin bank ``1 + setup_cycles + pulse_cycles`` cycles and the chip's ``ready``), plus one cycle
here per group; a wide ``READ`` of ``n`` groups is answered ``n (t_narrow + 1) + 1`` cycles
after it was accepted. Ordering and visibility follow from the single narrow port: a pulse
reaches the chip before any later command.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.synapse_array import SynapseArraySignature, SynapseOp


def _bits(n: int) -> int:
    return max(0, (n - 1).bit_length())


class LaneSerializer(wiring.Component):
    """Several wide array ports over one ``group``-lane port (see the module docstring).

    Parameters
    ----------
    shapes : sequence of (int, int)
        ``(rows, lanes)`` of each wide port, ``bus1`` first (a training engine's
        ``layer_shapes``).
    code_bits : int
        Pulse-code width per lane, as :class:`SynapseArraySignature`.
    group : int
        Lanes of the narrow port, >= 1.

    Members
    -------
    bus1 ... busN : In(SynapseArraySignature(rows_k, lanes_k, code_bits))
        The engine's ports.
    narrow : Out(SynapseArraySignature(narrow_rows, group, code_bits))
        To the pin bank; ``narrow_rows = 2 ** (K + R + G)``.

    Raises
    ------
    ValueError
        If ``shapes`` is empty, ``group`` < 1, or the narrow address needs more than 16 bits.
    """

    def __init__(self, shapes, code_bits: int, group: int) -> None:
        self.shapes = [(int(r), int(n)) for r, n in shapes]
        if not self.shapes:
            raise ValueError("shapes must name at least one (rows, lanes) port")
        if not (isinstance(group, int) and group >= 1):
            raise ValueError(f"group must be an int >= 1 (lanes of the pin bank), got {group!r}")
        self.group, self.code_bits = group, code_bits
        self.n_groups = [-(-lanes // group) for _, lanes in self.shapes]
        self.fields = {
            "group": _bits(max(self.n_groups)),
            "row": _bits(max(rows for rows, _ in self.shapes)),
            "port": _bits(len(self.shapes)),
        }
        width = sum(self.fields.values())
        if width > 16:
            raise ValueError(
                f"the narrow row address needs {width} bits (port {self.fields['port']}, row "
                f"{self.fields['row']}, lane group {self.fields['group']}); at most 16: use a "
                "wider group"
            )
        self.narrow_rows = 1 << width
        members = {
            f"bus{k}": In(SynapseArraySignature(rows, lanes, code_bits))
            for k, (rows, lanes) in enumerate(self.shapes, start=1)
        }
        members["narrow"] = Out(SynapseArraySignature(self.narrow_rows, group, code_bits))
        super().__init__(members)

    @property
    def buses(self) -> list:
        """The wide ports ``bus1 ... busN``."""
        return [getattr(self, f"bus{k}") for k in range(1, len(self.shapes) + 1)]

    def views(self) -> list:
        """One :class:`PortView` per wide port: the array object an engine (or
        :class:`~spinapse.rtl.uart_training.UartTrainingSystem`) is given for that layer."""
        return [PortView(self, k) for k in range(len(self.shapes))]

    def narrow_row(self, port: int, row: int, group: int) -> int:
        """Narrow row address of lane group ``group`` of row ``row`` of port ``port`` (0-based)."""
        f = self.fields
        return (port << (f["row"] + f["group"])) | (row << f["group"]) | group

    def elaborate(self, platform) -> Module:
        m = Module()
        gl, cb = self.group, self.code_bits
        buses, narrow = self.buses, self.narrow
        n_ports = len(buses)
        wide = max(self.n_groups) * gl  # lanes of the padded row
        f = self.fields

        port = Signal(range(max(2, n_ports)))
        op = Signal(SynapseOp)
        row = Signal(max(1, f["row"]))
        enable, polarity = Signal(wide), Signal(wide)
        code = Signal(wide * cb)
        g = Signal(range(max(self.n_groups) + 1))
        last_g = Array(Const(n - 1, g.shape()) for n in self.n_groups)[port]
        sensed = Signal(wide)
        pending = Signal(n_ports)  # a wide sense beat waiting on that port

        for k, bus in enumerate(buses):
            with m.If(bus.sense.valid & bus.sense.ready):
                m.d.sync += pending[k].eq(0)
            lanes = self.shapes[k][1]
            m.d.comb += [bus.sense.valid.eq(pending[k]), bus.sense.payload.eq(sensed[:lanes])]

        group_en = enable.word_select(g, gl)
        addr = [g[: f["group"]], row[: f["row"]], port[: f["port"]]]
        m.d.comb += [
            narrow.cmd.payload.op.eq(op),
            narrow.cmd.payload.row.eq(Cat(*[a for a in addr if len(a)])),
            narrow.cmd.payload.enable.eq(group_en),
            narrow.cmd.payload.polarity.eq(polarity.word_select(g, gl)),
            narrow.cmd.payload.code.eq(code.word_select(g, gl * cb)),
        ]

        with m.FSM():
            with m.State("IDLE"):
                # The lowest-numbered port that offers a command; none while an answer waits.
                chosen = Signal(n_ports)
                for k, bus in enumerate(buses):
                    first = bus.cmd.valid & ~Cat(*[b.cmd.valid for b in buses[:k]]).any()
                    m.d.comb += chosen[k].eq(first & ~pending.any())
                for k, bus in enumerate(buses):
                    m.d.comb += bus.cmd.ready.eq(chosen[k])
                    with m.If(chosen[k]):
                        p = bus.cmd.payload
                        m.d.sync += [
                            port.eq(k),
                            op.eq(p.op),
                            row.eq(p.row),
                            enable.eq(p.enable),
                            polarity.eq(p.polarity),
                            code.eq(p.code),
                            g.eq(0),
                        ]
                        m.next = "ISSUE"
            with m.State("ISSUE"):
                skip = (op != SynapseOp.READ) & (group_en == 0)
                m.d.comb += narrow.cmd.valid.eq(~skip)
                with m.If(skip | narrow.cmd.ready):
                    with m.If(~skip & (op == SynapseOp.READ)):
                        m.next = "SENSE"
                    with m.Elif(g == last_g):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += g.eq(g + 1)
            with m.State("SENSE"):
                m.d.comb += narrow.sense.ready.eq(1)
                with m.If(narrow.sense.valid):
                    m.d.sync += sensed.word_select(g, gl).eq(narrow.sense.payload)
                    with m.If(g == last_g):
                        m.d.sync += pending.eq(Const(1, n_ports) << port)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += g.eq(g + 1)
                        m.next = "ISSUE"
        return m


class PortView(wiring.Component):
    """Port ``index`` of a :class:`LaneSerializer` as an array component of its own (a ``bus``
    member, as every array has), so that a system that is given its arrays can be given these;
    the serializer itself is elaborated where its narrow side is wired (the board top).

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits)) of that port
    """

    def __init__(self, serializer: LaneSerializer, index: int) -> None:
        self.serializer, self.index = serializer, index
        rows, lanes = serializer.shapes[index]
        super().__init__({"bus": In(SynapseArraySignature(rows, lanes, serializer.code_bits))})

    def elaborate(self, platform) -> Module:
        m = Module()
        wiring.connect(m, wiring.flipped(self.bus), self.serializer.buses[self.index])
        return m
