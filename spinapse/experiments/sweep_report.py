"""The report of a sweep: ``sweep.json``, ``sweep.csv``, ``sweep_groups.csv``, PNGs, a table.

The measures are those of Laborieux et al., Nat. Commun. 12, 2549 (2021), Fig. 3: after the last
task of a run, the mean test accuracy on the earlier tasks (retention; undefined for a one-task
stream) and the accuracy on the newest task (plasticity), in percent. Runs that differ only in
``seed`` form a group, summarised by the mean and the sample standard deviation over its seeds.

- ``sweep.json``: the grid, every run (swept values, status ``done`` / ``skipped`` (finished
  before) / ``failed`` / ``pending`` (not run yet), attempts, error, final accuracy per task, the
  two measures, training seconds) and every group.
- ``sweep.csv``: one row per run; ``sweep_groups.csv``: one row per group.
- ``tradeoff_m.png`` (when ``method.meta`` is swept): both measures against m, one line per
  combination of the other swept fields, error bars one sd over seeds; groups without a swept m
  (an EWC baseline) are drawn as horizontal lines.
- ``groups.png``: both measures of every group side by side (methods, cards, widths...).
All files are written atomically (:mod:`spinapse.io`).
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from spinapse.experiments.sweep import RunRecord
from spinapse.experiments.sweep_grid import Sweep, format_value
from spinapse.io import atomic_path, write_json, write_text

META = "method.meta"


def measures(record: RunRecord) -> tuple[list[float], float | None, float | None]:
    """``(final accuracy per task %, mean of the earlier tasks %, newest task %)`` of a run;
    ``([], None, None)`` for a failed one, the middle None for a one-task stream."""
    if record.result is None:
        return [], None, None
    final = [100 * a for a in record.result.final()]
    earlier = sum(final[:-1]) / (len(final) - 1) if len(final) > 1 else None
    return final, earlier, final[-1]


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.mean(values), "sd": sd, "n": len(values)}


def group_fields(sweep: Sweep) -> list[str]:
    """The swept fields other than ``seed``: what tells the groups apart."""
    return [f for f in sweep.fields if f != "seed"]


def groups(sweep: Sweep, records: list[RunRecord]) -> list[dict[str, Any]]:
    """One entry per group of runs equal but for ``seed``, in the order first met: its values
    (None where its grid did not sweep a field), seeds, failed runs and the two measures."""
    fields = group_fields(sweep)
    found: dict[tuple, dict[str, Any]] = {}
    for rec in records:
        values = {f: rec.run.values.get(f) for f in fields}
        key = tuple(repr(values[f]) for f in fields)
        g = found.setdefault(
            key, {"values": values, "seeds": [], "failed": 0, "_earlier": [], "_newest": []}
        )
        g["seeds"].append(rec.run.config.seed)
        _, earlier, newest = measures(rec)
        if rec.result is None:
            g["failed"] += rec.status == "failed"
            continue
        if earlier is not None:
            g["_earlier"].append(earlier)
        g["_newest"].append(newest)
    out = []
    for g in found.values():
        g["earlier_tasks_percent"] = _stats(g.pop("_earlier"))
        g["newest_task_percent"] = _stats(g.pop("_newest"))
        out.append(g)
    return out


def group_label(values: dict[str, Any]) -> str:
    """``meta=4.5, count=3``: short field names and formatted values (``-`` where unset)."""
    if not values:
        return "all runs"
    return ", ".join(
        f"{f.split('.')[-1]}={'-' if v is None else format_value(v)}" for f, v in values.items()
    )


def sweep_document(sweep: Sweep, records: list[RunRecord]) -> dict[str, Any]:
    """The ``sweep.json`` document (no timestamps; durations are in ``runs[].seconds``)."""
    runs = []
    for rec in records:
        final, earlier, newest = measures(rec)
        runs.append(
            {
                "name": rec.run.name,
                "values": rec.run.values,
                "seed": rec.run.config.seed,
                "folder": rec.run.config.out_dir().as_posix(),
                "status": rec.status,
                "attempts": rec.attempts,
                "label": rec.label,
                "final_percent": final,
                "earlier_tasks_percent": earlier,
                "newest_task_percent": newest,
                "seconds": rec.seconds,
                "error": rec.error,
                "traceback": rec.traceback,
            }
        )
    statuses = ("done", "skipped", "failed", "pending")
    counts = {s: sum(r.status == s for r in records) for s in statuses}
    return {
        "name": sweep.base.name,
        "fields": sweep.fields,
        "grids": sweep.grids,
        "counts": {**counts, "retried": sum(r.attempts > 1 for r in records)},
        "runs": runs,
        "groups": groups(sweep, records),
    }


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def runs_csv(sweep: Sweep, doc: dict[str, Any]) -> str:
    """``sweep.csv``: name, each swept field, status, attempts, the two measures, task_1..K."""
    k = max((len(r["final_percent"]) for r in doc["runs"]), default=0)
    head = ["name", *sweep.fields, "status", "attempts"]
    head += ["earlier_tasks_percent", "newest_task_percent"]
    head += [f"task_{j + 1}_percent" for j in range(k)]
    rows = [head]
    for r in doc["runs"]:
        values = [format_value(r["values"][f]) if f in r["values"] else "" for f in sweep.fields]
        finals = [_num(a) for a in r["final_percent"]] + [""] * (k - len(r["final_percent"]))
        rows.append(
            [r["name"], *values, r["status"], r["attempts"]]
            + [_num(r["earlier_tasks_percent"]), _num(r["newest_task_percent"]), *finals]
        )
    return _csv(rows)


def groups_csv(sweep: Sweep, doc: dict[str, Any]) -> str:
    """``sweep_groups.csv``: each group's values, seeds, failed runs, mean and sd of both."""
    fields = group_fields(sweep)
    head = [*fields, "seeds", "failed"]
    for m in ("earlier_tasks", "newest_task"):
        head += [f"{m}_mean_percent", f"{m}_sd_percent"]
    rows = [head]
    for g in doc["groups"]:
        values = ["" if g["values"][f] is None else format_value(g["values"][f]) for f in fields]
        cells = []
        for m in ("earlier_tasks_percent", "newest_task_percent"):
            cells += [_num(g[m]["mean"]), _num(g[m]["sd"])]
        rows.append([*values, " ".join(map(str, g["seeds"])), g["failed"], *cells])
    return _csv(rows)


