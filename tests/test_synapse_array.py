"""The SynapseArray signature and the three array models behind it.

Each RTL array runs in Amaranth's simulator under a random command stream (seeded below, random
idle cycles between commands) and is compared with a reference: a plain dict for the ideal
array, the golden models of ``golden/integer_model/array_models.py`` for the seeded ones (bit for
bit, draws included). ``lowbias32`` is checked against an independent transcription of the published
C code.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Const
from amaranth.sim import Simulator

from spinapse.golden.integer_model.array_models import (
    BinaryArrayModel,
    HiddenStateArrayModel,
    lane_seeds,
    lowbias32,
)
from spinapse.golden.integer_model.fmeta_table import fmeta_table
from spinapse.rtl.hidden_state_array import HiddenStateSynapseArray
from spinapse.rtl.lowbias32 import lowbias32 as lowbias32_rtl
from spinapse.rtl.stochastic_array import StochasticSynapseArray
from spinapse.rtl.synapse_array import IdealSynapseArray, SynapseArraySignature, SynapseOp


def _lowbias32_c(x: int) -> int:
    # Transcribed from hash-prospector's README (C. Wellons): uint32_t arithmetic.
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def test_lowbias32_golden_and_rtl_equal_reference():
    values = [0, 1, 2, 0xDEADBEEF, 0xFFFFFFFF, 123456789]
    assert [int(v) for v in lowbias32(np.array(values))] == [_lowbias32_c(v) for v in values]

    async def bench(ctx):
        for v in values:
            assert ctx.get(lowbias32_rtl(Const(v, 32))) == _lowbias32_c(v)

    from amaranth import Module

    sim = Simulator(Module())
    sim.add_testbench(bench)
    sim.run()


def test_signature_members_and_validation():
    sig = SynapseArraySignature(784, 64, 4)
    assert set(sig.members.keys()) == {"cmd", "sense"}
    assert sig == SynapseArraySignature(784, 64, 4) != SynapseArraySignature(784, 32, 4)
    layout = sig.members["cmd"].signature.members["payload"].shape
    assert {n for n, _ in layout} == {"op", "row", "col", "enable", "polarity", "code"}
    for bad in ((0, 4, 4), (4, 0, 4), (4, 4, 9)):
        with pytest.raises(ValueError):
            SynapseArraySignature(*bad)


def _drive(dut, commands, rng, answers, before=None, after=None):
    """Send ``commands`` (op, row, enable, polarity, code) with random gaps; collect answers."""

    async def bench(ctx):
        bus = dut.bus
        if before is not None:
            await before(ctx)
        ctx.set(bus.sense.ready, 1)
        for op, row, en, pol, code in commands:
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick()
            ctx.set(bus.cmd.payload.op, op)
            ctx.set(bus.cmd.payload.row, row)
            ctx.set(bus.cmd.payload.enable, en)
            ctx.set(bus.cmd.payload.polarity, pol)
            ctx.set(bus.cmd.payload.code, code)
            ctx.set(bus.cmd.valid, 1)
            await ctx.tick().until(bus.cmd.ready)
            ctx.set(bus.cmd.valid, 0)
            if op == SynapseOp.READ:
                _, _, valid, data = await ctx.tick().sample(bus.sense.valid, bus.sense.payload)
                while not valid:
                    _, _, valid, data = await ctx.tick().sample(bus.sense.valid, bus.sense.payload)
                answers.append(data)
        if after is not None:
            await after(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _bits(word: int, lanes: int) -> np.ndarray:
    return np.array([(word >> k) & 1 for k in range(lanes)], dtype=bool)


def _word(bits) -> int:
    return sum(1 << k for k, b in enumerate(bits) if b)


def test_ideal_array_reads_what_was_written():
    rows, lanes = 5, 6
    rng = np.random.default_rng(11)
    init = [int(v) for v in rng.integers(0, 1 << lanes, rows)]
    state = {r: init[r] for r in range(rows)}
    commands, expected = [], []
    for _ in range(60):
        op = int(rng.integers(0, 3))
        row, en, pol = int(rng.integers(rows)), int(rng.integers(64)), int(rng.integers(64))
        commands.append((op, row, en, pol, int(rng.integers(1 << 24))))
        if op == SynapseOp.READ:
            expected.append(state[row])
        elif op == SynapseOp.WRITE:
            state[row] = (state[row] & ~en) | (pol & en)
    answers = []
    _drive(IdealSynapseArray(rows, lanes, 4, init=init), commands, rng, answers)
    assert answers == expected


def test_stochastic_array_matches_golden_draw_for_draw():
    rows, lanes, p = 4, 8, 128
    rng = np.random.default_rng(12)
    init = rng.integers(0, 2, (rows, lanes)).astype(bool)
    seeds = lane_seeds(7, lanes)
    model = BinaryArrayModel(init, p, seeds)
    dut = StochasticSynapseArray(rows, lanes, 2, seeds, init=[_word(r) for r in init])
    commands, expected = [], []
    for _ in range(80):
        op = SynapseOp.READ if rng.random() < 0.4 else SynapseOp.WRITE
        row = int(rng.integers(rows))
        en, pol = rng.random(lanes) < 0.5, rng.random(lanes) < 0.5
        commands.append((op, row, _word(en), _word(pol), 0))
        if op == SynapseOp.READ:
            expected.append(_word(model.sense()[row]))
        else:
            model.write(row, en, pol)
    expected += [_word(model.sense()[r]) for r in range(rows)]
    answers = []

    async def before(ctx):
        ctx.set(dut.p_success, p)  # a run-time input

    async def after(ctx):
        for row in range(rows):
            ctx.set(dut.peek_row, row)
            answers.append(ctx.get(dut.peek_bits))

    _drive(dut, commands, rng, answers, before=before, after=after)
    assert answers == expected
    assert 0 < int(model.rng.count.sum()) < 80 * lanes


def test_hidden_state_array_matches_golden_draw_for_draw():
    rows, lanes, hb, code_bits = 3, 5, 8, 3
    rng = np.random.default_rng(13)
    table = fmeta_table(1.35, hb, 4, 2)
    init = rng.integers(-40, 40, (rows, lanes))
    seeds = lane_seeds(9, lanes)
    model = HiddenStateArrayModel(init, hb, table, 2, seeds)
    dut = HiddenStateSynapseArray(rows, lanes, code_bits, hb, table, 2, seeds, init.tolist())
    commands, expected = [], []
    for _ in range(120):
        row = int(rng.integers(rows))
        if rng.random() < 0.3:
            commands.append((SynapseOp.READ, row, 0, 0, 0))
            expected.append(_word(model.sense()[row]))
            continue
        en = rng.random(lanes) < 0.7
        pol = rng.random(lanes) < 0.5
        code = rng.integers(0, 1 << code_bits, lanes) * en
        packed = sum(int(c) << (k * code_bits) for k, c in enumerate(code))
        commands.append((SynapseOp.GATE, row, _word(en), _word(pol), packed))
        pol_m = np.zeros((rows, lanes), dtype=bool)
        code_m = np.zeros((rows, lanes), dtype=np.int64)
        pol_m[row], code_m[row] = pol, code
        model.gate_all(pol_m, code_m)
    answers = []
    _drive(dut, commands, rng, answers)
    assert answers == expected
    assert int(model.rng.count.sum()) > 20  # shrinking pulses were drawn for
    assert np.abs(model.h).max() <= 127
