"""Verilog-A sources (behavioral/va) against the torch compact models, point by point.

Each .va file is compiled with openvaf-py and evaluated with ``run_init_eval`` at >= 1000 random
operating points (torch.Generator seed 1234); every residual (terminal currents, state rates
flowing into internal nodes, switching probability) must match the torch model within a relative
1e-9 in float64 (atol 0: zeros must be zeros).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openvaf_py
import pytest
import torch

from spinapse.behavioral import magneto_ionic, mtj_read, mtj_switching
from spinapse.behavioral.card import load_card
from spinapse.behavioral.domain_wall import DomainWall
from spinapse.behavioral.magneto_ionic import MagnetoIonic
from spinapse.behavioral.mtj_read import MTJRead
from spinapse.behavioral.mtj_switching import MTJSwitching, SOTWrite

VA = Path(__file__).resolve().parents[1] / "behavioral" / "va"
N = 1000
RTOL = 1e-9


def compile_va(name: str):
    return openvaf_py.compile_va(str(VA / f"{name}.va"))[0]


def evaluate(module, params: dict, points: list[dict]) -> np.ndarray:
    """Residuals ``[points, nodes, 2]`` (resistive, reactive) at each operating point.

    Every model parameter must be given (openvaf-py makes missing ones NaN): a missing one is an
    error here, not a silent NaN.
    """
    names = [n for n, k in zip(module.param_names, module.param_kinds) if k == "param"]
    missing = [n for n in names if n not in params]
    assert not missing, f"test does not set parameters {missing}"
    out = []
    for point in points:
        args = {**params, **point, "mfactor": 1.0}
        for n, k in zip(module.param_names, module.param_kinds):
            if k == "current":
                args[n] = 0.0
        residuals, _ = module.run_init_eval(args)
        out.append(residuals)
    return np.asarray(out, dtype=np.float64)


def node(module, name: str) -> int:
    return [n["name"] for n in module.get_dae_system()["nodes"]].index(name)


def uniform(gen, lo, hi, n=N):
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def assert_close(va: np.ndarray, ref: torch.Tensor, what: str) -> None:
    np.testing.assert_allclose(va, ref.numpy(), rtol=RTOL, atol=0, err_msg=what)


@pytest.fixture(scope="module")
def stt():
    return load_card("mtj_mi_stt")


def read_params(card):
    rd = MTJRead.from_card(card)
    return rd, {"RA": rd.RA, "diameter": rd.diameter, "TMR0": rd.TMR0, "V_h": rd.V_h}


def test_mtj_read_parity(stt):
    rd, params = read_params(stt)
    gen = torch.Generator().manual_seed(1234)
    v, s = uniform(gen, -1.0, 1.0), uniform(gen, 0.0, 1.0)
    module = compile_va("mtj_read")
    res = evaluate(
        module, params, [{"V(p,n)": a, "V(s)": b} for a, b in zip(v.tolist(), s.tolist())]
    )
    ref = mtj_read.current(v, s, rd.R_P, rd.TMR0, rd.V_h)
    assert_close(res[:, node(module, "p"), 0], ref, "I(p,n)")
    assert_close(res[:, node(module, "n"), 0], -ref, "I(n)")
    assert_close(res[:, node(module, "s"), 0], torch.zeros(N, dtype=torch.float64), "ds/dt")


def switching_reference(rd, sw, i_w, s, delta, ic0, width):
    """ds/dt and P_sw of the torch models for write current ``i_w`` and state ``s``."""
    i_eff = torch.where(s >= 0.5, i_w, -i_w)
    k_sun = mtj_switching.sun_prefactor(delta, sw.P_spin, sw.moment(rd.area))
    rate = mtj_switching.switching_rate(i_eff, ic0, delta, sw.tau0, sw.b, k_sun)
    psw = mtj_switching.switching_probability(i_eff, width, ic0, delta, sw.tau0, sw.b, k_sun)
    return torch.where(s >= 0.5, -rate, rate), psw


def sot_params():
    sot = SOTWrite.from_card(load_card("mtj_mi_sot"))
    return sot, {"Jc0": sot.Jc0, "w_hm": sot.w_hm, "t_hm": sot.t_hm, "R_hm": sot.R_hm}


@pytest.mark.parametrize("variant", [0, 1])
def test_mtj_switching_parity(stt, variant):
    rd, params = read_params(stt)
    sw = MTJSwitching.from_card(stt)
    sot, sot_p = sot_params()
    gen = torch.Generator().manual_seed(1234 + variant)
    v = uniform(gen, -0.6, 0.6)  # |I| up to about 3 Ic0 through the junction
    vh = uniform(gen, -0.03, 0.03)  # SOT line: |I| up to about 3 Ic0
    s = (torch.rand(N, generator=gen) < 0.5).to(torch.float64)
    delta = uniform(gen, 10.0, 80.0)
    b = uniform(gen, 1.0, 2.0)
    width = torch.exp(uniform(gen, math.log(1e-10), math.log(1e-6)))
    module = compile_va("mtj_switching")
    fixed = {**params, **sot_p, "tau0": sw.tau0, "T": sw.T, "alpha": sw.alpha, "eta": sw.eta}
    fixed |= {"P_spin": sw.P_spin, "Ms": sw.Ms, "t_F": sw.t_F, "sot": variant}
    rows = []
    for k in range(N):
        args = {**fixed, "Delta": float(delta[k]), "b": float(b[k]), "width": float(width[k])}
        args |= {"V(p,n)": float(v[k]), "V(s)": float(s[k]), "V(h1,h2)": float(vh[k])}
        rows.append(evaluate(module, args, [{}])[0])
    res = np.asarray(rows)
    i_mtj = mtj_read.current(v, s, rd.R_P, rd.TMR0, rd.V_h)
    if variant:
        i_w, ic0 = vh / sot.R_hm, torch.full_like(v, sot.Ic0)
        assert_close(res[:, node(module, "h1"), 0], vh / sot.R_hm, "I(h1,h2)")
    else:
        i_w = i_mtj
        ic0 = mtj_switching.critical_current_stt(delta, sw.alpha, sw.eta, sw.T)
    above = (torch.where(s >= 0.5, i_w, -i_w) >= ic0).sum()
    assert 50 < int(above) < N - 50, "points must cover both sides of Ic0"
    rows_ref = []
    for k in range(N):
        swk = MTJSwitching(**{**sw.__dict__, "b": float(b[k])})
        rows_ref.append(
            switching_reference(
                rd,
                swk,
                i_w[k : k + 1],
                s[k : k + 1],
                delta[k : k + 1],
                ic0[k : k + 1],
                width[k : k + 1],
            )
        )
    ds = torch.cat([r[0] for r in rows_ref])
    psw = torch.cat([r[1] for r in rows_ref])
    assert_close(res[:, node(module, "p"), 0], i_mtj, "I(p,n)")
    assert_close(res[:, node(module, "s"), 0], ds, "ds/dt")
    assert_close(res[:, node(module, "psw"), 0], psw, "P_sw")


def mi_params(card):
    mi = MagnetoIonic.from_card(card)
    keys = ("tau_ref", "V_ref", "V_0", "V_th", "C_gate", "R_gate")
    return mi, {k: getattr(mi, k) for k in keys}


def test_magneto_ionic_parity(stt):
    mi, params = mi_params(stt)
    gen = torch.Generator().manual_seed(99)
    vg, c = uniform(gen, -4.0, 4.0), uniform(gen, 0.0, 1.0)
    module = compile_va("magneto_ionic")
    pts = [{"V(g,n)": a, "V(c)": b} for a, b in zip(vg.tolist(), c.tolist())]
    res = evaluate(module, params, pts)
    assert_close(res[:, node(module, "g"), 0], vg / mi.R_gate, "I(g,n) leakage")
    assert_close(res[:, node(module, "g"), 1], mi.C_gate * vg, "gate charge")
    assert_close(res[:, node(module, "c"), 0], mi.rate(c, vg), "dc/dt")
    assert int((mi.rate(c, vg) == 0).sum()) > 50, "points must include the non-volatile range"


def test_domain_wall_parity():
    card = load_card("dw_notched")
    dw = DomainWall.from_card(card)
    keys = [
        k for k in dw.__dict__ if k not in ("read_noise_sigma", "V_read", "t_read", "level_init")
    ]
    params = {k: float(getattr(dw, k)) for k in keys}
    gen = torch.Generator().manual_seed(7)
    # |J| log-uniform over 1e10 .. 1.5e12 A/m^2 with random sign: pinned and moving walls.
    j_mag = torch.exp(uniform(gen, math.log(1e10), math.log(1.5e12)))
    sign = torch.where(torch.rand(N, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    vw = sign * j_mag * dw.cross_section * dw.R_track
    x = uniform(gen, 0.0, dw.length)
    u = uniform(gen, -50.0, 50.0)
    vr = uniform(gen, -0.5, 0.5)
    module = compile_va("domain_wall")
    pts = [
        {"V(wp,wn)": a, "V(x)": b, "V(u)": c, "V(rp,wn)": d}
        for a, b, c, d in zip(vw.tolist(), x.tolist(), u.tolist(), vr.tolist())
    ]
    res = evaluate(module, params, pts)
    j = vw / dw.R_track / dw.cross_section
    dxdt, dudt = dw.rates(x, u, j)
    moving = (dudt != -u / dw.tau_v).sum()
    assert 100 < int(moving) < N - 100, "points must cover pinned and moving walls"
    assert_close(res[:, node(module, "wp"), 0], vw / dw.R_track, "I(wp,wn)")
    assert_close(res[:, node(module, "x"), 0], dxdt, "dx/dt")
    assert_close(res[:, node(module, "u"), 0], dudt, "du/dt")
    assert_close(res[:, node(module, "rp"), 0], vr * dw.conductance_at(x, vr), "I(rp,wn)")


@pytest.mark.parametrize("variant", [0, 1])
def test_metaplastic_synapse_parity(stt, variant):
    rd, params = read_params(stt)
    sw = MTJSwitching.from_card(stt)
    mi, mi_p = mi_params(stt)
    sot, sot_p = sot_params()
    gen = torch.Generator().manual_seed(4321 + variant)
    v = uniform(gen, -0.6, 0.6)
    vh = uniform(gen, -0.03, 0.03)
    vg = uniform(gen, -4.0, 4.0)
    s = (torch.rand(N, generator=gen) < 0.5).to(torch.float64)
    c = uniform(gen, 0.0, 1.0)
    delta0 = uniform(gen, 30.0, 50.0)
    module = compile_va("metaplastic_synapse")
    fixed = {**params, **mi_p, **sot_p, "dKi": mi.dKi, "Delta_nom": sw.Delta0, "sot": variant}
    fixed |= {"tau0": sw.tau0, "b": sw.b, "T": sw.T, "alpha": sw.alpha, "eta": sw.eta}
    fixed |= {"P_spin": sw.P_spin, "Ms": sw.Ms, "t_F": sw.t_F, "width": 10e-9}
    res = np.asarray(
        [
            evaluate(
                module,
                {**fixed, "Delta0": float(delta0[k])},
                [
                    {
                        "V(p,n)": float(v[k]),
                        "V(s)": float(s[k]),
                        "V(c)": float(c[k]),
                        "V(g,n)": float(vg[k]),
                        "V(h1,h2)": float(vh[k]),
                    }
                ],
            )[0]
            for k in range(N)
        ]
    )
    delta = delta0 + magneto_ionic.delta_shift(c, mi.dKi, rd.area, sw.T)
    i_mtj = mtj_read.current(v, s, rd.R_P, rd.TMR0, rd.V_h)
    if variant:
        i_w, ic0 = vh / sot.R_hm, sot.Ic0 * delta / sw.Delta0
    else:
        i_w, ic0 = i_mtj, mtj_switching.critical_current_stt(delta, sw.alpha, sw.eta, sw.T)
    ds, psw = switching_reference(rd, sw, i_w, s, delta, ic0, 10e-9)
    assert_close(res[:, node(module, "p"), 0], i_mtj, "I(p,n)")
    assert_close(res[:, node(module, "s"), 0], ds, "ds/dt")
    assert_close(res[:, node(module, "psw"), 0], psw, "P_sw")
    assert_close(res[:, node(module, "c"), 0], mi.rate(c, vg), "dc/dt")
    assert_close(res[:, node(module, "g"), 0], vg / mi.R_gate, "I(g,n)")
