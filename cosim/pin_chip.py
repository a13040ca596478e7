"""A model chip on the pins of a :class:`~spinapse.rtl.pin_array.PinSynapseArray` (Amaranth
simulator testbench), for tests and cycle measurements of the mixed-signal prototype.

The chip: a 0/1 weight per (row, lane); a ``write_en`` strobe sets every enabled lane with a
nonzero code to its polarity when the strobe falls; ``read_en`` drives the row's bits on
``sense``; on each write it holds ``ready`` low from the strobe until ``busy_cycles`` cycles
after it. It records each strobe's length in cycles and any strobe that starts while it is busy.
"""

from __future__ import annotations


def chip_model(
    pins,
    chip,
    lanes: int,
    strobes: list,
    violations: list,
    code_bits: int = 2,
    busy_cycles: int = 6,
):
    """Testbench coroutine of the model chip.

    Parameters
    ----------
    pins : the ``pins`` member of a ``PinSynapseArray``
    chip : list of list of int
        ``chip[row][lane]``, the weights (updated in place).
    lanes, code_bits : int
        Lanes and code width of the pins.
    strobes, violations : list
        Appended: strobe lengths (cycles) and protocol breaches (strings).
    busy_cycles : int
        Cycles ``ready`` stays low after a write strobe.
    """

    async def bench(ctx):
        # Values after each clock edge; the chip lowers ready as soon as a write strobe rises.
        busy, high, was_write = 0, 0, False
        ctx.set(pins.ready, 1)
        while True:
            await ctx.tick()
            w, g, r = (ctx.get(getattr(pins, n)) for n in ("write_en", "gate_en", "read_en"))
            row = ctx.get(pins.row)
            if w or g or r:
                if high == 0 and busy:
                    violations.append("strobe while the chip was busy")
                high += 1
                was_write = bool(w)
                if w:
                    busy = busy_cycles
                if r:
                    ctx.set(pins.sense, sum(b << i for i, b in enumerate(chip[row])))
            else:
                if high:
                    strobes.append(high)
                    if was_write:
                        e, p, c = (
                            ctx.get(getattr(pins, n)) for n in ("enable", "polarity", "code")
                        )
                        for i in range(lanes):
                            code = (c >> (i * code_bits)) & ((1 << code_bits) - 1)
                            if (e >> i) & 1 and code:
                                chip[row][i] = (p >> i) & 1
                high = 0
                busy = max(0, busy - 1)
            ctx.set(pins.ready, 0 if (busy or w) else 1)

    return bench
