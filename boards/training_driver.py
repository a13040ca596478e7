"""Host driver of the training system: one API over any byte transport (protocol version 2).

The transports are those of :class:`spinapse.boards.driver.EngineDriver`: a board's serial port
(:class:`spinapse.boards.serial_link.SerialTransport`), the Verilator simulation of the same RTL
(:class:`spinapse.cosim.uart_sim.SimTransport`), or the integer golden model behind the same
bytes (:class:`spinapse.cosim.golden_link.GoldenTransport`). The protocol is documented in
:mod:`spinapse.rtl.training_link`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinapse.boards.driver import ProtocolError
from spinapse.rtl.training_engine import THR_BITS
from spinapse.rtl.training_link import (
    COUNTER_NAMES,
    PROTOCOL_VERSION,
    THR_FIELD_BYTES,
    training_info_bytes,
    training_sizes,
)


@dataclass(frozen=True)
class TrainingCounters:
    """Counters read with ``'C'`` (since power-up or the last
    :meth:`TrainingDriver.clear_counters`): training steps, inferences, lane write pulses,
    retry pulses, failed writes, engine busy cycles, UART framing errors and overruns."""

    steps: int
    inferences: int
    writes: int
    retries: int
    failures: int
    busy_cycles: int
    framing_errors: int
    overruns: int


def _signed(word: int, bits: int) -> int:
    word &= (1 << bits) - 1
    return word - (1 << bits) if word >> (bits - 1) else word


def unpack_lanes(raw: bytes, lanes: int, bits: int) -> np.ndarray:
    """int64 ``[lanes]`` of two's complement ``bits``-wide fields, lane ``l`` at
    ``[l * bits, (l + 1) * bits)`` of the little-endian ``raw``."""
    word = int.from_bytes(raw, "little")
    return np.array([_signed(word >> (k * bits), bits) for k in range(lanes)], dtype=np.int64)


class TrainingDriver:
    """Talk to a training system behind the host link.

    Parameters
    ----------
    transport
        Object with ``write(bytes)``, ``read(n) -> bytes`` and ``close()``.
    rule : IntegerRule
        The engine the host expects (widths, bit widths); :meth:`identify` checks it.
    mode : str
        ``"digital"`` or ``"device"``.
    model : int, optional
        Expected model identifier (:func:`spinapse.rtl.uart_training.model_id`); ``None``
        accepts any.

    Raises
    ------
    ValueError
        If the rule does not suit the link (:func:`spinapse.rtl.training_link.training_sizes`).
    """

    def __init__(self, transport, rule, mode: str = "digital", model: int | None = None) -> None:
        self.transport = transport
        self.rule, self.mode, self.model = rule, mode, model
        self.sizes = training_sizes(rule)
        self.has_p_success: bool | None = None

    def _expect(self, opcode: bytes) -> None:
        got = self.transport.read(1)
        if got != opcode:
            raise ProtocolError(f"expected reply {opcode!r}, got {got!r}")

    def _command(self, opcode: bytes, args: bytes = b"", reply: bytes | None = None) -> None:
        self.transport.write(opcode + args)
        self._expect(reply or opcode)

    def identify(self) -> dict:
        """Read the info block; raise :class:`ProtocolError` unless the board is a training
        system (protocol 2) of this rule and mode (and model, when given). Returns the fields."""
        self.transport.write(b"I")
        self._expect(b"I")
        version = self.transport.read(1)[0]
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"board runs protocol {version}; a training system answers {PROTOCOL_VERSION} "
                "(protocol 1 is the inference system: use EngineDriver)"
            )
        block = self.transport.read(self.sizes["info"])
        model = int.from_bytes(block[12:16], "little")
        has_p = bool(block[11])
        want = training_info_bytes(self.rule, self.mode, has_p, model)
        if block != want:
            r = self.rule
            raise ProtocolError(
                f"board is a training system {block.hex()}; host expects {want.hex()} "
                f"({r.n_in}-{r.n_hidden}-{r.n_out}, {self.mode} mode)"
            )
        if self.model is not None and model != self.model:
            raise ProtocolError(
                f"board carries model {model:08x}, host expects {self.model:08x} "
                "(build the system with this model's initial weights)"
            )
        self.has_p_success = has_p
        return {"version": version, "model": model, "has_p_success": has_p}

    def load_thresholds(self, thr1, thr2) -> None:
        """Load the task's thresholds: ``thr1`` int ``[n_hidden]``, ``thr2`` int ``[n_out]``, in
        units ``2**-thr_frac`` of XNOR-popcount.

        Raises
        ------
        ValueError
            If a shape differs or a value is outside the signed 18-bit range.
        """
        r = self.rule
        t1, t2 = np.asarray(thr1, dtype=np.int64), np.asarray(thr2, dtype=np.int64)
        if t1.shape != (r.n_hidden,) or t2.shape != (r.n_out,):
            raise ValueError(
                f"thresholds must be [{r.n_hidden}] and [{r.n_out}], got {t1.shape}, {t2.shape}"
            )
        lo, hi = -(1 << (THR_BITS - 1)), (1 << (THR_BITS - 1)) - 1
        both = np.concatenate([t1, t2])
        if both.min() < lo or both.max() > hi:
            raise ValueError(f"thresholds must lie in [{lo}, {hi}] ({THR_BITS}-bit signed)")
        raw = b"".join(int(v).to_bytes(THR_FIELD_BYTES, "little", signed=True) for v in both)
        self._command(b"T", raw)

    def read_thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """The engine's thresholds now: int64 ``[n_hidden]``, ``[n_out]``."""
        self._command(b"U")
        raw = self.transport.read(self.sizes["thresholds"])
        n = len(raw) // THR_FIELD_BYTES
        vals = [
            int.from_bytes(
                raw[k * THR_FIELD_BYTES : (k + 1) * THR_FIELD_BYTES], "little", signed=True
            )
            for k in range(n)
        ]
        h = self.rule.n_hidden
        return np.array(vals[:h], dtype=np.int64), np.array(vals[h:], dtype=np.int64)

    def _images(self, bits) -> np.ndarray:
        x = np.asarray(bits)
        n_in = self.rule.n_in
        if x.ndim != 2 or x.shape[1] != n_in or not np.isin(x, (0, 1)).all():
            raise ValueError(f"images must be 0/1 of shape [B, {n_in}], got {x.shape}")
        return np.packbits(x.astype(np.uint8), axis=1, bitorder="little")

    def train(self, bits, labels) -> np.ndarray:
        """One training step per image (batch 1, in order): ``bits`` 0/1 ``[B, n_in]``,
        ``labels`` int ``[B]`` in ``[0, n_out)``. Returns int64 ``[B]``: each step's prediction
        (its forward pass, before its update).

        Raises
        ------
        ValueError
            If a shape or label is out of range.
        """
        packed = self._images(bits)
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (len(packed),) or (len(y) and (y.min() < 0 or y.max() >= self.rule.n_out)):
            raise ValueError(f"labels must be [{len(packed)}] ints in [0, {self.rule.n_out})")
        out = np.empty(len(y), dtype=np.int64)
        for i, (img, label) in enumerate(zip(packed, y)):
            self._command(b"L", img.tobytes() + bytes([int(label)]))
            out[i] = self.transport.read(1)[0]
        return out

    def infer(self, bits) -> np.ndarray:
        """Predictions int64 ``[B]`` of images 0/1 ``[B, n_in]`` (no update, thresholds kept)."""
        packed = self._images(bits)
        out = np.empty(len(packed), dtype=np.int64)
        for i, img in enumerate(packed):
            self._command(b"X", img.tobytes(), reply=b"R")
            out[i] = self.transport.read(1)[0]
        return out

    def clear_accumulators(self) -> None:
        """Set every accumulator ``M`` of both layers to 0 (the task switch)."""
        self._command(b"A")

    def set_write_success(self, p_success: int) -> None:
        """Single-pulse write success of the arrays in 1/256, in [0, 256] (ignored by arrays
        without a run-time probability).

        Raises
        ------
        ValueError
            If ``p_success`` is outside [0, 256].
        """
        if not (isinstance(p_success, int) and 0 <= p_success <= 256):
            raise ValueError(f"p_success must be an int in [0, 256], got {p_success!r}")
        self._command(b"S", int(p_success).to_bytes(2, "little"))

    def read_row(self, layer: int, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row ``row`` of layer ``layer`` (1: ``n_in`` rows of ``n_hidden`` lanes, 2:
        ``n_hidden`` rows of ``n_out``): ``W_b`` bool, ``W_h`` int64 and ``M`` int64, each
        ``[lanes]``.

        Raises
        ------
        ValueError
            If ``layer`` is not 1 or 2 or ``row`` is out of range.
        """
        r, z = self.rule, self.sizes
        rows, lanes = {1: (r.n_in, r.n_hidden), 2: (r.n_hidden, r.n_out)}.get(layer, (0, 0))
        if not 0 <= row < rows:
            raise ValueError(f"layer must be 1 or 2 and row in [0, rows), got {layer}, {row}")
        self._command(b"P", bytes([layer]) + int(row).to_bytes(2, "little"))
        raw = self.transport.read(z["row"] - 1)
        a, b = z["bits"], z["bits"] + z["wh"]
        bits = int.from_bytes(raw[:a], "little")
        wb = np.array([(bits >> k) & 1 for k in range(lanes)], dtype=bool)
        wh = unpack_lanes(raw[a:b], lanes, r.wh_bits)
        acc = unpack_lanes(raw[b:], lanes, r.acc_bits)
        return wb, wh, acc

    def read_state(self) -> dict[str, np.ndarray]:
        """Every row of both layers: ``w_b1`` bool ``[n_in, n_hidden]``, ``w_h1``, ``acc1``
        int64 (same shape), and ``w_b2``, ``w_h2``, ``acc2`` ``[n_hidden, n_out]``."""
        out = {}
        for layer, rows in ((1, self.rule.n_in), (2, self.rule.n_hidden)):
            got = [self.read_row(layer, row) for row in range(rows)]
            for k, name in enumerate(("w_b", "w_h", "acc")):
                out[f"{name}{layer}"] = np.stack([g[k] for g in got])
        return out

    def counters(self) -> TrainingCounters:
        """Read the counters (:class:`TrainingCounters`)."""
        self._command(b"C")
        raw = self.transport.read(self.sizes["counters"] - 1)
        n = len(COUNTER_NAMES)
        vals = [int.from_bytes(raw[4 * k : 4 * k + 4], "little") for k in range(n)]
        uart = [int.from_bytes(raw[4 * n + 2 * k : 4 * n + 2 * k + 2], "little") for k in (0, 1)]
        return TrainingCounters(*vals, *uart)

    def clear_counters(self) -> None:
        """Zero every counter but the UART's."""
        self._command(b"Z")
