"""``PinSynapseArray`` against a model chip on its pins (Amaranth simulator).

The chip model: a 0/1 weight per (row, lane); a ``write_en`` strobe sets every enabled lane with a
nonzero code to its polarity; ``read_en`` drives the row's bits on ``sense``; on each write it
holds ``ready`` low from the strobe until 6 cycles after it. Random commands (seed 5) must give
the reads of a plain Python array, every strobe must last exactly ``pulse_cycles`` and no strobe
may start while the chip is not ready.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from spinapse.rtl.pin_array import PinSynapseArray
from spinapse.rtl.synapse_array import SynapseOp, command_layout

ROWS, LANES, CODE_BITS = 8, 3, 2


def _payload(op, row, enable, polarity, codes) -> int:
    layout = command_layout(ROWS, LANES, CODE_BITS)
    code = sum(k << (i * CODE_BITS) for i, k in enumerate(codes))
    fields = dict(op=op.value, row=row, col=0, enable=enable, polarity=polarity, code=code)
    return sum(v << layout[n].offset for n, v in fields.items())


def test_commands_reach_the_chip_and_reads_return():
    dut = PinSynapseArray(ROWS, LANES, CODE_BITS, setup_cycles=2, pulse_cycles=5)
    rng = random.Random(5)
    commands = []
    for _ in range(60):
        op = rng.choice([SynapseOp.READ, SynapseOp.WRITE, SynapseOp.GATE])
        codes = [rng.randrange(4) for _ in range(LANES)]
        commands.append((op, rng.randrange(ROWS), rng.randrange(8), rng.randrange(8), codes))
    # The expected reads, from a plain Python array.
    ref = [[0] * LANES for _ in range(ROWS)]
    expected = []
    for op, row, en, pol, codes in commands:
        if op == SynapseOp.READ:
            expected.append(sum(b << i for i, b in enumerate(ref[row])))
        elif op == SynapseOp.WRITE:
            for i in range(LANES):
                if (en >> i) & 1 and codes[i]:
                    ref[row][i] = (pol >> i) & 1
    chip = [[0] * LANES for _ in range(ROWS)]
    strobes, reads, violations = [], [], []

    async def chip_model(ctx):
        # Values after each clock edge; the chip lowers ready as soon as a write strobe rises.
        busy, high, was_write = 0, 0, False
        ctx.set(dut.pins.ready, 1)
        while True:
            await ctx.tick()
            w, g, r = (ctx.get(getattr(dut.pins, n)) for n in ("write_en", "gate_en", "read_en"))
            row = ctx.get(dut.pins.row)
            if w or g or r:
                if high == 0 and busy:
                    violations.append("strobe while the chip was busy")
                high += 1
                was_write = bool(w)
                if w:
                    busy = 6
                if r:
                    ctx.set(dut.pins.sense, sum(b << i for i, b in enumerate(chip[row])))
            else:
                if high:
                    strobes.append(high)
                    if was_write:
                        e, p, c = (
                            ctx.get(getattr(dut.pins, n)) for n in ("enable", "polarity", "code")
                        )
                        for i in range(LANES):
                            if (e >> i) & 1 and (c >> (i * CODE_BITS)) & 3:
                                chip[row][i] = (p >> i) & 1
                high = 0
                busy = max(0, busy - 1)
            ctx.set(dut.pins.ready, 0 if (busy or w) else 1)

    async def engine(ctx):
        ctx.set(dut.bus.sense.ready, 1)
        for op, row, en, pol, codes in commands:
            ctx.set(dut.bus.cmd.payload.as_value(), _payload(op, row, en, pol, codes))
            ctx.set(dut.bus.cmd.valid, 1)
            await ctx.tick().until(dut.bus.cmd.ready)
            ctx.set(dut.bus.cmd.valid, 0)
            if op == SynapseOp.READ:
                await ctx.tick().until(dut.bus.sense.valid)
                reads.append(ctx.get(dut.bus.sense.payload))
        await ctx.tick().repeat(20)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(chip_model, background=True)
    sim.add_testbench(engine)
    sim.run()
    assert reads == expected
    assert len(strobes) == len(commands) and set(strobes) == {5}
    assert violations == []
