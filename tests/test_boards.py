"""Board tops and the bitstream build flow.

Default suite: every board top elaborates for its amaranth-boards platform (RTLIL written, pins
resolved), nextpnr reports are read correctly, and ``spinapse fpga build`` refuses bad input
before any tool runs. Slow: the real bitstreams (YoWASP Yosys + nextpnr), timing met at the
board clock.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from spinapse.boards.build import _tool, build_report, synthesis_cells
from spinapse.boards.inference_top import InferenceTop
from spinapse.boards.pll import ecp5_pll_params
from spinapse.boards.targets import BOARDS, board
from spinapse.cli import main


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_top_elaborates(name):
    b = board(name)
    pll = b.pll(b.engine_clock_hz)
    top = InferenceTop(b.engine, input_copy=b.input_copy, pll=pll)
    plan = b.platform().prepare(top, name="top")
    files = dict(plan.files)
    assert "top.il" in files
    rtlil = files["top.il"]
    # The engine's layer memories reach synthesis as memories (block RAM), not registers.
    assert rtlil.count("memwr") >= 2 * b.engine.n_layers, name
    constraints = files["top.pcf" if b.family == "ice40" else "top.lpf"]
    assert "uart" in constraints.lower()
    # The ULX3S engine runs at 75 MHz from the PLL: EHXPLLL with 25 MHz x 3 / 1, VCO 600 MHz.
    if name == "ulx3s-85f":
        assert "cell \\EHXPLLL" in rtlil
        for param, value in (("CLKI_DIV", 1), ("CLKFB_DIV", 3), ("CLKOP_DIV", 8)):
            assert re.search(rf"parameter \\{param} {value}\b", rtlil), param
    else:
        assert pll is None and "PLL" not in rtlil


def test_training_top_elaborates_with_emulated_arrays():
    """The ULX3S training top: UART training system, 784-32-10 digital engine, two emulators
    (their xorshift generators: 32 flip-flops per lane) behind FixedWriteCode, on the pins, the
    engine on the 25 MHz oscillator by default and on the PLL for another clock."""
    from spinapse.boards.training_top import TrainingTop
    from spinapse.experiments.board_training import emulated_training_system

    b = board("ulx3s-85f")
    t = emulated_training_system(b.training_hidden)
    assert t.rule.n_hidden == 32 and t.describe()["network"] == "784-32-10"
    # Write code 2 is 1.1 x Ic0 on the STT card: switches at level 0 almost surely.
    assert t.table[2][0] > 0.99 * 65536
    top = TrainingTop(
        t.rule, t.tables, t.init_wh, t.arrays, t.model, pll=b.pll(b.training_clock_hz)
    )
    files = dict(b.platform().prepare(top, name="top").files)
    rtlil = files["top.il"]
    assert len(re.findall(r"wire width 32 .*\\rng\d+\b", rtlil)) >= 32 + 10, "one per lane"
    assert "uart" in files["top.lpf"].lower()
    assert b.training_clock_hz == b.clock_hz and "cell \\EHXPLLL" not in rtlil
    slow = TrainingTop(t.rule, t.tables, t.init_wh, t.arrays, t.model, pll=b.pll(12.5e6))
    assert "cell \\EHXPLLL" in dict(b.platform().prepare(slow, name="top").files)["top.il"]


def test_training_top_elaborates_with_arrays_on_pins():
    """The mixed-signal training prototype (``--array pins``): 784-32-10 on the ULX3S with both
    layers serialised over the 4-lane GPIO bank: 16 address lines (1 layer bit, 10 row bits,
    3 lane-group bits) and every line of the bank constrained at its connector site."""
    from spinapse.boards.training_top import TrainingTop
    from spinapse.experiments.board_training import pin_training_system

    b = board("ulx3s-85f")
    t = pin_training_system(b.name, 32)
    info = t.describe()
    assert info["arrays"] == "pins" and info["pins"]["groups"] == [8, 3]
    assert info["pins"]["address_fields"] == {"group": 3, "row": 10, "port": 1}
    top = TrainingTop(t.rule, t.tables, t.init_wh, t.arrays, t.model, pin_bank=t.pin_bank)
    lpf = dict(b.platform().prepare(top, name="top").files)["top.lpf"]
    sites = dict(
        re.findall(r'LOCATE COMP "synapse_array_0__(\w+__io(?:\[\d+\])?)" SITE "(\w+)"', lpf)
    )
    assert len(sites) == 8 + 8 + 4 + 4 + 8 + 3 + 1 + 4
    # gpio pairs 0+ (row 0), 16+ (row 8 = row_ext 0), 14+ (sense 0): amaranth-boards' ULX3S pins.
    assert (sites["row__io[0]"], sites["row_ext__io[0]"], sites["sense__io[0]"]) == (
        "B11",
        "N16",
        "U18",
    )
    # The rows of H = 128 (5 lane-group bits) still fit the 16 lines; the iCEBreaker has 8.
    assert pin_training_system(b.name, 128).pin_bank.serializer.narrow_rows == 1 << 16
    with pytest.raises(ValueError, match="need 15 address lines, the icebreaker bank has 8"):
        pin_training_system("icebreaker", 32)


def _ecppll(f_in_mhz: float, f_out_mhz: float, tmp_path) -> dict[str, int]:
    """Dividers written by Project Trellis' ecppll (the YoWASP build of nextpnr-ecp5)."""
    out = tmp_path / f"pll{f_out_mhz:g}.v"
    subprocess.run(
        [_tool("yowasp-ecppll"), "-i", f"{f_in_mhz:g}", "-o", f"{f_out_mhz:g}", "-f", out.name],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=600,
    )
    text = out.read_text()
    return {k: int(re.search(rf"\.{k}\((\d+)\)", text).group(1)) for k in PLL_DIVS}


