"""Result files written atomically: a reader sees the old file or the new one, never half of one.

Every result file of spinapse (JSON, CSV, PNG, checkpoints, Verilog) goes through these helpers:
the content is written to a temporary file in the destination folder, flushed to disk, then
renamed over the destination (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    Use it for writers that want a file name (``matplotlib.savefig``, ``torch.save``). If the
    block raises, the temporary file is removed and ``path`` is left untouched.

    Raises
    ------
    OSError
        When the destination folder cannot be created or written.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; result files are for the whole lab, so honour the umask instead.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as JSON (sorted keys, 2-space indent, trailing newline) atomically.

    The output is deterministic for equal inputs, so seeded runs give byte-identical files.
    """
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")
