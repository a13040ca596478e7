"""cocotb testbench of the training system: on-chip training steps against the integer golden model.

Run by :func:`spinapse.cosim.runner.run_cocotb` from ``tests/test_update_engine.py``. The case
file named by ``SPINAPSE_TB_CASE`` (JSON, :func:`write_case`) holds the training inputs and
labels, and the golden model's expected prediction of every step and its final state: every row
of ``W_h``, ``M`` and sensed ``W_b`` of every weight layer (packed words, lane ``l`` at ``[l*bits,
(l+1)*bits)``), the thresholds of every layer and the write/retry/failure counters. The number
of layers is that of ``rows`` (two for 784-H-10, three for 784-H-H-10, ...). The results
(mismatches, cycles per step) go to the JSON file named by ``SPINAPSE_TB_OUT``.

Roles: the driver offers one step at a time (``x``, ``label``, ``start``) and sleeps until
``done``; the monitor takes ``pred`` at each ``done`` and, after the last step, reads every row
through the ``peek_*`` members and the counters; the model is the case file; the checker compares
everything bit for bit and fails on the first list of mismatches. Every step has a simulated-time
timeout (``step_timeout_cycles`` clock periods), and so has the whole test.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, Timer, with_timeout

from spinapse.io import write_json

PERIOD_NS = 10


def write_case(path, doc: dict) -> None:
    """Write a case file: ``doc`` with keys ``x`` (list of int, bit ``i`` = pixel ``i``),
    ``label``, ``pred`` (lists of int), ``rows`` (rows of each weight layer, ``[rows1, ...,
    rowsL]``), ``final`` (dict of ``wh<l>, acc<l>, bits<l>`` lists of int and ``thr<l>`` ints
    for ``l = 1..L``, ``bias<l>`` / ``dev<l>`` ints where the rule builds them, and ``writes,
    retries, failures`` ints), ``step_timeout_cycles`` (int)
    and ``p_success`` (the binary arrays' write success in 1/256; ``None`` in device mode)."""
    write_json(path, doc)


async def _peek_rows(dut, layer: int, rows: int) -> dict[str, list[int]]:
    out = {"wh": [], "acc": [], "bits": []}
    row = getattr(dut, f"peek_row{layer}")
    for r in range(rows):
        # M and W_h are block RAM: their read port answers one clock after the row is set.
        row.value = r
        await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        for key in out:
            out[key].append(getattr(dut, f"peek_{key}{layer}").value.to_unsigned())
    return out


@cocotb.test(timeout_time=600, timeout_unit="ms")
async def train_steps_bit_exact(dut):
    """Drive every step of the case, then compare predictions, state and counters."""
    with open(os.environ["SPINAPSE_TB_CASE"], encoding="utf-8") as fh:
        case = json.load(fh)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.start.value = 0
    dut.train.value = 0
    dut.thr_load.value = 0
    if case["p_success"] is not None:
        dut.p_success.value = case["p_success"]
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 1)
    wall = time.perf_counter()
    t0 = cocotb.utils.get_sim_time(unit="ns")
    preds = []
    for x, label in zip(case["x"], case["label"]):
        dut.x.value = int(x)
        dut.label.value = int(label)
        dut.train.value = 1
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await with_timeout(
            RisingEdge(dut.done), case["step_timeout_cycles"] * PERIOD_NS, timeout_unit="ns"
        )
        await RisingEdge(dut.clk)
        preds.append(dut.pred.value.to_unsigned())
    cycles = (cocotb.utils.get_sim_time(unit="ns") - t0) / PERIOD_NS
    wall = time.perf_counter() - wall
    final = case["final"]
    mismatches = []
    if preds != case["pred"]:
        bad = [i for i, (a, b) in enumerate(zip(preds, case["pred"])) if a != b]
        mismatches.append(f"pred differs at steps {bad[:10]}")
    for layer, rows in enumerate(case["rows"], start=1):
        got = await _peek_rows(dut, layer, rows)
        for key, words in got.items():
            want = final[f"{key}{layer}"]
            bad = [r for r in range(rows) if words[r] != want[r]]
            if bad:
                mismatches.append(f"{key}{layer}: {len(bad)} rows differ, first {bad[:5]}")
    thr_keys = [f"thr{k}" for k in range(1, len(case["rows"]) + 1)]
    # Learned biases and deviations (issue 13 rules that build them): bias<l>, dev<l>.
    extra = sorted(k for k in final if k.startswith(("bias", "dev")))
    for key in (*thr_keys, *extra, "writes", "retries", "failures"):
        got = getattr(dut, key).value.to_unsigned()
        if got != final[key]:
            mismatches.append(f"{key}: rtl {got}, golden {final[key]}")
    counters = {k: getattr(dut, k).value.to_unsigned() for k in ("writes", "retries", "failures")}
    write_json(
        os.environ["SPINAPSE_TB_OUT"],
        {
            "steps": len(preds),
            "cycles_per_step": cycles / max(len(preds), 1),
            "wall_s": wall,
            "counters": counters,
            "mismatches": mismatches,
        },
    )
    assert not mismatches, "; ".join(mismatches)
