"""The IDX file format of MNIST and Fashion-MNIST: read and write, raw or gzip-compressed.

Source: Y. LeCun, C. Cortes, C. Burges, "The MNIST database" (file format section). An IDX file is
a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM`` big-endian uint32 dimensions, then the
values in row-major order, big-endian. Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64. A name ending in ``.gz`` is read and written through gzip.

Every problem (short header, bad magic, unknown type, truncated or overlong data, corrupt gzip)
raises :class:`IdxError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from spinapse.io import write_bytes

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in _TYPES.items()}


class IdxError(ValueError):
    """A malformed IDX file; the message starts with the file name."""


def _raw(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise FileNotFoundError(f"{path}: no such IDX file") from exc
        raise IdxError(f"{path}: corrupt gzip stream ({exc})") from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file into an array of its stored shape (native byte order).

    Returns
    -------
    numpy.ndarray
        Shape ``(d0, ..., d{NDIM-1})``; dtype uint8, int8, int16, int32, float32 or float64.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    IdxError
        Short header, magic not ``00 00 TYPE NDIM``, unknown type, zero dimensions, data shorter
        (truncated) or longer than the header announces, or a corrupt gzip stream.
    """
    p = Path(path)
    data = _raw(p)
    if len(data) < 4:
        raise IdxError(f"{p}: truncated header ({len(data)} bytes, need 4 for the magic number)")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(f"{p}: bad magic number {data[:4].hex()} (must start with 0000)")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise IdxError(f"{p}: unknown data type 0x{code:02x} in magic number {data[:4].hex()}")
    if ndim == 0:
        raise IdxError(f"{p}: magic number {data[:4].hex()} declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(
            f"{p}: truncated header ({len(data)} bytes, need {header} for {ndim} dimensions)"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise IdxError(
            f"{p}: truncated data ({got} bytes after the header, shape {dims} needs {expected})"
        )
    if got > expected:
        raise IdxError(f"{p}: {got - expected} unexpected bytes after the data of shape {dims}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip when the name ends in ``.gz``), atomically.

    Raises
    ------
    ValueError
        If the dtype is not one of the six IDX types, or the array has 0 or more than 255
        dimensions, or a dimension exceeds 2**32 - 1.
    """
    a = np.asarray(array)
    key = a.dtype.newbyteorder(">") if a.dtype.itemsize > 1 else a.dtype
    if key not in _CODES:
        raise ValueError(
            f"IDX cannot store dtype {a.dtype}; allowed: uint8, int8, int16, int32, "
            f"float32, float64"
        )
    if not 1 <= a.ndim <= 255 or any(d > 0xFFFFFFFF for d in a.shape):
        raise ValueError(f"IDX shape must have 1..255 dimensions < 2**32, got {a.shape}")
    body = (
        bytes([0, 0, _CODES[key], a.ndim])
        + np.asarray(a.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(a, dtype=key).tobytes()
    )
    p = Path(path)
    if p.name.endswith(".gz"):
        body = gzip.compress(body, mtime=0)
    return write_bytes(p, body)
