"""The training system's host link (protocol version 2) end to end, against the golden model.

Expected replies are built by hand from the protocol table of :mod:`spinapse.rtl.training_link`
and from :class:`spinapse.golden.integer_model.learning.IntegerEngine` (its steps, predictions,
thresholds, state and counters), not from the link's code. A 64-8-4 engine (digital mode) keeps
the Verilator builds small; seeds below.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spinapse.boards.training_driver import TrainingDriver
from spinapse.cosim.runner import run_cocotb
from spinapse.cosim.tb_uart_link import write_link_case
from spinapse.cosim.uart_sim import SimTransport
from spinapse.golden.integer_model.array_models import BinaryArrayModel, lane_seeds
from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, initial_w_h
from spinapse.rtl.uart_training import UartTrainingSystem, digital_arrays, model_id
from spinapse.rtl.verilog import convert

RULE = dataclasses.replace(IntegerRule(), n_in=64, n_hidden=8, n_out=4, dead_zone=0, lr_shift=1)
SEEDS = [lane_seeds(2 + k, n) for k, n in enumerate((RULE.n_hidden, RULE.n_out))]


def _golden(init_wh, p_success: int) -> IntegerEngine:
    arrays = [BinaryArrayModel(w >= 0, p_success, s) for w, s in zip(init_wh, SEEDS)]
    eng = IntegerEngine(RULE, "digital", arrays=arrays)
    for k in (0, 1):
        eng.w_h[k][...] = init_wh[k]
    return eng


def _le(value: int, n: int) -> list[int]:
    return list(int(value).to_bytes(n, "little", signed=value < 0))


def _packed(values, bits: int, nbytes: int) -> list[int]:
    word = sum((int(v) & ((1 << bits) - 1)) << (k * bits) for k, v in enumerate(values))
    return list(word.to_bytes(nbytes, "little"))


def _row_reply(eng: IntegerEngine, layer: int, row: int) -> list[int]:
    # 'P': W_b bits (1 byte for 8 lanes), W_h 8 x 10 bits = 10 bytes, M 8 x 10 bits = 10 bytes.
    k = layer - 1
    return [
        ord("P"),
        *_packed(eng.w_b()[k][row], 1, 1),
        *_packed(eng.w_h[k][row], 10, 10),
        *_packed(eng.acc[k][row], 10, 10),
    ]


def test_training_protocol_through_uart_pins_cocotb(tmp_path):
    """cocotbext-uart on rx/tx: identify, thresholds in and out, write success 200/256, 12
    training steps, 6 inferences, counters, rows of both layers, accumulator clear, an unknown
    opcode, counter clear; every reply byte checked (all but the 4 busy-cycle bytes)."""
    rng = np.random.default_rng(61)
    init_wh = initial_w_h(RULE, 3)
    model = model_id(RULE, "digital", init_wh)
    eng = _golden(init_wh, 200)
    t1, t2 = rng.integers(-300, 300, 8), rng.integers(-40, 40, 4)
    # Info block by hand: n_in 64, n_hidden 8, n_out 4 (2 bytes each), digital (0), wh_bits 10,
    # acc_bits 10, threshold bits 18, thr_frac 2, write success supported (1), model (4 bytes).
    info = [64, 0, 8, 0, 4, 0, 0, 10, 10, 18, 2, 1, *_le(model, 4)]
    thr_bytes = [b for v in (*t1, *t2) for b in _le(int(v), 3)]
    commands = [(b"I", [ord("I"), 2, *info]), (b"S" + bytes([200, 0]), [ord("S")])]
    commands.append((b"T" + bytes(thr_bytes), [ord("T")]))
    commands.append((b"U", [ord("U"), *thr_bytes]))
    eng.thr = [t1.astype(np.int64), t2.astype(np.int64)]
    xs = rng.integers(0, 2, (18, 64)).astype(np.uint8)
    ys = rng.integers(0, 4, 18)
    for x, y in zip(xs[:12], ys[:12]):
        pred = eng.step(x.astype(bool), int(y))
        img = np.packbits(x, bitorder="little").tobytes()
        commands.append((b"L" + img + bytes([int(y)]), [ord("L"), pred]))
    for x in xs[12:]:
        pred = int(eng.predict(x[None, :].astype(bool))[0])
        commands.append((b"X" + np.packbits(x, bitorder="little").tobytes(), [ord("R"), pred]))
    thr_now = [b for v in (*eng.thr[0], *eng.thr[1]) for b in _le(int(v), 3)]
    commands.append((b"U", [ord("U"), *thr_now]))
    c = eng.counters
    assert c.writes > 0 and c.retries > 0  # the case exercises write-verify
    counts = [*_le(12, 4), *_le(6, 4), *_le(c.writes, 4), *_le(c.retries, 4), *_le(c.failures, 4)]
    commands.append((b"C", [ord("C"), *counts, None, None, None, None, 0, 0, 0, 0]))
    for layer, row in ((1, 0), (1, 63), (2, 5)):
        commands.append((b"P" + bytes([layer, row, 0]), _row_reply(eng, layer, row)))
    commands.append((b"A", [ord("A")]))
    for a in eng.acc:
        a[...] = 0
    commands.append((b"P" + bytes([1, 17, 0]), _row_reply(eng, 1, 17)))
    commands += [(b"q", [ord("?"), ord("q")]), (b"Z", [ord("Z")])]
    commands.append((b"C", [ord("C"), *([0] * 28)]))
    divisor = 4
    case, out = tmp_path / "case.json", tmp_path / "out.json"
    write_link_case(case, divisor, commands, window=1)
    system = UartTrainingSystem(
        RULE,
        "digital",
        RULE.tables(),
        [w.tolist() for w in init_wh],
        digital_arrays(RULE, init_wh, SEEDS),
        divisor,
        model,
    )
    run_cocotb(
        name=f"uart_training_{RULE.n_in}-{RULE.n_hidden}-{RULE.n_out}_d{divisor}",
        verilog=convert(system, "uart_system"),
        toplevel="uart_system",
        test_module="spinapse.cosim.tb_uart_link",
        extra_env={"SPINAPSE_TB_CASE": str(case), "SPINAPSE_TB_OUT": str(out)},
    )
    report = json.loads(out.read_text())
    assert report["mismatches"] == []
    assert report["checked"] == sum(sum(b is not None for b in r) for _, r in commands)


def test_write_code_array_sets_the_code_of_write_pulses():
    """Behind WriteCodeArray(code 2), WRITE pulses sent with code 0 flip an emulator whose
    table switches only at code 2 (probability 1) and never at 0, 1 or 3; GATE keeps its own
    code (levels move by it); READ senses through."""
    from amaranth.sim import Simulator

    from spinapse.rtl.emulated_array import EmulatedSynapseArray
    from spinapse.rtl.synapse_array import SynapseOp, command_layout
    from spinapse.rtl.write_code import WriteCodeArray

    lanes, code_bits, level_bits = 4, 2, 2
    table = [[0] * 4, [0] * 4, [65536] * 4, [0] * 4]
    emu = EmulatedSynapseArray(1, lanes, code_bits, level_bits, table, [1, 2, 3, 4], [0b0000])
    dut = WriteCodeArray(emu, 2)
    layout = command_layout(1, lanes, code_bits)

    def cmd(op, enable, polarity, code):
        fields = {"op": op.value, "row": 0, "col": 0, "enable": enable, "polarity": polarity}
        fields["code"] = code
        return sum(v << layout[k].offset for k, v in fields.items())

    seen = []

    async def tb(ctx):
        ctx.set(dut.bus.sense.ready, 1)
        for op, en, pol, code in [
            (SynapseOp.WRITE, 0b0110, 0b1111, 0),  # code 0 from the engine: forced to 2
            (SynapseOp.READ, 0, 0, 0),
            (SynapseOp.GATE, 0b1111, 0b1111, 0b01_01_01_01),  # levels up by 1
        ]:
            ctx.set(dut.bus.cmd.payload.as_value(), cmd(op, en, pol, code))
            ctx.set(dut.bus.cmd.valid, 1)
            await ctx.tick()
            ctx.set(dut.bus.cmd.valid, 0)
            if op == SynapseOp.READ:
                seen.append(ctx.get(dut.bus.sense.payload))
        seen.append(ctx.get(dut.peek_levels))
        seen.append(ctx.get(dut.peek_bits))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [0b0110, 0b01_01_01_01, 0b0110]
    with pytest.raises(ValueError, match=r"code must be an int in \[1, 3\]"):
        WriteCodeArray(emu, 0)


@pytest.mark.slow
def test_training_system_on_the_emulator_over_the_driver():
    """The 64-8-4 system on the device emulator (write pulses at code 3; a hand table whose
    switching probability falls with the level), driven through its UART pins: 40 steps train
    with write-verify, and after them every lane whose W_b disagrees with sign(W_h) is a counted
    failure (the emulator has no golden mirror; this is the invariant write-verify keeps)."""
    from spinapse.cosim.uart_sim import build_uart_system_sim
    from spinapse.rtl.uart_training import emulated_arrays

    init_wh = initial_w_h(RULE, 5)
    table = [[0] * 4] + [[int(65536 * p / (1 + lv)) for lv in range(4)] for p in (0.2, 0.5, 0.9)]
    table += [[0] * 4 for _ in range(16 - len(table))]
    rng = np.random.default_rng(71)
    seeds = [[int(s) for s in rng.integers(1, 2**32, n)] for n in (RULE.n_hidden, RULE.n_out)]
    model = model_id(RULE, "digital", init_wh)
    arrays = emulated_arrays(RULE, init_wh, table, 2, seeds, write_code=3)
    system = UartTrainingSystem(
        RULE, "digital", RULE.tables(), [w.tolist() for w in init_wh], arrays, 4, model
    )
    exe = build_uart_system_sim(system, "uart_training_64-8-4_emulator")
    xs = rng.integers(0, 2, (40, 64)).astype(np.uint8)
    ys = rng.integers(0, 4, 40)
    with SimTransport(exe, timeout_s=60) as link:
        drv = TrainingDriver(link, RULE, "digital", model)
        assert drv.identify()["has_p_success"] is False
        drv.train(xs, ys)
        c = drv.counters()
        state = drv.read_state()
    wrong = sum(int((state[f"w_b{k}"] != (state[f"w_h{k}"] >= 0)).sum()) for k in (1, 2))
    assert c.steps == 40 and c.writes > 0 and c.retries > 0
    assert wrong <= c.failures
