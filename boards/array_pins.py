"""The mixed-signal prototype's pins: a :class:`~spinapse.rtl.pin_array.PinSynapseArray` as a
platform resource ``synapse_array`` on each board's expansion connectors.

iCEBreaker (three PMODs, 3.3 V LVCMOS): 256 rows, 2 lanes, 2-bit codes. ULX3S (GPIO header
``gpio`` 0, 3.3 V): 256 rows, 4 lanes, 2-bit codes. Pin by pin: ``docs/fpga_prototype.md``.
:func:`add_array_pins` adds the resource; ``platform.request("synapse_array", 0, dir="-")`` then
gives the pins to wire to ``PinSynapseArray.pins`` through ``amaranth.lib.io`` buffers.
"""

from __future__ import annotations

from amaranth.build import Attrs, Pins, Resource, Subsignal

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
