"""The run-time writes that load an integer model into the inference engine, and result decoding.

Joins :mod:`spinapse.golden.integer_model.inference` (what to load) and :mod:`spinapse.rtl.folding`
(where it goes): :func:`model_writes` lists ``(sel, addr, data)`` write-stream payloads,
:func:`decode_result` splits a result-stream payload into class and scores.
"""

from __future__ import annotations

import numpy as np

from spinapse.golden.integer_model.inference import IntegerBNN
from spinapse.rtl.folding import EngineConfig


def check_shape(config: EngineConfig, model: IntegerBNN) -> None:
    """Raise ``ValueError`` if the model's widths differ from the engine's."""
    if tuple(model.widths) != tuple(config.widths):
        raise ValueError(f"model widths {model.widths} differ from engine widths {config.widths}")


def model_writes(config: EngineConfig, model: IntegerBNN) -> list[tuple[int, int, int]]:
    """Write payloads ``(sel, addr, data)`` that load every weight and parameter of ``model``.

    Raises
    ------
    ValueError
        If the widths differ or a parameter is out of the engine's range.
    """
    check_shape(config, model)
    writes = []
    for i, (fold, layer) in enumerate(zip(config.layers, model.layers)):
        writes += [(2 * i, a, w) for a, w in enumerate(fold.weight_words(layer.weights))]
        if fold.output:
            words = fold.score_words(layer.scale, layer.offset)
        else:
            words = fold.threshold_words(layer.popcount_thresholds(), layer.flip)
        writes += [(2 * i + 1, a, w) for a, w in enumerate(words)]
    return writes


def pack_write(config: EngineConfig, sel: int, addr: int, data: int) -> int:
    """The write-stream payload as an int: ``sel``, then ``addr``, then ``data`` (LSB first)."""
    return (
        sel
        | (addr << config.write_select_width)
        | (data << (config.write_select_width + config.write_addr_width))
    )


def decode_result(config: EngineConfig, payload: int) -> tuple[int, np.ndarray]:
    """``(class, scores int64 [C])`` from a result-stream payload int."""
    cw, sw = config.class_width, config.score_width
    cls = payload & ((1 << cw) - 1)
    scores = np.empty(config.widths[-1], dtype=np.int64)
    for j in range(config.widths[-1]):
        v = (payload >> (cw + j * sw)) & ((1 << sw) - 1)
        scores[j] = v - (1 << sw) if v >> (sw - 1) else v
    return cls, scores
