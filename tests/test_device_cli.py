"""``spinapse device list | show | characterize`` through the real command line."""

from __future__ import annotations

import csv
import math

import pytest

from spinapse.cli import main


def test_list_and_show(capsys):
    assert main(["device", "list"]) == 0
    out = capsys.readouterr().out
    assert "mtj_mi_stt" in out and "dw_notched" in out and "mtj_mi_sot" in out
    assert main(["device", "show", "mtj_mi_stt"]) == 0
    out = capsys.readouterr().out
    assert "RA                 9.8e-12" in out and "source: design value" in out and "(2012)" in out


def test_show_bad_card_is_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[card]\nname = "x"\nkind = "mtj_synapse"\nvariant = "stt"\ndescription = "d"\n')
    assert main(["device", "show", str(bad)]) == 2
    assert "[mtj_read]: missing section" in capsys.readouterr().err


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_characterize_mtj(tmp_path):
    assert (
        main(["device", "characterize", "mtj_mi_stt", "--out", str(tmp_path), "--devices", "400"])
        == 0
    )
    for name in ("psw_vs_amplitude", "rv_curves", "psw_vs_c"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
    rows = read_csv(tmp_path / "psw_vs_amplitude.csv")
    assert sorted({float(r["width_s"]) for r in rows}) == [1e-9, 10e-9, 100e-9]
    # The 10 ns curve passes 0.9 Ic0 at 1 - exp(-10 exp(-4)) (Delta 40, tau0 1 ns, b 1).
    r09 = [
        r
        for r in rows
        if float(r["width_s"]) == 10e-9 and abs(float(r["current_over_Ic0"]) - 0.9) < 1e-6
    ]
    assert float(r09[0]["p_analytic"]) == pytest.approx(1 - math.exp(-10 * math.exp(-4)), rel=1e-6)
    # Array frequency (400 devices, 3 % Delta spread) follows the analytic curve loosely.
    for r in rows:
        assert abs(float(r["p_analytic"]) - float(r["p_array"])) < 0.25
    rv = read_csv(tmp_path / "rv_curves.csv")
    mid = min(rv, key=lambda r: abs(float(r["V"])))
    assert abs(float(mid["V"])) < 1e-12
    assert float(mid["R_AP_ohm"]) / float(mid["R_P_ohm"]) == pytest.approx(2.1, rel=1e-9)
    pc = read_csv(tmp_path / "psw_vs_c.csv")
    p = [float(r["p_analytic"]) for r in pc]
    assert p[0] > 0.99 and p[-1] < 1e-6 and all(a >= b for a, b in zip(p, p[1:]))


def test_characterize_domain_wall(tmp_path):
    assert main(["device", "characterize", "dw_notched", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "dw_conductance_vs_pulses.csv")
    by_j = {}
    for r in rows:
        by_j.setdefault(float(r["J_abs_A_per_m2"]), []).append(int(r["level"]))
    pinned, low, high = sorted(by_j)
    assert by_j[high] == [3, 4, 5, 6, 7, 7, 7, 7, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert set(by_j[pinned]) == {3}
    assert max(by_j[low]) == 6 and by_j[low][-1] == 6  # trapped in a high-threshold notch
