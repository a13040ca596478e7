"""The inference engine on Verilator (cocotb) against the integer golden model, bit for bit.

Real digits: a 784-64-64-10 BNN trained on the 3000 embedded training digits (seed 0), exported
to integers, run on all 2000 test digits for three foldings. Random back-pressure on both streams
for two of them; one of them also reloads the engine at run time with a random integer model
(random weights, thresholds with both flip values, random scores) and checks random images.
Seeds: the testbench's from :func:`spinapse.cosim.runner.test_seed`; data seeds below.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from spinapse.cosim.digit_case import trained_digit_case
from spinapse.cosim.engine_cosim import TOPLEVEL, engine_verilog, run_engine_cosim
from spinapse.cosim.engine_load import model_writes, pack_write
from spinapse.cosim.runner import run_cocotb
from spinapse.cosim.tb_inference_engine import write_case
from spinapse.golden.integer_model.inference import IntegerBNN, IntegerLayer
from spinapse.rtl.folding import EngineConfig

WIDTHS = (784, 64, 64, 10)


@functools.lru_cache(maxsize=1)
def _digits():
    return trained_digit_case((64, 64), epochs=5, seed=0)


def random_integer_model(widths, seed: int) -> IntegerBNN:
    """Random weights, thresholds near the middle of their range (both flips), random scores."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        w = rng.integers(0, 2, (b, a)).astype(np.uint8)
        if i < len(widths) - 2:
            spread = max(2, int(np.sqrt(a)))
            t = rng.integers(-spread, spread + 1, b)
            t[:2] = (-a, a + 1)  # the clipped extremes: always on, never on
            flip = rng.integers(0, 2, b).astype(np.uint8)
            layers.append(IntegerLayer(w, threshold=t, flip=flip))
        else:
            scale = rng.integers(-(2**15), 2**15, b)
            scale[0] = -(2**15)
            offset = rng.integers(-(2**31), 2**31, b) >> 8
            offset[-1] = 2**31 - 1
            layers.append(IntegerLayer(w, scale=scale, offset=offset, frac_bits=12))
    return IntegerBNN(tuple(layers))


def test_default_folding_bit_exact_on_2000_digits_and_cycles():
    """Folding A, no back-pressure: 2000 digits bit-exact; cycles per image <= 1.25x ideal."""
    case = _digits()
    config = EngineConfig(WIDTHS, (8, 8, 10), (56, 32, 32))
    out = run_engine_cosim(config, [(case.integer, case.test_bits)])
    assert out["checked"] == 2000
    assert out["mismatches"] == []
    # The pipeline schedule written in the engine's documentation: the slowest layer
    # (784 -> 64: 14 input folds x 8 neuron folds = 112 cycles) plus 6.
    assert out["cycles_per_image"] == 112 + 6
    assert out["cycles_per_image"] <= 1.25 * config.ideal_cycles


def test_backpressure_and_runtime_rewrite_with_random_model():
    """Folding B with back-pressure: 2000 digits, then a random model written at run time."""
    case = _digits()
    config = EngineConfig(WIDTHS, (16, 4, 5), (16, 64, 16))
    rnd = random_integer_model(WIDTHS, seed=11)
    rnd_images = np.random.default_rng(12).integers(0, 2, (300, 784)).astype(np.uint8)
    out = run_engine_cosim(
        config, [(case.integer, case.test_bits), (rnd, rnd_images)], backpressure=0.3
    )
    assert out["checked"] == 2300
    assert out["mismatches"] == []


def test_multibeat_input_folding_with_backpressure():
    """Folding C: 112-bit image beats (7 per image), narrow output PE, with back-pressure."""
    case = _digits()
    config = EngineConfig(WIDTHS, (4, 16, 2), (112, 8, 64), in_width=112)
    out = run_engine_cosim(config, [(case.integer, case.test_bits)], backpressure=0.3)
    assert out["checked"] == 2000
    assert out["mismatches"] == []


@pytest.mark.slow
def test_784_256_256_10_default_bit_exact_and_cycles():
    """The benchmark network with the default folding: 2000 digits bit-exact, cycles <= 1.25x."""
    from spinapse.rtl.engine_config import default_engine_config

    case = trained_digit_case((256, 256), epochs=5, seed=0)
    config = default_engine_config()
    out = run_engine_cosim(config, [(case.integer, case.test_bits)])
    assert out["checked"] == 2000 and out["mismatches"] == []
    assert out["cycles_per_image"] <= 1.25 * config.ideal_cycles


@pytest.mark.slow
def test_ulx3s_board_engine_bit_exact():
    """The ULX3S board's engine as built (784-256-256-10, PE 8/8/10, SIMD 56/32/4, image memory):
    2000 digits bit-exact, and its cycles per image: layer 0's 14 x 32 folds + 6, plus the
    14 beats of the next image, which wait for layer 0's run to end."""
    from spinapse.boards.targets import board

    b = board("ulx3s-85f")
    case = trained_digit_case((256, 256), epochs=5, seed=0)
    out = run_engine_cosim(
        b.engine, [(case.integer, case.test_bits)], input_copy=b.input_copy, tag="_board"
    )
    assert out["checked"] == 2000 and out["mismatches"] == []
    print("cycles per image", out["cycles_per_image"])
    assert out["cycles_per_image"] == 448 + 6 + 14


def test_checker_reports_a_wrong_score(tmp_path):
    """The testbench is not vacuous: one expected score off by one fails the run, naming it."""
    config = EngineConfig((64, 16, 4), (4, 2), (16, 8), in_width=32)
    model = random_integer_model(config.widths, seed=21)
    bits = np.random.default_rng(22).integers(0, 2, (20, 64)).astype(np.uint8)
    cls, scores = model.predict(bits)
    scores[7, 1] += 1
    phase = {
        "writes": [pack_write(config, *w) for w in model_writes(config, model)],
        "images": [config.image_words(b) for b in bits],
        "expected": list(zip(cls.tolist(), scores.tolist())),
    }
    case, out = tmp_path / "case.json", tmp_path / "out.json"
    write_case(case, config, [phase], backpressure=0.0)
    with pytest.raises(AssertionError, match=r"tb_inference_engine.* fail"):
        run_cocotb(
            name=f"engine_{config.name()}",
            verilog=engine_verilog(config),
            toplevel=TOPLEVEL,
            test_module="spinapse.cosim.tb_inference_engine",
            extra_env={"SPINAPSE_TB_CASE": str(case), "SPINAPSE_TB_OUT": str(out)},
        )
    report = json.loads(out.read_text())
    assert report["checked"] == 20
    assert [(m["phase"], m["image"]) for m in report["mismatches"]] == [(0, 7)]
