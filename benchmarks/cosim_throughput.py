"""Throughput of the full-system co-simulation: training samples per second and cycles per step.

Runs the same RTL training engine (784-64-10, device mode, Verilator, batch 1, real digits in a
seeded order) twice, side by side in one process:

- with the physics bridge (``cosim/bridge_system.py``: arrays of the card ``mtj_mi_stt`` in
  torch, ``spinapse.cosim.bridge_case.run_bridge``);
- with the RTL hidden-state array (``rtl/training_system.py``,
  ``spinapse.cosim.tb_training_case.run_training_cosim``).

Reported per run: wall time of the training loop (builds excluded), training samples per second,
measured cycles per step, and their ratio to the ideal bound of one row per cycle in each phase
(forward rows ``n_in + n_hidden`` plus update rows ``n_in + n_hidden``). For the physics bridge
also the split of a step (``cosim/tb_bridge.py``, ``PhaseTimer``): simulator time per cycle and
host (Python: GATE-log reads, torch device models, mirror writes) time per step, each in wall and
in CPU seconds of the simulator process, and samples per CPU second (what the run reaches when
it has a core to itself). Compare the two runs' speeds only as the ratio measured here (the
machine is shared).

Usage: ``.venv/bin/python benchmarks/cosim_throughput.py [--steps N] [--hidden H] [--out FILE]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json


def step_split(measure: dict) -> dict:
    """Simulator microseconds per cycle and host milliseconds per step, in wall and CPU time,
    and samples per CPU second, from a bridge run's ``measure`` (``phases_wall_s``,
    ``phases_cpu_s``, ``steps``, ``cycles_per_step``, ``cpu_s``)."""
    steps = measure["steps"]
    cycles = steps * measure["cycles_per_step"]
    out = {"samples_per_cpu_s": steps / measure["cpu_s"]}
    for clock in ("wall", "cpu"):
        phases = measure[f"phases_{clock}_s"]
        out[f"sim_us_per_cycle_{clock}"] = 1e6 * phases["sim"] / cycles
        host = measure[f"{clock}_s"] - phases["sim"]
        out[f"host_ms_per_step_{clock}"] = 1e3 * host / steps
    return out


def main(argv: list[str] | None = None) -> int:
    from spinapse.behavioral.card import load_card
    from spinapse.cosim.bridge_case import run_bridge
    from spinapse.cosim.tb_training_case import digit_steps, run_training_cosim
    from spinapse.golden.integer_model.learning import IntegerRule
    from spinapse.io import write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps per run")
    p.add_argument("--hidden", type=int, default=64, help="hidden neurons")
    p.add_argument("--out", help="also write the measurements to this JSON file")
    args = p.parse_args(argv)
    rule = dataclasses.replace(IntegerRule(), n_hidden=args.hidden)
    bound = 2 * (rule.n_in + rule.n_hidden)
    xs, ys = digit_steps(args.steps, 0)
    snap = run_bridge(rule, "device", load_card("mtj_mi_stt"), [(xs, ys)])
    rtl = run_training_cosim(rule, "device", args.steps)
    runs = {
        "physics_bridge": snap["measure"],
        "rtl_hidden_state_array": {k: rtl[k] for k in ("steps", "cycles_per_step", "wall_s")},
    }
    for r in runs.values():
        r["samples_per_s"] = r["steps"] / r["wall_s"]
        r["cycles_over_ideal"] = r["cycles_per_step"] / bound
    bridge = runs["physics_bridge"]
    bridge.update(step_split(bridge))
    doc = {
        "network": f"{rule.n_in}-{rule.n_hidden}-{rule.n_out}",
        "ideal_cycles_per_step": bound,
        "runs": runs,
        "bridge_over_rtl_speed": runs["physics_bridge"]["samples_per_s"]
        / runs["rtl_hidden_state_array"]["samples_per_s"],
    }
    if args.out:
        write_json(args.out, doc)
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
