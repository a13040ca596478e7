"""Board top of the inference prototype: the UART inference system on the board's pins.

The platform's default clock clocks everything, or, with ``pll``, the ECP5 PLL's output made
from it (:mod:`spinapse.boards.pll`); the UART is the board's USB serial port (``uart`` resource
0 of ``amaranth-boards``), its bit time counted in cycles of that clock; LED 0 shows the
engine's ``busy``.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module

from spinapse.boards.pll import PllParams
from spinapse.boards.uart_board import engine_clock, wire_uart_system
from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.uart import uart_divisor
from spinapse.rtl.uart_engine import UartInferenceSystem


class InferenceTop(Elaboratable):
    """Top-level module for ``platform.build``.

    Parameters
    ----------
    config : EngineConfig
        The engine (``N_in``, ``in_width`` multiples of 8).
    baud : int
        UART speed in bit/s; with the board clock it must give a divisor >= 4 within 2 %.
    input_copy : bool
        See :class:`~spinapse.rtl.inference_engine.InferenceEngine`.
    pll : PllParams, optional
        Clock the design from an ECP5 EHXPLLL with these dividers (its input the platform's
        default clock); default: the default clock itself.

    Raises
    ------
    ValueError
        From :func:`~spinapse.rtl.uart.uart_divisor` when elaborated for a platform whose clock
        cannot make ``baud``.
    """

    def __init__(
        self,
        config: EngineConfig,
        baud: int = 115200,
        input_copy: bool = True,
        pll: PllParams | None = None,
    ) -> None:
        self.config = config
        self.baud = baud
        self.input_copy = input_copy
        self.pll = pll

    def elaborate(self, platform) -> Module:
        m = Module()
        clock_hz = engine_clock(m, platform, self.pll)
        divisor = uart_divisor(clock_hz, self.baud)
        m.submodules.system = system = UartInferenceSystem(self.config, divisor, self.input_copy)
        wire_uart_system(m, platform, system)
        return m
