"""Characterisation sweeps of a device card, written as CSV tables and PNG plots.

For an ``mtj_synapse`` card:

- ``psw_vs_amplitude.csv/.png``: switching probability against pulse current (0.5 to 4 Ic0) for
  pulse widths 1, 10 and 100 ns: the analytic probability of the nominal device (line) and the
  flip frequency of an array of ``devices`` devices with the card's device-to-device spread
  (points of the same colour). Up to 4 Ic0 so that the precessional branch is visible: with
  the shipped cards' damping and moment (Sun, Phys. Rev. B 62, 570 (2000)), a 1 ns pulse at
  2 Ic0 is far from certain (docs/devices.md, "Checking the precessional branch");
- ``rv_curves.csv/.png``: R_P and R_AP(V) from -1 V to 1 V;
- ``psw_vs_c.csv/.png``: switching probability of a pulse of the c = 0 critical current (10 ns)
  against the hidden state c (analytic nominal device and array frequency).

For a ``domain_wall_synapse`` card:

- ``dw_conductance_vs_pulses.csv/.png``: read conductance of a wall after each of 8 positive then
  8 negative pulses (8 ns) at three current densities, in rising order: below every depinning
  threshold (the wall never moves), between the centre and the end thresholds (it stops at the
  end notches), above every threshold;
- ``rv_curves.csv/.png``: read resistance with the wall at either end of the window.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from spinapse.behavioral import mtj_read, mtj_switching
from spinapse.behavioral.card import DeviceCard, load_card
from spinapse.behavioral.domain_wall import DomainWall
from spinapse.behavioral.metaplastic_synapse import MetaplasticSynapseArray
from spinapse.io import atomic_path, write_text

WIDTHS_S = (1e-9, 10e-9, 100e-9)


def _write_csv(path: Path, header: list[str], rows: list[list[float]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{x:.10g}" if isinstance(x, float) else x for x in row])
    return write_text(path, buf.getvalue())


def _plot(path: Path, series, xlabel: str, ylabel: str, title: str, logy=False) -> Path:
    """One panel; ``series`` holds ``(x, y, label, style)`` or ``(x, y, label, style, colour)``
    (an analytic line and its Monte-Carlo points share a colour). The legend sits to the right
    of the axes, off the data."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8.2, 4))
    for x, y, label, style, *colour in series:
        ax.plot(x, y, style, label=label, ms=4, color=colour[0] if colour else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _nominal_psw(arr: MetaplasticSynapseArray, current, width, c) -> torch.Tensor:
    """Analytic P_sw of the card's nominal device (no spread) at hidden state ``c``."""
    sw, rd, mi = arr.sw, arr.read_p, arr.mi
    from spinapse.behavioral.magneto_ionic import delta_shift

    delta = sw.Delta0 + delta_shift(c, mi.dKi, rd.area, sw.T)
    if arr.sot is not None:
        ic0 = arr.sot.Ic0 * delta / sw.Delta0
    else:
        ic0 = mtj_switching.critical_current_stt(delta, sw.alpha, sw.eta, sw.T)
    k_sun = mtj_switching.sun_prefactor(delta, sw.P_spin, sw.moment(rd.area))
    return mtj_switching.switching_probability(current, width, ic0, delta, sw.tau0, sw.b, k_sun)


def characterize_mtj(card: DeviceCard, out: Path, devices: int, seed: int) -> list[Path]:
    gen = torch.Generator().manual_seed(seed)
    probe = MetaplasticSynapseArray(card, 1, 1, generator=torch.Generator().manual_seed(seed))
    zero = torch.zeros((), dtype=torch.float64)
    sw, rd = probe.sw, probe.read_p
    if probe.sot is not None:
        ic0 = probe.sot.Ic0
    else:
        ic0 = float(mtj_switching.critical_current_stt(sw.Delta0, sw.alpha, sw.eta, sw.T))
    ratios = torch.linspace(0.5, 4.0, 71, dtype=torch.float64)
    rows, series = [], []
    for k, width in enumerate(WIDTHS_S):
        p_an = _nominal_psw(probe, ratios * ic0, width, zero)
        p_mc = []
        for r in ratios.tolist():
            arr = MetaplasticSynapseArray(card, 1, devices, generator=gen)
            p_mc.append(float(arr.write(None, -1, r * ic0, width).double().mean()))
        for r, a, m in zip(ratios.tolist(), p_an.tolist(), p_mc):
            rows.append([width, r * ic0, r, a, m])
        label, colour = f"{width * 1e9:g} ns", f"C{k}"
        series += [
            (ratios, p_an, f"{label}, nominal device", "-", colour),
            (ratios, p_mc, f"{label}, {devices} devices", "o", colour),
        ]
    paths = [
        _write_csv(
            out / "psw_vs_amplitude.csv",
            ["width_s", "current_A", "current_over_Ic0", "p_analytic", "p_array"],
            rows,
        ),
        _plot(
            out / "psw_vs_amplitude.png",
            series,
            f"I / Ic0 (Ic0 = {ic0 * 1e6:.1f} µA at c = 0)",
            "P_sw",
            f"{card.name}: switching probability (P -> AP)",
        ),
    ]

    v = torch.linspace(-1.0, 1.0, 81, dtype=torch.float64)
    r_ap = mtj_read.resistance_ap(v, rd.R_P, rd.TMR0, rd.V_h)
    r_p = torch.full_like(v, rd.R_P)
    paths.append(
        _write_csv(
            out / "rv_curves.csv",
            ["V", "R_P_ohm", "R_AP_ohm"],
            [[a, b, c] for a, b, c in zip(v.tolist(), r_p.tolist(), r_ap.tolist())],
        )
    )
    paths.append(
        _plot(
            out / "rv_curves.png",
            [(v, r_p, "P", "-"), (v, r_ap, "AP", "-")],
            "V (V)",
            "R (Ω)",
            f"{card.name}: R-V",
        )
    )

    cs = torch.linspace(0.0, 1.0, 21, dtype=torch.float64)
    width = 10e-9
    p_an = _nominal_psw(probe, torch.tensor(ic0, dtype=torch.float64), width, cs)
    p_mc = []
    for c in cs.tolist():
        arr = MetaplasticSynapseArray(card, 1, devices, generator=gen, c=c)
        p_mc.append(float(arr.write(None, -1, ic0, width).double().mean()))
    delta = sw.Delta0 + probe.mi.dKi * rd.area / (1.380649e-23 * sw.T) * cs
    paths.append(
        _write_csv(
            out / "psw_vs_c.csv",
            ["c", "Delta", "current_A", "width_s", "p_analytic", "p_array"],
            [
                [a, d, ic0, width, b, m]
                for a, d, b, m in zip(cs.tolist(), delta.tolist(), p_an.tolist(), p_mc)
            ],
        )
    )
    paths.append(
        _plot(
            out / "psw_vs_c.png",
            [(cs, p_an, "analytic", "-"), (cs, p_mc, "array", "o")],
            "hidden state c",
            "P_sw",
            f"{card.name}: {ic0 * 1e6:.1f} µA, 10 ns pulse against c",
        )
    )
    return paths


def characterize_dw(card: DeviceCard, out: Path) -> list[Path]:
    dw = DomainWall.from_card(card)
    thr = dw.thresholds()
    lo, hi = float(thr.min()), float(thr.max())
    # Rising order, each with where it sits against the notches' depinning thresholds.
    densities = (
        (0.9 * lo, "below every depinning threshold"),
        (0.5 * (lo + hi), "above the centre, below the end thresholds"),
        (1.05 * hi, "above every depinning threshold"),
    )
    width, n_pulses = 8e-9, 8
    rows, series = [], []
    for j, where in densities:
        level = torch.tensor([int(dw.level_init)], dtype=torch.int64)
        xs, gs = [0], [float(dw.conductance(level, dw.V_read))]
        rows.append([j, 0, 0, int(level), gs[0]])
        for k in range(1, 2 * n_pulses + 1):
            sign = 1.0 if k <= n_pulses else -1.0
            level = dw.pulse(level, sign * j, width)
            g = float(dw.conductance(level, dw.V_read))
            rows.append([j, k, sign * j, int(level), g])
            xs.append(k)
            gs.append(g)
        series.append((xs, [g * 1e6 for g in gs], f"|J| = {j:.3g} A/m²: {where}", "o-"))
    paths = [
        _write_csv(
            out / "dw_conductance_vs_pulses.csv",
            ["J_abs_A_per_m2", "pulse", "J_A_per_m2", "level", "G_S"],
            rows,
        ),
        _plot(
            out / "dw_conductance_vs_pulses.png",
            series,
            f"pulse number ({n_pulses} positive, then {n_pulses} negative; {width * 1e9:g} ns)",
            "G (µS)",
            f"{card.name}: conductance against pulse count",
        ),
    ]
    v = torch.linspace(-1.0, 1.0, 81, dtype=torch.float64)
    ends = torch.tensor([0, dw.levels - 1])
    r_p = 1.0 / dw.conductance(ends[0].expand(v.shape), v)
    r_ap = 1.0 / dw.conductance(ends[1].expand(v.shape), v)
    paths.append(
        _write_csv(
            out / "rv_curves.csv",
            ["V", "R_P_ohm", "R_AP_ohm"],
            [[a, b, c] for a, b, c in zip(v.tolist(), r_p.tolist(), r_ap.tolist())],
        )
    )
    paths.append(
        _plot(
            out / "rv_curves.png",
            [(v, r_p, "wall at x_min (P)", "-"), (v, r_ap, "wall at x_max (AP)", "-")],
            "V (V)",
            "R (Ω)",
            f"{card.name}: R-V",
        )
    )
    return paths


def characterize(card: DeviceCard | str, out: str | Path, devices: int = 2000, seed: int = 0):
    """Run the sweeps of a card into folder ``out``; return the written paths.

    Parameters
    ----------
    devices : int
        Devices per array point (Monte-Carlo frequency), >= 1.
    seed : int
        Seed of the torch.Generator of every draw.

    Raises
    ------
    ValueError
        If ``devices`` < 1 or the card fails validation.
    """
    if devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    if not isinstance(card, DeviceCard):
        card = load_card(card)
    out = Path(out)
    if card.kind == "mtj_synapse":
        return characterize_mtj(card, out, devices, seed)
    return characterize_dw(card, out)
