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
    # image every max(16 + 6, 4 + 6, 2 beats, 4 classes) = 22 cycles against the ideal 16.
    captured = capsys.readouterr()
    assert "cycles per image 22 (ideal 16, ratio 1.375" in captured.out
    # It says what it is doing before the (minutes-long, for the default) conversion starts.
    assert captured.err.startswith("converting the 64-16-4 engine (1088 weight bits) to Verilog")


def test_generate_help_documents_the_engine_table_and_the_shipped_example(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["rtl", "generate", "--help"])
    text = capsys.readouterr().out
    for key in ("widths = [", "pe = [", "simd = [", "in_width ="):
        assert key in text
    assert "spinapse/configs/inference_engine.toml" in text


def test_generate_refuses_an_output_path_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["rtl", "generate", "-o", str(blocker / "e.v")]) == 2
    err = capsys.readouterr().err
    assert "--output: cannot write results into" in err and "a file stands where" in err


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
