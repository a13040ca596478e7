"""FixedWriteCode in front of the real synapse emulator (Amaranth simulation).

The emulator's table makes code 2 switch with certainty and codes 1 and 3 never (level 0), so
a ``WRITE`` sent with code 0 (as the digital-mode update engine sends it) flips the weights only
when the adapter sets code 2; ``GATE`` keeps its own code (levels move by it); ``READ`` senses
through the adapter.
"""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from spinapse.rtl.emulated_array import EmulatedSynapseArray
from spinapse.rtl.synapse_array import SynapseOp, command_layout
from spinapse.rtl.write_code import FixedWriteCode

LANES, CODE_BITS, LEVEL_BITS = 4, 2, 2
# table[code][level]: code 2 always switches, every other code never.
TABLE = [[0] * 4, [0] * 4, [65536] * 4, [0] * 4]
SEEDS = [11, 22, 33, 44]


def _cmd(op, row, enable, polarity, codes) -> int:
    layout = command_layout(2, LANES, CODE_BITS)
    fields = {
        "op": op.value,
        "row": row,
        "enable": enable,
        "polarity": polarity,
        "code": sum(c << (CODE_BITS * i) for i, c in enumerate(codes)),
    }
    word = 0
    for name, field in layout:
        word |= fields.get(name, 0) << field.offset  # "col": 0
    return word


def _run(dut, commands):
    """Issue each command (one accepted beat each); return the sensed words of the READs."""
    sensed = []

    async def tb(ctx):
        ctx.set(dut.bus.sense.ready, 1)
        for op, *rest in commands:
            ctx.set(dut.bus.cmd.payload.as_value(), _cmd(op, *rest))
            ctx.set(dut.bus.cmd.valid, 1)
            while not ctx.get(dut.bus.cmd.ready):
                await ctx.tick()
            await ctx.tick()
            ctx.set(dut.bus.cmd.valid, 0)
            if op == SynapseOp.READ:
                while not ctx.get(dut.bus.sense.valid):
                    await ctx.tick()
                sensed.append(ctx.get(dut.bus.sense.payload))
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return sensed


def _emulator():
    return EmulatedSynapseArray(2, LANES, CODE_BITS, LEVEL_BITS, TABLE, SEEDS, [0b0000, 0b1111])


def test_write_with_code_zero_switches_only_through_the_adapter():
    # Row 0 starts at 0000; WRITE towards +1 on lanes 0 and 2, code 0 (the engine's).
    write = (SynapseOp.WRITE, 0, 0b0101, 0b1111, [0, 0, 0, 0])
    read0 = (SynapseOp.READ, 0, 0, 0, [0, 0, 0, 0])
    read1 = (SynapseOp.READ, 1, 0, 0, [0, 0, 0, 0])
    assert _run(_emulator(), [write, read0]) == [0b0000]  # no amplitude: nothing switches
    assert _run(FixedWriteCode(_emulator(), 2), [write, read0, read1]) == [0b0101, 0b1111]
    assert _run(FixedWriteCode(_emulator(), 1), [write, read0]) == [0b0000]  # code 1: p = 0


def test_gate_keeps_its_code():
    dut = FixedWriteCode(_emulator(), 2)
    gate = (SynapseOp.GATE, 1, 0b1111, 0b1111, [1, 3, 0, 2])
    levels = []

    async def tb(ctx):
        ctx.set(dut.peek_row, 1)  # forwarded to the emulator
        ctx.set(dut.bus.cmd.payload.as_value(), _cmd(*gate))
        ctx.set(dut.bus.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.bus.cmd.valid, 0)
        await ctx.tick().repeat(2)  # the emulator writes back in the next cycle, peeks sync
        word = ctx.get(dut.array.peek_levels)
        levels.extend((word >> (LEVEL_BITS * i)) & 3 for i in range(LANES))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert levels == [1, 3, 0, 2]


def test_refuses_codes_outside_the_range():
    with pytest.raises(ValueError, match=r"code must be an int in \[1, 3\]"):
        FixedWriteCode(_emulator(), 4)
    with pytest.raises(ValueError, match=r"code must be an int in \[1, 3\]"):
        FixedWriteCode(_emulator(), 0)
