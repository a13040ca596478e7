"""The UART host link end to end: cocotb through the serial pins, and the host driver over the
Verilator simulation transport, both against the integer golden model.

Expected replies are built from the protocol table of :mod:`spinapse.rtl.host_link` and the
integer model's ``predict``, not from the link's code. Random models and images, seeds below.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cosim_inference import random_integer_model  # tests/ is on sys.path under pytest

from spinapse.boards.driver import EngineDriver, ProtocolError
from spinapse.cosim.engine_load import model_writes
from spinapse.cosim.runner import run_cocotb
from spinapse.cosim.tb_uart_link import write_link_case
from spinapse.cosim.uart_sim import SimTransport, build_uart_sim
from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.uart_engine import UartInferenceSystem
from spinapse.rtl.verilog import convert

SMALL = EngineConfig((64, 16, 4), (4, 2), (16, 8), in_width=8)
# The info block of SMALL, by hand from the protocol table: 2 layers; widths 64, 16, 4; PE 4, 2;
# SIMD 16, 8 (2 bytes each, little-endian); write word: max(PE*SIMD = 64, 16; hidden parameters
# 4 * (bit_length(65) + 1) = 32; output parameters 2 * 48 = 96) = 96 bits = 12 bytes; score
# max(16 + bit_length(16) + 2, 32) + 1 = 33 bits = 5 bytes.
SMALL_INFO = bytes([2, 64, 0, 16, 0, 4, 0, 4, 0, 2, 0, 16, 0, 8, 0, 12, 0, 5])


def _result_bytes(cls: int, scores) -> list[int]:
    out = [ord("R"), int(cls)]
    for s in scores:
        out += list(int(s).to_bytes(5, "little", signed=True))
    return out


def test_protocol_through_uart_pins_cocotb(tmp_path):
    """cocotbext-uart on rx/tx: identify, load a random model, 40 images, counters, an unknown
    opcode, counter clear; every reply byte checked (all but the 4 busy-cycle bytes)."""
    rng = np.random.default_rng(41)
    model = random_integer_model(SMALL.widths, seed=42)
    images = rng.integers(0, 2, (40, 64)).astype(np.uint8)
    cls, scores = model.predict(images)
    commands = [(b"I", [ord("I"), 1, *SMALL_INFO])]
    for sel, addr, data in model_writes(SMALL, model):
        frame = bytes([ord("W"), sel]) + addr.to_bytes(2, "little") + data.to_bytes(12, "little")
        commands.append((frame, [ord("W")]))
    for img, c, s in zip(images, cls, scores):
        commands.append((b"X" + np.packbits(img, bitorder="little").tobytes(), _result_bytes(c, s)))
    counters = [ord("C"), 40, 0, 0, 0, None, None, None, None, 0, 0, 0, 0]
    commands += [(b"C", counters), (b"\x00", [ord("?"), 0]), (b"Z", [ord("Z")])]
    commands.append((b"C", [ord("C"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    divisor = 4
    case, out = tmp_path / "case.json", tmp_path / "out.json"
    write_link_case(case, divisor, commands)
    run_cocotb(
        name=f"uart_link_{SMALL.name()}_d{divisor}",
        verilog=convert(UartInferenceSystem(SMALL, divisor), "uart_system"),
        toplevel="uart_system",
        test_module="spinapse.cosim.tb_uart_link",
        extra_env={"SPINAPSE_TB_CASE": str(case), "SPINAPSE_TB_OUT": str(out)},
    )
    report = json.loads(out.read_text())
    assert report["mismatches"] == []
    assert report["checked"] == sum(sum(b is not None for b in r) for _, r in commands)


def test_driver_over_simulation_matches_golden():
    """The host driver on the Verilator UART system: 300 random images bit-exact, counters.
    (The image-memory engine, ``input_copy=False``, runs in tests/test_export_infer.py.)"""
    input_copy = True
    config = SMALL
    model = random_integer_model(config.widths, seed=43)
    images = np.random.default_rng(44).integers(0, 2, (300, 64)).astype(np.uint8)
    with SimTransport(build_uart_sim(config, input_copy=input_copy), timeout_s=60) as link:
        driver = EngineDriver(link, config)
        driver.identify()
        # Words: layer 0 weights NF*SF = 4*4, parameters NF = 4; layer 1: 2*2 and 2.
        assert driver.write_words(model_writes(config, model)) == 16 + 4 + 4 + 2
        cls, scores = driver.infer(images)
        counters = driver.counters()
        driver.clear_counters()
        cleared = driver.counters()
    want_cls, want_scores = model.predict(images)
    np.testing.assert_array_equal(cls, want_cls)
    np.testing.assert_array_equal(scores, want_scores)
    assert (counters.images, counters.framing_errors, counters.overruns) == (300, 0, 0)
    assert counters.busy_cycles > 0 and (cleared.images, cleared.busy_cycles) == (0, 0)


def test_driver_refuses_another_engine():
    """identify() names both engines when the board's differs from the host's."""
    other = EngineConfig((64, 16, 4), (2, 2), (16, 8), in_width=8)
    with SimTransport(build_uart_sim(SMALL), timeout_s=60) as link:
        with pytest.raises(ProtocolError, match=other.name()):
            EngineDriver(link, other).identify()


def test_drivers_tell_inference_and_training_systems_apart():
    """The inference system answers protocol 1 and the training driver refuses it; a training
    system (here the golden model behind protocol 2) is refused by the inference driver, each
    naming the driver to use."""
    import dataclasses

    from spinapse.boards.training_driver import TrainingDriver
    from spinapse.cosim.golden_link import GoldenTransport
    from spinapse.golden.integer_model.array_models import lane_seeds
    from spinapse.golden.integer_model.learning import IntegerRule, initial_w_h

    rule = dataclasses.replace(IntegerRule(), n_in=64, n_hidden=16, n_out=4)
    with SimTransport(build_uart_sim(SMALL), timeout_s=60) as link:
        with pytest.raises(ProtocolError, match="protocol 1.*use EngineDriver"):
            TrainingDriver(link, rule).identify()
    wh = initial_w_h(rule, 0)
    seeds = [lane_seeds(2, 16), lane_seeds(3, 4)]
    with pytest.raises(ProtocolError, match="protocol 2 .a training system: use TrainingDriver"):
        EngineDriver(GoldenTransport(rule, wh, seeds, 0), SMALL).identify()
