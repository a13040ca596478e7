"""Result files of a continual-learning experiment: JSON, CSV, PNG curves, and a text table.

- ``results.json``: the full configuration, the fields the run did not read
  (``unused_fields``), the torch version and CPU vector instruction set the numbers were
  computed with (``environment``), and per run the accuracy matrix, curves and losses. No
  timestamps or durations, so the same seed and configuration give a byte-identical file on the
  same machine; another CPU capability (``ATEN_CPU_CAPABILITY``: avx2, avx512, ...) sums in
  another order and may change the last digits.
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


def environment() -> dict[str, str]:
    """What the numbers depend on besides seed and configuration: the torch version and the
    CPU vector instruction set its kernels use (``torch.backends.cpu.get_cpu_capability()``,
    forced with the ``ATEN_CPU_CAPABILITY`` environment variable)."""
    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def results_json(
    config: Mapping[str, Any],
    runs: Mapping[str, ContinualResult],
    extras: Mapping[str, Mapping[str, Any]] | None = None,
    unused: list[str] | None = None,
) -> dict:
    """The JSON document: ``{"config", "unused_fields", "environment", "runs": {label: result |
    extras[label]}}``.

    ``extras`` adds entries to a run's record (e.g. ``{"device": report}`` of a device-backed
    run), so that the file is written once, complete. ``unused`` lists the configuration
    fields the run did not read (:func:`spinapse.config.unused_fields`); by default they are
    derived from ``config``.
    """
    extras = extras or {}
    if unused is None:
        from spinapse.config import ExperimentConfig, unused_fields

        unused = unused_fields(ExperimentConfig.model_validate(dict(config)))
    return {
        "config": dict(config),
        "unused_fields": list(unused),
        "environment": environment(),
        "runs": {k: {**r.to_dict(), **extras.get(k, {})} for k, r in runs.items()},
    }


def accuracy_csv(runs: Mapping[str, ContinualResult]) -> str:
    """CSV text with header ``run,after_task,task,task_name,accuracy_percent``; tasks are
    numbered from 1, as in the printed tables (``acc[i][j]`` of results.json is row
    ``after_task = i + 1, task = j + 1``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", "after_task", "task", "task_name", "accuracy_percent"])
    for label, r in runs.items():
        for i, row in enumerate(r.acc):
            for j, a in enumerate(row):
                w.writerow([label, i + 1, j + 1, r.task_names[j], f"{100 * a:.2f}"])
    return buf.getvalue()


def plot_curves(
    path: str | os.PathLike[str], runs: Mapping[str, ContinualResult], epochs: int
) -> Path:
    """Save the per-task accuracy curves (x: epochs since the start, y: test accuracy %).

    With one evaluation per task (``train.eval_every_epoch = false``) each task's accuracy is
    drawn as markers at the end of every task, joined by thin dotted lines, and the x axis is
    labelled with the task boundaries (whole epochs); with per-epoch evaluation, as solid curves.
    The legend sits below the panels, off the data.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.2), sharey=True, squeeze=False)
    handles: list = []
    for ax, (label, r) in zip(axes[0], runs.items()):
        n = len(r.task_names)
        xs = [p["task"] * epochs + p["epoch"] for p in r.curve]
        sparse = len(r.curve) <= n  # only task-end evaluations
        for j, name in enumerate(r.task_names):
            ys = [100 * p["acc"][j] for p in r.curve]
            style = {"ls": ":", "lw": 0.8, "marker": "o", "ms": 4} if sparse else {"lw": 1.2}
            (line,) = ax.plot(xs, ys, label=f"task {j + 1}: {name}", **style)
            if ax is axes[0][0]:
                handles.append(line)
        for i in range(1, n):
            ax.axvline(i * epochs, color="0.85", lw=0.8, zorder=0)
        if sparse:
            ax.set_xticks([i * epochs for i in range(1, n + 1)])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label)
        ax.set_xlabel(f"epochs ({epochs} per task)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 5),
        fontsize=7,
        frameon=False,
    )
    rows = -(-len(handles) // 5)
    fig.tight_layout(rect=(0, 0.06 * rows + 0.02, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def percent(x: float) -> str:
    """A percentage with one decimal, rounded half away from zero on its decimal value.

    ``f"{x:.1f}"`` rounds the binary float: 47.85 is stored as 47.8499..., printed 47.8, while
    the same mean computed in another order prints 47.9. Rounding the value first to 9 decimals
    removes that float noise, so every table prints the same digit for the same number.
    """
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(repr(round(x, 9))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def summary_table(runs: Mapping[str, ContinualResult]) -> str:
    """Final accuracy (%) on each task per run, plus the mean over all tasks but the last."""
    labels = list(runs)
    names = next(iter(runs.values())).task_names
    width = max(12, *(len(s) + 2 for s in labels))
    first = max(14, *(len(n) + 5 for n in names))
    lines = ["task".ljust(first) + "".join(s.rjust(width) for s in labels)]
    for j, name in enumerate(names):
        cells = "".join(percent(100 * runs[s].final()[j]).rjust(width) for s in labels)
        lines.append(f"{j + 1} {name}".ljust(first) + cells)
    if len(names) > 1:
        means = [100 * sum(runs[s].final()[:-1]) / (len(names) - 1) for s in labels]
        lines.append(
            f"mean 1-{len(names) - 1}".ljust(first)
            + "".join(percent(m).rjust(width) for m in means)
        )
    return "\n".join(lines)


def write_results(
    out_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    runs: Mapping[str, ContinualResult],
    epochs: int,
    extras: Mapping[str, Mapping[str, Any]] | None = None,
    unused: list[str] | None = None,
) -> dict[str, Path]:
    """Write ``results.json`` (with ``extras`` per run and ``unused`` fields, see
    :func:`results_json`), ``accuracy.csv`` and ``curves.png`` into ``out_dir``."""
    root = Path(out_dir)
    return {
        "json": write_json(root / "results.json", results_json(config, runs, extras, unused)),
        "csv": write_text(root / "accuracy.csv", accuracy_csv(runs)),
        "png": plot_curves(root / "curves.png", runs, epochs),
    }
