"""Full-system co-simulation: RTL training engine (Verilator) with physics synapses (torch).

The co-simulation and its golden prediction (integer engine over the same torch device models,
same card, same seeded generator, same pulse order) must agree exactly: predictions, counters,
thresholds, ``M``, ``W_b`` (and ``W_h`` in digital mode), and every device's state, ``c`` and
energies in float64. A golden run with one deliberately mis-ordered pulse must not agree.

Default suite: the simulator-free tests here; the Verilator run of the default suite is the
resume test of ``tests/test_cosim_cli.py`` (784-16-10, device mode, 3 tasks, checked against the
golden prediction). Slow: 100 steps of 784-16-10 with the mis-ordered-pulse check, and 1000 steps
in each mode on 784-64-10 (the network of the issue).
Data: the embedded training digits in a seeded order (seed 0), binarized.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

from spinapse.behavioral.card import load_card
from spinapse.behavioral.pulse_map import PulseMap
from spinapse.cosim.bridge_case import compare, golden_prediction, misorder_target, run_bridge
from spinapse.cosim.physics_array import Faults, PhysicsSynapseArray
from spinapse.cosim.tb_training_case import digit_steps
from spinapse.golden.integer_model.array_models import lane_seeds
from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, initial_w_h
from spinapse.rtl.training_system import TrainingSystem

CARD = load_card("mtj_mi_stt")


def _run_and_check(rule, mode, steps, misorder_layer):
    xs, ys = digit_steps(steps, 0)
    tasks = [(xs, ys)]
    snap = run_bridge(rule, mode, CARD, tasks)
    gold = golden_prediction(rule, mode, CARD, tasks)
    assert compare(snap, gold, mode) == []
    # Mis-order one pulse (its devices drawn in reverse lane order): no longer agrees.
    target = misorder_target(gold["arrays"][misorder_layer])
    bad = golden_prediction(rule, mode, CARD, tasks, misorder=(misorder_layer, target))
    diffs = compare(snap, bad, mode)
    assert any("device" in d for d in diffs), diffs
    return snap, gold


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_device_mode_100_steps_bit_exact_and_misordered_pulse_detected():
    """784-16-10, device mode: flips, consolidation and erasure all happen and all agree."""
    rule = dataclasses.replace(IntegerRule(), n_hidden=16)
    snap, gold = _run_and_check(rule, "device", 100, 0)
    rep = snap["reports"][0]
    assert rep["flips"] > 0 and rep["gate_pulses"] > 0 and rep["erase_pulses"] == rep["flips"]
    assert rep["mean_c"] > 0


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("mode", ["digital", "device"])
def test_1000_steps_784_64_10_bit_exact(mode):
    """The acceptance run: 1000 training steps, card mtj_mi_stt, both modes, 784-64-10."""
    snap, gold = _run_and_check(IntegerRule(), mode, 1000, 0)
    assert snap["measure"]["steps"] == 1000
    if mode == "digital":
        assert snap["counters"]["writes"] > 1000 and snap["counters"]["retries"] > 0


# -- simulator-free parts ----------------------------------------------------------------------
def test_pulse_map_from_card_in_si_units():
    p = PulseMap.from_card(CARD)
    assert p.write_current == pytest.approx(60e-6) and p.flip_width == pytest.approx(5e-9)
    assert p.gate_width == pytest.approx(100e-6) and p.erase_voltage == -3.0


def test_card_without_pulse_map_is_refused_with_the_table_named():
    card = dataclasses.replace(CARD, values={k: v for k, v in CARD.values.items() if k != "pulses"})
    with pytest.raises(ValueError, match=r"no \[pulses\] table"):
        PulseMap.from_card(card)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"stuck_p": -0.1}, "stuck_p"),
        ({"stuck_ap": 1.5}, "stuck_ap"),
        ({"write_fail": 1.0}, "write_fail"),
    ],
)
def test_fault_fields_checked_with_their_range(kwargs, field):
    with pytest.raises(ValueError, match=f"faults.{field}"):
        Faults(**kwargs)


def _array(faults, seed=3, rows=40, lanes=50):
    gen = torch.Generator().manual_seed(seed)
    init = np.random.default_rng(seed).random((rows, lanes)) < 0.5
    return PhysicsSynapseArray(CARD, rows, lanes, gen, init, faults)


def test_stuck_devices_never_move_and_every_failed_write_is_accounted():
    """20 % stuck (10 % at P, 10 % at AP), 10 % injected write failures, seed 3: stuck devices
    keep their state through 20 write rounds; failures = stuck + injected + physics misses."""
    a = _array(Faults(stuck_p=0.1, stuck_ap=0.1, write_fail=0.1))
    stuck_p, stuck_ap = a.stuck_p.numpy(), a.stuck_ap.numpy()
    assert 0.15 < a.stuck.float().mean() < 0.25  # 2000 devices, binomial sd 0.9 %
    for _ in range(20):
        for row in range(a.rows):
            want = ~a.bits[row]
            a.write(row, np.ones(a.lanes, dtype=bool), want)
    assert a.bits[stuck_p].all() and not a.bits[stuck_ap].any()
    c = a.counts
    assert c["write_pulses"] == 20 * a.rows * a.lanes
    assert c["flips"] + c["failed_writes"] == c["write_pulses"]
    assert c["stuck_failures"] == 20 * int(a.stuck.sum())
    physics_misses = c["failed_writes"] - c["stuck_failures"] - c["injected_failures"]
    # 1.5 Ic0 for 3 ns switches about 96 %: misses of the 80 % free devices about 4 %.
    free_pulses = c["write_pulses"] - c["stuck_failures"]
    assert 0.01 < physics_misses / free_pulses < 0.08
    assert 0.07 < c["injected_failures"] / free_pulses < 0.13


def test_consolidated_devices_flip_less():
    """Device mode: after one consolidating gate pulse of code 15 (c = 1 - exp(-1.5 ms / 10 ms)
    = 0.139, flip rate x exp(-19 c) = 0.07), a flip pulse of code 15 switches far fewer devices
    than on fresh ones (seed 5, 2000 devices each)."""
    rates = []
    for consolidate in (False, True):
        a = _array(Faults(), seed=5)
        rows = np.arange(a.rows)
        full = np.ones((a.rows, a.lanes), dtype=bool)
        code = np.full((a.rows, a.lanes), 15)
        if consolidate:
            a.gate_rows(rows, full, a.bits.copy(), code)
            assert float(a.dev.c.min()) == pytest.approx(1 - np.exp(-0.15), rel=1e-12)
            assert float(a.dev.c.max()) == pytest.approx(1 - np.exp(-0.15), rel=1e-12)
        before = a.bits.copy()
        a.gate_rows(rows, full, ~a.bits, code)
        rates.append(float((a.bits != before).mean()))
    fresh, consolidated = rates
    assert 0.6 < fresh < 0.9  # code 15 at c = 0: 1 - exp(-75 ns / 55 ns) = 0.74
    assert consolidated < 0.2 * fresh


def test_golden_with_physics_arrays_is_reproducible_and_misorder_changes_it():
    """Two golden runs with the same seeds are identical; a mis-ordered pulse is not (30 steps,
    784-16-10, device mode)."""
    rule = dataclasses.replace(IntegerRule(), n_hidden=16)
    tasks = [digit_steps(30, 0)]
    a = golden_prediction(rule, "device", CARD, tasks)
    b = golden_prediction(rule, "device", CARD, tasks)
    c = golden_prediction(
        rule, "device", CARD, tasks, misorder=(0, misorder_target(a["arrays"][0]))
    )
    sa, sb, sc = (g["arrays"][0].state_dict() for g in (a, b, c))
    assert torch.equal(sa["c"], sb["c"]) and torch.equal(sa["ap"], sb["ap"])
    assert not (torch.equal(sa["c"], sc["c"]) and torch.equal(sa["ap"], sc["ap"]))


def test_acc_clear_host_command_zeroes_every_accumulator():
    """Amaranth simulation of a 16-8-4 training system: after 3 steps M is non-zero; one
    ``acc_clear`` beat zeroes every row of both layers without touching the thresholds."""
    rule = dataclasses.replace(
        IntegerRule(), n_in=16, n_hidden=8, n_out=4, win1=16, margin=2, dead_zone=0
    )
    eng = IntegerEngine(rule, "device", seed=0)
    w_h = [w.tolist() for w in initial_w_h(rule, 0)]
    seeds = [lane_seeds(2 + k, n) for k, n in enumerate((rule.n_hidden, rule.n_out))]
    dut = TrainingSystem(rule, "device", rule.tables(), w_h, seeds)
    rng = np.random.default_rng(1)
    xs = rng.random((3, rule.n_in)) < 0.5
    ys = rng.integers(0, rule.n_out, 3)
    for x, y in zip(xs, ys):
        eng.step(x, int(y))
    seen = {}

    async def bench(ctx):
        for x, y in zip(xs, ys):
            ctx.set(dut.x, int(sum(1 << i for i, b in enumerate(x) if b)))
            ctx.set(dut.label, int(y))
            ctx.set(dut.train, 1)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            while not ctx.get(dut.done):
                await ctx.tick()
            await ctx.tick()

        async def rows(layer, n):
            out = []
            for r in range(n):
                ctx.set(getattr(dut, f"peek_row{layer}"), r)
                await ctx.tick()  # M is block RAM: one clock from row to data
                out.append(ctx.get(getattr(dut, f"peek_acc{layer}")))
            return out

        seen["before"] = await rows(1, rule.n_in) + await rows(2, rule.n_hidden)
        seen["thr"] = ctx.get(dut.thr1)
        ctx.set(dut.acc_clear, 1)
        await ctx.tick()
        ctx.set(dut.acc_clear, 0)
        await ctx.tick()
        while ctx.get(dut.busy):
            await ctx.tick()
        seen["after"] = await rows(1, rule.n_in) + await rows(2, rule.n_hidden)
        seen["thr_after"] = ctx.get(dut.thr1)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert any(seen["before"]), "M should be non-zero after 3 steps"
    assert any(a.any() for a in eng.acc)
    assert seen["after"] == [0] * (rule.n_in + rule.n_hidden)
    assert seen["thr_after"] == seen["thr"]


def _account(counters, arrays):
    """Every failed write accounted: RTL writes + retries are the device write pulses, RTL
    failures are the lanes still wrong after the last attempt, and every failed pulse is a stuck
    device, an injected failure or a physics miss."""
    counts = [a["counts"] if isinstance(a, dict) else a.counts for a in arrays]
    assert counters["writes"] + counters["retries"] == sum(c["write_pulses"] for c in counts)
    assert counters["failures"] == sum(c["final_failures"] for c in counts)
    for c in counts:
        assert c["flips"] + c["failed_writes"] == c["write_pulses"]
        assert c["stuck_failures"] + c["injected_failures"] <= c["failed_writes"]
    return sum(c["final_failures"] for c in counts), sum(c["final_failures_stuck"] for c in counts)


def test_golden_with_stuck_devices_accounts_for_every_failed_write():
    """Digital mode, 784-16-10, 10 steps, 1 % stuck at P + 1 % at AP, 5 % injected failures
    (seeds 0 / 1): write-verify gives up after its retries (no hang) and the counters add up;
    most final failures are stuck devices. (A stuck device that disagrees with sign(W_h) is
    written again at every step, 4 pulses each: 20 % stuck makes nearly every row a write-verify
    row, which the slow test below runs.)"""
    rule = dataclasses.replace(IntegerRule(), n_hidden=16)
    faults = Faults(stuck_p=0.01, stuck_ap=0.01, write_fail=0.05)
    gold = golden_prediction(rule, "digital", CARD, [digit_steps(10, 0)], faults=faults)
    final, stuck = _account(gold["counters"], gold["arrays"])
    assert final > 0 and stuck > 0.5 * final


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_cosim_with_20_percent_stuck_devices_completes_and_agrees():
    """10 % stuck at P + 10 % at AP and 5 % injected failures on the RTL engine in Verilator,
    784-16-10, digital mode, 30 steps: the run completes, it is bit-exact with the golden
    prediction, and the RTL counters account for every failed write."""
    rule = dataclasses.replace(IntegerRule(), n_hidden=16)
    faults = Faults(stuck_p=0.1, stuck_ap=0.1, write_fail=0.05)
    tasks = [digit_steps(30, 0)]
    snap = run_bridge(rule, "digital", CARD, tasks, faults=faults)
    gold = golden_prediction(rule, "digital", CARD, tasks, faults=faults)
    assert compare(snap, gold, "digital") == []
    final, stuck = _account(snap["counters"], snap["arrays"])
    assert final > 0 and stuck > 0.5 * final


@pytest.mark.timeout(1800)
def test_device_mode_cosim_with_20_percent_stuck_devices_accounts_for_every_failed_write():
    """10 % stuck at P + 10 % at AP on the RTL engine in Verilator, device mode, 784-16-10, 40
    steps (seeds 0 / 1): the run completes bit-exact with its golden prediction; stuck devices
    never change state; every enabled GATE lane is one device pulse (flip or consolidating);
    every flip pulse on a stuck device is a stuck failure; and failed writes = stuck failures +
    the physics' own misses on free devices."""
    rule = dataclasses.replace(IntegerRule(), n_hidden=16)
    faults = Faults(stuck_p=0.1, stuck_ap=0.1)
    tasks = [digit_steps(40, 0)]
    snap = run_bridge(rule, "device", CARD, tasks, faults=faults)
    gold = golden_prediction(rule, "device", CARD, tasks, faults=faults)
    assert compare(snap, gold, "device") == []
    pulses = 0
    for got, ref, init in zip(snap["arrays"], gold["arrays"], initial_w_h(rule, 0)):
        stuck = ref.stuck
        n = stuck.numel()  # 12 544 and 160 devices: binomial sd 0.36 % and 3.2 %
        assert abs(float(stuck.double().mean()) - 0.2) < 4 * (0.16 / n) ** 0.5
        ap0 = torch.from_numpy(init < 0)
        assert torch.equal(got["ap"][ref.stuck_p], torch.zeros_like(got["ap"][ref.stuck_p]))
        assert torch.equal(got["ap"][ref.stuck_ap], torch.ones_like(got["ap"][ref.stuck_ap]))
        assert int(got["dev_flips"][stuck].sum()) == 0
        c = got["counts"]
        assert c["stuck_failures"] == int(got["dev_write_pulses"][stuck].sum()) > 0
        free_flip_pulses = c["write_pulses"] - c["stuck_failures"]
        assert c["flips"] + (c["failed_writes"] - c["stuck_failures"]) == free_flip_pulses
        assert c["injected_failures"] == 0 and c["erase_pulses"] == c["flips"]
        assert not torch.equal(got["ap"][~stuck], ap0[~stuck])  # the free devices did learn
        pulses += c["write_pulses"] + c["gate_pulses"]
    assert snap["counters"]["writes"] == pulses


def test_clock_generated_inside_the_top_module():
    """The bridge's top module makes its own clock: ``clk`` leaves the port list and becomes a
    register toggled every half period; other modules keep their ``clk`` input; a design
    without a ``clk`` input is refused."""
    from spinapse.cosim.bridge_case import _add_clock

    text = (
        "module bridge_system(x, clk, rst, y);\n  input x;\n  wire x;\n  input clk;\n"
        "  wire clk;\n  input rst;\n  output y;\nendmodule\n"
        "module \\bridge_system.shell (clk, rst);\n  input clk;\n  wire clk;\nendmodule\n"
    )
    out = _add_clock(text, 10)
    top, rest = out.split("endmodule\n", 1)
    assert top.startswith("module bridge_system(x, rst, y);")
    assert "  reg clk = 1'b0;\n  always #5 clk = ~clk;\n" in top and "input clk" not in top
    assert (
        rest == "module \\bridge_system.shell (clk, rst);\n  input clk;\n  wire clk;\nendmodule\n"
    )
    with pytest.raises(ValueError, match="no clk input"):
        _add_clock(out, 10)
    with pytest.raises(ValueError, match="even"):
        _add_clock(text, 7)
