"""Board tops and the bitstream build flow.

Default suite: every board top elaborates for its amaranth-boards platform (RTLIL written, pins
resolved), nextpnr reports are read correctly, and ``spinapse fpga build`` refuses bad input
before any tool runs. Slow: the real bitstreams (YoWASP Yosys + nextpnr), timing met at the
board clock.
"""

from __future__ import annotations

import json

import pytest

from spinapse.boards.build import build_report, synthesis_cells
from spinapse.boards.inference_top import InferenceTop
from spinapse.boards.targets import BOARDS, board
from spinapse.cli import main


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_top_elaborates(name):
    b = board(name)
    plan = b.platform().prepare(InferenceTop(b.engine, input_copy=b.input_copy), name="top")
    files = dict(plan.files)
    assert "top.il" in files
    rtlil = files["top.il"]
    # The engine's layer memories reach synthesis as memories (block RAM), not registers.
    assert rtlil.count("memwr") >= 2 * b.engine.n_layers, name
    constraints = files["top.pcf" if b.family == "ice40" else "top.lpf"]
    assert "uart" in constraints.lower()


def test_unknown_board_names_the_choices():
    with pytest.raises(ValueError, match="icebreaker, ulx3s-85f"):
        board("arty")


def test_build_report_reads_nextpnr_json():
    report = {
        "utilization": {
            "TRELLIS_COMB": {"used": 120, "available": 83640},
            "DP16KD": {"used": 3, "available": 208},
            "EHXPLLL": {"used": 0, "available": 4},
        },
        "fmax": {"clk25_0__i": {"achieved": 24.9, "constraint": 25.0}},
    }
    rec = build_report(report, 25e6)
    assert rec["utilization"] == {
        "TRELLIS_COMB": {"used": 120, "available": 83640},
        "DP16KD": {"used": 3, "available": 208},
    }
    assert rec["fmax_mhz"] == {"clk25_0__i": 24.9}
    assert rec["timing_met"] is False  # 24.9 MHz < 25 MHz
    report["fmax"]["clk25_0__i"]["achieved"] = 25.0
    assert build_report(report, 25e6)["timing_met"] is True


def test_fpga_build_refuses_bad_input(tmp_path, capsys):
    argv = ["fpga", "build", "--board", "icebreaker", "-o", str(tmp_path)]
    assert main([*argv, "--baud", "5000000"]) == 2
    assert "baud 5000000 too fast for a 12 MHz clock" in capsys.readouterr().err
    assert main([*argv, "--design", "training"]) == 2
    assert "only 'inference'" in capsys.readouterr().err
    (tmp_path / "old").write_text("x")
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "old"]  # nothing built


def _build(name, tmp_path):
    out = tmp_path / name
    assert main(["fpga", "build", "--board", name, "-o", str(out)]) == 0
    rec = json.loads((out / "build.json").read_text())
    assert rec["ok"] and rec["timing_met"]
    assert (out / rec["bitstream"]).stat().st_size > 100_000
    clock = rec["clock_mhz"]
    assert all(f >= clock for f in rec["fmax_mhz"].values()), rec["fmax_mhz"]
    for bel, u in rec["utilization"].items():
        assert u["used"] <= u["available"], bel
    return rec


@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path):
    """784-32-10 on the iCE40UP5K: 119 s of tool CPU (an idle core), 11-12 min of wall time on
    the shared 2-core machine; slow so the default suite keeps within its time share."""
    rec = _build("icebreaker", tmp_path)
    assert rec["utilization"]["ICESTORM_RAM"]["used"] >= 14  # layer-0 weights in block RAM


@pytest.mark.slow
def test_ulx3s_bitstream(tmp_path):
    """784-256-256-10 on the ECP5-85F."""
    rec = _build("ulx3s-85f", tmp_path)
    assert rec["utilization"]["DP16KD"]["used"] >= 88  # 3136-bit weight words in block RAM


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_array_pins_elaborate_on_the_board(name):
    """The PMOD/GPIO synapse-array resource resolves on the board and drives PinSynapseArray."""
    from amaranth import Elaboratable, Module
    from amaranth.lib import io

    from spinapse.boards.array_pins import add_array_pins
    from spinapse.rtl.pin_array import PinSynapseArray

    platform = board(name).platform()
    geo = add_array_pins(platform, name)

    class Top(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.array = arr = PinSynapseArray(geo["rows"], geo["lanes"], geo["code_bits"])
            pins = platform.request("synapse_array", 0, dir="-")
            for member in ("row", "enable", "polarity", "code", "write_en", "gate_en", "read_en"):
                buf = io.Buffer("o", getattr(pins, member))
                m.submodules[f"{member}_buf"] = buf
                m.d.comb += buf.o.eq(getattr(arr.pins, member))
            for member in ("sense", "ready"):
                buf = io.Buffer("i", getattr(pins, member))
                m.submodules[f"{member}_buf"] = buf
                m.d.comb += getattr(arr.pins, member).eq(buf.i)
            return m

    plan = platform.prepare(Top(), name="top")
    constraints = dict(plan.files)["top.pcf" if board(name).family == "ice40" else "top.lpf"]
    n_pins = 8 + 4 * geo["lanes"] + 4 + geo["lanes"]  # row, enable/polarity/code, strobes, sense
    assert constraints.count("synapse_array") >= n_pins


def test_serial_transport_loopback_and_timeout():
    """pyserial's loop:// port: bytes come back in order; a short read raises TimeoutError."""
    from spinapse.boards.serial_link import SerialTransport

    link = SerialTransport("loop://", baud=115200, timeout_s=0.2)
    try:
        link.write(b"I\x01\x02")
        assert link.read(3) == b"I\x01\x02"
        with pytest.raises(TimeoutError, match="got 0 of 1 bytes"):
            link.read(1)
    finally:
        link.close()


def test_synthesis_cells_reads_the_last_stat():
    log = (
        "Printing statistics.\n=== top ===\n   5 cells\n   3   SB_LUT4\n   9   SB_DFF\n"
        "Printing statistics.\n=== top ===\n   7 cells\n   4   SB_LUT4\n   2   SB_DFFESR\n"
        "   1   SB_DFF\n   2   SB_RAM40_4K\n=== design hierarchy ===\n   4   SB_LUT4\n"
    )
    rec = synthesis_cells(log)
    assert (rec["luts"], rec["flip_flops"], rec["cells"]["SB_RAM40_4K"]) == (4, 3, 2)
