"""``spinapse rtl generate``: Verilog of a configuration, and clean errors for bad ones."""

from __future__ import annotations

import re

from spinapse.cli import main

SMALL = """
[engine]
widths = [64, 16, 4]
pe = [4, 2]
simd = [16, 8]
in_width = 32
"""


def test_generate_writes_verilog_with_configured_ports(tmp_path, capsys):
    cfg = tmp_path / "engine.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "out" / "engine.v"
    assert main(["rtl", "generate", "--config", str(cfg), "-o", str(out), "--name", "eng"]) == 0
    text = out.read_text()
    assert re.search(r"^module eng\(", text, re.M)
    assert re.search(r"input \[31:0\] image__payload;", text)
    # 64->16: 4 input folds x 4 neuron folds = 16 cycles; 16->4: 2 x 2 = 4. Pipeline: one
    # image every max(16 + 4, 4 + 4, 2 beats) = 20 cycles against the ideal 16.
    printed = capsys.readouterr().out
    assert "cycles per image 20 (ideal 16, ratio 1.250" in printed


def test_generate_refuses_folding_that_does_not_divide(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(SMALL.replace("pe = [4, 2]", "pe = [3, 2]"))
    assert main(["rtl", "generate", "--config", str(cfg), "-o", str(tmp_path / "x.v")]) == 2
    err = capsys.readouterr().err
    assert "PE=3 must divide the layer neuron count M=16" in err
    assert not (tmp_path / "x.v").exists()


def test_generate_reports_missing_config(tmp_path, capsys):
    missing = tmp_path / "none.toml"
    assert main(["rtl", "generate", "--config", str(missing), "-o", str(tmp_path / "x.v")]) == 2
    assert "engine config not found" in capsys.readouterr().err
