"""cocotb testbench of the inference engine: driver, monitor, model, in-order checker.

Run by :func:`spinapse.cosim.runner.run_cocotb` (from pytest or the benchmark). The case file
named by ``SPINAPSE_TB_CASE`` (JSON, written by :func:`write_case`) holds the engine geometry and
one or more phases; each phase is a list of write-stream payloads (weights and parameters, loaded
at run time) followed by images and the integer model's expected class and scores for each image.
Results (cycles per image, wall time, mismatches) go to the JSON file named by ``SPINAPSE_TB_OUT``.

Roles:

- driver: sends the writes of a phase, then the image beats; with back-pressure enabled it waits a
  random 0..5 cycles before offering each image (valid low);
- monitor: takes results; with back-pressure it holds ``result.ready`` low a random 1..6 cycles
  before a transfer with probability ``backpressure``;
- model: the expected values in the case file (from :mod:`spinapse.golden.integer_model.inference`);
- checker: compares every result in order, class and every score, bit for bit.

Transactions move as whole images (one Python call per beat), and the testbench sleeps on the
handshake signals instead of waking every cycle, so Verilator runs many cycles between Python
calls. Every test has a simulated-time timeout derived from the case size.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from spinapse.io import write_json

PERIOD_NS = 10


def write_case(path, config, phases, backpressure: float) -> None:
    """Write a case file.

    ``config``: an :class:`spinapse.rtl.folding.EngineConfig`; ``phases``: list of dicts with
    ``writes`` (list of packed write payload ints), ``images`` (list of lists of beat ints) and
    ``expected`` (list of ``(class, scores)``); ``backpressure`` in ``[0, 1]``.
    """
    doc = {
        "ideal_cycles": config.ideal_cycles,
        "class_width": config.class_width,
        "score_width": config.score_width,
        "classes": config.widths[-1],
        "backpressure": float(backpressure),
        "phases": [
            {
                "writes": [hex(w) for w in ph["writes"]],
                "images": [[hex(b) for b in img] for img in ph["images"]],
                "expected": [[int(c), [int(s) for s in sc]] for c, sc in ph["expected"]],
            }
            for ph in phases
        ],
    }
    write_json(path, doc)


def _decode(payload: int, cw: int, sw: int, n: int) -> tuple[int, list[int]]:
    cls = payload & ((1 << cw) - 1)
    scores = []
    for j in range(n):
        v = (payload >> (cw + j * sw)) & ((1 << sw) - 1)
        scores.append(v - (1 << sw) if v >> (sw - 1) else v)
    return cls, scores


async def _send(dut, valid, ready, payload, value: int) -> None:
    """Offer ``value`` until a rising edge samples valid & ready.

    Sleeps on ``ready`` rather than waking every cycle: settled values (read-only phase) tell
    whether ready is low; values read right after a clock edge are those sampled by it.
    """
    payload.value = value
    valid.value = 1
    while True:
        await ReadOnly()
        if not ready.value:
            await RisingEdge(ready)
        await RisingEdge(dut.clk)
        if ready.value:
            break
    valid.value = 0


async def _driver(dut, case, rng, phase_done) -> dict:
    bp = case["backpressure"]
    first_accept = None
    for k, phase in enumerate(case["phases"]):
        if k:
            await phase_done[k - 1].wait()
            await RisingEdge(dut.clk)
        for w in phase["writes"]:
            await _send(dut, dut.write__valid, dut.write__ready, dut.write__payload, int(w, 16))
        for img in phase["images"]:
            if bp > 0:
                gap = rng.randint(0, 5)
                if gap:
                    await ClockCycles(dut.clk, gap)
            for beat in img:
                await _send(
                    dut, dut.image__valid, dut.image__ready, dut.image__payload, int(beat, 16)
                )
            if first_accept is None:
                first_accept = get_sim_time("ns")
    return {"first_accept_ns": first_accept}


async def _take(dut, rng, bp: float) -> int:
    """Wait for the next result transfer and return its payload (values read are pre-edge)."""
    await ReadOnly()
    if not dut.result__valid.value:
        await RisingEdge(dut.result__valid)
    else:
        await RisingEdge(dut.clk)  # leave the read-only phase; this edge may be a transfer
        if dut.result__valid.value and dut.result__ready.value:
            return int(dut.result__payload.value)
    if bp > 0 and rng.random() < bp:
        dut.result__ready.value = 0
        await ClockCycles(dut.clk, rng.randint(1, 6))
    dut.result__ready.value = 1
    while True:
        await RisingEdge(dut.clk)
        if dut.result__valid.value:
            break
    payload = int(dut.result__payload.value)
    if bp > 0:
        dut.result__ready.value = 0
    return payload


async def _monitor(dut, case, rng, phase_done) -> dict:
    bp = case["backpressure"]
    cw, sw, n = case["class_width"], case["score_width"], case["classes"]
    mismatches, checked, first_ns, last_ns = [], 0, None, None
    for k, phase in enumerate(case["phases"]):
        for i, (exp_cls, exp_scores) in enumerate(phase["expected"]):
            payload = await _take(dut, rng, bp)
            last_ns = get_sim_time("ns")
            if first_ns is None:
                first_ns = last_ns
            cls, scores = _decode(payload, cw, sw, n)
            checked += 1
            if cls != exp_cls or scores != exp_scores:
                mismatches.append(
                    {
                        "phase": k,
                        "image": i,
                        "got": [cls, scores],
                        "expected": [exp_cls, exp_scores],
                    }
                )
        phase_done[k].set()
    return {
        "checked": checked,
        "mismatches": mismatches,
        "first_result_ns": first_ns,
        "last_result_ns": last_ns,
    }


@cocotb.test(timeout_time=2, timeout_unit="sec")
async def engine_matches_integer_model(dut):
    """Every result equals the integer golden model's class and scores, bit for bit."""
    with open(os.environ["SPINAPSE_TB_CASE"], encoding="utf-8") as fh:
        case = json.load(fh)
    rng = random.Random(cocotb.RANDOM_SEED)
    dut.image__valid.value = 0
    dut.write__valid.value = 0
    dut.result__ready.value = 0 if case["backpressure"] > 0 else 1
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    n_images = sum(len(p["images"]) for p in case["phases"])
    n_writes = sum(len(p["writes"]) for p in case["phases"])
    beats = max((len(p["images"][0]) for p in case["phases"] if p["images"]), default=1)
    # Simulated-time budget: 4x the ideal cycles per image plus stalls, writes and slack.
    budget_cycles = n_images * (4 * case["ideal_cycles"] + 40 * beats + 64) + 4 * n_writes + 1000
    phase_done = [Event() for _ in case["phases"]]
    t0 = time.perf_counter()
    drv = cocotb.start_soon(_driver(dut, case, rng, phase_done))
    mon = await with_timeout(
        _monitor(dut, case, rng, phase_done), budget_cycles * PERIOD_NS, timeout_unit="ns"
    )
    wall = time.perf_counter() - t0
    drv_res = await drv
    out = {
        **mon,
        **drv_res,
        "images": n_images,
        "wall_s": wall,
        "sim_cycles": int(get_sim_time("ns") // PERIOD_NS),
    }
    if n_images >= 2 and mon["first_result_ns"] is not None:
        # Steady state: cycles between the first and the last result transfer per image
        # (the pipeline's fill latency is measured apart).
        span = (mon["last_result_ns"] - mon["first_result_ns"]) / PERIOD_NS
        out["cycles_per_image"] = span / (mon["checked"] - 1)
        out["first_latency_cycles"] = (
            mon["first_result_ns"] - drv_res["first_accept_ns"]
        ) / PERIOD_NS
    if os.environ.get("SPINAPSE_TB_OUT"):
        write_json(os.environ["SPINAPSE_TB_OUT"], out)
    assert not mon["mismatches"], (
        f"{len(mon['mismatches'])} of {mon['checked']} results differ; first: "
        f"{mon['mismatches'][0]}"
    )
    assert mon["checked"] == n_images, f"checked {mon['checked']} of {n_images} images"
