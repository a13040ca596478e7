"""Continual learning on the RTL engine with physics synapses: the run behind ``spinapse cosim``.

Protocol: ``tasks.count`` permuted tasks of the embedded digits (:func:`spinapse.data.tasks.
permuted_tasks`, split seed 0, task 0 unpermuted), binarized (pixel >= 0.5). Task ``t`` trains
``tasks.epochs`` passes over its first ``tasks.train_samples`` digits, each pass in the order
``numpy.random.default_rng([seed, t, epoch]).permutation``, batch 1, on the Verilator model of the
training engine whose arrays are the card's devices (:func:`spinapse.cosim.bridge_case.
run_bridge`). At each task start the host clears ``M`` and the thresholds; after each task the
testbench writes a checkpoint (atomically), so a killed run resumes from its last finished task
without redoing it.

Accuracy: task ``j`` after task ``i`` is computed from the devices' bits at the end of task ``i``
and task ``j``'s own thresholds (saved when ``j`` ended; the current ones for tasks not yet
learned) by the integer forward pass, which the RTL's inference computes bit for bit
(``tests/test_update_engine_cosim.py``): running 10 000 test digits per task through Verilator
would take longer than the training.

Baseline (``baseline = true``): the same engine with ``m = 0`` on an ideal array (the integer
golden model, digital mode, every write succeeds), same tasks and orders.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinapse.cosim.bridge_case import _unpack, run_bridge
from spinapse.cosim.physics_array import Faults
from spinapse.experiments.cosim_config import CosimConfig
from spinapse.golden.integer_model.learning import IntegerEngine
from spinapse.rtl.training_engine import THR_BITS


class _Bits:
    """A read-only array of given bits (for the integer forward pass)."""

    def __init__(self, bits: np.ndarray) -> None:
        self.bits = bits

    def sense(self) -> np.ndarray:
        return self.bits


def task_data(cfg: CosimConfig):
    """Per task: training steps ``(bool [S, 784], int64 [S])`` and test ``(bits, labels)``."""
    from spinapse.data.digits import load_digits
    from spinapse.data.tasks import permuted_tasks

    tasks = permuted_tasks(load_digits(), cfg.tasks.count, cfg.seed)
    out = []
    for t, task in enumerate(tasks):
        x, y = task.train()
        x, y = (x[: cfg.tasks.train_samples] >= 0.5).numpy(), y[: cfg.tasks.train_samples].numpy()
        orders = [
            np.random.default_rng([cfg.seed, t, e]).permutation(x.shape[0])
            for e in range(cfg.tasks.epochs)
        ]
        order = np.concatenate(orders)
        xt, yt = task.test()
        n = cfg.tasks.test_samples
        out.append(((x[order], y[order]), ((xt[:n] >= 0.5).numpy(), yt[:n].numpy())))
    return out


def _thresholds(rtl: dict, rule) -> list[np.ndarray]:
    return [
        np.array(_unpack(rtl["thr1"], rule.n_hidden, THR_BITS), dtype=np.int64),
        np.array(_unpack(rtl["thr2"], rule.n_out, THR_BITS), dtype=np.int64),
    ]


def accuracy_matrix(cfg: CosimConfig, checkpoints: list[dict], tests) -> list[list[float]]:
    """``acc[i][j]``: accuracy on task ``j`` after task ``i`` (fractions), from the checkpoints."""
    rule = cfg.rule()
    thr_saved = [_thresholds(c["rtl"], rule) for c in checkpoints]
    acc = []
    for i, ck in enumerate(checkpoints):
        bits = [~a["ap"].numpy() for a in ck["arrays"]]
        eng = IntegerEngine(rule, "device", seed=0, arrays=[_Bits(b) for b in bits])
        row = []
        for j, (xt, yt) in enumerate(tests):
            thr = thr_saved[j] if j <= i else thr_saved[i]
            row.append(float((eng.predict(xt, thr) == yt).mean()))
        acc.append(row)
    return acc


def baseline_m0(cfg: CosimConfig, data) -> list[list[float]]:
    """The integer engine, ``m = 0``, ideal array (digital mode), on the same steps."""
    rule = dataclasses.replace(cfg.rule(), m=0.0, m_out=0.0)
    eng = IntegerEngine(rule, "digital", seed=cfg.seed)
    thr_saved, acc = [], []
    for (xs, ys), _ in data:
        eng.acc = [np.zeros_like(a) for a in eng.acc]
        eng.thr = [np.zeros_like(t) for t in eng.thr]
        for x, y in zip(xs, ys):
            eng.step(x, int(y))
        thr_saved.append([t.copy() for t in eng.thr])
        i = len(thr_saved) - 1
        acc.append(
            [
                float((eng.predict(xt, thr_saved[j] if j <= i else None) == yt).mean())
                for j, (_, (xt, yt)) in enumerate(data)
            ]
        )
    return acc


def _layer_rows(checkpoints: list[dict], steps_per_task: int) -> list[dict[str, Any]]:
    rows, before = [], None
    for i, ck in enumerate(checkpoints):
        for k, rep in enumerate(ck["reports"]):
            prev = before[k] if before is not None else None
            row = {"after_task": i, "layer": k + 1}
            for key in (
                "write_pulses",
                "flips",
                "failed_writes",
                "stuck_failures",
                "injected_failures",
                "gate_pulses",
                "erase_pulses",
            ):
                row[key] = rep[key] - (prev[key] if prev else 0)
            for key in ("write_energy_J", "gate_energy_J", "read_energy_J", "device_time_s"):
                row[key] = rep[key] - (prev[key] if prev else 0.0)
            row["mean_c"] = rep["mean_c"]
            rows.append(row)
        before = ck["reports"]
    return rows


def run_cosim(
    cfg: CosimConfig,
    resume: bool = False,
    progress: bool = True,
    waves: tuple[int, int] | None = None,
):
    """Run (or resume) the co-simulation of ``cfg``; return the results document.

    ``waves = (a, b)``: after the run, record an FST waveform of training steps ``a`` to
    ``b - 1`` (counted from 0 over the whole run, task ``t`` holding steps
    ``t * steps_per_task`` to ``(t + 1) * steps_per_task - 1``). The window is replayed from the
    checkpoint of the task before it (the replay draws the same numbers, as a resume does;
    traced from step ``a``, stopped after step ``b - 1``); the results document gets ``waves``
    (file, window, simulated start and end in ns).

    Raises
    ------
    ValueError
        If the card is not an ``mtj_synapse`` card with a ``[pulses]`` table, ``--resume``
        finds checkpoints of a different configuration, or the window is outside the run.
    """
    from spinapse.behavioral.card import load_card
    from spinapse.io import write_json

    card = load_card(cfg.card)
    if card.kind != "mtj_synapse" or "pulses" not in card.values:
        raise ValueError(
            f"card {card.name!r}: the co-simulation needs an mtj_synapse card with a [pulses] "
            "table (docs/pulse_map.md)"
        )
    out = cfg.out_dir()
    ck_dir = out / "checkpoints"
    ck_dir.mkdir(parents=True, exist_ok=True)
    stamp = cfg.model_dump(mode="json")
    cfg_file = ck_dir / "config.json"
    existing = sorted(ck_dir.glob("task*.pt"), key=lambda p: int(p.stem[4:]))
    if existing and not resume:
        raise ValueError(f"{ck_dir} holds checkpoints of an earlier run: pass --resume or remove")
    if resume and cfg_file.exists():
        import json

        if json.loads(cfg_file.read_text("utf-8")) != stamp:
            raise ValueError(f"--resume: {cfg_file} was written by a different configuration")
    steps = cfg.tasks.epochs * min(cfg.tasks.train_samples, 3000)
    if waves is not None:
        a, b = waves
        if not 0 <= a < b <= steps * cfg.tasks.count:
            raise ValueError(
                f"--waves {a}:{b}: the window must satisfy 0 <= A < B <= "
                f"{steps * cfg.tasks.count} (tasks.count x steps per task {steps})"
            )
    write_json(cfg_file, stamp)
    data = task_data(cfg)
    rule = cfg.rule()
    done = [torch.load(p, weights_only=False) for p in existing] if resume else []
    first = len(done)
    start = time.perf_counter()
    if first < cfg.tasks.count:
        run_bridge(
            rule,
            cfg.mode,
            card,
            [d[0] for d in data[first:]],
            seed=cfg.seed,
            device_seed=cfg.device_seed,
            faults=Faults(**cfg.faults.model_dump()),
            checkpoint_dir=ck_dir,
            resume=done[-1] if done else None,
            first_task=first,
            progress=progress,
        )
    seconds = time.perf_counter() - start
    checkpoints = [
        torch.load(ck_dir / f"task{i}.pt", weights_only=False) for i in range(cfg.tasks.count)
    ]
    tests = [d[1] for d in data]
    acc = accuracy_matrix(cfg, checkpoints, tests)
    doc: dict[str, Any] = {
        "config": stamp,
        "card": card.name,
        "acc": acc,
        "mean_earlier_after_last": float(np.mean(acc[-1][:-1])) if len(acc) > 1 else None,
        "steps_per_task": steps,
        "layers": _layer_rows(checkpoints, steps),
        "counters": checkpoints[-1]["counters"],
        "seconds_this_session": seconds,
        "resumed_from_task": first if resume else None,
    }
    if cfg.baseline:
        base = baseline_m0(cfg, data)
        doc["baseline_m0_ideal"] = {
            "acc": base,
            "mean_earlier_after_last": float(np.mean(base[-1][:-1])) if len(base) > 1 else None,
        }
    if waves is not None:
        doc["waves"] = record_window(cfg, card, data, checkpoints, steps, waves, progress)
    files = write_cosim_results(out, doc, checkpoints)
    doc["files"] = {k: str(v) for k, v in files.items()}
    return doc


def record_window(cfg, card, data, checkpoints, steps, window, progress=False) -> dict:
    """Replay training steps ``window = (a, b)`` of a finished run with an FST trace from step
    ``a``: from the checkpoint of the task before ``a``'s (a fresh start for task 0), through
    step ``b - 1``. Returns ``file``, ``window`` (global steps), ``start_ns``, ``end_ns``."""
    a, b = window
    first = a // steps
    last = (b - 1) // steps
    snap = run_bridge(
        cfg.rule(),
        cfg.mode,
        card,
        [d[0] for d in data[first : last + 1]],
        seed=cfg.seed,
        device_seed=cfg.device_seed,
        faults=Faults(**cfg.faults.model_dump()),
        resume=checkpoints[first - 1] if first > 0 else None,
        first_task=first,
        progress=progress,
        waves_window=(a - first * steps, b - first * steps),
    )
    w = snap["measure"]["waves"]
    return {"file": w["file"], "window": [a, b], "start_ns": w["start_ns"], "end_ns": w["end_ns"]}


def write_cosim_results(out: Path, doc: dict, checkpoints: list[dict]) -> dict[str, Path]:
    """``results.json``, ``accuracy.csv``, ``devices.csv`` and ``cosim.png`` (accuracy curves
    and a histogram of ``c`` per task and layer), each written atomically."""
    import csv
    import io

    from spinapse.io import atomic_path, write_json, write_text

    files = {"json": write_json(out / "results.json", doc)}
    buf = io.StringIO()
    w = csv.writer(buf)
    n = len(doc["acc"])
    w.writerow(["after_task"] + [f"task{j}" for j in range(n)])
    for i, row in enumerate(doc["acc"]):
        w.writerow([i] + [f"{a:.4f}" for a in row])
    files["accuracy_csv"] = write_text(out / "accuracy.csv", buf.getvalue())
    buf = io.StringIO()
    keys = list(doc["layers"][0])
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(doc["layers"])
    files["devices_csv"] = write_text(out / "devices.csv", buf.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hx) = plt.subplots(1, 2, figsize=(11, 4))
    acc = np.asarray(doc["acc"]) * 100
    for j in range(n):
        ax.plot(range(j, n), acc[j:, j], marker="o", label=f"task {j}")
    if "baseline_m0_ideal" in doc:
        base = np.asarray(doc["baseline_m0_ideal"]["acc"]) * 100
        ax.plot(range(n), base[-1], "k--", label="m = 0 ideal, after last task")
    ax.set_xlabel("after task")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"RTL engine + {doc['card']} ({doc['config']['mode']} mode)")
    ax.legend(fontsize=7)
    for i, ck in enumerate(checkpoints):
        c = torch.cat([a["c"].reshape(-1) for a in ck["arrays"]]).numpy()
        hx.hist(c, bins=40, range=(0, 1), histtype="step", label=f"after task {i}")
    hx.set_yscale("log")
    hx.set_xlabel("hidden state c")
    hx.set_ylabel("devices")
    hx.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out / "cosim.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    files["png"] = out / "cosim.png"
    return files