def _pm(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "-"
    if stat["sd"] is None:
        return f"{stat['mean']:.1f}"
    return f"{stat['mean']:.1f} ± {stat['sd']:.1f}"


def table(doc: dict[str, Any]) -> str:
    """The text table printed at the end: one line per group, mean ± sd over seeds (%)."""
    labels = [group_label(g["values"]) for g in doc["groups"]]
    first = max(10, *(len(s) + 2 for s in labels))
    lines = [
        "group".ljust(first)
        + "seeds".rjust(8)
        + "earlier tasks".rjust(16)
        + "newest task".rjust(16)
        + "failed".rjust(8)
    ]
    for label, g in zip(labels, doc["groups"]):
        n = g["newest_task_percent"]["n"]
        lines.append(
            label.ljust(first)
            + str(n).rjust(8)
            + _pm(g["earlier_tasks_percent"]).rjust(16)
            + _pm(g["newest_task_percent"]).rjust(16)
            + str(g["failed"]).rjust(8)
        )
    c = doc["counts"]
    lines.append(
        f"{len(doc['runs'])} runs: {c['done']} trained now, {c['skipped']} finished before, "
        f"{c['failed']} failed, {c['retried']} retried after a lost worker"
        + (f", {c['pending']} not run yet" if c["pending"] else "")
    )
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    return path


PANELS = (
    ("earlier_tasks_percent", "earlier tasks (mean)"),
    ("newest_task_percent", "newest task"),
)


def plot_tradeoff(path: Path, sweep: Sweep, doc: dict[str, Any]) -> Path | None:
    """``tradeoff_m.png``: retention and plasticity against m (None when m is not swept or
    not a single number per run)."""
    gs = doc["groups"]
    swept = [g for g in gs if g["values"].get(META) is not None]
    if not swept or not all(isinstance(g["values"][META], int | float) for g in swept):
        return None
    others = [f for f in group_fields(sweep) if f != META]
    lines: dict[str, list[dict[str, Any]]] = {}
    for g in swept:
        lines.setdefault(group_label({f: g["values"][f] for f in others}), []).append(g)
    flat = [g for g in gs if g["values"].get(META) is None]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    n_tasks = max((len(r["final_percent"]) for r in doc["runs"]), default=0)
    for ax, (key, title) in zip(axes, PANELS):
        for label, members in lines.items():
            members = sorted(members, key=lambda g: g["values"][META])
            pts = [(g["values"][META], g[key]) for g in members if g[key]["mean"] is not None]
            if not pts:
                continue
            ax.errorbar(
                [m for m, _ in pts],
                [s["mean"] for _, s in pts],
                yerr=[s["sd"] or 0.0 for _, s in pts],
                marker="o",
                capsize=3,
                label=label if others else "Adam_meta",
            )
        for g in flat:
            if g[key]["mean"] is not None:
                ax.axhline(g[key]["mean"], ls="--", lw=1, color="0.4")
                ax.annotate(
                    group_label({f: v for f, v in g["values"].items() if v is not None}),
                    (0.02, g[key]["mean"]),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    va="bottom",
                )
        ax.set_title(f"{title}, after task {n_tasks}" if n_tasks else title)
        ax.set_xlabel("m (metaplasticity)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), mean ± sd over seeds")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_groups(path: Path, doc: dict[str, Any]) -> Path:
    """``groups.png``: both measures of every group as bars with one-sd error bars."""
    gs = doc["groups"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(gs) + 2), 4.2))
    width = 0.38
    for i, (key, title) in enumerate(PANELS):
        xs = [j + (i - 0.5) * width for j in range(len(gs))]
        ax.bar(
            xs,
            [g[key]["mean"] or 0.0 for g in gs],
            width,
            yerr=[g[key]["sd"] or 0.0 for g in gs],
            capsize=3,
            label=title,
        )
    ax.set_xticks(range(len(gs)))
    ax.set_xticklabels([group_label(g["values"]) for g in gs], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("test accuracy (%), mean ± sd over seeds")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def write_report(sweep: Sweep, doc: dict[str, Any]) -> dict[str, Path]:
    """Write the report of ``doc`` (:func:`sweep_document`) into the sweep folder; return the
    written files by name."""
    root = sweep.folder
    files = {
        "sweep.json": write_json(root / "sweep.json", doc),
        "sweep.csv": write_text(root / "sweep.csv", runs_csv(sweep, doc)),
        "sweep_groups.csv": write_text(root / "sweep_groups.csv", groups_csv(sweep, doc)),
        "groups.png": plot_groups(root / "groups.png", doc),
    }
    tradeoff = plot_tradeoff(root / "tradeoff_m.png", sweep, doc)
    if tradeoff is not None:
        files["tradeoff_m.png"] = tradeoff
    return files
