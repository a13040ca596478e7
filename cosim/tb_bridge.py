"""cocotb testbench of the full system: the RTL training engine learns on physics synapses.

Runs inside the simulator process (Verilator, built by :mod:`spinapse.cosim.bridge_case`) on a
:class:`~spinapse.cosim.bridge_system.BridgeSystem`. The case file named by ``SPINAPSE_TB_CASE``
(JSON, written by :func:`spinapse.cosim.bridge_case.write_case`) gives the rule, mode, card,
faults, device seed, initial bits, an optional checkpoint to start from, and the tasks (input
words and labels). Roles:

- driver: writes the initial bits into both bridge mirrors, then per task clears ``M``
  (``acc_clear``) and the thresholds (``thr_load`` of zeros) and offers one training step at a
  time (``x``, ``label``, ``start``);
- bridge: while a step runs, wakes only when a ``WRITE``/``GATE`` row waits (``host_wait``),
  applies that whole row to the torch models (:class:`~spinapse.cosim.physics_array.
  PhysicsSynapseArray`, the same objects the golden prediction uses) and hands back the row's
  new bits (``host_ack``); each step's reads are charged at its start (every row once in the
  forward pass, and once more in the digital update sweep);
- monitor: ``pred`` at each ``done``; after each task a checkpoint (thresholds, ``W_h`` and ``M``
  rows, device state, generator state, counters) written atomically with ``torch.save``; after
  the last task the final state goes to ``SPINAPSE_TB_OUT`` (``.pt``).

Timing: the clock runs inside the design (``bridge_case._add_clock``), so an edge happens inside
the simulator's evaluation of its time step, before the writes the testbench made in that step
take effect; inputs are therefore driven only just after a ``RisingEdge`` (a write made by a
``Timer`` callback that lands on an edge's time step would miss that edge). The engine sees host
inputs ``INPUT_LATENCY`` cycles after they are driven, and the outputs read while it is idle
(``pred``, counters, thresholds, ``gated``, peeks) ``OUTPUT_LATENCY`` cycles late
(``bridge_system``); measured cycles per step leave the input register out. Device-mode mirror
rows are written through VPI while the engine is idle, without simulated time.

The comparison with the golden prediction happens in the caller (so that one run is checked
against both the right and a deliberately mis-ordered golden run). A progress bar on stderr
shows steps and an ETA. Every step has a simulated-time timeout.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

import cocotb
import numpy as np
import torch
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer, with_timeout

from spinapse.cosim.bridge_system import INPUT_LATENCY, OUTPUT_LATENCY, PERIOD_NS

COUNTER_KEYS = ("writes", "retries", "failures")
PHASES = ("sim", "serve", "gate_read", "physics", "reload")


class PhaseTimer:
    """Wall and CPU seconds spent in each phase of the training loop.

    ``sim``: the simulator runs a step (the testbench awaits ``done`` or ``host_wait``);
    ``serve``: digital-mode ``WRITE`` rows applied by the host; ``gate_read``: VPI reads of a
    step's ``GATE`` log; ``physics``: the torch device models apply a step's ``GATE`` rows;
    ``reload``: mirror rows whose bits changed written back. CPU time is the process's (the
    simulator and Python share it), so on a loaded machine ``cpu`` shows what the run itself
    costs while ``wall`` includes the wait for a core.
    """

    def __init__(self) -> None:
        self.wall = dict.fromkeys(PHASES, 0.0)
        self.cpu = dict.fromkeys(PHASES, 0.0)

    @contextmanager
    def phase(self, name: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - w
            self.cpu[name] += time.process_time() - c


def _write_rows(dut, layer: int, bits: np.ndarray, rows) -> None:
    """Write rows of the sensed bits (bool ``[.., lanes]``) into the mirror of ``layer``: one VPI
    write per row, no simulated time (the engine must be idle)."""
    mirror = getattr(dut, f"mirror{layer}")
    rows = np.asarray(rows, dtype=np.int64)
    width = bits.shape[1]
    # As the simulator's binary strings (most significant lane first), made in one numpy call.
    text = (bits[rows][:, ::-1].astype(np.uint8) + ord("0")).tobytes().decode("ascii")
    for i, r in enumerate(rows.tolist()):
        mirror[r].value = text[i * width : (i + 1) * width]


async def _peek(dut, layer: int, rows: int, keys) -> dict[str, list[int]]:
    out = {k: [] for k in keys}
    row = getattr(dut, f"peek_row{layer}")
    for r in range(rows):
        # M and W_h are block RAM: their read port answers one clock after the row is set.
        row.value = r
        await RisingEdge(dut.clk)
        await ClockCycles(dut.clk, OUTPUT_LATENCY)  # the peek outputs pass one register
        await Timer(1, unit="ns")
        for k in keys:
            out[k].append(getattr(dut, f"peek_{k}{layer}").value.to_unsigned())
    return out


async def _serve(dut, arrays) -> None:
    """Digital mode: one waiting ``WRITE`` row: apply it to the physics, return the row's bits."""
    from spinapse.cosim.physics_array import word_of

    k = 1 if dut.pulse_valid1.value else 2
    row = getattr(dut, f"pulse_row{k}").value.to_unsigned()
    arr = arrays[k - 1]
    arr.execute(
        getattr(dut, f"pulse_op{k}").value.to_unsigned(),
        row,
        getattr(dut, f"pulse_enable{k}").value.to_unsigned(),
        getattr(dut, f"pulse_polarity{k}").value.to_unsigned(),
    )
    getattr(dut, f"host_bits{k}").value = word_of(arr.bits[row])
    ack = getattr(dut, f"host_ack{k}")
    ack.value = 1
    await RisingEdge(dut.clk)
    ack.value = 0