PLL_DIVS = ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV")


@pytest.mark.parametrize("f_out", [40.0, 62.5, 75.0, 100.0])
def test_pll_dividers_match_ecppll(f_out, tmp_path):
    """Our EHXPLLL search gives Trellis ecppll's dividers; f_out and the VCO obey TN-02200."""
    p = ecp5_pll_params(25e6, f_out * 1e6)
    assert (p.clki_div, p.clkfb_div, p.clkop_div) == tuple(_ecppll(25, f_out, tmp_path).values())
    assert p.f_out_hz == pytest.approx(25e6 * p.clkfb_div / p.clki_div)
    assert 400e6 <= p.f_vco_hz <= 800e6 and 3.125e6 <= 25e6 / p.clki_div


def test_pll_refuses_frequencies_it_cannot_make():
    with pytest.raises(ValueError, match="outside the EHXPLLL range 10..400 MHz"):
        ecp5_pll_params(25e6, 500e6)
    with pytest.raises(ValueError, match="a PLL is built for ECP5 boards only"):
        board("icebreaker").pll(24e6)
    assert board("icebreaker").pll(12e6) is None and board("ulx3s-85f").pll(25e6) is None


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
    # A PLL clock: met at its own (derived) constraint; not met when the engine clock asked
    # for was never constrained (nextpnr would then have checked a slower clock).
    report["fmax"] = {"clock.clk": {"achieved": 80.3, "constraint": 75.0}}
    assert build_report(report, 75e6)["timing_met"] is True
    assert build_report(report, 100e6)["timing_met"] is False
    report["fmax"]["clock.clk"]["achieved"] = 74.0
    assert build_report(report, 75e6)["timing_met"] is False


