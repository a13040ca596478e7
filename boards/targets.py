"""The boards spinapse builds for, and the engine each one carries by default.

A :class:`Board` names an ``amaranth-boards`` platform, its clock and its default engine
configuration. The defaults are the largest engines measured to fit and meet timing at the
board clock (README, "FPGA prototype"): the ULX3S-85F (ECP5 LFE5U-85F, 25 MHz) carries the
784-256-256-10 benchmark network; the iCEBreaker (iCE40UP5K, 12 MHz, 5280 LCs, 30 block RAMs)
a 784-32-10 network with its image in block RAM (``input_copy=False``).
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
        Board oscillator, the engine's clock (no PLL): the build fails if nextpnr's Fmax is
        below it.
    engine : EngineConfig
        Default inference engine (``in_width`` a multiple of 8: whole UART bytes per beat).
    input_copy : bool
        Image in registers (True) or in a memory read fold by fold (False, needs ``in_width ==
        SIMD_0``; see :class:`~spinapse.rtl.inference_engine.InferenceEngine`): False saves
        ``2 N_in`` flip-flops, which the iCE40UP5K needs.
    """

    name: str
    family: str
    clock_hz: float
    engine: EngineConfig
    input_copy: bool = True

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
        EngineConfig((784, 256, 256, 10), (32, 16, 10), (98, 64, 4), in_width=8),
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
