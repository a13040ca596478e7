"""Accuracy against the fraction of stuck devices (``spinapse cosim --stuck-sweep``).

For each stuck fraction ``f`` (half of the devices stuck at P, half at AP, drawn once from the
device generator, :class:`~spinapse.cosim.physics_array.Faults`) the configuration's tasks are
learned by the golden prediction of the co-simulation
(:func:`spinapse.cosim.bridge_case.golden_prediction`: the integer engine model over the same
physics arrays, card, seeded generator and pulse order as the RTL engine in Verilator, so the
same numbers as a co-simulation of the same configuration, as long as the two agree bit for bit,
which ``tests/test_cosim_bridge.py`` checks). The co-simulation itself would take hours per
point on two cores; the golden prediction takes minutes.

Accuracy of task ``j`` after the last task: the devices' bits at the end and task ``j``'s own
thresholds (saved when ``j`` ended), as :func:`spinapse.experiments.cosim_run.accuracy_matrix`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spinapse.experiments.cosim_config import CosimConfig


def parse_fractions(text: str) -> list[float]:
    """``"0,1,5,10,20"`` (percent) -> ``[0.0, 0.01, 0.05, 0.1, 0.2]``.

    Raises
    ------
    ValueError
        If an entry is not a number in [0, 100].
    """
    out = []
    for part in text.split(","):
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"--stuck-sweep: {part!r} is not a number (percent)") from None
        if not 0.0 <= v <= 100.0:
            raise ValueError(f"--stuck-sweep: each fraction must be in [0, 100] %, got {v}")
        out.append(v / 100.0)
    return out


def stuck_sweep(cfg: CosimConfig, fractions: list[float], progress: bool = True) -> dict:
    """Learn every task of ``cfg`` once per stuck fraction (golden prediction); return the
    document: per fraction the accuracy of every task after the last one, their mean, the
    mean of the earlier tasks, and the layers' failed writes, stuck failures and flips."""
    from tqdm import tqdm

    from spinapse.behavioral.card import load_card
    from spinapse.cosim.bridge_case import golden_prediction
    from spinapse.cosim.physics_array import Faults
    from spinapse.experiments.cosim_run import task_data

    card = load_card(cfg.card)
    data = task_data(cfg)
    rule = cfg.rule()
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(fractions) * len(data), desc="stuck sweep (golden)", disable=not progress)
    for f in fractions:
        faults = Faults(stuck_p=f / 2, stuck_ap=f / 2, write_fail=cfg.faults.write_fail)
        engine, thr = None, []
        for (xs, ys), _ in data:
            gold = golden_prediction(
                rule,
                cfg.mode,
                card,
                [(xs, ys)],
                cfg.seed,
                cfg.device_seed,
                faults=faults,
                engine=engine,
            )
            engine = gold["engine"]
            thr.append([t.copy() for t in engine.thr])
            bar.update(1)
        acc = [
            float((engine.predict(xt, thr[j]) == yt).mean()) for j, (_, (xt, yt)) in enumerate(data)
        ]
        counts = [a.counts for a in engine.arrays]
        rows.append(
            {
                "stuck_fraction": f,
                "acc_after_last": acc,
                "mean_all": float(np.mean(acc)),
                "mean_earlier": float(np.mean(acc[:-1])) if len(acc) > 1 else None,
                "stuck_devices": [int(a.stuck.sum()) for a in engine.arrays],
                "failed_writes": [c["failed_writes"] for c in counts],
                "stuck_failures": [c["stuck_failures"] for c in counts],
                "flips": [c["flips"] for c in counts],
            }
        )
    bar.close()
    return {
        "config": cfg.model_dump(mode="json"),
        "card": card.name,
        "source": "golden prediction of the co-simulation (cosim/bridge_case.py)",
        "steps_per_task": len(data[0][0][1]),
        "points": rows,
    }


def write_sweep(out: Path, doc: dict, png: Path | None = None) -> dict[str, Path]:
    """``stuck_sweep.json``, ``stuck_sweep.csv`` and ``stuck_sweep.png`` in ``out`` (and the
    figure also at ``png``), each written atomically."""
    import csv
    import io

    from spinapse.io import atomic_path, write_json, write_text

    files = {"json": write_json(out / "stuck_sweep.json", doc)}
    n = len(doc["points"][0]["acc_after_last"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["stuck_percent"] + [f"task{j}" for j in range(n)] + ["mean_all", "mean_earlier"])
    for p in doc["points"]:
        w.writerow(
            [f"{100 * p['stuck_fraction']:g}"]
            + [f"{a:.4f}" for a in p["acc_after_last"]]
            + [f"{p['mean_all']:.4f}"]
            + ["" if p["mean_earlier"] is None else f"{p['mean_earlier']:.4f}"]
        )
    files["csv"] = write_text(out / "stuck_sweep.csv", buf.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [100 * p["stuck_fraction"] for p in doc["points"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [100 * p["mean_all"] for p in doc["points"]], "o-", label=f"mean of all {n} tasks")
    if n > 1:
        ax.plot(
            x,
            [100 * p["mean_earlier"] for p in doc["points"]],
            "s--",
            label=f"mean of tasks 0-{n - 2}",
        )
        ax.plot(
            x, [100 * p["acc_after_last"][-1] for p in doc["points"]], "^:", label=f"task {n - 1}"
        )
    ax.set_xlabel("stuck devices (%), half at P, half at AP")
    ax.set_ylabel(f"test accuracy after task {n - 1} (%)")
    cfg = doc["config"]
    ax.set_title(
        f"{doc['card']}, {cfg['mode']} mode, 784-{cfg['network']['hidden']}-10, "
        f"{doc['steps_per_task']} steps/task (golden)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    targets = [out / "stuck_sweep.png"] + ([Path(png)] if png else [])
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    files["png"] = targets[-1]
    return files
