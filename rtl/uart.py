"""A small 8N1 UART: receiver and transmitter as byte streams.

Frame: one start bit (0), eight data bits LSB first, one stop bit (1); the line idles high. The
bit time is ``divisor`` clock cycles (``divisor = round(f_clk / baud)``; the baud error is
``|f_clk / divisor - baud| / baud``, which should stay under 2 % for a 10-bit frame). The
receiver synchronises ``rx`` through two flip-flops, waits for a falling edge, checks the start
bit at its middle and samples each data bit and the stop bit at theirs; a frame whose stop bit is
0 is dropped and counted in ``framing_errors``. Bytes that arrive while ``data.ready`` is low are
dropped and counted in ``overruns`` (the host link consumes each byte in one cycle, so this only
happens if a consumer stalls for a whole frame). Streams follow ``amaranth.lib.stream`` rules.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


def check_divisor(divisor: int) -> int:
    """Return ``divisor``; raise ``ValueError`` unless it is an integer >= 4."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor (clock cycles per bit) must be an integer >= 4, got {divisor!r}")
    return divisor


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_hz``.

    Raises
    ------
    ValueError
        If the divisor would be below 4 or the baud error above 2 %.
    """
    if clk_hz <= 0 or baud <= 0:
        raise ValueError(f"clock ({clk_hz} Hz) and baud ({baud}) must be positive")
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"baud {baud} too fast for a {clk_hz / 1e6:g} MHz clock (needs <= clk/4)")
    error = abs(clk_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"baud {baud} at {clk_hz / 1e6:g} MHz is {100 * error:.1f} % off (> 2 %)")
    return divisor


class UartRx(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, >= 4.

    Members
    -------
    rx : In(1)
        Serial line (asynchronous; synchronised inside).
    data : Out(stream.Signature(8))
        Received bytes.
    framing_errors, overruns : Out(16)
        Saturating counts of dropped frames.

    Raises
    ------
    ValueError
        If ``divisor`` is not an integer >= 4.
    """

    def __init__(self, divisor: int) -> None:
        self.divisor = check_divisor(divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "data": Out(stream.Signature(8)),
                "framing_errors": Out(16),
                "overruns": Out(16),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d + d // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Middle of the start bit.
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq((shift >> 1) | (rx << 7)), timer.eq(d - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                    with m.Else():
                        m.d.sync += bit.eq(bit + 1)
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        with m.If(self.framing_errors != 0xFFFF):
                            m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        m.next = "BREAK"
                    with m.Else():
                        with m.If(self.data.valid & ~self.data.ready):
                            with m.If(self.overruns != 0xFFFF):
                                m.d.sync += self.overruns.eq(self.overruns + 1)
                        with m.Else():
                            m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("BREAK"):
                # After a framing error wait for the line to return high.
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, >= 4.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; one is taken whenever the transmitter is idle.
    tx : Out(1)
        Serial line (idles high).

    Raises
    ------
    ValueError
        If ``divisor`` is not an integer >= 4.
    """

    def __init__(self, divisor: int) -> None:
        self.divisor = check_divisor(divisor)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        bits = Signal(range(11))
        frame = Signal(10, init=0x3FF)
        m.d.comb += [self.tx.eq(frame[0]), self.data.ready.eq(bits == 0)]
        with m.If(self.data.valid & self.data.ready):
            # Start bit, data LSB first, stop bit.
            m.d.sync += [frame.eq((self.data.payload << 1) | (1 << 9)), bits.eq(10)]
            m.d.sync += timer.eq(d - 1)
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq((frame >> 1) | (1 << 9)), bits.eq(bits - 1)]
                m.d.sync += timer.eq(d - 1)
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
