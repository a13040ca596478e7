"""cocotb testbench of one folded layer (:class:`spinapse.rtl.layer.Layer`) on random data.

The case file named by ``SPINAPSE_TB_CASE`` (JSON, :func:`write_layer_case`) holds the weight and
parameter words, input vectors and the integer model's expected outputs (hidden: the output bits
as an int; output layer: the scores). The driver writes the memories through the write buses,
then for each input pulses ``start`` and sleeps until ``done``; the checker compares ``y`` or
``score`` bit for bit and checks the documented run length: ``done`` is high in the cycle
``SF*NF + 5`` after the start cycle (:attr:`~spinapse.rtl.folding.LayerFolding.run_cycles`), i.e.
it rises ``SF*NF + 4`` clock edges after the edge that samples ``start``.
Simulated-time timeout derived from the case size.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from spinapse.io import write_json

PERIOD_NS = 10


def write_layer_case(path, folding, weight_words, param_words, inputs, expected) -> None:
    """Write a layer case: words (ints), inputs (ints, bit ``i`` = input ``i``), expected outputs
    (hidden: int of output bits; output layer: list of scores)."""
    doc = {
        "output": bool(folding.output),
        "cycles": folding.cycles,
        "run_edges": folding.run_cycles - 1,
        "score_width": folding.score_width,
        "n_out": folding.n_out,
        "weights": [hex(w) for w in weight_words],
        "params": [hex(w) for w in param_words],
        "inputs": [hex(x) for x in inputs],
        "expected": [e if isinstance(e, list) else hex(e) for e in expected],
    }
    write_json(path, doc)


def _scores(raw: int, width: int, n: int) -> list[int]:
    out = []
    for j in range(n):
        v = (raw >> (j * width)) & ((1 << width) - 1)
        out.append(v - (1 << width) if v >> (width - 1) else v)
    return out


async def _write(dut, bus: str, words: list[str]) -> None:
    en, addr, data = (getattr(dut, f"{bus}__{f}") for f in ("en", "addr", "data"))
    for a, w in enumerate(words):
        en.value, addr.value, data.value = 1, a, int(w, 16)
        await RisingEdge(dut.clk)
    en.value = 0


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def layer_matches_integer_model(dut):
    """Each run's outputs equal the integer model's; done comes SF*NF + 4 edges after start."""
    with open(os.environ["SPINAPSE_TB_CASE"], encoding="utf-8") as fh:
        case = json.load(fh)
    dut.start.value = 0
    dut.weight_write__en.value = 0
    dut.param_write__en.value = 0
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    budget = len(case["inputs"]) * (case["cycles"] + 10) + len(case["weights"]) + 100

    async def body():
        await _write(dut, "weight_write", case["weights"])
        await _write(dut, "param_write", case["params"])
        errors = []
        for i, (x, exp) in enumerate(zip(case["inputs"], case["expected"])):
            dut.x.value = int(x, 16)
            dut.start.value = 1
            await RisingEdge(dut.clk)  # the start cycle
            t0 = get_sim_time("ns")
            dut.start.value = 0
            await RisingEdge(dut.done)
            await ReadOnly()
            run = round((get_sim_time("ns") - t0) / PERIOD_NS)
            if case["output"]:
                got = _scores(int(dut.score.value), case["score_width"], case["n_out"])
            else:
                got, exp = int(dut.y.value), int(exp, 16)
            if got != exp or run != case["run_edges"]:
                errors.append({"input": i, "got": got, "expected": exp, "cycles": run})
            await RisingEdge(dut.clk)
        return errors

    errors = await with_timeout(body(), budget * PERIOD_NS, timeout_unit="ns")
    assert not errors, f"{len(errors)} of {len(case['inputs'])} runs differ; first: {errors[0]}"
