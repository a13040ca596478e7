"""The integer golden model behind protocol version 2: a byte transport that answers as a board.

:class:`GoldenTransport` decodes the bytes a host sends (:mod:`spinapse.rtl.training_link`) and
answers them with :class:`spinapse.golden.integer_model.learning.IntegerEngine`: in digital mode
its arrays are :class:`~spinapse.golden.integer_model.array_models.BinaryArrayModel` with the
lane seeds of the simulated system (the model of
:class:`~spinapse.rtl.stochastic_array.StochasticSynapseArray`, bit for bit), in device mode
:class:`~spinapse.golden.integer_model.array_models.HiddenStateArrayModel` (the model of
:class:`~spinapse.rtl.hidden_state_array.HiddenStateSynapseArray`). So the same host
script (:mod:`spinapse.experiments.host_session`) runs unchanged on ``golden``, ``sim`` and a
board, and its records can be compared field by field.

The golden model has no clock; the engine busy cycles of its ``'C'`` reply come from the cycle
model of the RTL (:func:`busy_cycles`, arrays that answer in one cycle, as the seeded ones do).
UART framing errors and overruns are 0.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from spinapse.golden.integer_model.array_models import BinaryArrayModel, HiddenStateArrayModel
from spinapse.golden.integer_model.learning import IntegerEngine
from spinapse.rtl.training_engine import THR_BITS
from spinapse.rtl.training_link import (
    PROTOCOL_VERSION,
    THR_FIELD_BYTES,
    training_info_bytes,
    training_sizes,
)


def busy_cycles(rule, op: str, write_attempts: int = 0) -> int:
    """Engine busy cycles of one command, from the RTL's state machines
    (:mod:`spinapse.rtl.training_engine`, :mod:`spinapse.rtl.update_engine`):

    - ``"infer"``: ``n_in + 1`` (layer-1 reads) ``+ 1 + n_hidden + 1`` (layer 2) ``+ 1 + 1 + 1``
      (scores registered, prediction, done) = ``n_in + n_hidden + 6``;
    - ``"train"``: the forward pass without its done cycle, 1 for the backward pass, then each
      layer's streamed update sweep (``rows + 3``: start, one row per cycle, the first row's
      read, done) and 3 per write-verify ``WRITE`` (pulse, verify read, check), then done:
      ``n_in + n_hidden + 5 + 1 + (n_in + n_hidden + 6) + 1 + 3 write_attempts`` =
      ``2 (n_in + n_hidden) + 13 + 3 write_attempts``;
    - ``"train_device"``: the same without write-verify (one ``GATE`` per row per cycle):
      ``2 (n_in + n_hidden) + 13``;
    - ``"clear"``: ``max(n_in, n_hidden) + 3`` (one row of ``M`` per cycle).
    """
    n = rule.n_in + rule.n_hidden
    if op == "infer":
        return n + 6
    if op == "train":
        return 2 * n + 13 + 3 * write_attempts
    if op == "train_device":
        return 2 * n + 13
    if op == "clear":
        return max(rule.n_in, rule.n_hidden) + 3
    raise ValueError(f"op must be 'infer', 'train', 'train_device' or 'clear', got {op!r}")


class _CountingArray(BinaryArrayModel):
    """:class:`BinaryArrayModel` that counts its ``write`` calls (one per ``WRITE`` command: the
    golden model pulses a row once per write-verify attempt, as the update engine does)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.attempts = 0

    def write(self, row, enable, polarity) -> None:
        self.attempts += 1
        super().write(row, enable, polarity)


def _pack(values, bits: int, nbytes: int) -> bytes:
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (k * bits)
    return word.to_bytes(nbytes, "little")