def test_fpga_build_refuses_bad_input(tmp_path, capsys):
    argv = ["fpga", "build", "--board", "icebreaker", "-o", str(tmp_path)]
    assert main([*argv, "--baud", "5000000"]) == 2
    assert "baud 5000000 too fast for a 12 MHz clock" in capsys.readouterr().err
    assert main([*argv, "--design", "training"]) == 2
    assert "icebreaker carries no training system" in capsys.readouterr().err
    assert main([*argv, "--clock-mhz", "24"]) == 2
    assert "a PLL is built for ECP5 boards only" in capsys.readouterr().err
    ulx = ["fpga", "build", "--board", "ulx3s-85f", "-o", str(tmp_path)]
    assert main([*ulx, "--clock-mhz", "500"]) == 2
    assert "outside the EHXPLLL range" in capsys.readouterr().err
    assert main([*ulx, "--array", "pins"]) == 2
    assert "options of --design training" in capsys.readouterr().err
    assert main([*ulx, "--design", "training", "--write-code", "4"]) == 2
    assert "code must be an int in [1, 3]" in capsys.readouterr().err
    assert main([*ulx, "--hidden", "32"]) == 2
    assert "options of --design training" in capsys.readouterr().err
    (tmp_path / "old").write_text("x")
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "old"]  # nothing built


def _build(name, tmp_path, *options):
    out = tmp_path / name
    assert main(["fpga", "build", "--board", name, "-o", str(out), *options]) == 0
    rec = json.loads((out / "build.json").read_text())
    assert rec["ok"] and rec["timing_met"]
    assert (out / rec["bitstream"]).stat().st_size > 100_000
    clock = rec["clock_mhz"]
    assert max(rec["constraint_mhz"].values()) >= clock
    assert all(f >= rec["constraint_mhz"][k] for k, f in rec["fmax_mhz"].items()), rec
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
    """784-256-256-10 on the ECP5-85F at 75 MHz from the PLL."""
    rec = _build("ulx3s-85f", tmp_path)
    assert rec["clock_mhz"] == 75.0 and rec["utilization"]["EHXPLLL"]["used"] == 1
    # Layers 0 and 1 weights in block RAM: words of PE x SIMD bits over 36-bit-wide DP16KD.
    hidden = board("ulx3s-85f").engine.layers[:2]
    assert rec["utilization"]["DP16KD"]["used"] >= sum(-(-f.weight_width // 36) for f in hidden)


@pytest.mark.slow
def test_ulx3s_training_bitstream(tmp_path):
    """The default training system (784-H-10, H = ``training_hidden``) with two emulated arrays
    on the ECP5-85F at its training clock; the big memories (layer 1's ``W_h``, ``M`` and the
    emulator rows) in DP16KD block RAM, not LUT RAM (docs/fpga_prototype.md)."""
    b = board("ulx3s-85f")
    rec = _build("ulx3s-85f", tmp_path, "--design", "training")
    info = rec["design_info"]
    h = b.training_hidden
    assert (info["network"], info["arrays"], info["write_code"]) == (f"784-{h}-10", "emulator", 2)
    assert rec["clock_mhz"] == (b.training_clock_hz or b.clock_hz) / 1e6
    # W_h and M of layer 1 (784 x 10 bits per lane each) and the emulator rows (3 bits per
    # lane) over 1024 x 18 blocks.
    want = 2 * -(-h * 10 // 18) + -(-h * 3 // 18)
    assert rec["utilization"]["DP16KD"]["used"] >= want
    # Only layer 2's small memories (H rows) may be LUT RAM.
    assert rec["synthesis_cells"]["cells"].get("TRELLIS_DPR16X4", 0) <= 4 * h


@pytest.mark.slow
def test_ulx3s_training_on_pins_bitstream(tmp_path):
    """The mixed-signal training prototype: the same system with its arrays on the GPIO bank."""
    b = board("ulx3s-85f")
    rec = _build("ulx3s-85f", tmp_path, "--design", "training", "--array", "pins")
    assert rec["design_info"]["arrays"] == "pins"
    assert rec["design_info"]["network"] == f"784-{b.training_hidden}-10"


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
