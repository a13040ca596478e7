"""The training engine (forward, backward, metaplastic update) against the integer golden model.

Amaranth's simulator on small networks (24-6-3 and, with two and three hidden layers, 24-6-6-3
and 24-6-6-6-3; random input bits, seeds below) so that every row of ``W_h``, ``M`` and ``W_b``
of every layer, the thresholds and the counters are compared after every step, in both modes and
with an ideal, a 50 % stochastic and a never-switching array. The full 784-input engines on
Verilator are in ``test_update_engine_cosim.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator
from engine_cases import start_step

from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, array_lane_seeds
from spinapse.rtl.training_engine import BIAS_BITS, THR_BITS, TrainingEngine, dev_bits
from spinapse.rtl.training_system import TrainingSystem
from spinapse.rtl.update_engine import UpdateEngine

SMALL = IntegerRule(
    n_in=24,
    n_hidden=6,
    n_out=3,
    init_range=4,
    lr_shift=1,
    leak_shift=2,
    frac_bits=3,
    win1=6,
    margin=2,
    dead_zone=2,
    thr_shift=2,
    retry_limit=2,
)
# Two hidden layers with a window, a back shift and a delta width that make the deeper STE mask
# and the saturation of every delta act (|W_b @ delta| reaches 6 * 4 = 24 > 3 before the shift;
# |W_b_L @ e| reaches 4 > 3), and an f_meta floor (integer rule of issue 13) that changes W_h
# within these 30 steps (table entries 17, 1, 0, ... raised to 128).
DEEP = dataclasses.replace(
    SMALL, n_hidden_layers=2, win_hidden=3, back_shift=1, delta_bits=3, fmeta_floor=128
)
DEEPER = dataclasses.replace(DEEP, n_hidden_layers=3)


def _unpack(word: int, bits: int, n: int) -> list[int]:
    out = []
    for lane in range(n):
        v = (word >> (lane * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def _run(rule, mode, p_success, steps, seed=3, array_seed=5, task_switch=None):
    """Train both models ``steps`` steps; return the list of per-step disagreements.

    ``task_switch`` (a step index): before that step, a task start on both (golden: the
    learner's resets of ``M``, ``T``, ``D`` and ``B``; RTL: ``thr_load`` of zeros, then
    ``acc_clear``). ``B`` and ``D`` are compared too where the rule builds them."""
    gold = IntegerEngine(rule, mode, seed=seed, p_success=p_success, array_seed=array_seed)
    init = [w.tolist() for w in gold.w_h]
    seeds = array_lane_seeds(rule, array_seed)
    dut = TrainingSystem(rule, mode, rule.tables(), init, seeds)
    shapes = rule.layer_shapes()
    rng = np.random.default_rng(seed)
    xs = rng.random((steps, rule.n_in)) < 0.4
    ys = rng.integers(0, rule.n_out, steps)
    errors = []

    def per_layer(ctx, name, bits):
        """A per-lane register of every layer (``thr<k>``, ``bias<k>``), unpacked."""
        return [
            _unpack(ctx.get(getattr(dut, f"{name}{k}")), bits, lanes)
            for k, (_, lanes) in enumerate(shapes, start=1)
        ]

    async def bench(ctx):
        if mode == "digital":
            ctx.set(dut.p_success, p_success)
        for s in range(steps):
            if s == task_switch:
                gold.start_task()
                for k in range(1, len(shapes) + 1):
                    ctx.set(getattr(dut, f"thr{k}_in"), 0)
                for command in ("thr_load", "acc_clear"):
                    ctx.set(getattr(dut, command), 1)
                    await ctx.tick()
                    ctx.set(getattr(dut, command), 0)
                    await ctx.tick()
                    while ctx.get(dut.busy):
                        await ctx.tick()
            await start_step(ctx, dut, xs[s], ys[s])
            await ctx.tick().until(dut.done)
            want_pred = gold.step(xs[s], int(ys[s]))
            if ctx.get(dut.pred) != want_pred:
                errors.append((s, "pred"))
            for k, (rows, lanes) in enumerate(shapes, start=1):
                for row in range(rows):
                    # M and W_h answer one clock after the row is set (block RAM read port).
                    ctx.set(getattr(dut, f"peek_row{k}"), row)
                    await ctx.tick()
                    got = (
                        _unpack(ctx.get(getattr(dut, f"peek_wh{k}")), rule.wh_bits, lanes),
                        _unpack(ctx.get(getattr(dut, f"peek_acc{k}")), rule.acc_bits, lanes),
                        [
                            bool(ctx.get(getattr(dut, f"peek_bits{k}")) >> lane & 1)
                            for lane in range(lanes)
                        ],
                    )
                    want = (
                        gold.w_h[k - 1][row].tolist(),
                        gold.acc[k - 1][row].tolist(),
                        gold.w_b()[k - 1][row].tolist(),
                    )
                    if got != want:
                        errors.append((s, k, row, got, want))
            thr = per_layer(ctx, "thr", THR_BITS)
            if thr != [t.tolist() for t in gold.thr]:
                errors.append((s, "thr", thr))
            if rule.bias_shift:
                bias = per_layer(ctx, "bias", BIAS_BITS)
                if bias != [b.tolist() for b in gold.bias]:
                    errors.append((s, "bias", bias))
            if rule.dev_shift:
                db, mask = dev_bits(rule), (1 << dev_bits(rule)) - 1
                dev = [
                    [
                        ctx.get(getattr(dut, f"dev{k}")) >> (db * j) & mask
                        for j in range(rule.n_hidden)
                    ]
                    for k in range(1, len(shapes))
                ]
                if dev != [d.tolist() for d in gold.dev]:
                    errors.append((s, "dev", dev))
            c = gold.counters
            got_c = (ctx.get(dut.writes), ctx.get(dut.retries), ctx.get(dut.failures))
            if got_c != (c.writes, c.retries, c.failures):
                errors.append((s, "counters", got_c, c))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return errors, gold.counters


@pytest.mark.parametrize(
    "mode, p_success",
    [("digital", 256), ("digital", 128), ("digital", 0), ("device", 256)],
)
def test_every_step_bit_exact(mode, p_success):
    """40 steps: W_h, M, W_b, thresholds, predictions and counters equal after every step."""
    errors, counters = _run(SMALL, mode, p_success, steps=40)
    _check(errors, counters, p_success)


@pytest.mark.parametrize(
    "rule, mode, p_success",
    [(DEEP, "digital", 128), (DEEP, "device", 256), (DEEPER, "digital", 128)],
    ids=["2-hidden-digital", "2-hidden-device", "3-hidden-digital"],
)
def test_deep_every_step_bit_exact(rule, mode, p_success):
    """Two and three hidden layers, 30 steps: every layer's W_h, M, W_b, the thresholds,
    predictions and counters equal after every step (backward through each binary layer)."""
    errors, counters = _run(rule, mode, p_success, steps=30)
    _check(errors, counters, p_success)


# DEEP with per-neuron STE windows and learned biases (issue 13's closest rule, small): the
# update shifts make B and D move within a dozen steps.
DEEP_BD = dataclasses.replace(DEEP, dev_shift=1, bias_shift=1)


@pytest.mark.parametrize("mode, p_success", [("digital", 128), ("device", 256)])
def test_task_start_restarts_biases_and_deviations_bit_exact(mode, p_success):
    """24-6-6-3 with dev_shift and bias_shift: 8 steps, a task start (``thr_load`` of zeros,
    ``acc_clear``), 8 more steps: W_h, M, W_b, T, B, D, predictions and counters
    equal after every step, and B and D have moved before the switch (so restarting them is
    observable: a carried-over B would differ from the golden learner's 0 at step 8)."""
    errors, counters = _run(DEEP_BD, mode, p_success, steps=16, task_switch=8)
    _check(errors, counters, p_success)
    gold = IntegerEngine(DEEP_BD, mode, seed=3, p_success=p_success, array_seed=5)
    rng = np.random.default_rng(3)
    xs, ys = rng.random((16, DEEP_BD.n_in)) < 0.4, rng.integers(0, DEEP_BD.n_out, 16)
    for x, y in zip(xs[:8], ys[:8]):
        gold.step(x, int(y))
    assert any(b.any() for b in gold.bias)
    assert any((d != w << DEEP_BD.thr_frac).any() for d, w in zip(gold.dev, DEEP_BD.windows()))


def _check(errors, counters, p_success) -> None:
    assert errors == []
    assert counters.writes > 0
    if p_success == 256:
        assert (counters.retries, counters.failures) == (0, 0)
    if p_success == 0:
        # Nothing ever switches: every requested lane is retried retry_limit times and fails.
        assert counters.retries == SMALL.retry_limit * counters.failures > 0
    if p_success == 128:
        assert 0 < counters.failures < counters.retries


def test_parameters_validated():
    """Bad modes and shapes are rejected with the rule that was broken."""
    with pytest.raises(ValueError, match="mode"):
        TrainingSystem(SMALL, "analog", SMALL.tables(), [[[0]]], [[1], [1]])
    with pytest.raises(ValueError, match="grad_bits"):
        UpdateEngine(SMALL, 4, 2, 1, "digital", SMALL.tables()[0])
    with pytest.raises(ValueError, match="init_wh"):
        UpdateEngine(SMALL, 4, 2, 4, "digital", SMALL.tables()[0], init_wh=[[0, 0]])
    with pytest.raises(ValueError, match="f_meta table"):
        TrainingEngine(SMALL, "digital", ([], SMALL.tables()[1]))


@pytest.mark.parametrize(
    "field, value",
    [("norm_decay", 4), ("norm_gain", 2), ("stoch_round", True), ("err_max", 4)],
)
def test_golden_only_rule_fields_refused(field, value):
    """A rule field the RTL does not build (issue-13 studies) is refused by name, not built
    as the default rule; thermometer inputs (``in_levels``) only widen layer 1 and build."""
    rule = dataclasses.replace(SMALL, **{field: value})
    with pytest.raises(ValueError, match=f"IntegerRule.{field} = "):
        TrainingEngine(rule, "digital", rule.tables())
    wide = dataclasses.replace(SMALL, n_in=48, in_levels=2)
    assert TrainingEngine(wide, "digital", wide.tables()).arrs[0].signature.rows == 48


def test_ports_one_per_layer_and_784_h_10_ports_unchanged():
    """One hidden layer keeps the 784-H-10 engine's members, in order (boards, bridge and plan
    build on them); deeper networks add one threshold vector and one array port per layer."""
    names = list(TrainingEngine(SMALL, "device", SMALL.tables()).signature.members)
    assert names == [
        *("x", "label", "start", "train", "busy", "done", "pred", "thr1", "thr2", "thr_load"),
        *("thr1_in", "thr2_in", "acc_clear", "writes", "retries", "failures", "arr1", "arr2"),
    ]
    deep = TrainingEngine(DEEPER, "device", DEEPER.tables())
    members = deep.signature.members
    assert [n for n in members if n.startswith("arr")] == ["arr1", "arr2", "arr3", "arr4"]
    assert members["thr3"].shape == DEEPER.n_hidden * THR_BITS
    assert members["thr4_in"].shape == DEEPER.n_out * THR_BITS
    assert [(a.signature.rows, a.signature.lanes) for a in deep.arrs] == DEEPER.layer_shapes()
    with pytest.raises(ValueError, match="tables must hold 4"):
        TrainingEngine(DEEPER, "device", DEEP.tables())
