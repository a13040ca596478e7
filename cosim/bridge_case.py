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
import tempfile
from pathlib import Path

import numpy as np
import torch

from spinapse.cosim.physics_array import Faults, physics_layers
from spinapse.cosim.runner import run_cocotb, sim_build_root
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


def bridge_verilog(rule: IntegerRule, mode: str, init_wh=None) -> str:
    """Verilog of the :class:`BridgeSystem` (cached in ``<sim_build>/verilog_cache``).

    Device mode keeps no ``W_h`` in the engine, so one build serves every seed and every resume.
    """
    from spinapse.cosim.bridge_system import BridgeSystem
    from spinapse.io import write_text
    from spinapse.rtl.verilog import convert

    wh = [np.asarray(w).tolist() for w in init_wh] if mode == "digital" else None
    key = hashlib.sha256(
        json.dumps([rule.as_dict(), mode, wh, _rtl_sources_digest()]).encode()
    ).hexdigest()[:24]
    path = sim_build_root() / "verilog_cache" / f"bridge_{mode}_{key}.v"
    if path.exists():
        return path.read_text(encoding="utf-8")
    text = convert(BridgeSystem(rule, mode, rule.tables(), wh), "bridge_system")
    write_text(path, text)
    return text


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
    verilog = bridge_verilog(rule, mode, w_h)
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
        }
        from spinapse.io import write_json

        case_path, out_path = Path(tmp) / "case.json", Path(tmp) / "out.pt"
        write_json(case_path, doc)
        run_cocotb(
            name=f"bridge_{mode}_{rule.n_in}-{rule.n_hidden}-{rule.n_out}",
            verilog=verilog,
            toplevel="bridge_system",
            test_module="spinapse.cosim.tb_bridge",
            extra_env={"SPINAPSE_TB_CASE": str(case_path), "SPINAPSE_TB_OUT": str(out_path)},
            waves=waves,
            cxx_opt="-O2",
        )
        return torch.load(out_path, weights_only=False)


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
