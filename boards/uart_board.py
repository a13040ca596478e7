"""What every UART board top shares: the engine clock and the USB-UART and LED pins.

Both tops (:mod:`spinapse.boards.inference_top`, :mod:`spinapse.boards.training_top`) run one
system with ports ``rx``, ``tx`` and ``busy`` in the ``sync`` domain.
"""

from __future__ import annotations

from amaranth import ClockDomain, Module
from amaranth.lib import io

from spinapse.boards.pll import Ecp5PllDomain, PllParams


def engine_clock(m: Module, platform, pll: PllParams | None) -> float:
    """Clock ``sync`` from the platform's default clock, or from an ECP5 EHXPLLL made from it.

    Parameters
    ----------
    m : Module
        The top's module; gets the ``sync`` domain and the ``clock`` submodule with ``pll``.
    platform : amaranth.build.Platform
        The board (``default_clk_frequency`` in Hz).
    pll : PllParams or None
        The PLL's dividers (:mod:`spinapse.boards.pll`); ``None``: the default clock itself.

    Returns
    -------
    float
        The engine clock in Hz (what UART bit times are counted in).
    """
    if pll is None:
        return platform.default_clk_frequency
    m.domains.sync = ClockDomain("sync")
    m.submodules.clock = Ecp5PllDomain(pll)
    return pll.f_out_hz


def wire_uart_system(m: Module, platform, system) -> None:
    """Put ``system.rx``/``system.tx`` on the board's USB-UART (``uart`` resource 0 of
    amaranth-boards) and ``system.busy`` on LED 0."""
    uart = platform.request("uart", 0, dir="-")
    m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
    m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
    m.submodules.led_buffer = led = io.Buffer("o", platform.request("led", 0, dir="-"))
    m.d.comb += [system.rx.eq(rx.i), tx.o.eq(system.tx), led.o.eq(system.busy)]
