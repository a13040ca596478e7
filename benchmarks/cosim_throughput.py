"""Throughput of the full-system co-simulation: training samples per second and cycles per step.

Runs the same RTL training engine (784-64-10, device mode, Verilator, batch 1, real digits in a
seeded order) twice, side by side in one process:

- with the physics bridge (``cosim/bridge_system.py``: arrays of the card ``mtj_mi_stt`` in
  torch, ``spinapse.cosim.bridge_case.run_bridge``);
- with the RTL hidden-state array (``rtl/training_system.py``,
  ``spinapse.cosim.tb_training_case.run_training_cosim``).

Reported per run: wall time of the training loop (builds excluded), training samples per second,
measured cycles per step, and the ideal bound of one row per cycle in each phase (forward rows
``n_in + n_hidden`` plus update rows ``n_in + n_hidden``). Compare the two speeds only as the
ratio measured here (the machine is shared).

Usage: ``.venv/bin/python benchmarks/cosim_throughput.py [--steps N] [--hidden H] [--out FILE]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json


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
