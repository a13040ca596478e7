"""The ECP5 PLL (EHXPLLL) that clocks an engine faster than the board oscillator.

:func:`ecp5_pll_params` chooses the dividers; :class:`Ecp5PllDomain` instantiates the PLL and
drives the ``sync`` clock domain from its primary output, held in reset until the PLL reports
lock. nextpnr derives the output clock's constraint from the input pin's constraint and the
dividers, so a timing miss at the PLL clock fails the build as at the board clock.

EHXPLLL with feedback from its primary output (``FEEDBK_PATH = "CLKOP"``), Lattice FPGA-TN-02200
(ECP5 and ECP5-5G sysCLOCK PLL/DLL Design and User Guide):

    f_pfd  = f_in / CLKI_DIV                 3.125 MHz .. 400 MHz
    f_out  = f_pfd * CLKFB_DIV               10 MHz .. 400 MHz
    f_vco  = f_out * CLKOP_DIV               400 MHz .. 800 MHz

with ``CLKI_DIV`` and ``CLKOP_DIV`` in 1..128 and ``CLKFB_DIV`` in 1..80. The search below (the
exact or nearest ``f_out``, then the VCO nearest 600 MHz) and the primary output's phase setting
(``CLKOP_CPHASE = CLKOP_DIV // 2``, the 180 degree shift Lattice's tools write) and loop-filter
attributes follow Project Trellis' ``ecppll`` (Shah et al., github.com/YosysHQ/prjtrellis).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (10.0, 400.0)


@dataclass(frozen=True)
class PllParams:
    """EHXPLLL dividers for one output; ``f_out_hz`` is the frequency they give exactly."""

    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_in_hz: float
    f_out_hz: float

    @property
    def f_vco_hz(self) -> float:
        return self.f_out_hz * self.clkop_div

    @property
    def clkop_cphase(self) -> int:
        return self.clkop_div // 2


def ecp5_pll_params(f_in_hz: float, f_out_hz: float, tolerance: float = 1e-3) -> PllParams:
    """Dividers of an EHXPLLL making ``f_out_hz`` from ``f_in_hz`` (see the module docstring).

    Parameters
    ----------
    f_in_hz, f_out_hz : float
        Input (board oscillator) and wanted output frequency, Hz; ``f_out`` in 10..400 MHz.
    tolerance : float
        Largest accepted relative error of the output frequency (default 0.1 %).

    Raises
    ------
    ValueError
        If ``f_out_hz`` is outside 10..400 MHz or no divider set comes within ``tolerance``.
    """
    f_in, f_out = f_in_hz / 1e6, f_out_hz / 1e6
    if not OUT_MHZ[0] <= f_out <= OUT_MHZ[1]:
        raise ValueError(
            f"PLL output {f_out:g} MHz outside the EHXPLLL range {OUT_MHZ[0]:g}..{OUT_MHZ[1]:g} MHz"
        )
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not PFD_MHZ[0] <= pfd <= PFD_MHZ[1]:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            for clkop in range(1, 129):
                vco = out * clkop
                if not VCO_MHZ[0] <= vco <= VCO_MHZ[1]:
                    continue
                key = (round(abs(out - f_out), 9), abs(vco - 600.0))
                if best is None or key < best[0]:
                    best = (key, PllParams(clki, clkfb, clkop, f_in_hz, out * 1e6))
    if best is None or abs(best[1].f_out_hz - f_out_hz) > tolerance * f_out_hz:
        near = f"; nearest {best[1].f_out_hz / 1e6:g} MHz" if best else ""
        raise ValueError(
            f"no EHXPLLL divider set makes {f_out:g} MHz from {f_in:g} MHz within "
            f"{tolerance:.1%}{near}"
        )
    return best[1]


class Ecp5PllDomain(Elaboratable):
    """Drives the ``sync`` clock domain at ``params.f_out_hz`` from the platform's default clock.

    The board oscillator pin goes through an input buffer into EHXPLLL ``CLKI``; ``CLKOP``
    clocks ``sync`` (and is the PLL's feedback); ``sync`` is reset (synchronously released, two
    flip-flops) while ``LOCK`` is low. The module above defines the ``sync`` domain
    (``m.domains.sync = ClockDomain()``), so the platform does not make one from the oscillator.

    Parameters
    ----------
    params : PllParams
        From :func:`ecp5_pll_params`.

    Members
    -------
    locked : Signal(1)
        The PLL's ``LOCK`` output.
    """

    def __init__(self, params: PllParams) -> None:
        self.params = params
        self.locked = Signal()

    def elaborate(self, platform) -> Module:
        p = self.params
        m = Module()
        clk_pin = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_pin)
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{p.f_in_hz / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{p.f_out_hz / 1e6:g}",
            a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED",
            p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC",
            p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p.clki_div,
            p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=p.clkop_div,
            p_CLKOP_CPHASE=p.clkop_cphase,
            p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p.clkfb_div,
            i_RST=0,
            i_STDBY=0,
            i_CLKI=clk_buf.i,
            o_CLKOP=ClockSignal("sync"),
            i_CLKFB=ClockSignal("sync"),
            i_PHASESEL0=0,
            i_PHASESEL1=0,
            i_PHASEDIR=1,
            i_PHASESTEP=1,
            i_PHASELOADREG=1,
            i_PLLWAKESYNC=0,
            i_ENCLKOP=0,
            o_LOCK=self.locked,
        )
        m.submodules.reset_sync = ResetSynchronizer(~self.locked, domain="sync")
        return m
