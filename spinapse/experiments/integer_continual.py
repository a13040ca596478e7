"""Continual-learning accuracy of the integer rule against the float Adam_meta golden model.

Protocol (the acceptance of issue 13): 5 permuted tasks of the embedded digits (3000 train /
2000 test, split seed 0; task 0 unpermuted), the same network for both models (784-H-...-10 of
the rule's ``n_hidden`` and ``n_hidden_layers``), each task learned in sequence and every task
tested after each one (:func:`spinapse.experiments.continual.run_continual`). Four runs per seed:

- ``integer``: :class:`IntegerLearner` with the rule's ``m`` (batch 1, ``int_epochs`` per task);
- ``integer_m0``: the same rule with ``m = 0`` (no consolidation);
- ``float``: :class:`GoldenLearner` (BNN with task-dependent BatchNorm tested on stored population
  statistics, Adam_meta, the paper's lr 0.005, float pixels as in the paper), ``float_m`` in
  every layer, batch ``float_batch``, ``float_epochs`` per task;
- ``float_m0``: the float model with ``m = 0``.

Acceptance (:func:`acceptance`), per seed: right after each task, the integer rule within
``0.05`` of the float model on that task; after the last task, the integer rule's mean over the
earlier tasks at least ``0.10`` above the ``integer_m0`` run's.

Relating the two ``m`` (``docs/learning_rule.md``): f_meta reads ``m * |W_h|`` in both models,
the integer ``W_h`` in units of ``2**-frac_bits``. The two ``|W_h|`` scales are set by different
step sizes (Adam's ``lr`` per batch against the accumulator's integer steps per sample), so the
same number does not mean the same consolidation. The configuration states the float ``m`` and
the integer ``m``; the result records the median ``|W_h|`` of each hidden layer after the first
task for both models, and ``m * median|W_h|`` (the f_meta argument of a typical weight) is the
quantity that makes them comparable.

Command line: ``spinapse integer --config spinapse/configs/integer_continual.toml`` (see
:mod:`spinapse.commands.integer`), or ``python -m spinapse.experiments.integer_continual``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinapse.experiments.continual import run_continual
from spinapse.experiments.integer_learner import IntegerLearner
from spinapse.golden.integer_model.learning import IntegerRule

RUNS = ("integer", "integer_m0", "float", "float_m0")


class IntegerCompareConfig(BaseModel):
    """The comparison's settings (a TOML file: top-level keys and a ``[rule]`` table).

    Attributes
    ----------
    name : str
        Result folder name under ``results_dir``.
    results_dir : str
        Parent folder of the results.
    seeds : list of int
        Seeds (weights, sample orders, permutations), each >= 0.
    n_tasks : int
        Permuted tasks, in [2, 10].
    int_epochs, float_epochs : int
        Epochs per task of the integer (batch 1) and float models, in [1, 100].
    float_batch : int
        Batch size of the float models, in [2, 1000].
    float_m : float
        ``m`` of every layer of the float metaplastic run, >= 0.
    int_population_thresholds : bool
        Save the integer runs' thresholds from population statistics of each task's training
        set (:meth:`IntegerEngine.population_thresholds`, like the float model's BatchNorm)
        instead of the tracked ``T``.
    rule : dict
        :class:`IntegerRule` fields (the rule of the ``integer`` run; ``integer_m0`` sets
        ``m = m_out = 0``).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field("integer-continual", min_length=1)
    results_dir: str = "results"
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    n_tasks: int = Field(5, ge=2, le=10)
    int_epochs: int = Field(2, ge=1, le=100)
    float_epochs: int = Field(2, ge=1, le=100)
    float_batch: int = Field(20, ge=2, le=1000)
    float_m: float = Field(2.0, ge=0)
    int_population_thresholds: bool = False
    rule: dict[str, Any] = Field(default_factory=dict)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError("seeds must be distinct integers >= 0")
        return v

    def integer_rule(self) -> IntegerRule:
        """The :class:`IntegerRule` of ``rule`` (ValueError names a bad field)."""
        unknown = set(self.rule) - set(IntegerRule.__dataclass_fields__)
        if unknown:
            raise ValueError(f"rule: unknown IntegerRule field(s) {sorted(unknown)}")
        return IntegerRule(**self.rule)


def _summary(acc: list[list[float]]) -> dict[str, Any]:
    n = len(acc)
    return {
        "acc": acc,
        "mean_earlier_after_last": float(np.mean(acc[-1][: n - 1])) if n > 1 else None,
        "right_after_training": [acc[i][i] for i in range(n)],
    }


class _FirstTaskScale:
    """Records the median ``|W_h|`` of each hidden layer after the first task (``after_task``)."""

    def __init__(self, get) -> None:
        self.get, self.median = get, None

    def __call__(self, i: int, _result) -> None:
        if i == 0:
            self.median = [float(np.median(np.abs(w))) for w in self.get()]


def compare_integer_float(
    rule: IntegerRule,
    n_tasks: int = 5,
    int_epochs: int = 2,
    float_epochs: int = 20,
    seed: int = 0,
    with_float: bool = True,
    float_m: float | None = 2.0,
    float_batch: int = 20,
    population_thresholds: bool = False,
) -> dict[str, Any]:
    """Run the four models of one seed on the same permuted tasks and return their accuracies.

    Parameters
    ----------
    rule : IntegerRule
        The integer rule (its ``n_hidden``, ``n_hidden_layers``, ``n_out`` define both
        networks; the float model has ``n_in / in_levels`` inputs, the pixels).
    n_tasks : int
        Permuted tasks, >= 2.
    int_epochs, float_epochs : int
        Epochs per task of the integer (batch 1) and float models, >= 1.
    seed : int
        Seeds weights, sample orders and permutations, >= 0.
    with_float : bool
        Also run the two float models.
    float_m : float or None
        ``m`` of every float layer, >= 0 (``None``: the rule's ``m`` and ``m_out``).
    float_batch : int
        Batch size of the float models, >= 2.
    population_thresholds : bool
        The integer runs save population thresholds at each task end (:class:`IntegerLearner`).

    Returns
    -------
    dict
        ``{"integer": {...}, "integer_m0": {...}, "float": {...}, "float_m0": {...}, "rule",
        "settings", "seconds"}``; each run has ``acc``, ``mean_earlier_after_last`` and
        ``right_after_training`` (fractions); the metaplastic runs also have
        ``median_abs_wh_task1`` (per hidden layer; integer in ``W_h`` units, float in float
        units).

    Raises
    ------
    ValueError
        If a count is out of range.
    """
    from spinapse.data.digits import load_digits
    from spinapse.data.tasks import permuted_tasks
    from spinapse.experiments.learner import GoldenLearner
    from spinapse.golden.float_model.bnn import BNN

    if n_tasks < 2 or int_epochs < 1 or float_epochs < 1 or seed < 0 or float_batch < 2:
        raise ValueError(
            f"need n_tasks >= 2, epochs >= 1, seed >= 0, float_batch >= 2; got {n_tasks}, "
            f"{int_epochs}, {float_epochs}, {seed}, {float_batch}"
        )
    if float_m is not None and not (np.isfinite(float_m) and float_m >= 0):
        raise ValueError(f"float_m must be a finite number >= 0 or None, got {float_m!r}")
    tasks = permuted_tasks(load_digits(), n_tasks, seed)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"rule": rule.as_dict()}
    m0 = dataclasses.replace(rule, m=0.0, m_out=0.0)
    hidden = rule.n_hidden_layers
    for name, r in (("integer", rule), ("integer_m0", m0)):
        learner = IntegerLearner(r, seed=seed, population_thresholds=population_thresholds)
        scale = _FirstTaskScale(lambda lr=learner: lr.engine.w_h[:hidden])
        res = run_continual(tasks, learner, int_epochs, seed, progress=False, after_task=scale)
        out[name] = _summary(res.acc) | {"median_abs_wh_task1": scale.median}
    m = m_out = None
    if with_float:
        if float_m is None:
            m = rule.m
            m_out = rule.m if rule.m_out is None else rule.m_out
        else:
            m = m_out = float(float_m)
        for name, meta in (("float", (m, m_out)), ("float_m0", (0.0, 0.0))):
            torch.manual_seed(seed)
            # The float model sees the pixels (n_in / in_levels of them), not the input bits.
            model = BNN(rule.n_in // rule.in_levels, (rule.n_hidden,) * hidden, rule.n_out)
            scale = _FirstTaskScale(
                lambda mod=model: [lin.weight.detach().numpy() for lin in mod.linears[:hidden]]
            )
            res = run_continual(
                tasks,
                GoldenLearner(model, [meta[0]] * hidden + [meta[1]], batch_size=float_batch),
                float_epochs,
                seed,
                progress=False,
                after_task=scale,
            )
            out[name] = _summary(res.acc) | {"median_abs_wh_task1": scale.median}
    out["settings"] = {
        "n_tasks": n_tasks,
        "int_epochs": int_epochs,
        "float_epochs": float_epochs,
        "float_m": [m, m_out] if with_float else None,
        "float_batch": float_batch,
        "population_thresholds": population_thresholds,
        "seed": seed,
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def acceptance(res: dict[str, Any], tol: float = 0.05, gain: float = 0.10) -> dict[str, Any]:
    """The issue-13 acceptance of one seed's :func:`compare_integer_float` result.

    Returns ``{"gaps": [float - integer right after each task], "within": bool (every
    ``|gap| <= tol``), "gain": integer minus integer_m0 mean of the earlier tasks after the last,
    "gain_ok": bool (``>= gain``)}``.
    """
    a = res["integer"]["right_after_training"]
    f = res["float"]["right_after_training"]
    gaps = [fb - ib for ib, fb in zip(a, f)]
    g = res["integer"]["mean_earlier_after_last"] - res["integer_m0"]["mean_earlier_after_last"]
    return {
        "gaps": gaps,
        "within": all(abs(x) <= tol + 1e-12 for x in gaps),
        "gain": g,
        "gain_ok": g >= gain - 1e-12,
    }


def _one_seed(args: tuple[IntegerCompareConfig, int]) -> dict[str, Any]:
    cfg, seed = args
    torch.set_num_threads(1)
    return compare_integer_float(
        cfg.integer_rule(),
        n_tasks=cfg.n_tasks,
        int_epochs=cfg.int_epochs,
        float_epochs=cfg.float_epochs,
        seed=seed,
        float_m=cfg.float_m,
        float_batch=cfg.float_batch,
        population_thresholds=cfg.int_population_thresholds,
    )


def run_comparison(
    cfg: IntegerCompareConfig, jobs: int = 1, progress: bool = True
) -> dict[str, Any]:
    """All seeds of ``cfg`` (``jobs`` processes at once; results do not depend on it).

    Returns ``{"config": ..., "seeds": {seed: result}, "acceptance": {seed: ...},
    "holds": {"within_5_points": bool, "gain_10_points": bool}}``.
    """
    from tqdm import tqdm

    cfg.integer_rule()  # a bad rule field fails before any work
    work = [(cfg, s) for s in cfg.seeds]
    bar = tqdm(total=len(work), desc="seeds", unit="seed", disable=not progress)
    results = []
    if jobs <= 1:
        for w in work:
            results.append(_one_seed(w))
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for r in pool.map(_one_seed, work):
                results.append(r)
                bar.update(1)
    bar.close()
    per_seed = {str(s): r for s, r in zip(cfg.seeds, results)}
    acc = {s: acceptance(r) for s, r in per_seed.items()}
    return {
        "config": cfg.model_dump(),
        "seeds": per_seed,
        "acceptance": acc,
        "holds": {
            "within_5_points": all(a["within"] for a in acc.values()),
            "gain_10_points": all(a["gain_ok"] for a in acc.values()),
        },
    }


def table(doc: dict[str, Any]) -> str:
    """Plain-text per-seed table (percent): right after each task, mean of earlier tasks after
    the last, and the two acceptance checks."""
    lines = []
    for seed, res in doc["seeds"].items():
        a = doc["acceptance"][seed]
        lines.append(f"seed {seed}")
        for name in RUNS:
            if name not in res:
                continue
            r = res[name]
            after = " ".join(f"{100 * v:5.1f}" for v in r["right_after_training"])
            lines.append(
                f"  {name:11s} right after each task: {after}   mean 1-{len(r['acc']) - 1} after "
                f"last: {100 * r['mean_earlier_after_last']:5.1f}"
            )
        gaps = " ".join(f"{100 * g:+5.1f}" for g in a["gaps"])
        lines.append(
            f"  float - integer: {gaps}  ({'HOLDS' if a['within'] else 'DOES NOT HOLD'} 5 points)"
            f"; integer - integer_m0: {100 * a['gain']:+.1f} "
            f"({'HOLDS' if a['gain_ok'] else 'DOES NOT HOLD'} 10 points)"
        )
    return "\n".join(lines)


def csv_text(doc: dict[str, Any]) -> str:
    """Long CSV: ``seed, run, after_task, task, accuracy`` (tasks numbered from 1)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seed", "run", "after_task", "task", "accuracy"])
    for seed, res in doc["seeds"].items():
        for name in RUNS:
            if name in res:
                for i, row in enumerate(res[name]["acc"]):
                    for j, v in enumerate(row):
                        w.writerow([seed, name, i + 1, j + 1, f"{v:.4f}"])
    return buf.getvalue()


def plot(doc: dict[str, Any], path: str | Path) -> Path:
    """PNG, one panel per seed: accuracy right after each task (solid) and after the last task
    (dashed) of the four runs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from spinapse.io import atomic_path

    seeds = list(doc["seeds"])
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.5 * len(seeds), 3.8), squeeze=False)
    colors = {"integer": "C0", "integer_m0": "C1", "float": "C2", "float_m0": "C3"}
    for ax, seed in zip(axes[0], seeds):
        res = doc["seeds"][seed]
        for name in RUNS:
            if name not in res:
                continue
            r = res[name]
            xs = np.arange(1, len(r["acc"]) + 1)
            ax.plot(xs, 100 * np.array(r["right_after_training"]), "-o", c=colors[name], ms=3,
                    label=f"{name}: right after")  # fmt: skip
            ax.plot(xs, 100 * np.array(r["acc"][-1]), "--", c=colors[name], lw=0.9,
                    label=f"{name}: after last")  # fmt: skip
        ax.set_title(f"seed {seed}")
        ax.set_xlabel("task")
        ax.set_xticks(xs)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return Path(path)


