"""Host driver of the inference prototype: one API over any byte transport.

A transport has ``write(bytes)``, ``read(n) -> bytes`` (exactly ``n`` bytes or ``TimeoutError``)
and ``close()``: :class:`spinapse.boards.serial_link.SerialTransport` (a board's USB serial port,
pyserial) and :class:`spinapse.cosim.uart_sim.SimTransport` (the same RTL on Verilator, through
its UART pins). The command protocol is documented in :mod:`spinapse.rtl.host_link`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.host_link import PROTOCOL_VERSION, info_bytes, link_sizes


class ProtocolError(RuntimeError):
    """The board answered something the protocol does not allow (wrong opcode, wrong engine)."""


@dataclass(frozen=True)
class Counters:
    """Counters read with ``'C'``: images done, engine busy cycles, UART framing errors and
    overruns (since power-up or the last :meth:`EngineDriver.clear_counters`)."""

    images: int
    busy_cycles: int
    framing_errors: int
    overruns: int


class EngineDriver:
    """Talk to an inference engine behind the host link.

    Parameters
    ----------
    transport
        Object with ``write``, ``read`` and ``close`` (see the module docstring).
    config : EngineConfig
        The engine the host expects; :meth:`identify` checks it against the board.
    window : int
        Images sent ahead of the results read back, 1 or 2 (the host link's rule: a third
        image could arrive while the link waits for the engine, and its bytes would be
        dropped; see :mod:`spinapse.rtl.host_link`).

    Raises
    ------
    ValueError
        If ``window`` is not 1 or 2 or the engine's sizes are not multiples of 8.
    """

    def __init__(self, transport, config: EngineConfig, window: int = 2) -> None:
        if window not in (1, 2):
            raise ValueError(f"window must be 1 or 2, got {window!r}")
        self.transport = transport
        self.config = config
        self.sizes = link_sizes(config)
        self.window = window

    def _expect(self, opcode: bytes) -> None:
        got = self.transport.read(1)
        if got != opcode:
            raise ProtocolError(f"expected reply {opcode!r}, got {got!r}")

    def identify(self) -> bytes:
        """Read the engine's info block; raise :class:`ProtocolError` unless it describes
        ``config`` and protocol version 1. Returns the raw block."""
        self.transport.write(b"I")
        self._expect(b"I")
        version = self.transport.read(1)[0]
        if version != PROTOCOL_VERSION:
            what = " (a training system: use TrainingDriver)" if version == 2 else ""
            raise ProtocolError(
                f"board runs protocol {version}{what}; host expects protocol {PROTOCOL_VERSION}"
            )
        expected = info_bytes(self.config)
        block = self.transport.read(len(expected))
        if version != PROTOCOL_VERSION or block != expected:
            raise ProtocolError(
                f"board runs protocol {version} with engine info {block.hex()}; host expects "
                f"protocol {PROTOCOL_VERSION} and {expected.hex()} ({self.config.name()})"
            )
        return block

    def write_words(self, writes: Iterable[tuple[int, int, int]]) -> int:
        """Write ``(sel, addr, data)`` words (see :mod:`spinapse.rtl.inference_engine`); wait
        for each acknowledgement. Returns the number written."""
        dw = self.sizes["write_data"]
        n = 0
        for sel, addr, data in writes:
            frame = b"W" + bytes([sel]) + int(addr).to_bytes(2, "little")
            self.transport.write(frame + int(data).to_bytes(dw, "little"))
            self._expect(b"W")
            n += 1
        return n

    def infer(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classes int64 ``[B]`` and scores int64 ``[B, C]`` of images uint8 ``[B, N_in]``.

        Raises
        ------
        ValueError
            If ``bits`` is not ``[B, N_in]`` of 0/1.
        """
        x = np.asarray(bits)
        n_in, n_cls = self.config.widths[0], self.config.widths[-1]
        if x.ndim != 2 or x.shape[1] != n_in or not np.isin(x, (0, 1)).all():
            raise ValueError(f"images must be 0/1 of shape [B, {n_in}], got {x.shape}")
        packed = np.packbits(x.astype(np.uint8), axis=1, bitorder="little")
        cls = np.empty(len(x), dtype=np.int64)
        scores = np.empty((len(x), n_cls), dtype=np.int64)
        sb, rlen = self.sizes["score"], self.sizes["result"]
        sent = 0
        for i in range(len(x)):
            while sent < len(x) and sent < i + self.window:
                self.transport.write(b"X" + packed[sent].tobytes())
                sent += 1
            reply = self.transport.read(rlen)
            if reply[:1] != b"R":
                raise ProtocolError(f"expected a result 'R', got {reply[:1]!r}")
            cls[i] = reply[1]
            for j in range(n_cls):
                raw = reply[2 + j * sb : 2 + (j + 1) * sb]
                scores[i, j] = int.from_bytes(raw, "little", signed=True)
        return cls, scores

    def counters(self) -> Counters:
        """Read the board's counters."""
        self.transport.write(b"C")
        self._expect(b"C")
        raw = self.transport.read(12)
        return Counters(
            images=int.from_bytes(raw[0:4], "little"),
            busy_cycles=int.from_bytes(raw[4:8], "little"),
            framing_errors=int.from_bytes(raw[8:10], "little"),
            overruns=int.from_bytes(raw[10:12], "little"),
        )

    def clear_counters(self) -> None:
        """Zero the image and busy-cycle counters."""
        self.transport.write(b"Z")
        self._expect(b"Z")