def _bits(binstrs: list[str], width: int) -> np.ndarray:
    """bool ``[len(binstrs), width]``, bit ``i`` of each value at column ``i``, from the
    simulator's binary strings (most significant bit first; Verilator is two-state)."""
    raw = np.frombuffer("".join(binstrs).encode("ascii"), dtype=np.uint8)
    return (raw.reshape(len(binstrs), width) == ord("1"))[:, ::-1]


def _read_gates(dut, k: int, arr):
    """Device mode: the step's logged ``GATE`` rows of layer ``k`` (VPI reads, no sim time)."""
    rows = np.flatnonzero(_bits([str(getattr(dut, f"gated{k}").value)], arr.rows)[0])
    lanes, cb = arr.lanes, arr.code_bits
    log = getattr(dut, f"log{k}")
    # One VPI read per logged row, kept as the simulator's string, then one numpy parse for
    # all of them (integer conversions per row were half of this phase).
    fields = _bits([str(log[int(r)].value) for r in rows], lanes * (2 + cb))
    enable, polarity = fields[:, :lanes], fields[:, lanes : 2 * lanes]
    code = fields[:, 2 * lanes :].reshape(rows.size, lanes, cb).astype(np.int64)
    return rows, enable, polarity, code @ (1 << np.arange(cb, dtype=np.int64))


def _apply_step_gates(dut, arrays, timer: PhaseTimer) -> None:
    """Device mode, after ``done``: layer 2 then layer 1 (the engine's order), then reload the
    mirror rows whose bits changed."""

    for k in (2, 1):
        arr = arrays[k - 1]
        with timer.phase("gate_read"):
            rows, enable, polarity, code = _read_gates(dut, k, arr)
        with timer.phase("physics"):
            before = arr.bits[rows].copy()
            arr.gate_rows(rows, enable, polarity, code)
            changed = rows[(arr.bits[rows] != before).any(axis=1)]
        with timer.phase("reload"):
            _write_rows(dut, k, arr.bits, changed)


async def _idle_command(dut, name: str) -> None:
    # Drive inputs only just after a clock edge: the caller may come from a Timer (the peeks),
    # and a value written in a time step that then holds an edge would be sampled after it.
    await RisingEdge(dut.clk)
    getattr(dut, name).value = 1
    await RisingEdge(dut.clk)
    getattr(dut, name).value = 0
    # The engine sees the command INPUT_LATENCY cycles later; busy then lasts rows + 3 cycles
    # (acc_clear) or nothing (thr_load): polling starts inside that window.
    await ClockCycles(dut.clk, 1 + INPUT_LATENCY)
    while dut.busy.value:
        await RisingEdge(dut.clk)


def _snapshot(case, dut_state, arrays, gen, counters, preds, task) -> dict:
    return {
        "task": task,
        "rtl": dut_state,
        "arrays": [a.state_dict() for a in arrays],
        "reports": [a.report() for a in arrays],
        "generator": gen.get_state(),
        "counters": counters,
        "preds": preds,
    }


async def _rtl_state(dut, case) -> dict:
    keys = ("acc", "bits") + (("wh",) if case["mode"] == "digital" else ())
    rows = (case["rule"]["n_in"], case["rule"]["n_hidden"])
    out = {"thr1": dut.thr1.value.to_unsigned(), "thr2": dut.thr2.value.to_unsigned()}
    for layer, n in enumerate(rows, start=1):
        for key, words in (await _peek(dut, layer, n, keys)).items():
            out[f"{key}{layer}"] = words
    return out


