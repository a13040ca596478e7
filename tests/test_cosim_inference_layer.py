"""One folded layer on Verilator (cocotb) against the integer model, on random data.

Hidden layer: random weights, thresholds spread around the middle plus the clipped extremes,
both flip values; output layer: random weights and full-range scales and offsets. 60 random
input vectors each (seeds below); outputs and run length checked exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinapse.cosim.runner import run_cocotb, sim_build_root
from spinapse.cosim.tb_layer import write_layer_case
from spinapse.golden.integer_model.inference import IntegerLayer
from spinapse.rtl.folding import LayerFolding
from spinapse.rtl.layer import Layer
from spinapse.rtl.verilog import convert


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join(str(int(b)) for b in bits[::-1]), 2)


@pytest.mark.parametrize("output", [False, True], ids=["hidden", "output"])
def test_layer_bit_exact_on_random_data(output):
    rng = np.random.default_rng(31 if output else 32)
    fold = LayerFolding(n_in=96, n_out=12, pe=4, simd=24, output=output)
    w = rng.integers(0, 2, (fold.n_out, fold.n_in)).astype(np.uint8)
    if output:
        layer = IntegerLayer(
            w,
            scale=rng.integers(-(2**15), 2**15, fold.n_out),
            offset=rng.integers(-(2**31), 2**31, fold.n_out),
            frac_bits=10,
        )
        params = fold.score_words(layer.scale, layer.offset)
    else:
        t = rng.integers(-12, 13, fold.n_out)
        t[:2] = (-fold.n_in, fold.n_in + 1)
        layer = IntegerLayer(w, threshold=t, flip=rng.integers(0, 2, fold.n_out).astype(np.uint8))
        params = fold.threshold_words(layer.popcount_thresholds(), layer.flip)
    x = rng.integers(0, 2, (60, fold.n_in)).astype(np.uint8)
    out = layer.forward(x)
    expected = [row.tolist() for row in out] if output else [_bits_to_int(r) for r in out]
    name = (
        f"layer_{'out' if output else 'hid'}_{fold.n_in}-{fold.n_out}_pe{fold.pe}_simd{fold.simd}"
    )
    case = sim_build_root() / "cases" / f"{name}.json"
    write_layer_case(
        case, fold, fold.weight_words(w), params, [_bits_to_int(r) for r in x], expected
    )
    run_cocotb(
        name=name,
        verilog=convert(Layer(fold), "layer"),
        toplevel="layer",
        test_module="spinapse.cosim.tb_layer",
        extra_env={"SPINAPSE_TB_CASE": str(case)},
    )
