"""Continual-learning accuracy of the integer rule against the float Adam_meta golden model.

Protocol (the acceptance of issue 5): 5 permuted tasks of the embedded digits (3000 train /
2000 test, split seed 0; task 0 unpermuted), the same network for both models, each task
learned in sequence and every task tested after each one (:func:`run_continual`). Four runs:

- ``integer``: :class:`IntegerLearner` with the rule's ``m`` (batch 1, ``int_epochs`` per task);
- ``integer_m0``: the same rule with ``m = 0`` (no consolidation);
- ``float``: :class:`GoldenLearner` (BNN with task-dependent BatchNorm, Adam_meta, the paper's
  lr 0.005, float pixels as in the paper), ``float_m`` in both layers (default 2.0), batch
  ``float_batch`` (default 20), ``float_epochs`` per task;
- ``float_m0``: the float model with ``m = 0``.

Why batch 20 and ``float_m = 2``: chosen under the old batch-statistics float evaluation, where
batch 100 seemed to leave this 784-64-10 network at 67-69 % right after each task. That was the
evaluation (class-ordered test batches normalised with their own statistics); with the stored
population statistics the float model reaches about 90 % after every task at batch 100 as at
batch 20 (seed 0, ``docs/learning_rule.md``). The defaults are kept so that the records stay
comparable; ``--float-batch 100 --float-m 1.35`` gives the paper's settings. With either, the
integer rule is 16 or more points below the float model right after training.

Reported: ``acc[i][j]`` of each run, the mean accuracy on tasks 1-4 after task 5, and each task's
accuracy right after it was learned (``acc[i][i]``). Run with
``python -m spinapse.experiments.integer_continual --out results/integer_continual.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np
import torch

from spinapse.experiments.continual import run_continual
from spinapse.experiments.integer_learner import IntegerLearner
from spinapse.golden.integer_model.learning import IntegerRule


def _summary(acc: list[list[float]]) -> dict[str, Any]:
    n = len(acc)
    return {
        "acc": acc,
        "mean_earlier_after_last": float(np.mean(acc[-1][: n - 1])) if n > 1 else None,
        "right_after_training": [acc[i][i] for i in range(n)],
    }


def compare_integer_float(
    rule: IntegerRule,
    n_tasks: int = 5,
    int_epochs: int = 2,
    float_epochs: int = 20,
    seed: int = 0,
    with_float: bool = True,
    float_m: float | None = 2.0,
    float_batch: int = 20,
) -> dict[str, Any]:
    """Run the four models on the same permuted tasks and return their accuracies.

    Parameters
    ----------
    rule : IntegerRule
        The integer rule (its ``n_in``, ``n_hidden``, ``n_out`` define both networks).
    n_tasks : int
        Permuted tasks, >= 2.
    int_epochs, float_epochs : int
        Epochs per task of the integer (batch 1) and float (batch 100) models, >= 1.
    seed : int
        Seeds weights, sample orders and permutations, >= 0.
    with_float : bool
        Also run the two float models.
    float_m : float or None
        ``m`` of both float layers, >= 0 (``None``: the rule's ``m`` and ``m_out``).
    float_batch : int
        Batch size of the float models, >= 2.

    Returns
    -------
    dict
        ``{"integer": {...}, "integer_m0": {...}, "float": {...}, "float_m0": {...}, "rule",
        "settings", "seconds"}``; each run has ``acc``, ``mean_earlier_after_last`` and
        ``right_after_training`` (fractions).

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
    for name, r in (("integer", rule), ("integer_m0", m0)):
        res = run_continual(tasks, IntegerLearner(r, seed=seed), int_epochs, seed, progress=False)
        out[name] = _summary(res.acc)
    if with_float:
        if float_m is None:
            m = rule.m
            m_out = rule.m if rule.m_out is None else rule.m_out
        else:
            m = m_out = float(float_m)
        for name, meta in (("float", (m, m_out)), ("float_m0", (0.0, 0.0))):
            torch.manual_seed(seed)
            model = BNN(rule.n_in, (rule.n_hidden,) * rule.n_hidden_layers, rule.n_out)
            res = run_continual(
                tasks,
                GoldenLearner(model, meta, batch_size=float_batch),
                float_epochs,
                seed,
                progress=False,
            )
            out[name] = _summary(res.acc)
    out["settings"] = {
        "n_tasks": n_tasks,
        "int_epochs": int_epochs,
        "float_epochs": float_epochs,
        "float_m": [m, m_out] if with_float else None,
        "float_batch": float_batch,
        "seed": seed,
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: run :func:`compare_integer_float` with the default rule, write JSON."""
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
    for name in ("integer", "integer_m0", "float", "float_m0"):
        r = res[name]
        print(
            f"{name:11s} mean tasks 1-4 after 5: {r['mean_earlier_after_last']:.3f}  "
            f"right after training: {' '.join(f'{a:.3f}' for a in r['right_after_training'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
