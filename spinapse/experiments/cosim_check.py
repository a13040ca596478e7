"""The short co-simulation that ends ``spinapse run``: RTL + physics next to its golden prediction.

Two permuted tasks of a few hundred steps each on the 784-64-10 RTL engine in device mode with
the devices of ``mtj_mi_stt`` (:func:`spinapse.experiments.cosim_run.run_cosim`), and the golden
prediction of the same run (:func:`spinapse.cosim.bridge_case.golden_prediction`, same card,
seeds and pulse order). Prints both accuracy tables and one line saying whether the two agree
exactly (every prediction, counter, ``W_b``, ``M``, threshold and every device's ``c``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from spinapse.experiments.cosim_config import CosimConfig, CosimNetwork, CosimTasks


def short_cosim(out: Path, steps: int = 200, progress: bool = True) -> dict:
    """Run the check into ``out`` (its ``checkpoints/`` are replaced); return a summary dict
    ``{"agree": bool, "differences": [...], "cosim_acc": ..., "golden_acc": ...}``."""
    from spinapse.behavioral.card import load_card
    from spinapse.cosim.bridge_case import compare, golden_prediction
    from spinapse.cosim.physics_array import Faults
    from spinapse.experiments.cosim_run import accuracy_matrix, run_cosim, task_data
    from spinapse.io import write_json

    out = Path(out)
    cfg = CosimConfig(
        name=out.name,
        out=str(out.parent),
        baseline=False,
        tasks=CosimTasks(count=2, epochs=1, train_samples=steps, test_samples=2000),
        network=CosimNetwork(hidden=64),
    )
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    doc = run_cosim(cfg, resume=False, progress=progress)
    card, rule = load_card(cfg.card), cfg.rule()
    data = task_data(cfg)
    engine, snaps, gold = None, [], None
    for train, _ in data:
        gold = golden_prediction(
            rule, cfg.mode, card, [train], cfg.seed, cfg.device_seed, Faults(), engine=engine
        )
        engine = gold["engine"]
        snaps.append(_golden_snapshot(gold))
    golden_acc = accuracy_matrix(cfg, snaps, [d[1] for d in data])
    import torch

    last = torch.load(out / "checkpoints" / f"task{len(data) - 1}.pt", weights_only=False)
    diffs = compare(last, gold, cfg.mode)
    summary = {
        "agree": not diffs,
        "differences": diffs,
        "cosim_acc": doc["acc"],
        "golden_acc": golden_acc,
        "steps_per_task": steps,
    }
    write_json(out / "agreement.json", summary)
    print(_table("co-simulation (RTL engine in Verilator + mtj_mi_stt devices)", doc["acc"]))
    print(_table("golden prediction (integer engine model + the same devices)", golden_acc))
    if diffs:
        print("co-simulation and golden prediction DISAGREE: " + "; ".join(diffs[:5]))
    else:
        print(
            "co-simulation and golden prediction agree exactly: every prediction, counter, W_b, "
            "M, threshold and every device's c (float64)"
        )
    return summary


def _golden_snapshot(gold: dict) -> dict:
    from spinapse.rtl.hidden_state_array import pack_signed
    from spinapse.rtl.training_engine import THR_BITS

    eng = gold["engine"]
    return {
        "rtl": {f"thr{k + 1}": pack_signed(eng.thr[k], THR_BITS) for k in (0, 1)},
        "arrays": [a.state_dict() for a in gold["arrays"]],
    }


def _table(title: str, acc) -> str:
    n = len(acc)
    lines = [f"{title}: test accuracy (%)", "after task".ljust(12)]
    lines[-1] += "".join(f"task {j}".rjust(9) for j in range(n))
    for i, row in enumerate(acc):
        lines.append(str(i).ljust(12) + "".join(f"{100 * a:9.1f}" for a in row))
    return "\n".join(lines)
