"""Build-time calibration of the synapse emulator from the behavioural device model.

:func:`switching_table` evaluates the switching probability of a card's nominal device (no
device-to-device spread: ``Delta0``, ``Ic0`` of the card) for one write pulse of each code at each
quantised hidden-state level, with :mod:`spinapse.behavioral.mtj_switching` (Neel-Brown thermal
activation below ``Ic0`` and the Sun precessional rate above, as the behavioural array uses) and
:func:`spinapse.behavioral.magneto_ionic.delta_shift` for ``Delta(c)``. Codes: ``k = 1 ..
2**code_bits - 1`` select a current ``ratios[k - 1] * Ic0(c = 0)`` at ``width_s``; level ``l``
is ``c = l / (2**level_bits - 1)``. The emulator stores ``round(P * 2**16)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spinapse.behavioral import mtj_switching
from spinapse.behavioral.magneto_ionic import delta_shift
from spinapse.behavioral.metaplastic_synapse import MetaplasticSynapseArray
from spinapse.rtl.emulated_array import PROB_BITS

DEFAULT_RATIOS = (0.9, 1.1, 1.3)
"""Pulse currents of codes 1..3 over ``Ic0`` at ``c = 0`` (10 ns): probabilities between 0 and
1 over the hidden-state range of the shipped STT card."""


def switching_probabilities(
    card: str,
    code_bits: int = 2,
    level_bits: int = 2,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    width_s: float = 10e-9,
) -> list[list[float]]:
    """``P[k][l]`` (float, row 0 all zero) for the nominal device of ``card``.

    Raises
    ------
    ValueError
        If ``len(ratios) != 2**code_bits - 1`` or the card is not an ``mtj_synapse``.
    """
    if len(ratios) != (1 << code_bits) - 1:
        raise ValueError(f"need {(1 << code_bits) - 1} current ratios, got {len(ratios)}")
    arr = MetaplasticSynapseArray(card, 1, 1)
    sw, rd, mi = arr.sw, arr.read_p, arr.mi
    n_levels = 1 << level_bits
    c = torch.arange(n_levels, dtype=torch.float64) / (n_levels - 1)
    delta = sw.Delta0 + delta_shift(c, mi.dKi, rd.area, sw.T)
    if arr.sot is not None:
        ic0 = arr.sot.Ic0 * delta / sw.Delta0
        ic_ref = arr.sot.Ic0
    else:
        ic0 = mtj_switching.critical_current_stt(delta, sw.alpha, sw.eta, sw.T)
        ic_ref = float(mtj_switching.critical_current_stt(sw.Delta0, sw.alpha, sw.eta, sw.T))
    k_sun = mtj_switching.sun_prefactor(delta, sw.P_spin, sw.moment(rd.area))
    rows = [[0.0] * n_levels]
    for r in ratios:
        current = torch.full_like(c, float(r) * ic_ref)
        p = mtj_switching.switching_probability(current, width_s, ic0, delta, sw.tau0, sw.b, k_sun)
        rows.append([float(v) for v in p])
    return rows


def switching_table(probabilities: Sequence[Sequence[float]]) -> list[list[int]]:
    """The emulator's table: ``round(P * 2**16)`` of each entry."""
    scale = 1 << PROB_BITS
    return [[int(round(min(max(p, 0.0), 1.0) * scale)) for p in row] for row in probabilities]
