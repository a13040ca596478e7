"""The boards spinapse builds for, and the engine each one carries by default.

A :class:`Board` names an ``amaranth-boards`` platform, its clock, the engine clock and its
default engine configuration (measured builds: docs/fpga_prototype.md). The ULX3S-85F (ECP5
LFE5U-85F, 25 MHz oscillator) carries the 784-256-256-10 benchmark network at 75 MHz from the
PLL, folded to PE (8, 8, 10) x SIMD (56, 32, 4), 454 cycles per image: the UART (about 116
images/s at 115200 baud) bounds the board, not the engine, so the folding is chosen for a short
build and a high clock (the 3136-bit weight words of PE 32 x SIMD 98 took over an hour to
route). The iCEBreaker (iCE40UP5K, 12 MHz, 5280 LCs, 30 block RAMs) carries a 784-32-10 network.
Both keep the image in block RAM (``input_copy=False``). The ULX3S's training system is
784-32-10 at the 25 MHz oscillator (no PLL): its memories are block RAM (42 DP16KD); the build,
about 9 min of tool CPU on a shared machine, is what bounds ``H`` (docs/fpga_prototype.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from spinapse.rtl.folding import EngineConfig


@dataclass(frozen=True)
class Board:
    """One FPGA board.

    Parameters
    ----------
    name : str
        Name used on the command line (``--board``).
    family : str
        ``"ecp5"`` or ``"ice40"`` (selects the nextpnr and the packer).
    clock_hz : float
        Board oscillator, Hz.
    engine : EngineConfig
        Default inference engine (``in_width`` a multiple of 8: whole UART bytes per beat).
    input_copy : bool
        Image in registers (True) or in a memory read fold by fold (False, needs ``in_width ==
        SIMD_0``; see :class:`~spinapse.rtl.inference_engine.InferenceEngine`): False saves
        ``2 N_in`` flip-flops and the wide image multiplexer.
    engine_clock_hz : float, optional
        Default engine clock, Hz, made by the PLL from ``clock_hz`` (ECP5 only); ``None``: the
        oscillator itself. The build fails if nextpnr's Fmax is below the clock used.
    training_hidden : int, optional
        Hidden neurons of the default training system ``784-H-10``; ``None``: the board carries
        no training system (the iCE40UP5K: not built; with 784 x H x 20 bits of ``W_h``/``M``
        and 5280 logic cells for per-lane update logic, only a few lanes could fit).
    training_clock_hz : float, optional
        Clock of the training system (``None``: the oscillator).
    """

    name: str
    family: str
    clock_hz: float
    engine: EngineConfig
    input_copy: bool = True
    engine_clock_hz: float | None = None
    training_hidden: int | None = None
    training_clock_hz: float | None = None

    def pll(self, engine_clock_hz: float | None):
        """PLL dividers making ``engine_clock_hz`` from the oscillator, or ``None`` when the
        oscillator itself is the engine clock (``engine_clock_hz`` ``None`` or equal to it).

        Raises
        ------
        ValueError
            If a PLL is needed on a board without one here (iCE40), or the frequency cannot be
            made (see :func:`~spinapse.boards.pll.ecp5_pll_params`).
        """
        if engine_clock_hz is None or abs(engine_clock_hz - self.clock_hz) < 1.0:
            return None
        if self.family != "ecp5":
            raise ValueError(
                f"engine clock {engine_clock_hz / 1e6:g} MHz: {self.name} runs at its "
                f"{self.clock_hz / 1e6:g} MHz oscillator (a PLL is built for ECP5 boards only)"
            )
        from spinapse.boards.pll import ecp5_pll_params

        return ecp5_pll_params(self.clock_hz, engine_clock_hz)

    def platform(self):
        """A fresh ``amaranth-boards`` platform object of this board."""
        if self.name == "ulx3s-85f":
            from amaranth_boards.ulx3s import ULX3S_85F_Platform

            return ULX3S_85F_Platform()
        from amaranth_boards.icebreaker import ICEBreakerPlatform

        return ICEBreakerPlatform()


BOARDS: dict[str, Board] = {
    "ulx3s-85f": Board(
        "ulx3s-85f",
        "ecp5",
        25e6,
        EngineConfig((784, 256, 256, 10), (8, 8, 10), (56, 32, 4), in_width=56),
        input_copy=False,
        engine_clock_hz=75e6,
        training_hidden=32,
        training_clock_hz=25e6,
    ),
    "icebreaker": Board(
        "icebreaker",
        "ice40",
        12e6,
        EngineConfig((784, 32, 10), (4, 2), (56, 16), in_width=56),
        input_copy=False,
    ),
}


def board(name: str) -> Board:
    """The board called ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`BOARDS`.
    """
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; allowed: {', '.join(sorted(BOARDS))}")
    return BOARDS[name]
