"""Files of a plan: ``plan.json`` (everything), ``report.md`` (tables), ``scaling_area.png`` and
``scaling_energy.png``, written atomically through :mod:`spinapse.io`; and the printed summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spinapse.io import atomic_path, write_json, write_text


def _si(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if x == 0:
        return f"0 {unit}"
    for scale, prefix in ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m")):
        if abs(x) < scale * 1000:
            return f"{x / scale:.3g} {prefix}{unit}"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g} M{unit}"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.3g} k{unit}"
    return f"{x:.3g} {unit}"


def _area(um2: float) -> str:
    return f"{um2 / 1e6:.3g} mm^2" if um2 >= 1e4 else f"{um2:,.0f} um^2"


def _n(x: float) -> str:
    return f"{x:,.0f}"


def summary_rows(p: dict[str, Any]) -> list[tuple[str, ...]]:
    """The summary table: one row per mode of the planned chip."""
    rows = []
    lat = p["latency"]
    for mode, t in p["logic"]["training"].items():
        mem = p["memory"][mode]
        energy = p["array"].get("energy_per_sample_J", {}).get(mode)
        rows.append(
            (
                f"training, {mode}",
                _n(t["estimate"]["total"]),
                _area(t["sky130_cell_area_um2"]),
                _n(mem["totals"].get("sram", 0)),
                _area(mem["sram_area_um2"]),
                _n(p["array"]["devices"]),
                _si(energy["total"], "J") if energy else "-",
                _n(lat["training"][mode]["cycles_per_step"]),
                f"{lat['training'][mode]['steps_per_s']:,.0f}",
            )
        )
    inf = p["logic"]["inference"]
    if inf:
        rows.append(
            (
                "inference engine " + "-".join(map(str, inf["widths"])),
                _n(inf["synth"]["transistors"]),
                _area(inf["synth"]["sky130_cell_area_um2"]),
                _n(inf["sram_bits"]),
                _area(inf["sram_bits"] * p["node"]["bit_cell_um2"]),
                "-",
                "-",
                _n(inf["cycles_per_image"]),
                f"{inf['images_per_s']:,.0f}",
            )
        )
    return rows


SUMMARY_HEAD = (
    "part",
    "logic transistors",
    "logic cell area (sky130 stand-in)",
    "SRAM bits",
    "SRAM area",
    "synapses",
    "device energy / training sample",
    "cycles / step or image",
    "per s at clock",
)


def _table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def summary_text(p: dict[str, Any]) -> str:
    """Plain-text summary printed by ``spinapse plan``."""
    rows = [SUMMARY_HEAD, *summary_rows(p)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(SUMMARY_HEAD))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def markdown(p: dict[str, Any], plots: dict[str, str]) -> str:
    """The Markdown report."""
    net = "-".join(map(str, p["network"]))
    lat, arr, ops = p["latency"], p["array"], p["array"]["per_op"]
    out = [
        f"# Tape-out plan `{p['name']}`: {net}, card `{arr['card']}`, {p['node']['name']}",
        "",
        "Made by `spinapse plan`. Logic: Yosys generic-CMOS transistor estimate of the RTL "
        "(`synth -run :fine; techmap; dffunmap; abc -g cmos2; stat -tech cmos`, memories kept). "
        f"SRAM: {p['node']['bit_cell_um2']} um^2 per bit ({p['node']['source']}), bit cells "
        f"only, array efficiency {p['config']['array_efficiency']}. Clock "
        f"{_si(lat['clock_hz'], 'Hz')}.",
        "",
        "## Summary",
        "",
        "Device energy per training sample: the counted runs' energy per synapse and sample "
        "times this chip's synapses (see Counted runs).",
        "",
        _table(SUMMARY_HEAD, summary_rows(p)),
        "",
        "## Digital logic per block",
        "",
    ]
    rows = []
    for mode, t in p["logic"]["training"].items():
        for h, s in t["synthesized"].items():
            for name, b in s["blocks"].items():
                rows.append(
                    (
                        mode,
                        f"{p['network'][0]}-{h}-{p['network'][2]}",
                        name,
                        _n(b["transistors"]),
                        _n(b["flip_flops"]),
                        b["memories"],
                    )
                )
    inf = p["logic"]["inference"]
    if inf:
        for name, b in inf["synth"]["blocks"].items():
            rows.append(
                (
                    "inference",
                    "-".join(map(str, inf["widths"])),
                    name,
                    _n(b["transistors"]),
                    _n(b["flip_flops"]),
                    b["memories"],
                )
            )
    out += [
        _table(
            (
                "engine",
                "synthesised shape",
                "block",
                "transistors (with submodules)",
                "flip-flops (own)",
                "memories kept",
            ),
            rows,
        ),
        "",
        "Fit per mode (transistors): "
        + "; ".join(
            f"{m}: control {t['control_fixed']:,.0f} + {t['control_per_hidden_neuron']:,.0f} per "
            f"hidden neuron, update engine {t['update_fixed']:,.0f} + {t['update_per_lane']:,.0f}"
            f" per lane (layer-2 engine off the fit by {100 * t['upd2_residual']:.1f} %)"
            for m, t in p["logic"]["training"].items()
        )
        + ".",
        "",
        p["standard_cells"],
        "Logic cell area in the summary: every generic gate as its drive-1 sky130_fd_sc_hd "
        "cell (LEF sizes; cell area only, no routing; `plan/cell_area.py`), the training "
        "estimate at the widest synthesised engine's area per transistor.",
        "",
        "## Memory",
        "",
    ]
    rows = []
    for mode, m in p["memory"].items():
        for e in m["entries"]:
            rows.append((mode, e["layer"] + 1, e["name"], _n(e["bits"]), e["kind"]))
    out += [
        _table(("mode", "layer", "memory", "bits", "held in"), rows),
        "",
        "SRAM per mode: "
        + "; ".join(
            f"{mode} {_n(m['totals'].get('sram', 0))} bits, {_area(m['sram_area_um2'])}"
            for mode, m in p["memory"].items()
        )
        + ". Registers and the f_meta ROM are inside the logic count.",
        "",
        "## Synapse array",
        "",
        f"{_n(arr['devices'])} devices (MTJ + magneto-ionic gate), organised as "
        + ", ".join(
            f"layer {i + 1}: {L['rows']} rows x {L['lanes']} lanes"
            for i, L in enumerate(arr["layers"])
        )
        + " (a row is read, written or gated in one command; lanes in parallel).",
        "",
        _table(
            ("operation", "pulse", "energy"),
            [
                (
                    "write from P",
                    f"{_si(ops['write_current_A'], 'A')} "
                    f"({p['config']['pulses']['write_current_Ic0']} Ic0), "
                    f"{_si(ops['write_width_s'], 's')}",
                    _si(ops["write_from_P_J"], "J"),
                ),
                ("write from AP", "same", _si(ops["write_from_AP_J"], "J")),
                (
                    "gate",
                    f"{ops['gate_voltage_V']} V, {_si(ops['gate_width_s'], 's')}",
                    _si(ops["gate_J"], "J"),
                ),
                ("read P", f"t_read {_si(ops['read_time_s'], 's')}", _si(ops["read_P_J"], "J")),
                ("read AP", "same", _si(ops["read_AP_J"], "J")),
            ],
        ),
        "",
        f"Per inference (every synapse read once, half P, half AP): "
        f"{_si(arr['inference_read_J'], 'J')}, array read time "
        f"{_si(arr['inference_read_time_s'], 's')} (one row per read).",
        "",
        "## Counted runs: energy per training sample",
        "",
    ]
    if p["runs"]:
        rows = [
            (
                r["label"],
                r["mode"],
                "-".join(map(str, r["widths"])),
                _n(r["samples"]),
                f"{r['per_sample_counts']['device_writes']:,.0f}",
                f"{r['per_sample_counts']['gate_pulses']:,.0f}",
                f"{r['per_sample_counts']['reads']:,.0f}",
                _si(r["per_sample_J"]["write"], "J"),
                _si(r["per_sample_J"]["gate"], "J"),
                _si(r["per_sample_J"]["read"], "J"),
                _si(r["per_sample_J"]["total"], "J"),
            )
            for r in p["runs"]
        ]
        out += [
            _table(
                (
                    "run",
                    "mode",
                    "network",
                    "samples",
                    "write pulses / sample",
                    "gate pulses / sample",
                    "reads / sample",
                    "write",
                    "gate",
                    "read",
                    "total / sample",
                ),
                rows,
            ),
            "",
            "Energy per sample = the run's counted write + gate + read energy / its training "
            "samples (" + ", ".join(f"`{Path(r['source']).name}`" for r in p["runs"]) + "). "
            "A run with batch B pulses each device once per step of B samples (golden runs: "
            "B = " + ", ".join(str(r["batch_size"]) for r in p["runs"]) + "); the on-chip "
            "engine steps every sample (batch 1).",
            "",
        ]
    else:
        out += ["No run given (`[plan].runs`): no energy per training sample.", ""]
    s = p["saving"]
    if s:
        e = s["energy_per_sample_J"]
        out += [
            "## Device mode against digital mode",
            "",
            f"- SRAM: {_n(s['sram_bits_digital'])} bits (digital) against "
            f"{_n(s['sram_bits_device'])} (device): {_n(s['sram_bits_saved'])} bits of W_h "
            f"saved, {_area(s['sram_area_saved_um2'])}.",
            f"- Logic: {_n(s['logic_transistors_saved'])} transistors fewer in device mode "
            "(no W_h datapath, no f_meta ROM, no write-verify).",
        ]
        if {"digital", "device"} <= set(e):
            nets = {"-".join(map(str, r["widths"])) for r in p["runs"]}
            out.append(
                f"- Device energy per training sample: {_si(e['digital']['total'], 'J')} "
                f"(digital) against {_si(e['device']['total'], 'J')} (device) for the runs' "
                f"network {', '.join(sorted(nets))}, from the runs "
                "above (same network and data; device mode pulses every step). Not counted: "
                "the SRAM accesses of W_h and M, which digital mode needs twice as many of."
            )
        out.append("")
    out += [
        "## Latency",
        "",
        f"- Training engine, one inference: {_n(lat['inference_cycles'])} cycles, "
        f"{lat['inferences_per_s']:,.0f} images/s at {_si(lat['clock_hz'], 'Hz')}.",
    ]
    for mode, t in lat["training"].items():
        extra = " plus 3 per write-verify attempt of a row" if mode == "digital" else ""
        out.append(
            f"- Training step, {mode}: {_n(t['cycles_per_step'])} cycles{extra}, "
            f"{t['steps_per_s']:,.0f} samples/s."
        )
    out.append(
        "- Array-bound: the cycle counts assume one row read or pulsed per cycle. With "
        f"{_si(p['array']['per_op']['read_time_s'], 's')} reads, a pass over all rows takes at "
        f"least {_si(lat['read_bound_s'], 's')}; a device-mode step with "
        f"{_si(p['config']['pulses']['gate_width'], 's')} gate pulses (rows one after another) "
        f"lasts at least {_si(lat['gate_bound_s'], 's')}, so the magneto-ionic gate, not the "
        "clock, sets the device-mode training rate."
    )
    if inf:
        out.append(
            f"- Inference engine {'-'.join(map(str, inf['widths']))}: one image every "
            f"{_n(inf['cycles_per_image'])} cycles (latency {_n(inf['latency_cycles'])}), "
            f"{inf['images_per_s']:,.0f} images/s."
        )
    out += ["", "## Scaling", ""]
    rows = []
    for r in p["scaling"]:
        for mode, m in r["modes"].items():
            e = m.get("energy_per_sample_J")
            rows.append(
                (
                    "-".join(map(str, r["widths"])),
                    mode,
                    _n(r["synapses"]),
                    _n(m["logic_transistors"]) + (" (extrap.)" if m["extrapolated_logic"] else ""),
                    _n(m["sram_bits"]),
                    _area(m["sram_area_um2"]),
                    m["area_dominant"],
                    _si(sum(e.values()), "J") if e else "-",
                    m.get("energy_dominant", "-"),
                    _n(m["cycles_per_step"]),
                    _si(r["inference_read_J"], "J"),
                )
            )
    out += [
        _table(
            (
                "network",
                "mode",
                "synapses",
                "logic transistors",
                "SRAM bits",
                "SRAM area",
                "area dominated by",
                "device energy / sample",
                "energy dominated by",
                "cycles / step",
                "read energy / inference",
            ),
            rows,
        ),
        "",
        "Area is compared in transistors (SRAM 6 per bit). Energy per sample scales the run's "
        "energy per synapse and sample with the synapse count (same pulses per synapse). Logic "
        "beyond the synthesised widths is extrapolated from the per-lane and per-neuron fit "
        "(checked at 784-32-10 from a 784-8-10 / 784-16-10 fit: within 5 % digital, +5.6 % "
        "device; further out the error is not measured).",
        "",
    ]
    out += [f"![{k}]({v})" for k, v in plots.items()]
    return "\n".join(out) + "\n"


def plot_scaling(p: dict[str, Any], folder: Path) -> dict[str, str]:
    """Two PNGs: area (transistors) and device energy per sample over the scaling networks."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = ["-".join(map(str, r["widths"])) for r in p["scaling"]]
    modes = list(p["scaling"][0]["modes"])
    files = {}
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 3.8), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        logic = [r["modes"][mode]["area_transistors"]["logic"] for r in p["scaling"]]
        sram = [r["modes"][mode]["area_transistors"]["sram"] for r in p["scaling"]]
        x = list(range(len(names)))
        ax.bar([i - 0.2 for i in x], logic, width=0.4, label="logic (Yosys CMOS)")
        ax.bar([i + 0.2 for i in x], sram, width=0.4, label="SRAM (6T per bit)")
        ax.set_yscale("log")
        ax.set_xticks(list(x), names, rotation=20, fontsize=7)
        ax.set_title(f"{mode} mode: transistors")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(folder / "scaling_area.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    files["area"] = "scaling_area.png"
    if any("energy_per_sample_J" in r["modes"][m] for r in p["scaling"] for m in modes):
        fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 3.8), squeeze=False)
        for ax, mode in zip(axes[0], modes):
            rows = [r["modes"][mode].get("energy_per_sample_J") for r in p["scaling"]]
            if not all(rows):
                ax.set_title(f"{mode}: no run")
                continue
            x = list(range(len(names)))
            for k, kind in enumerate(("write", "gate", "read")):
                vals = [e[kind] for e in rows]
                ax.bar([i + 0.27 * (k - 1) for i in x], vals, width=0.27, label=kind)
            ax.set_yscale("log")
            ax.set_xticks(list(x), names, rotation=20, fontsize=7)
            ax.set_title(f"{mode} mode: device energy per training sample (J)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(folder / "scaling_energy.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        files["energy"] = "scaling_energy.png"
    return files


def write_plan(p: dict[str, Any], folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``plan.json``, ``report.md`` and the PNGs into ``folder``; return their paths."""
    folder = Path(folder)
    plots = plot_scaling(p, folder)
    files = {"json": write_json(folder / "plan.json", p)}
    files["markdown"] = write_text(folder / "report.md", markdown(p, plots))
    files.update({k: folder / v for k, v in plots.items()})
    return files
