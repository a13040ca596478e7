"""Cycles of the training engine on pins: 784-H-10 through LaneSerializer and PinSynapseArray.

The engine (digital mode, initial ``W_h`` of seed 0) drives both layers over the ULX3S bank's 4
lanes (setup 1, pulse 4 cycles) into the model chip of :mod:`spinapse.cosim.pin_chip` (busy 6
cycles after each write strobe), in Amaranth's simulator: two training steps and one inference
on random pixels (density 0.2, seed 0). Prints cycles and strobes per step. A few minutes of
CPU for H = 32.

    python benchmarks/pin_training_cycles.py [H]
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from spinapse.cosim.pin_chip import chip_model
from spinapse.golden.integer_model.learning import IntegerRule, initial_w_h
from spinapse.rtl.lane_serializer import LaneSerializer
from spinapse.rtl.pin_array import PinSynapseArray
from spinapse.rtl.training_engine import TrainingEngine
from spinapse.rtl.write_code import FixedWriteCode


def main(hidden: int = 32) -> None:
    rule = dataclasses.replace(IntegerRule(), n_in=784, n_hidden=hidden, n_out=10, code_bits=2)
    init = initial_w_h(rule, 0)
    ser = LaneSerializer(rule.layer_shapes(), 2, 4)
    pins = PinSynapseArray(ser.narrow_rows, 4, 2, setup_cycles=1, pulse_cycles=4)
    eng = TrainingEngine(rule, "digital", rule.tables(), [w.tolist() for w in init])
    top = Module()
    top.submodules.eng, top.submodules.ser, top.submodules.pins = eng, ser, pins
    wiring.connect(top, ser.narrow, pins.bus)
    for view, port in zip(ser.views(), eng.arrs):
        coded = FixedWriteCode(view, 2)
        top.submodules[f"layer{view.index + 1}"] = coded
        wiring.connect(top, port, coded.bus)
    chip = [[0] * 4 for _ in range(ser.narrow_rows)]
    for k, layer in enumerate(init):
        for r, ws in enumerate(layer):
            for lane, w in enumerate(ws):
                chip[ser.narrow_row(k, r, lane // 4)][lane % 4] = int(w >= 0)
    strobes, violations = [], []
    rng = np.random.default_rng(0)

    async def run(ctx, train: bool) -> int:
        x = rng.random(784) < 0.2
        ctx.set(eng.x, int(sum(1 << i for i in range(784) if x[i])))
        ctx.set(eng.label, 3)
        ctx.set(eng.train, int(train))
        ctx.set(eng.start, 1)
        await ctx.tick()
        ctx.set(eng.start, 0)
        cycles = 1
        while not ctx.get(eng.done):
            await ctx.tick()
            cycles += 1
        await ctx.tick()
        return cycles

    async def bench(ctx):
        for step in range(2):
            before = len(strobes)
            cycles = await run(ctx, True)
            print(f"step {step}: {cycles} cycles, {len(strobes) - before} strobes", flush=True)
        print(f"inference: {await run(ctx, False)} cycles", flush=True)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(chip_model(pins.pins, chip, 4, strobes, violations), background=True)
    sim.add_testbench(bench)
    sim.run()
    print("protocol violations:", violations or "none")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 32)
