"""MTJ read path: R_P from RA and area, bias-dependent TMR, R_AP(V), conductance, read noise.

Equations (Zhang et al., IEEE TED 59(3):819, 2012; spinlib STT-VCMA-MTJ Verilog-A model of
Beihang University; utinclab Stochastic_MTJ_Model):

- ``R_P = RA / area`` with ``area = pi d^2 / 4``;
- ``TMR(V) = TMR0 / (1 + V^2 / V_h^2)``;  ``R_AP(V) = R_P (1 + TMR(V))``;
- a fractional AP share ``s`` in [0, 1] mixes conductances: ``G = (1 - s) / R_P + s / R_AP(V)``.

Convention of spinapse: the P state (``s = 0``, low resistance) holds ``W_b = +1`` (bit 1), the AP
state (``s = 1``) holds ``W_b = -1``.

All functions take and return torch tensors (any shape, broadcasting) in SI units: volts, ohms,
siemens, amperes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch


def tmr(v: torch.Tensor, tmr0: float, v_h: float) -> torch.Tensor:
    """``TMR(V) = TMR0 / (1 + V^2 / V_h^2)`` (dimensionless), same shape as ``v`` (volts)."""
    return tmr0 / (1.0 + (v / v_h) ** 2)


def resistance_ap(v: torch.Tensor, r_p: torch.Tensor | float, tmr0: float, v_h: float):
    """``R_AP(V) = R_P (1 + TMR(V))`` in ohms at junction bias ``v`` (volts)."""
    return r_p * (1.0 + tmr(v, tmr0, v_h))


def conductance(
    s: torch.Tensor, v: torch.Tensor, r_p: torch.Tensor | float, tmr0: float, v_h: float
) -> torch.Tensor:
    """``G = (1 - s) / R_P + s / R_AP(V)`` in siemens; ``s`` is the AP share in [0, 1]."""
    return (1.0 - s) / r_p + s / resistance_ap(v, r_p, tmr0, v_h)


def current(
    v: torch.Tensor, s: torch.Tensor, r_p: torch.Tensor | float, tmr0: float, v_h: float
) -> torch.Tensor:
    """Terminal current ``I = V G(s, V)`` in amperes (positive from the first terminal)."""
    return v * conductance(s, v, r_p, tmr0, v_h)


def bias_at_current(
    i: torch.Tensor, s: torch.Tensor, r_p: torch.Tensor | float, tmr0: float, v_h: float
) -> torch.Tensor:
    """Junction bias ``V`` (volts) that drives current ``i`` (amperes): solves ``V = I / G(s, V)``.

    Fixed-point iteration; ``|dV/dV_next| = |I dR/dV| < 1`` for any realistic junction, and 60
    iterations reach float64 rounding. For the two pure states use :func:`bias_at_current_ap`
    (AP) or ``I R_P`` (P), which are exact and faster.
    """
    v = i * r_p
    for _ in range(60):
        v = i / conductance(s, v, r_p, tmr0, v_h)
    return v


def bias_at_current_ap(
    i: torch.Tensor, r_p: torch.Tensor | float, tmr0: float, v_h: float
) -> torch.Tensor:
    """Bias ``V`` (volts) of an AP junction carrying ``i`` (amperes): root of the cubic
    ``V^3 - a V^2 + V_h^2 V - a (1 + TMR0) V_h^2 = 0`` with ``a = |I| R_P`` (from
    ``V = I R_P (1 + TMR0 / (1 + V^2 / V_h^2))``), signed like ``i``.

    Newton from the zero-bias value ``a (1 + TMR0)``, an upper bound where the cubic is convex
    and increasing, so the iterates fall monotonically onto the root; 12 steps reach float64
    rounding for ``a`` up to the volt range.
    """
    a = i.abs() * r_p
    vh2 = v_h * v_h
    v = a * (1.0 + tmr0)
    for _ in range(12):
        f = ((v - a) * v + vh2) * v - a * (1.0 + tmr0) * vh2
        df = (3.0 * v - 2.0 * a) * v + vh2
        v = v - f / df
    return torch.sign(i) * v


@dataclass(frozen=True)
class MTJRead:
    """Read-path parameters of a card's ``[mtj_read]`` section (SI units).

    Attributes
    ----------
    RA : float
        Resistance-area product of the P state, ohm m^2.
    diameter : float
        Pillar diameter, m.
    TMR0, V_h : float
        Zero-bias TMR (1) and the bias where it halves (V).
    read_noise_sigma : float
        Relative Gaussian noise of one read of the conductance.
    d2d_sigma_RA : float
        Relative (log-normal) device-to-device spread of RA.
    V_read, t_read : float
        Read bias (V) and read pulse width (s).
    """

    RA: float
    diameter: float
    TMR0: float
    V_h: float
    read_noise_sigma: float
    d2d_sigma_RA: float
    V_read: float
    t_read: float

    @classmethod
    def from_card(cls, card) -> MTJRead:
        return cls(**{f.name: card.section("mtj_read")[f.name] for f in fields(cls)})

    @property
    def area(self) -> float:
        """Junction area ``pi d^2 / 4`` in m^2."""
        return math.pi * self.diameter**2 / 4.0

    @property
    def R_P(self) -> float:
        """Nominal P resistance ``RA / area`` in ohms."""
        return self.RA / self.area

    def sample_r_p(self, shape, generator: torch.Generator | None = None, dtype=torch.float64):
        """Per-device ``R_P`` (ohms), log-normal with relative spread ``d2d_sigma_RA``.

        ``R_P exp(sigma z - sigma^2 / 2)``, ``z ~ N(0, 1)``: positive, with mean ``R_P``.
        """
        z = torch.randn(shape, generator=generator, dtype=dtype)
        sig = self.d2d_sigma_RA
        return self.R_P * torch.exp(sig * z - 0.5 * sig * sig)

    def noisy(self, g: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A read of conductance ``g``: ``g (1 + read_noise_sigma z)``, ``z ~ N(0, 1)``."""
        z = torch.randn(g.shape, generator=generator, dtype=g.dtype)
        return g * (1.0 + self.read_noise_sigma * z)
