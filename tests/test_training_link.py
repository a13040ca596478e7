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

from spinapse.cosim.runner import run_cocotb
from spinapse.cosim.tb_uart_link import write_link_case
from spinapse.golden.integer_model.array_models import BinaryArrayModel, lane_seeds
from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, initial_w_h
from spinapse.rtl.training_system import digital_arrays
from spinapse.rtl.uart_training import UartTrainingSystem, model_id
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