def write_results(doc: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write ``comparison.json``, ``comparison.csv`` and ``comparison.png`` atomically."""
    from spinapse.io import write_json, write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_json(folder / "comparison.json", doc),
        write_text(folder / "comparison.csv", csv_text(doc)),
        plot(doc, folder / "comparison.png"),
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line: run :func:`compare_integer_float` for one seed, write JSON."""
    from spinapse.io import write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="result JSON path")
    p.add_argument("--int-epochs", type=int, default=2)
    p.add_argument("--float-epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--float-m", type=float, default=2.0, help="m of the float model (negative: the rule's m)"
    )
    p.add_argument("--float-batch", type=int, default=20)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an IntegerRule field (int or float), e.g. --set n_hidden=256",
    )
    args = p.parse_args(argv)
    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        if field not in IntegerRule.__dataclass_fields__ or not value:
            raise ValueError(f"--set expects FIELD=VALUE with an IntegerRule field, got {item!r}")
        overrides[field] = float(value) if field in ("m", "m_out") else int(value)
    torch.set_num_threads(1)
    res = compare_integer_float(
        IntegerRule(**overrides),
        int_epochs=args.int_epochs,
        float_epochs=args.float_epochs,
        seed=args.seed,
        float_m=None if args.float_m < 0 else args.float_m,
        float_batch=args.float_batch,
    )
    write_json(args.out, res)
    for name in RUNS:
        r = res[name]
        print(
            f"{name:11s} mean tasks 1-4 after 5: {r['mean_earlier_after_last']:.3f}  "
            f"right after training: {' '.join(f'{a:.3f}' for a in r['right_after_training'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
