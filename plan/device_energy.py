"""Energy of one synapse operation from a device card, with the physics of ``behavioral/``.

The same functions the array model charges its energy counters with
(:class:`spinapse.behavioral.metaplastic_synapse.MetaplasticSynapseArray`):

- write pulse (STT): ``I^2 R t`` with ``R = R_P`` from P, or ``R_AP`` at the bias the current
  builds up from AP (:func:`spinapse.behavioral.mtj_read.bias_at_current_ap`); SOT:
  ``I^2 R_hm t`` in the heavy-metal line;
- gate pulse: ``C_gate V^2 + V^2 t / R_gate``
  (:func:`spinapse.behavioral.magneto_ionic.gate_energy`);
- read: ``V_read^2 G t_read`` with ``G`` of the P or AP state at ``V_read``
  (:func:`spinapse.behavioral.mtj_read.conductance`).

All in SI units (A, s, V, J). ``r_p`` defaults to the card's nominal ``R_P = RA / area``.
"""

from __future__ import annotations

import torch

from spinapse.behavioral import mtj_read
from spinapse.behavioral.card import DeviceCard
from spinapse.behavioral.magneto_ionic import MagnetoIonic
from spinapse.behavioral.mtj_read import MTJRead
from spinapse.behavioral.mtj_switching import MTJSwitching, SOTWrite, critical_current_stt


def _mtj_card(card: DeviceCard) -> DeviceCard:
    if card.kind != "mtj_synapse":
        raise ValueError(f"card {card.name!r}: kind is {card.kind!r}, need 'mtj_synapse'")
    return card


def _t(x: float) -> torch.Tensor:
    return torch.tensor(float(x), dtype=torch.float64)


def nominal_critical_current(card: DeviceCard) -> float:
    """``Ic0`` (A) of the nominal device at ``c = 0``: STT formula or SOT ``Jc0 w t``."""
    _mtj_card(card)
    if card.variant == "sot":
        return SOTWrite.from_card(card).Ic0
    sw = MTJSwitching.from_card(card)
    return float(critical_current_stt(_t(sw.Delta0), sw.alpha, sw.eta, sw.T))


def write_energy(
    card: DeviceCard, current: float, width: float, from_ap: bool = False, r_p: float | None = None
) -> float:
    """Energy (J) of one write pulse of ``current`` (A) and ``width`` (s).

    Raises
    ------
    ValueError
        If the card is not an ``mtj_synapse`` or ``current``/``width`` is < 0.
    """
    _mtj_card(card)
    if current < 0 or width < 0:
        raise ValueError(f"current and width must be >= 0, got {current} A, {width} s")
    i, t = _t(current), _t(width)
    if card.variant == "sot":
        r = _t(SOTWrite.from_card(card).R_hm)
    else:
        read = MTJRead.from_card(card)
        r = _t(read.R_P if r_p is None else r_p)
        if from_ap:
            i_ap = i.clamp(min=1e-300)
            r = mtj_read.bias_at_current_ap(i_ap, r, read.TMR0, read.V_h) / i_ap
    return float(i**2 * r * t)


def gate_energy(card: DeviceCard, voltage: float, width: float) -> float:
    """Energy (J) of one gate pulse of ``voltage`` (V) and ``width`` (s).

    Raises
    ------
    ValueError
        If the card is not an ``mtj_synapse`` or ``width`` < 0.
    """
    _mtj_card(card)
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width} s")
    return float(MagnetoIonic.from_card(card).gate_energy(_t(voltage), _t(width)))


def read_energy(card: DeviceCard, ap: bool = False, r_p: float | None = None) -> float:
    """Energy (J) of one read at the card's ``V_read`` and ``t_read``, device in P or AP."""
    _mtj_card(card)
    read = MTJRead.from_card(card)
    v = _t(read.V_read)
    g = mtj_read.conductance(
        _t(1.0 if ap else 0.0), v, read.R_P if r_p is None else r_p, read.TMR0, read.V_h
    )
    return float(v**2 * g * read.t_read)


def read_time(card: DeviceCard) -> float:
    """Read pulse width ``t_read`` (s) of the card."""
    return MTJRead.from_card(_mtj_card(card)).t_read
