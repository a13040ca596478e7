"""A ``spinapse train`` result as the starting point of the on-chip training engine (784-H-10).

The training engine (:class:`spinapse.rtl.training_engine.TrainingEngine`, the rule of
:class:`spinapse.golden.integer_model.learning.IntegerEngine`) keeps per synapse an integer hidden
weight ``W_h`` (digital mode) whose sign is the binary weight ``W_b`` in the array, and per
neuron a threshold ``T`` (units ``2**-thr_frac`` of XNOR-popcount) on an integer pre-activation.
:func:`load_training_model` maps a trained float BNN (Laborieux et al., Nat. Commun. 12, 2549,
2021) with one hidden layer onto that state, for task ``t``'s BatchNorm copy:

- ``W_h = round(w * 2**frac_bits)``, saturated to ``wh_bits``: the integer rule's ``W_h`` stands
  for ``W_h / 2**frac_bits`` in f_meta's argument, so a float hidden weight keeps its
  consolidation; a negative ``w`` that rounds to 0 becomes -1, so ``W_b = W_h >= 0`` is exactly
  the float model's ``sign(w)`` (``sign(0) = +1``).
- Hidden thresholds from the folded BatchNorm (:func:`spinapse.golden.integer_model.inference.
  export_integer`, statistics over the task's binarized training set): the inference model fires
  where ``dot >= T`` (``dot`` over inputs in {-1, +1}), the training engine where
  ``a = sum of W_b over the pixels that are on`` reaches its threshold. With ``S_j`` the column sum
  of ``W_b`` (``dot = 2 a - S_j``): ``T1_j = ceil((T_j + S_j) / 2) * 2**thr_frac``, exact. A
  neuron with negative BatchNorm ``gamma`` (the inference model's ``flip``) fires where ``dot <
  T``; the engine has no per-neuron comparison sign, so its column of ``W_h`` is negated (``-a >=
  1 - ceil((T + S) / 2)``): the same hidden bits, exactly.
- Output: the inference model scores ``A_k dot_k + B_k``; the engine ranks ``dot_k * 2**thr_frac
  - T2_k``, one common scale. ``T2_k = round(-B_k / A_k * 2**thr_frac)`` is exact only when every
  ``A_k`` is equal, so the loaded model's predictions can differ from the inference model's; the
  host session reports how many.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinapse.errors import UsageError


@dataclass(frozen=True)
class TrainingModel:
    """A trained run on the training engine's terms.

    Attributes
    ----------
    label, task, task_name : str, int, str
        Run label, task index and name.
    rule : IntegerRule
        The integer rule with ``n_hidden`` of the run (other constants: the rule's defaults).
    init_wh : list of numpy.ndarray
        int64 ``[n_in, n_hidden]`` and ``[n_hidden, n_out]``.
    thr1, thr2 : numpy.ndarray
        int64 ``[n_hidden]``, ``[n_out]``: the task's thresholds.
    flipped : int
        Hidden neurons whose column was negated (negative ``gamma``).
    negative_scales : int
        Output classes with ``A_k <= 0`` (their ranking cannot be kept by a threshold).
    inference_predict : callable
        The integer inference model's classes of bits ``[B, n_in]`` (``IntegerBNN.predict``).
    test_bits, train_bits : numpy.ndarray
        uint8 ``[M, n_in]`` binarized test and training images of the task.
    test_y, train_y : numpy.ndarray
        int64 labels.
    """

    label: str
    task: int
    task_name: str
    rule: object
    init_wh: list
    thr1: np.ndarray
    thr2: np.ndarray
    flipped: int
    negative_scales: int
    inference_predict: object
    test_bits: np.ndarray
    test_y: np.ndarray
    train_bits: np.ndarray
    train_y: np.ndarray


def quantize_hidden(w: np.ndarray, rule) -> np.ndarray:
    """Float hidden weights -> int64 ``W_h`` (same shape): ``round(w * 2**frac_bits)``,
    saturated to signed ``wh_bits``, negatives kept at most -1 (so ``W_h >= 0`` iff ``w >= 0``)."""
    lo, hi = -(1 << (rule.wh_bits - 1)), (1 << (rule.wh_bits - 1)) - 1
    q = np.clip(np.round(np.asarray(w, dtype=np.float64) * 2.0**rule.frac_bits), lo, hi)
    q = q.astype(np.int64)
    return np.where((w < 0) & (q >= 0), -1, q)


def fold_thresholds(integer, w_b1: np.ndarray, rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-engine thresholds from an integer inference model (see the module docstring).

    Parameters
    ----------
    integer : IntegerBNN
        Two layers (hidden with ``threshold``/``flip``, output with ``scale``/``offset``).
    w_b1 : numpy.ndarray
        bool ``[n_in, n_hidden]`` binary weights of layer 1 (before any negation).
    rule : IntegerRule

    Returns
    -------
    thr1 int64 ``[n_hidden]``, thr2 int64 ``[n_out]``, flip bool ``[n_hidden]``.
    """
    hidden, out = integer.layers
    s = np.where(w_b1, 1, -1).sum(axis=0)
    t = np.asarray(hidden.threshold, dtype=np.int64)
    fire = -((-(t + s)) // 2)  # ceil((T + S) / 2): a >= fire  <=>  dot >= T
    flip = np.asarray(hidden.flip, dtype=bool)
    thr1 = np.where(flip, 1 - fire, fire) << rule.thr_frac
    a = np.asarray(out.scale, dtype=np.float64)
    b = np.asarray(out.offset, dtype=np.float64)
    safe = np.where(a > 0, a, 1.0)
    thr2 = np.round(-b / safe * 2.0**rule.thr_frac).astype(np.int64)
    bound = (rule.n_hidden + 1) << rule.thr_frac
    return thr1.astype(np.int64), np.clip(thr2, -bound, bound), flip


def negate_columns(w_h: np.ndarray, flip: np.ndarray, rule) -> np.ndarray:
    """``W_h`` int ``[n_in, n_hidden]`` with the columns of ``flip`` (bool ``[n_hidden]``)
    negated so that their sign inverts exactly (0 becomes -1), saturated to ``wh_bits``."""
    neg = np.where(w_h == 0, -1, -w_h)
    out = np.where(np.asarray(flip, dtype=bool)[None, :], neg, w_h)
    return np.clip(out, -(1 << (rule.wh_bits - 1)), (1 << (rule.wh_bits - 1)) - 1)


def load_training_model(
    results_dir: str | Path, task: int = 0, run: str | None = None, rule=None
) -> TrainingModel:
    """Load task ``task`` of a one-hidden-layer ``spinapse train`` result for the training engine.

    Parameters
    ----------
    results_dir : path
        Folder a ``spinapse train`` run wrote.
    task : int
        Task whose BatchNorm copy (thresholds) and data are used.
    run : str, optional
        Run label (default: the only run).
    rule : IntegerRule, optional
        Rule constants; ``n_hidden`` is set from the run (default: ``IntegerRule()``).

    Raises
    ------
    UsageError
        As :func:`spinapse.experiments.engine_export.load_trained_run`, or if the network does
        not have exactly one hidden layer and 784 inputs / 10 outputs in multiples the link takes.
    """
    from spinapse.experiments.engine_export import load_trained_run
    from spinapse.golden.integer_model.inference import binarize_pixels, export_integer
    from spinapse.golden.integer_model.learning import IntegerRule

    loaded = load_trained_run(results_dir, task, run)
    widths = loaded.widths
    if len(widths) != 3 or widths[0] % 8:
        raise UsageError(
            f"the trained network is {'-'.join(map(str, widths))}; the training engine is "
            "N_in-H-10 with one hidden layer and N_in a multiple of 8: train with "
            "model.hidden = [H]"
        )
    try:
        rule = dataclasses.replace(
            rule or IntegerRule(), n_in=widths[0], n_hidden=widths[1], n_out=widths[2]
        )
    except ValueError as exc:
        raise UsageError(f"the trained network does not fit the training engine: {exc}") from None
    integer = export_integer(loaded.model, loaded.x_train)
    lin = [lay.weight.detach().cpu().numpy().astype(np.float64) for lay in loaded.model.linears]
    w_h = [quantize_hidden(lin[0].T, rule), quantize_hidden(lin[1].T, rule)]
    w_b1 = w_h[0] >= 0
    assert np.array_equal(w_b1, integer.layers[0].weights.T.astype(bool))
    thr1, thr2, flip = fold_thresholds(integer, w_b1, rule)
    w_h[0] = negate_columns(w_h[0], flip, rule)
    return TrainingModel(
        label=loaded.label,
        task=task,
        task_name=loaded.task_name,
        rule=rule,
        init_wh=w_h,
        thr1=thr1,
        thr2=thr2,
        flipped=int(flip.sum()),
        negative_scales=int((np.asarray(integer.layers[1].scale) <= 0).sum()),
        inference_predict=lambda bits: integer.predict(bits)[0],
        test_bits=binarize_pixels(loaded.x_test),
        test_y=loaded.y_test.numpy().astype(np.int64),
        train_bits=binarize_pixels(loaded.x_train),
        train_y=loaded.y_train.numpy().astype(np.int64),
    )
