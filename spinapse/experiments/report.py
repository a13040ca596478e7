"""Result files of a continual-learning experiment: JSON, CSV, PNG curves, and a text table.

- ``results.json``: the full configuration and, per run, the accuracy matrix, curves and losses.
  No timestamps or durations, so the same seed and configuration give a byte-identical file.
- ``accuracy.csv``: one row per (run, after_task, task) with the accuracy in percent.
- ``curves.png``: per-task test accuracy against training epochs, one panel per run, in the
  style of Laborieux et al., Nat. Commun. 12, 2549 (2021), Fig. 2.
All are written atomically through :mod:`spinapse.io`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spinapse.experiments.continual import ContinualResult
from spinapse.io import atomic_path, write_json, write_text


def results_json(
    config: Mapping[str, Any],
    runs: Mapping[str, ContinualResult],
    extras: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict:
    """The JSON document: ``{"config": ..., "runs": {label: result | extras[label]}}``.

    ``extras`` adds entries to a run's record (e.g. ``{"device": report}`` of a device-backed
    run), so that the file is written once, complete.
    """
    extras = extras or {}
    return {
        "config": dict(config),
        "runs": {k: {**r.to_dict(), **extras.get(k, {})} for k, r in runs.items()},
    }


def accuracy_csv(runs: Mapping[str, ContinualResult]) -> str:
    """CSV text with header ``run,after_task,task,task_name,accuracy_percent``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", "after_task", "task", "task_name", "accuracy_percent"])
    for label, r in runs.items():
        for i, row in enumerate(r.acc):
            for j, a in enumerate(row):
                w.writerow([label, i, j, r.task_names[j], f"{100 * a:.2f}"])
    return buf.getvalue()


def plot_curves(
    path: str | os.PathLike[str], runs: Mapping[str, ContinualResult], epochs: int
) -> Path:
    """Save the per-task accuracy curves (x: epochs since the start, y: test accuracy %)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (label, r) in zip(axes[0], runs.items()):
        xs = [p["task"] * epochs + p["epoch"] for p in r.curve]
        for j, name in enumerate(r.task_names):
            ax.plot(xs, [100 * p["acc"][j] for p in r.curve], marker=".", label=name)
        for i in range(1, len(r.task_names)):
            ax.axvline(i * epochs, color="0.85", lw=0.8, zorder=0)
        ax.set_title(label)
        ax.set_xlabel("epochs")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def summary_table(runs: Mapping[str, ContinualResult]) -> str:
    """Final accuracy (%) on each task per run, plus the mean over all tasks but the last."""
    labels = list(runs)
    names = next(iter(runs.values())).task_names
    width = max(12, *(len(s) + 2 for s in labels))
    first = max(14, *(len(n) + 5 for n in names))
    lines = ["task".ljust(first) + "".join(s.rjust(width) for s in labels)]
    for j, name in enumerate(names):
        cells = "".join(f"{100 * runs[s].final()[j]:.1f}".rjust(width) for s in labels)
        lines.append(f"{j + 1} {name}".ljust(first) + cells)
    if len(names) > 1:
        means = [100 * sum(runs[s].final()[:-1]) / (len(names) - 1) for s in labels]
        lines.append(
            f"mean 1-{len(names) - 1}".ljust(first)
            + "".join(f"{m:.1f}".rjust(width) for m in means)
        )
    return "\n".join(lines)


def write_results(
    out_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    runs: Mapping[str, ContinualResult],
    epochs: int,
    extras: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write ``results.json`` (with ``extras`` per run, see :func:`results_json`),
    ``accuracy.csv`` and ``curves.png`` into ``out_dir``."""
    root = Path(out_dir)
    return {
        "json": write_json(root / "results.json", results_json(config, runs, extras)),
        "csv": write_text(root / "accuracy.csv", accuracy_csv(runs)),
        "png": plot_curves(root / "curves.png", runs, epochs),
    }
