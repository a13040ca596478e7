"""Pulse map: how the engine's ``SynapseArray`` commands become pulses on a metaplastic synapse.

Read from a card's ``[pulses]`` table (SI units; design rules and sources in the card, the whole
map in ``docs/pulse_map.md``). For a ``WRITE`` or ``GATE`` command of the update engine
(``rtl/update_engine.py``) on lane ``l`` with ``polarity`` (1: towards ``W_b = +1``, P) and
``code`` (``1 .. 2**code_bits - 1``):

- digital mode, ``WRITE``: one current pulse ``write_current`` x ``write_width`` towards the
  polarity (the engine verifies it with ``READ``, write-verify);
- device mode, ``GATE`` whose polarity agrees with the sensed bit: a consolidating gate pulse
  ``gate_voltage`` x ``code * gate_width`` (``c`` rises, ``Delta(c)`` and ``Ic0(c)`` with it);
- device mode, ``GATE`` whose polarity disagrees: a write pulse ``flip_current`` x
  ``code * flip_width`` towards the polarity; it switches with the device's own probability at its
  ``Delta(c)`` (Neel-Brown below ``Ic0``: Zhang & Zhao, IEEE TED 59(3):819, 2012), the
  probabilistic metaplasticity of Zohora et al., Sci. Rep. 2024; a device that flipped gets an
  erasing gate pulse ``erase_voltage`` x ``erase_width`` (its consolidation restarts, as ``|W_h|``
  restarts from 0 after a sign change in the rule of Laborieux et al., Nat. Commun. 12, 2549,
  2021).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class PulseMap:
    """The ``[pulses]`` table of a card, SI units.

    Attributes
    ----------
    write_current, write_width : float
        Digital-mode ``WRITE`` pulse: A, s.
    flip_current, flip_width : float
        Device-mode flip pulse: A, and s per code unit.
    gate_voltage, gate_width : float
        Consolidating gate pulse: V (> 0), and s per code unit.
    erase_voltage, erase_width : float
        Erasing gate pulse after a flip: V (< 0), s.
    """

    write_current: float
    write_width: float
    flip_current: float
    flip_width: float
    gate_voltage: float
    gate_width: float
    erase_voltage: float
    erase_width: float

    @classmethod
    def from_card(cls, card) -> PulseMap:
        """The map of ``card`` (a :class:`~spinapse.behavioral.card.DeviceCard`).

        Raises
        ------
        ValueError
            If the card has no ``[pulses]`` table.
        """
        if "pulses" not in card.values:
            raise ValueError(
                f"card {card.name!r} has no [pulses] table: the co-simulation needs its pulse "
                "map (docs/pulse_map.md)"
            )
        table = card.section("pulses")
        return cls(**{f.name: float(table[f.name]) for f in fields(cls)})
