"""The inference engine behind a UART: what a board runs, and what the co-simulation drives.

:class:`UartInferenceSystem` joins :class:`~spinapse.rtl.uart.UartRx`,
:class:`~spinapse.rtl.host_link.HostLink`, :class:`~spinapse.rtl.inference_engine.InferenceEngine`
and :class:`~spinapse.rtl.uart.UartTx`; its only ports are the two serial lines and ``busy``.
The protocol is documented in :mod:`spinapse.rtl.host_link`.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.host_link import HostLink, link_sizes
from spinapse.rtl.inference_engine import InferenceEngine
from spinapse.rtl.uart import UartRx, UartTx, check_divisor


class UartInferenceSystem(wiring.Component):
    """Inference engine, host link and 8N1 UART.

    Parameters
    ----------
    config : EngineConfig
        Engine configuration; ``N_in`` and ``in_width`` multiples of 8.
    divisor : int
        Clock cycles per UART bit (see :func:`spinapse.rtl.uart.uart_divisor`), >= 4.
    input_copy : bool
        Passed to :class:`~spinapse.rtl.inference_engine.InferenceEngine`.

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
        If ``divisor`` < 4 or the sizes are not multiples of 8.
    """

    def __init__(self, config: EngineConfig, divisor: int, input_copy: bool = True) -> None:
        self.config = config
        self.divisor = divisor
        self.input_copy = input_copy
        check_divisor(divisor)  # checked now, not at elaboration
        link_sizes(config)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        m.submodules.link = link = HostLink(self.config)
        m.submodules.engine = engine = InferenceEngine(self.config, self.input_copy)
        wiring.connect(m, rx.data, link.rx)
        wiring.connect(m, link.tx, tx.data)
        wiring.connect(m, link.image, engine.image)
        wiring.connect(m, link.write, engine.write)
        wiring.connect(m, engine.result, link.result)
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            link.engine_busy.eq(engine.busy),
            link.framing_errors.eq(rx.framing_errors),
            link.overruns.eq(rx.overruns),
            self.busy.eq(engine.busy),
        ]
        return m
