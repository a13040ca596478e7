"""The mixed-signal prototype's pins: a :class:`~spinapse.rtl.pin_array.PinSynapseArray` as a
platform resource ``synapse_array`` on each board's expansion connectors.

iCEBreaker (three PMODs, 3.3 V LVCMOS): 256 rows, 2 lanes, 2-bit codes. ULX3S (GPIO header
``gpio`` 0, 3.3 V): 256 rows, 4 lanes, 2-bit codes, and 8 more address lines (``row_ext``, the
high bits of a 16-bit address) for the training system's serialised rows. Pin by pin:
``docs/fpga_prototype.md``. :func:`add_array_pins` adds the resource;
``platform.request("synapse_array", 0, dir="-")`` then gives the pins to wire to
``PinSynapseArray.pins`` through ``amaranth.lib.io`` buffers, as :class:`PinBank` does for the
training system (a :class:`~spinapse.rtl.lane_serializer.LaneSerializer` in front).
"""

from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module
from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.lib import io, wiring

from spinapse.rtl.pin_array import PinSynapseArray

# (subsignal, direction, pins) per board; pins in connector numbering.
_ICEBREAKER = {
    "conn": "pmod",
    "attrs": {"IO_STANDARD": "SB_LVCMOS"},
    "rows": 256,
    "lanes": 2,
    "code_bits": 2,
    "pins": [
        ("row", "o", 0, "1 2 3 4 7 8 9 10"),
        ("enable", "o", 1, "1 2"),
        ("polarity", "o", 1, "3 4"),
        ("code", "o", 1, "7 8 9 10"),
        ("write_en", "o", 2, "1"),
        ("gate_en", "o", 2, "2"),
        ("read_en", "o", 2, "3"),
        ("ready", "i", 2, "4"),
        ("sense", "i", 2, "7 8"),
    ],
}
_ULX3S = {
    "conn": "gpio",
    "attrs": {"IO_TYPE": "LVCMOS33"},
    "rows": 256,
    "lanes": 4,
    "code_bits": 2,
    "pins": [
        ("row", "o", 0, "0+ 0- 1+ 1- 2+ 2- 3+ 3-"),
        ("enable", "o", 0, "4+ 4- 5+ 5-"),
        ("polarity", "o", 0, "6+ 6- 7+ 7-"),
        ("code", "o", 0, "8+ 8- 9+ 9- 10+ 10- 11+ 11-"),
        ("write_en", "o", 0, "12+"),
        ("gate_en", "o", 0, "12-"),
        ("read_en", "o", 0, "13+"),
        ("ready", "i", 0, "13-"),
        ("sense", "i", 0, "14+ 14- 15+ 15-"),
        ("row_ext", "o", 0, "16+ 16- 17+ 17- 18+ 18- 19+ 19-"),
    ],
}
ARRAY_PINS = {"icebreaker": _ICEBREAKER, "ulx3s-85f": _ULX3S}
"""Per board: connector, I/O standard, array geometry and pins."""


def array_resource(board_name: str) -> Resource:
    """The ``synapse_array`` resource of a board.

    Raises
    ------
    ValueError
        If the board has no pin assignment.
    """
    if board_name not in ARRAY_PINS:
        raise ValueError(f"no synapse-array pins for {board_name!r}; allowed: {sorted(ARRAY_PINS)}")
    spec = ARRAY_PINS[board_name]
    subs = [
        Subsignal(name, Pins(pins, dir=d, conn=(spec["conn"], number)))
        for name, d, number, pins in spec["pins"]
    ]
    return Resource("synapse_array", 0, *subs, Attrs(**spec["attrs"]))


def add_array_pins(platform, board_name: str) -> dict:
    """Add the resource to ``platform``; return the array geometry (rows, lanes, code_bits)."""
    platform.add_resources([array_resource(board_name)])
    spec = ARRAY_PINS[board_name]
    return {k: spec[k] for k in ("rows", "lanes", "code_bits")}


def address_bits(board_name: str) -> int:
    """Address lines of the board's bank: ``row`` plus ``row_ext`` where it has them."""
    spec = ARRAY_PINS[board_name]
    return sum(len(pins.split()) for name, _, _, pins in spec["pins"] if name.startswith("row"))


_OUTPUTS = ("enable", "polarity", "code", "write_en", "gate_en", "read_en")


class PinBank(Elaboratable):
    """A :class:`~spinapse.rtl.lane_serializer.LaneSerializer`'s narrow port on the board's
    ``synapse_array`` pins, through a :class:`~spinapse.rtl.pin_array.PinSynapseArray` (the
    engine's arrays are the serializer's :meth:`~LaneSerializer.views`).

    The narrow row address goes out on ``row`` (low bits) then ``row_ext``; unused high lines
    are driven 0. The resource is added to the platform at elaboration.

    Parameters
    ----------
    board_name : str
        A board of :data:`ARRAY_PINS`.
    serializer : LaneSerializer
        Its ``group`` and ``code_bits`` must be the bank's ``lanes`` and ``code_bits``.
    setup_cycles, pulse_cycles : int
        As :class:`~spinapse.rtl.pin_array.PinSynapseArray`.

    Raises
    ------
    ValueError
        If the board has no bank, the serializer's lanes or codes differ from the bank's, or its
        narrow address needs more lines than the bank has.
    """

    def __init__(self, board_name: str, serializer, setup_cycles: int = 1, pulse_cycles: int = 4):
        if board_name not in ARRAY_PINS:
            raise ValueError(
                f"no synapse-array pins for {board_name!r}; allowed: {sorted(ARRAY_PINS)}"
            )
        spec = ARRAY_PINS[board_name]
        if (serializer.group, serializer.code_bits) != (spec["lanes"], spec["code_bits"]):
            raise ValueError(
                f"{board_name} bank has {spec['lanes']} lanes of {spec['code_bits']}-bit codes; "
                f"the serializer sends {serializer.group} of {serializer.code_bits}"
            )
        need = (serializer.narrow_rows - 1).bit_length()
        have = address_bits(board_name)
        if need > have:
            raise ValueError(
                f"the serialised rows need {need} address lines, the {board_name} bank has {have}"
            )
        self.board_name, self.serializer = board_name, serializer
        self.array = PinSynapseArray(
            serializer.narrow_rows, spec["lanes"], spec["code_bits"], setup_cycles, pulse_cycles
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.serializer = ser = self.serializer
        m.submodules.array = arr = self.array
        wiring.connect(m, ser.narrow, arr.bus)
        add_array_pins(platform, self.board_name)
        res = platform.request("synapse_array", 0, dir="-")
        lines = {name: getattr(arr.pins, name) for name in _OUTPUTS}
        row = arr.pins.row
        width = len(res.row)
        lines["row"] = row[:width]
        if hasattr(res, "row_ext"):
            ext = len(res.row_ext)
            lines["row_ext"] = Cat(row[width:], Const(0, max(0, ext - len(row[width:]))))[:ext]
        for name, value in lines.items():
            m.submodules[f"{name}_buffer"] = buf = io.Buffer("o", getattr(res, name))
            m.d.comb += buf.o.eq(value)
        for name in ("sense", "ready"):
            m.submodules[f"{name}_buffer"] = buf = io.Buffer("i", getattr(res, name))
            m.d.comb += getattr(arr.pins, name).eq(buf.i)
        return m
