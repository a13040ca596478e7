"""Full-system co-simulation runs and their golden prediction (RTL engine + physics synapses).

- :func:`golden_prediction`: the integer engine model
  (:class:`~spinapse.golden.integer_model.learning.IntegerEngine`) with its arrays passed in as
  :class:`~spinapse.cosim.physics_array.PhysicsSynapseArray` over the same card, the same seeded
  ``torch.Generator``, the same initial weights and the same pulse order as the RTL engine, so it
  draws the same numbers as the co-simulation.
- :func:`run_bridge`: converts :class:`~spinapse.cosim.bridge_system.BridgeSystem` to Verilog
  (cached), writes the case file of :mod:`spinapse.cosim.tb_bridge` and runs it on Verilator;
  returns the final snapshot (predictions, RTL state, device state, counters, measurements).
- :func:`compare`: every prediction, counter, ``W_b``, ``M``, threshold (and ``W_h`` in digital
  mode), and every device's ``c``, state and energy (float64, exactly equal) of a co-simulation
  snapshot against a golden prediction; returns the list of differences.

Task protocol (as :class:`spinapse.experiments.integer_learner.IntegerLearner`): at each task
start ``M`` and the thresholds restart from 0 (the RTL host sends ``acc_clear`` and loads zero
thresholds); the device state carries over.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from spinapse.cosim.bridge_system import PERIOD_NS
from spinapse.cosim.physics_array import Faults, physics_layers
from spinapse.cosim.runner import fst_supported, run_cocotb, sim_build_root
from spinapse.golden.integer_model.learning import IntegerEngine, IntegerRule, initial_w_h
from spinapse.rtl.hidden_state_array import pack_signed
from spinapse.rtl.training_engine import THR_BITS

COUNTER_KEYS = ("writes", "retries", "failures")


def _word(bits) -> int:
    return sum(1 << k for k, b in enumerate(bits) if b)


def reads_per_step(mode: str) -> int:
    """Row reads of every row per training step: forward, plus the digital update sweep."""
    return 2 if mode == "digital" else 1


def golden_prediction(
    rule: IntegerRule,
    mode: str,
    card,
    tasks,
    seed: int = 0,
    device_seed: int = 1,
    faults: Faults | None = None,
    misorder=None,
    engine: IntegerEngine | None = None,
) -> dict:
    """The integer engine model over physics arrays: what the co-simulation must produce.

    Parameters
    ----------
    rule : IntegerRule
    mode : str
        ``"digital"`` or ``"device"``.
    card : DeviceCard
        An ``mtj_synapse`` card with ``[pulses]``.
    tasks : list of (bool ndarray [N, n_in], int ndarray [N])
        Training steps of each task, in order.
    seed, device_seed : int
        Seed of the initial ``W_h`` (``initial_w_h``); seed of the devices' generator.
    faults : Faults, optional
    misorder : (layer, pulse index), optional
        Negative tests: that write pulse draws its devices in reverse lane order.
    engine : IntegerEngine, optional
        Continue this engine (its arrays must be physics arrays) instead of a fresh one.

    Returns
    -------
    dict
        ``engine`` (the trained engine), ``arrays`` (its two physics arrays), ``preds`` (list
        per task of int lists), ``counters`` (dict).
    """
    threads = torch.get_num_threads()
    # The device tensors are small (one layer at most 784 x 1024): one thread is fastest, and
    # on shared cores several threads spin on each other (a 50 000-element add took 9 ms with
    # two threads on a loaded 2-core machine against 0.1 ms with one).
    torch.set_num_threads(1)
    try:
        return _golden(rule, mode, card, tasks, seed, device_seed, faults, misorder, engine)
    finally:
        torch.set_num_threads(threads)


def _golden(rule, mode, card, tasks, seed, device_seed, faults, misorder, engine) -> dict:
    if engine is None:
        w_h = initial_w_h(rule, seed)
        arrays, _ = physics_layers(card, rule, [w >= 0 for w in w_h], device_seed, faults, misorder)
        engine = IntegerEngine(rule, mode, seed=seed, arrays=arrays)
    preds = []
    for xs, ys in tasks:
        engine.acc = [np.zeros_like(a) for a in engine.acc]
        engine.thr = [np.zeros_like(t) for t in engine.thr]
        task_preds = []
        for x, y in zip(xs, ys):
            for a in engine.arrays:
                a.start_step(reads_per_step(mode))
            task_preds.append(engine.step(x, int(y)))
        preds.append(task_preds)
    c = engine.counters
    return {
        "engine": engine,
        "arrays": engine.arrays,
        "preds": preds,
        "counters": {"writes": c.writes, "retries": c.retries, "failures": c.failures},
    }


def misorder_target(array) -> int:
    """For negative tests: index of the first write pulse of ``array`` (a physics array of a
    finished run) where a device missed and reversing the draw order moves the miss to another
    device (a pulse where every device switches comes out the same in any order).

    Raises
    ------
    AssertionError
        If no such pulse was recorded.
    """
    for index, n, miss in array.missed_pulses:
        if any(n - 1 - p not in miss for p in miss):
            return index
    raise AssertionError("no write pulse with a miss to mis-order")


def _rtl_sources_digest() -> str:
    import spinapse.cosim.bridge_array as ba
    import spinapse.rtl as rtl

    h = hashlib.sha256()
    paths = sorted(Path(rtl.__file__).parent.glob("*.py"))
    paths += [Path(ba.__file__), Path(ba.__file__).with_name("bridge_system.py")]
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def bridge_verilog(rule: IntegerRule, mode: str, init_wh=None, dump_file: str | None = None) -> str:
    """Verilog of the :class:`BridgeSystem` (cached in ``<sim_build>/verilog_cache``).

    Device mode keeps no ``W_h`` in the engine, so one build serves every seed and every resume.
    ``dump_file`` (e.g. ``"dump.fst"``): the waveform build; the top module gets an input
    ``waves_on`` whose first rising edge (sampled on ``clk``) runs ``$dumpfile(dump_file)`` and
    ``$dumpvars``, so the trace starts at a moment the testbench chooses (Verilator ignores
    ``$dumpoff``: the trace runs until the simulation ends).
    """
    from spinapse.cosim.bridge_system import BridgeSystem
    from spinapse.io import write_text
    from spinapse.rtl.verilog import convert

    wh = [np.asarray(w).tolist() for w in init_wh] if mode == "digital" else None
    key = hashlib.sha256(
        json.dumps(
            [rule.as_dict(), mode, wh, _rtl_sources_digest(), dump_file, "clock", PERIOD_NS]
        ).encode()
    ).hexdigest()[:24]
    path = sim_build_root() / "verilog_cache" / f"bridge_{mode}_{key}.v"
    if path.exists():
        return path.read_text(encoding="utf-8")
    system = BridgeSystem(rule, mode, rule.tables(), wh, waves_port=dump_file is not None)
    text = _add_clock(convert(system, "bridge_system"), PERIOD_NS)
    if dump_file is not None:
        text = _add_dump_start(text, dump_file)
    write_text(path, text)
    return text


def _add_clock(text: str, period_ns: int) -> str:
    """Turn the ``clk`` input of ``bridge_system`` into a clock the design generates itself
    (``always #(period/2) clk = ~clk``, built with Verilator's ``--timing``).

    A clock driven from cocotb costs a VPI write, a timer callback and the simulator's
    value-change checks every half period, about a fifth of the co-simulation's time per
    cycle; inside the model it costs nothing the testbench sees. The testbench awaits
    ``RisingEdge(dut.clk)`` as before (``clk`` stays a signal of the top module).
    """
    if period_ns % 2:
        raise ValueError(f"period_ns must be even, got {period_ns}")
    head = text.index("module bridge_system(")
    header_end = text.index(");", head)
    header = re.sub(r"\bclk\b,\s*", "", text[head:header_end], count=1)
    body_end = text.index("endmodule", header_end)
    body = text[header_end:body_end]
    decl = "  input clk;\n  wire clk;\n"
    if decl not in body or header == text[head:header_end]:
        raise ValueError("bridge_system has no clk input to replace")
    body = body.replace(decl, f"  reg clk = 1'b0;\n  always #{period_ns // 2} clk = ~clk;\n", 1)
    return text[:head] + header + body + text[body_end:]


def _add_dump_start(text: str, dump_file: str) -> str:
    """Insert the trace start on ``waves_on`` before the ``endmodule`` of ``bridge_system``."""
    if not all(c.isalnum() or c in "._-" for c in dump_file):
        raise ValueError(f"dump_file must be a plain file name, got {dump_file!r}")
    head = text.index("module bridge_system(")
    end = text.index("endmodule", head)
    hook = (
        "  reg spinapse_dump_started = 1'b0;\n"
        "  always @(posedge clk)\n"
        "    if (waves_on && !spinapse_dump_started) begin\n"
        "      spinapse_dump_started <= 1'b1;\n"
        f'      $dumpfile("{dump_file}");\n'
        "      $dumpvars;\n"
        "    end\n"
    )
    return text[:end] + hook + text[end:]


def run_bridge(
    rule: IntegerRule,
    mode: str,
    card,
    tasks,
    seed: int = 0,
    device_seed: int = 1,
    faults: Faults | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: dict | None = None,
    first_task: int = 0,
    progress: bool = False,
    waves: bool = False,
    waves_window: tuple[int, int] | None = None,
) -> dict:
    """Run ``tasks`` on the RTL engine in Verilator with the physics bridge; return the snapshot.

    Parameters
    ----------
    rule, mode, card, tasks, seed, device_seed, faults
        As :func:`golden_prediction`.
    checkpoint_dir : path, optional
        Write ``task<i>.pt`` there after each task (atomically).
    resume : dict, optional
        A checkpoint to continue from (device and generator state, ``W_h`` rows); ``tasks`` are
        then the remaining ones, numbered from ``first_task``.
    progress : bool
        Show a progress bar with ETA (stderr of the simulator).
    waves : bool
        Record an FST waveform of the whole run in the build directory.
    waves_window : (int, int), optional
        Record a waveform of the steps ``a <= step < b`` only (steps counted from 0 over
        ``tasks``) in the build directory's ``dump.fst`` (``dump.vcd`` where Verilator's FST
        writer cannot be built), and stop after step ``b - 1``; the snapshot then holds
        ``measure["waves"]`` (file, window and its simulated start and end in ns).

    Returns
    -------
    dict
        The last snapshot of :mod:`spinapse.cosim.tb_bridge` (``preds`` of the last task,
        ``rtl`` rows, ``arrays`` states, ``reports``, ``counters``, ``measure``).

    Raises
    ------
    AssertionError
        If the simulation fails or a step times out.
    """
    faults = faults or Faults()
    w_h = initial_w_h(rule, seed)
    init_bits = [w >= 0 for w in w_h]
    state_in = None
    if resume is not None:
        if mode == "digital":
            w_h = [
                np.array([_unpack(word, n, rule.wh_bits) for word in resume["rtl"][f"wh{k + 1}"]])
                for k, n in enumerate((rule.n_hidden, rule.n_out))
            ]
    dump_file = None
    if waves_window is not None:
        a, b = (int(v) for v in waves_window)
        total = sum(len(ys) for _, ys in tasks)
        if not 0 <= a < b <= total:
            raise ValueError(f"waves window must satisfy 0 <= a < b <= {total}, got {a}:{b}")
        dump_file = "dump.fst" if fst_supported() else "dump.vcd"
        waves = True
    verilog = bridge_verilog(rule, mode, w_h, dump_file)
    budget = 16 * (rule.n_in + rule.n_hidden) * (rule.retry_limit + 2) + 256
    with tempfile.TemporaryDirectory() as tmp:
        if resume is not None:
            state_in = str(Path(tmp) / "state_in.pt")
            torch.save(resume, state_in)
        doc = {
            "mode": mode,
            "rule": rule.as_dict(),
            "card": str(card.path),
            "faults": faults.as_dict(),
            "device_seed": int(device_seed),
            "init_bits": [[_word(r) for r in b] for b in init_bits],
            "state_in": state_in,
            "first_task": int(first_task),
            "tasks": [
                {"x": [_word(x) for x in xs], "label": [int(y) for y in ys]} for xs, ys in tasks
            ],
            "step_timeout_cycles": budget,
            "checkpoint_dir": str(checkpoint_dir) if checkpoint_dir else None,
            "progress": bool(progress),
            "counter_offset": {k: resume["counters"][k] for k in COUNTER_KEYS} if resume else None,
            "waves_window": list(waves_window) if waves_window is not None else None,
            "dump_file": dump_file,
        }
        from spinapse.io import write_json

        case_path, out_path = Path(tmp) / "case.json", Path(tmp) / "out.pt"
        write_json(case_path, doc)
        results = run_cocotb(
            name=f"bridge_{mode}_{rule.n_in}-{rule.n_hidden}-{rule.n_out}"
            + ("_window" if dump_file else ""),
            verilog=verilog,
            toplevel="bridge_system",
            test_module="spinapse.cosim.tb_bridge",
            extra_env={"SPINAPSE_TB_CASE": str(case_path), "SPINAPSE_TB_OUT": str(out_path)},
            waves=waves,
            cxx_opt="-O2",
            design_trace=dump_file is not None,
            build_args=["--timing"],
        )
        snap = torch.load(out_path, weights_only=False)
        if dump_file is not None:
            snap["measure"]["waves"]["file"] = str(results.parent / dump_file)
        return snap


def _unpack(word: int, lanes: int, bits: int) -> list[int]:
    out = []
    for lane in range(lanes):
        v = (word >> (lane * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def compare(snap: dict, gold: dict, mode: str) -> list[str]:
    """Differences between a co-simulation snapshot and a golden prediction (empty: bit-exact).

    Compared: the last task's predictions, the RTL counters, thresholds, ``M`` rows, sensed bits
    (and ``W_h`` rows in digital mode) against the integer engine; every device's ``ap``, ``c``
    and energies (``torch.equal`` on float64) and the arrays' counters against the golden arrays.
    """
    eng, out = gold["engine"], []
    if snap["preds"] != gold["preds"][-1]:
        bad = [i for i, (a, b) in enumerate(zip(snap["preds"], gold["preds"][-1])) if a != b]
        out.append(f"predictions differ at steps {bad[:10]}")
    for k in COUNTER_KEYS:
        if snap["counters"][k] != gold["counters"][k]:
            out.append(f"counter {k}: rtl {snap['counters'][k]}, golden {gold['counters'][k]}")
    rtl = snap["rtl"]
    for k in (0, 1):
        if rtl[f"thr{k + 1}"] != pack_signed(eng.thr[k], THR_BITS):
            out.append(f"thresholds of layer {k + 1} differ")
        want = {
            "acc": [pack_signed(r, eng.rule.acc_bits) for r in eng.acc[k]],
            "bits": [_word(r) for r in eng.w_b()[k]],
        }
        if mode == "digital":
            want["wh"] = [pack_signed(r, eng.rule.wh_bits) for r in eng.w_h[k]]
        for key, words in want.items():
            bad = [r for r, (a, b) in enumerate(zip(rtl[f"{key}{k + 1}"], words)) if a != b]
            if bad:
                out.append(f"{key}{k + 1}: {len(bad)} rows differ, first {bad[:5]}")
        got, ref = snap["arrays"][k], gold["arrays"][k].state_dict()
        for key in ("ap", "c", "energy_write", "energy_gate", "energy_read"):
            if not torch.equal(got[key], ref[key]):
                n = int((got[key] != ref[key]).sum())
                out.append(f"layer {k + 1} device {key}: {n} devices differ")
        if got["counts"] != ref["counts"]:
            out.append(
                f"layer {k + 1} pulse counts: bridge {got['counts']}, golden {ref['counts']}"
            )
    return out
