"""The host script of the training system: load a trained model, infer, train, read counters.

:func:`run_session` drives any :class:`~spinapse.boards.training_driver.TrainingDriver` (a board's
serial port, the Verilator simulation of the same RTL, or the integer golden model behind the
same bytes) through one fixed sequence and returns a record whose fields are comparable across
targets:

1. identify (protocol 2, the expected engine and model identifier), zero the counters, set the
   arrays' write success;
2. load the task's thresholds and read them back;
3. infer ``images`` test digits (predictions, accuracy, agreement with the integer inference
   model of the same run);
4. clear the accumulators (the task switch) and train ``steps`` steps (batch 1) on the task's
   training digits in a seeded order (each step's prediction);
5. read the thresholds (they moved) and the counters; optionally read every row of both layers
   (``W_b``, ``W_h``, ``M``) and record their digest.

The model itself (initial ``W_h`` and ``W_b``) is fixed when the system is built
(:mod:`spinapse.rtl.uart_training`); step 1 checks its identifier.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

TARGET_ONLY = ("target", "seconds")
"""Record fields that differ between targets by nature (the golden model's busy cycles come
from the RTL's cycle model, :func:`spinapse.cosim.golden_link.busy_cycles`, and are compared)."""


def session_data(model, images: int, steps: int, seed: int):
    """The session's digits: the first ``images`` test digits and ``steps`` training digits of
    the task in the order ``numpy.random.default_rng(seed).permutation``.

    Raises
    ------
    ValueError
        If ``images`` or ``steps`` exceeds what the task has, or is below 1 / 0.
    """
    if not 1 <= images <= len(model.test_y):
        raise ValueError(f"images must be in [1, {len(model.test_y)}], got {images}")
    if not 0 <= steps <= len(model.train_y):
        raise ValueError(f"steps must be in [0, {len(model.train_y)}], got {steps}")
    order = np.random.default_rng(seed).permutation(len(model.train_y))[:steps]
    return (
        model.test_bits[:images],
        model.test_y[:images],
        model.train_bits[order],
        model.train_y[order],
    )


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode() + np.ascontiguousarray(arrays[name].astype(np.int64)).tobytes())
    return h.hexdigest()


def run_session(
    driver,
    model,
    images: int = 2000,
    steps: int = 100,
    seed: int = 0,
    p_success: int = 256,
    read_state: bool = False,
    progress=None,
) -> dict:
    """Run the host script on ``driver``; return its record (JSON-ready).

    Parameters
    ----------
    driver : TrainingDriver
        Over any transport; its rule and model identifier are the model's.
    model : TrainingModel
        From :func:`spinapse.experiments.training_load.load_training_model`.
    images, steps : int
        Test digits to infer, training steps.
    seed : int
        Order of the training digits.
    p_success : int
        Single-pulse write success of the arrays in 1/256 (256: ideal arrays).
    read_state : bool
        Also read back every row of both layers at the end (``n_in + n_hidden`` ``'P'``
        commands) and record their digest.
    progress : callable, optional
        ``progress(iterable, desc, total)`` wrapping the per-digit loops (e.g. ``tqdm``).

    Returns
    -------
    dict
        ``identify``, ``thresholds_loaded`` (equal to the model's), ``inference`` (predictions,
        accuracy, agreement with the inference model), ``training`` (predictions, accuracy),
        ``thresholds_after``, ``counters``, ``state_digest`` (or ``None``), ``seconds``.

    Raises
    ------
    ProtocolError, TimeoutError
        From the driver.
    """
    wrap = progress or (lambda it, desc, total: it)
    test_x, test_y, train_x, train_y = session_data(model, images, steps, seed)
    start = time.perf_counter()
    info = driver.identify()
    driver.clear_counters()
    driver.set_write_success(p_success)
    driver.load_thresholds(model.thr1, model.thr2)
    t1, t2 = driver.read_thresholds()
    chunk = 50
    preds = np.concatenate(
        [
            driver.infer(test_x[a : a + chunk])
            for a in wrap(range(0, images, chunk), "infer", -(-images // chunk))
        ]
    )
    driver.clear_accumulators()
    train_preds = np.concatenate(
        [np.empty(0, dtype=np.int64)]
        + [
            driver.train(train_x[a : a + chunk], train_y[a : a + chunk])
            for a in wrap(range(0, steps, chunk), "train", -(-steps // chunk))
        ]
    )
    a1, a2 = driver.read_thresholds()
    counters = driver.counters()
    digest = _digest(driver.read_state()) if read_state else None
    reference = model.inference_predict(test_x)
    return {
        "identify": {"model": f"{info['model']:08x}", "has_p_success": info["has_p_success"]},
        "p_success": p_success,
        "thresholds_loaded": bool(
            np.array_equal(t1, model.thr1) and np.array_equal(t2, model.thr2)
        ),
        "inference": {
            "images": int(images),
            "predictions": preds.tolist(),
            "accuracy": float(np.mean(preds == test_y)),
            "inference_model_accuracy": float(np.mean(reference == test_y)),
            "differ_from_inference_model": int(np.sum(preds != reference)),
        },
        "training": {
            "steps": int(steps),
            "seed": int(seed),
            "predictions": train_preds.tolist(),
            "accuracy": float(np.mean(train_preds == train_y)) if steps else None,
        },
        "thresholds_after": {"thr1": a1.tolist(), "thr2": a2.tolist()},
        "counters": dict(vars(counters)),
        "state_digest": digest,
        "seconds": round(time.perf_counter() - start, 2),
    }


def compare_records(a: dict, b: dict) -> list[str]:
    """Fields where two session records differ, ignoring :data:`TARGET_ONLY` (dotted paths)."""
    out: list[str] = []

    def walk(x, y, path):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                if k not in TARGET_ONLY:
                    walk(x.get(k), y.get(k), f"{path}.{k}" if path else k)
        elif x != y:
            out.append(path)

    walk(a, b, "")
    return out