@cocotb.test()
async def train_with_physics(dut):
    """Train every task of the case on the RTL engine with physics synapses."""
    from tqdm import tqdm

    from spinapse.behavioral.card import load_card
    from spinapse.cosim.physics_array import Faults, physics_layers
    from spinapse.golden.integer_model.learning import IntegerRule
    from spinapse.io import atomic_path

    torch.set_num_threads(1)  # small device tensors: threads only contend (bridge_case.py)
    with open(os.environ["SPINAPSE_TB_CASE"], encoding="utf-8") as fh:
        case = json.load(fh)
    rule = IntegerRule(**case["rule"])
    card = load_card(case["card"])
    lanes = (rule.n_hidden, rule.n_out)
    init_bits = [
        np.array([[(w >> j) & 1 for j in range(n)] for w in words], dtype=bool)
        for words, n in zip(case["init_bits"], lanes)
    ]
    arrays, gen = physics_layers(
        card, rule, init_bits, case["device_seed"], Faults(**case["faults"])
    )
    if case.get("state_in"):
        state = torch.load(case["state_in"], weights_only=False)
        for a, s in zip(arrays, state["arrays"]):
            a.load_state_dict(s)
        gen.set_state(state["generator"])
    # The clock runs inside the design (bridge_case._add_clock): nothing to start here.
    for name in ("start", "train", "thr_load", "acc_clear"):
        getattr(dut, name).value = 0
    dut.host_ack1.value = 0
    dut.host_ack2.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 1)
    for layer, a in enumerate(arrays, start=1):
        _write_rows(dut, layer, a.bits, range(a.rows))
    await RisingEdge(dut.clk)
    reads_per_step = 2 if case["mode"] == "digital" else 1
    timeout_ns = case["step_timeout_cycles"] * PERIOD_NS
    total = sum(len(t["label"]) for t in case["tasks"])
    bar = tqdm(total=total, desc="co-simulation steps", unit="step", disable=not case["progress"])
    wall, cpu = time.perf_counter(), time.process_time()
    timer = PhaseTimer()
    step_cycles = 0
    first_task = case.get("first_task", 0)
    t_done, t_wait = RisingEdge(dut.done), RisingEdge(dut.host_wait)
    window = case.get("waves_window")
    if window is not None:
        dut.waves_on.value = 0
    step, window_ns = 0, [None, None]
    for t, task in enumerate(case["tasks"], start=first_task):
        dut.thr1_in.value = 0
        dut.thr2_in.value = 0
        await _idle_command(dut, "thr_load")
        await _idle_command(dut, "acc_clear")
        preds = []
        for x, label in zip(task["x"], task["label"]):
            if window is not None and step == window[1]:
                break
            if window is not None and step == window[0]:
                # The design opens its trace on the first clock edge that sees waves_on.
                dut.waves_on.value = 1
                await RisingEdge(dut.clk)
                window_ns[0] = cocotb.utils.get_sim_time(unit="ns")
            for a in arrays:
                a.start_step(reads_per_step)
            dut.x.value = int(x)
            dut.label.value = int(label)
            dut.train.value = 1
            dut.start.value = 1
            await RisingEdge(dut.clk)
            dut.start.value = 0
            t0 = cocotb.utils.get_sim_time(unit="ns")
            while True:
                with timer.phase("sim"):
                    fired = await with_timeout(First(t_done, t_wait), timeout_ns, timeout_unit="ns")
                if fired is t_done:
                    break
                with timer.phase("serve"):
                    await _serve(dut, arrays)
            step_cycles += (cocotb.utils.get_sim_time(unit="ns") - t0) / PERIOD_NS + 1
            step_cycles -= INPUT_LATENCY  # the shell's input register, not the engine
            await RisingEdge(dut.clk)
            preds.append(dut.pred.value.to_unsigned())
            if case["mode"] == "device":
                _apply_step_gates(dut, arrays, timer)
            bar.update(1)
            step += 1
            if window is not None and step == window[1]:
                await RisingEdge(dut.clk)
                window_ns[1] = cocotb.utils.get_sim_time(unit="ns")
        # RTL counters restart with a resumed run: the case carries the totals before it.
        off = case.get("counter_offset") or {}
        counters = {k: getattr(dut, k).value.to_unsigned() + off.get(k, 0) for k in COUNTER_KEYS}
        counters["reads"] = [dut.reads1.value.to_unsigned(), dut.reads2.value.to_unsigned()]
        if window is not None and step == window[1]:
            # The window's run ends here (its task is unfinished: no checkpoint, no RTL peek,
            # which would extend the trace).
            snap = _snapshot(case, {}, arrays, gen, counters, preds, t)
            break
        snap = _snapshot(case, await _rtl_state(dut, case), arrays, gen, counters, preds, t)
        if case.get("checkpoint_dir"):
            path = os.path.join(case["checkpoint_dir"], f"task{t}.pt")
            with atomic_path(path) as tmp:
                torch.save(snap, tmp)
    bar.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    snap["measure"] = {
        "steps": step,
        "cycles_per_step": step_cycles / max(step, 1),
        "wall_s": wall,
        "cpu_s": cpu,
        "phases_wall_s": timer.wall,
        "phases_cpu_s": timer.cpu,
    }
    if window is not None:
        snap["measure"]["waves"] = {
            "window": window,
            "start_ns": window_ns[0],
            "end_ns": window_ns[1],
            "file": case["dump_file"],
        }
    with atomic_path(os.environ["SPINAPSE_TB_OUT"]) as tmp:
        torch.save(snap, tmp)
