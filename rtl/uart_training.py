"""The training engine behind a UART: the learning system a board runs and the simulation drives.

:class:`UartTrainingSystem` joins :class:`~spinapse.rtl.uart.UartRx`,
:class:`~spinapse.rtl.training_link.TrainingHostLink` (protocol version 2),
:class:`~spinapse.rtl.training_engine.TrainingEngine` (784-H-10, batch 1) and the two synapse
arrays it is given (components passed in: the seeded stochastic/ideal binary arrays of
:func:`~spinapse.rtl.training_system.digital_arrays`,
:class:`~spinapse.rtl.emulated_array.EmulatedSynapseArray`, the hidden-state arrays of
:func:`~spinapse.rtl.training_system.hidden_state_arrays`, or
:class:`~spinapse.rtl.pin_array.PinSynapseArray` on a board's pins).
Its only ports are the two serial lines and ``busy``, like
:class:`~spinapse.rtl.uart_engine.UartInferenceSystem`.

Loading a model: the initial ``W_h`` (digital mode: the update engines' memories) and ``W_b``
(the arrays' row memories) are memory contents fixed when the system is built, as on an FPGA
they are block-RAM initial values in the bitstream; :func:`model_id` fingerprints them and the
``'I'`` reply carries the fingerprint. Thresholds are run-time state (``'T'``/``'U'``), loaded
per task by the host.
"""

from __future__ import annotations

import zlib

import numpy as np
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.training_engine import TrainingEngine
from spinapse.rtl.training_link import TrainingHostLink
from spinapse.rtl.uart import UartRx, UartTx, check_divisor


def model_id(rule, mode: str, init_wh, init_bits=None) -> int:
    """32-bit fingerprint (CRC-32) of a build's model: the rule constants, the mode, the initial
    ``W_h`` int ``[rows, lanes]`` of both layers and, when given, the initial ``W_b`` bool
    ``[rows, lanes]`` (default ``W_h >= 0``)."""
    bits = init_bits if init_bits is not None else [np.asarray(w) >= 0 for w in init_wh]
    crc = zlib.crc32(repr(sorted(rule.as_dict().items())).encode() + mode.encode())
    for w, b in zip(init_wh, bits):
        crc = zlib.crc32(np.ascontiguousarray(np.asarray(w, dtype=np.int64)).tobytes(), crc)
        crc = zlib.crc32(np.packbits(np.asarray(b, dtype=bool)).tobytes(), crc)
    return crc & 0xFFFFFFFF


class UartTrainingSystem(wiring.Component):
    """Training engine, its two arrays, host link (protocol version 2) and 8N1 UART.

    Parameters
    ----------
    rule : IntegerRule
        Rule constants; ``n_in`` a multiple of 8, ``n_out <= 256``.
    mode : str
        ``"digital"`` (``W_h`` in the engine, write-verify) or ``"device"`` (gate pulses).
    tables : pair of sequence of int
        f_meta table of each layer (``rule.tables()``).
    init_wh : pair of array-like of int, or None
        Initial ``W_h`` of each layer (digital mode; ``None`` in device mode, where the arrays
        hold the hidden state).
    arrays : pair of components
        Layer 1 (``n_in x n_hidden``) and layer 2 (``n_hidden x n_out``) arrays, each with a
        ``bus`` member of :class:`~spinapse.rtl.synapse_array.SynapseArraySignature`; optional
        members ``p_success`` (driven by ``'S'``), ``peek_row``/``peek_bits`` (read by ``'P'``)
        and ``peek_h`` (device mode hidden state, read by ``'P'``).
    divisor : int
        Clock cycles per UART bit (:func:`spinapse.rtl.uart.uart_divisor`), >= 4.
    model : int
        32-bit model identifier reported by ``'I'`` (:func:`model_id`).

    Members
    -------
    rx : In(1)
        Serial line from the host (idles high).
    tx : Out(1)
        Serial line to the host.
    busy : Out(1)
        The engine's ``busy``.

    Raises
    ------
    ValueError
        If ``divisor`` < 4, the sizes do not suit the link, or an array's port differs from the
        engine's.
    """

    def __init__(self, rule, mode, tables, init_wh, arrays, divisor: int, model: int = 0) -> None:
        check_divisor(divisor)
        self.rule, self.mode, self.divisor = rule, mode, divisor
        self.arrays = list(arrays)
        if len(self.arrays) != 2:
            raise ValueError(f"arrays must be a pair (one per layer), got {len(self.arrays)}")
        self.engine = TrainingEngine(rule, mode, tables, init_wh if mode == "digital" else None)
        for k, (arr, port) in enumerate(zip(self.arrays, (self.engine.arr1, self.engine.arr2))):
            if arr.bus.signature != port.signature.flip():
                raise ValueError(
                    f"array {k + 1} has port {arr.bus.signature!r}, the engine needs "
                    f"{port.signature!r}"
                )
        has_p = all("p_success" in a.signature.members for a in self.arrays)
        self.link = TrainingHostLink(rule, mode, has_p, model)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.submodules.link = link = self.link
        m.submodules.engine = eng = self.engine
        m.submodules.arr1, m.submodules.arr2 = self.arrays
        wiring.connect(m, rx.data, link.rx)
        wiring.connect(m, link.tx, tx.data)
        wiring.connect(m, eng.arr1, self.arrays[0].bus)
        wiring.connect(m, eng.arr2, self.arrays[1].bus)
        for name in ("x", "label", "start", "train", "thr_load", "thr1_in", "thr2_in", "acc_clear"):
            m.d.comb += getattr(eng, name).eq(getattr(link, name))
        for name in ("busy", "done", "pred", "thr1", "thr2", "writes", "retries", "failures"):
            m.d.comb += getattr(link, name).eq(getattr(eng, name))
        for k, (arr, upd) in enumerate(zip(self.arrays, (eng.upd1, eng.upd2)), start=1):
            row = getattr(link, f"peek_row{k}")
            members = arr.signature.members
            m.d.comb += upd.peek_row.eq(row)
            if "peek_row" in members:
                m.d.comb += arr.peek_row.eq(row)
            if "peek_bits" in members:
                m.d.comb += getattr(link, f"peek_bits{k}").eq(arr.peek_bits)
            m.d.comb += getattr(link, f"peek_acc{k}").eq(upd.peek_acc)
            if self.mode == "digital":
                m.d.comb += getattr(link, f"peek_wh{k}").eq(upd.peek_wh)
            elif "peek_h" in members:
                m.d.comb += getattr(link, f"peek_wh{k}").eq(arr.peek_h)
            if "p_success" in members:
                m.d.comb += arr.p_success.eq(link.p_success)
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            link.framing_errors.eq(rx.framing_errors),
            link.overruns.eq(rx.overruns),
            self.busy.eq(eng.busy),
        ]
        return m