def _wrap(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class GoldenTransport:
    """Byte transport answering protocol version 2 with the integer golden model.

    Parameters
    ----------
    rule : IntegerRule
    init_wh : pair of array-like of int
        Initial ``W_h`` ``[n_in, n_hidden]`` and ``[n_hidden, n_out]`` (``W_b = W_h >= 0``).
    seeds : pair of sequence of int
        Lane seeds of the two arrays (``lane_seeds``), as the simulated system was built.
    model : int
        Model identifier reported by ``'I'``.
    mode : str
        ``"digital"`` or ``"device"`` (``init_wh`` is then the arrays' initial hidden state).

    Attributes
    ----------
    engine : IntegerEngine
        The model.

    Raises
    ------
    TimeoutError
        From :meth:`read` when fewer bytes are due than asked (a board would time out).
    """

    def __init__(self, rule, init_wh, seeds, model: int, mode: str = "digital") -> None:
        self.rule, self.sizes, self.mode = rule, training_sizes(rule), mode
        wh = [np.asarray(w, dtype=np.int64) for w in init_wh]
        if mode == "digital":
            arrays = [_CountingArray(w >= 0, 256, sd) for w, sd in zip(wh, seeds)]
        elif mode == "device":
            arrays = [
                HiddenStateArrayModel(w, rule.wh_bits, t, rule.index_shift, sd)
                for w, t, sd in zip(wh, rule.tables(), seeds)
            ]
        else:
            raise ValueError(f"mode must be 'digital' or 'device', got {mode!r}")
        self.engine = IntegerEngine(rule, mode, arrays=arrays)
        if mode == "digital":
            for k in (0, 1):
                self.engine.w_h[k][...] = wh[k]
        self.info = training_info_bytes(rule, mode, mode == "digital", model)
        self.name = "golden"
        self._in = bytearray()
        self._out: deque[int] = deque()
        self._steps = self._inferences = self._busy = 0
        self._base = (0, 0, 0)

    def write(self, data: bytes) -> None:
        self._in += data
        while self._in and self._one():
            pass

    def read(self, n: int) -> bytes:
        if len(self._out) < n:
            raise TimeoutError(f"golden model has {len(self._out)} of {n} bytes to send")
        return bytes(self._out.popleft() for _ in range(n))

    def available(self) -> int:
        """Reply bytes ready to be read."""
        return len(self._out)

    def close(self) -> str:
        return f"golden model: {self._steps} steps, {self._inferences} inferences"

    def __enter__(self) -> GoldenTransport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _reply(self, data: bytes) -> None:
        self._out.extend(data)

    def _one(self) -> bool:
        """Execute the first complete command of the input; False if it is incomplete."""
        r, z, eng = self.rule, self.sizes, self.engine
        op = chr(self._in[0])
        need = {"T": z["thresholds"], "L": z["image"] + 1, "X": z["image"], "S": 2, "P": 3}
        n = need.get(op, 0)
        if len(self._in) < 1 + n:
            return False
        args = bytes(self._in[1 : 1 + n])
        del self._in[: 1 + n]
        c = eng.counters
        if op == "I":
            self._reply(bytes([ord("I"), PROTOCOL_VERSION]) + self.info)
        elif op == "T":
            f = THR_FIELD_BYTES
            vals = [
                _wrap(int.from_bytes(args[k * f : (k + 1) * f], "little"), THR_BITS)
                for k in range(r.n_hidden + r.n_out)
            ]
            eng.thr[0] = np.array(vals[: r.n_hidden], dtype=np.int64)
            eng.thr[1] = np.array(vals[r.n_hidden :], dtype=np.int64)
            self._reply(b"T")
        elif op == "U":
            vals = [*eng.thr[0], *eng.thr[1]]
            raw = b"".join(
                _wrap(int(v), THR_BITS).to_bytes(THR_FIELD_BYTES, "little", signed=True)
                for v in vals
            )
            self._reply(b"U" + raw)
        elif op in "LX":
            x = np.unpackbits(np.frombuffer(args[: z["image"]], np.uint8), bitorder="little")
            x = x.astype(bool)
            if op == "L" and self.mode == "device":
                pred = eng.step(x, args[-1])
                self._busy += busy_cycles(r, "train_device")
                self._steps += 1
                self._reply(bytes([ord("L"), pred]))
            elif op == "L":
                before = sum(a.attempts for a in eng.arrays)
                pred = eng.step(x, args[-1])
                attempts = sum(a.attempts for a in eng.arrays) - before
                self._busy += busy_cycles(r, "train", attempts)
                self._steps += 1
                self._reply(bytes([ord("L"), pred]))
            else:
                pred = int(eng.predict(x[None, :])[0])
                self._busy += busy_cycles(r, "infer")
                self._inferences += 1
                self._reply(bytes([ord("R"), pred]))
        elif op == "A":
            for a in eng.acc:
                a[...] = 0
            self._busy += busy_cycles(r, "clear")
            self._reply(b"A")
        elif op == "S":
            p = min(int.from_bytes(args, "little"), 256)
            if self.mode == "digital":  # the hidden-state arrays have no write probability
                for a in eng.arrays:
                    a.p_success = p
            self._reply(b"S")
        elif op == "P":
            layer, row = args[0], int.from_bytes(args[1:3], "little")
            k = 1 if layer == 2 else 0
            row = row if row < (r.n_in, r.n_hidden)[k] else 0
            self._reply(
                b"P"
                + _pack(eng.w_b()[k][row], 1, z["bits"])
                + _pack(eng.w_h[k][row], r.wh_bits, z["wh"])
                + _pack(eng.acc[k][row], r.acc_bits, z["acc"])
            )
        elif op == "C":
            m32 = 0xFFFFFFFF
            rel = [(v - b) & m32 for v, b in zip((c.writes, c.retries, c.failures), self._base)]
            vals = [self._steps, self._inferences, *rel, self._busy & m32]
            self._reply(b"C" + b"".join(int(v).to_bytes(4, "little") for v in vals) + bytes(4))
        elif op == "Z":
            self._steps = self._inferences = self._busy = 0
            self._base = (c.writes, c.retries, c.failures)
            self._reply(b"Z")
        else:
            self._reply(bytes([ord("?"), ord(op)]))
        return True
