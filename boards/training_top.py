"""Board top of the training prototype: the UART training system on the board's pins.

:class:`~spinapse.rtl.uart_training.UartTrainingSystem` (training engine, its two synapse arrays,
host link protocol version 2, 8N1 UART) on the board's USB serial port, LED 0 = the engine's
``busy``. The arrays are passed in (the emulator of :mod:`spinapse.experiments.board_training`,
for example); the clock is the board oscillator or, with ``pll``, the ECP5 PLL's output.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module

from spinapse.boards.pll import PllParams
from spinapse.boards.uart_board import engine_clock, wire_uart_system
from spinapse.rtl.uart import uart_divisor
from spinapse.rtl.uart_training import UartTrainingSystem


class TrainingTop(Elaboratable):
    """Top-level module for ``platform.build``.

    Parameters
    ----------
    rule : IntegerRule
        Rule constants (``n_in`` a multiple of 8).
    tables : pair of sequence of int
        f_meta tables (``rule.tables()``).
    init_wh : pair of array-like of int
        Initial ``W_h`` of both layers (digital mode).
    arrays : pair of components
        The layer arrays (see :class:`~spinapse.rtl.uart_training.UartTrainingSystem`).
    model : int
        32-bit model identifier reported by ``'I'``.
    baud : int
        UART speed, bit/s (a divisor >= 4 within 2 % of the clock).
    pll : PllParams, optional
        ECP5 PLL dividers; default: the oscillator clocks the design.
    pin_bank : Elaboratable, optional
        Elaborated beside the system when the arrays are on pins (the
        :class:`~spinapse.boards.array_pins.PinBank` whose serializer views are ``arrays``).

    Raises
    ------
    ValueError
        From :func:`~spinapse.rtl.uart.uart_divisor` or the system at elaboration.
    """

    def __init__(
        self,
        rule,
        tables,
        init_wh,
        arrays,
        model: int = 0,
        baud: int = 115200,
        pll: PllParams | None = None,
        pin_bank=None,
    ) -> None:
        self.rule, self.tables, self.init_wh = rule, tables, init_wh
        self.arrays, self.model, self.baud, self.pll = list(arrays), model, baud, pll
        self.pin_bank = pin_bank

    def elaborate(self, platform) -> Module:
        m = Module()
        clock_hz = engine_clock(m, platform, self.pll)
        divisor = uart_divisor(clock_hz, self.baud)
        m.submodules.system = system = UartTrainingSystem(
            self.rule, "digital", self.tables, self.init_wh, self.arrays, divisor, self.model
        )
        wire_uart_system(m, platform, system)
        if self.pin_bank is not None:
            m.submodules.pin_bank = self.pin_bank
        return m
