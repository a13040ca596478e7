"""Magneto-ionic hidden state ``c`` in [0, 1]: non-volatile, gate-driven, coupled to Delta and Ic0.

Model (rate range after Fassatoui et al., Small 2021; anisotropy range after Bauer et
al., Nat. Mater. 2015):

- ``tau_MI(V_g) = tau_ref exp(-(|V_g| - V_ref) / V_0)``;
- ``dc/dt = (1 - c) / tau_MI`` for ``V_g > V_th``, ``-c / tau_MI`` for ``V_g < -V_th``, and
  exactly 0 for ``|V_g| <= V_th`` (no ionic motion without a field: the state is non-volatile);
- the interface anisotropy grows as ``Ki(c) = Ki0 + c dKi``, so the barrier of a free layer of
  area ``A`` grows as ``Delta(c) = Delta0 + c dKi A / (k_B T)``; ``Ic0`` is proportional to
  Delta, so a consolidated device (high ``c``) needs a larger pulse to flip.

A gate pulse of constant ``V_g`` and width ``t`` is integrated exactly:
``c(t) = 1 - (1 - c0) exp(-t / tau_MI)`` (positive) or ``c0 exp(-t / tau_MI)`` (negative), so
``c`` never leaves [0, 1]. Gate energy per pulse: ``C_gate V_g^2 + V_g^2 t / R_gate``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from spinapse.behavioral.constants import K_B


def tau_mi(vg, tau_ref: float, v_ref: float, v_0: float) -> torch.Tensor:
    """Time constant (s) of the hidden state at gate voltage ``vg`` (V)."""
    vg = torch.as_tensor(vg, dtype=torch.float64)
    return tau_ref * torch.exp(-(vg.abs() - v_ref) / v_0)


def rate(c, vg, tau_ref: float, v_ref: float, v_0: float, v_th: float) -> torch.Tensor:
    """``dc/dt`` (1/s) at state ``c`` and gate voltage ``vg`` (V); 0 where ``|vg| <= v_th``."""
    c = torch.as_tensor(c, dtype=torch.float64)
    vg = torch.as_tensor(vg, dtype=torch.float64)
    tau = tau_mi(vg, tau_ref, v_ref, v_0)
    up = (1.0 - c) / tau
    down = -c / tau
    zero = torch.zeros_like(up)
    return torch.where(vg > v_th, up, torch.where(vg < -v_th, down, zero))


def evolve(c, vg, width, tau_ref: float, v_ref: float, v_0: float, v_th: float) -> torch.Tensor:
    """State after a gate pulse of ``vg`` volts lasting ``width`` seconds (exact solution)."""
    c = torch.as_tensor(c, dtype=torch.float64)
    vg = torch.as_tensor(vg, dtype=torch.float64)
    decay = torch.exp(
        -torch.as_tensor(width, dtype=torch.float64) / tau_mi(vg, tau_ref, v_ref, v_0)
    )
    up = 1.0 - (1.0 - c) * decay
    down = c * decay
    return torch.where(vg > v_th, up, torch.where(vg < -v_th, down, c))


def delta_shift(c, d_ki: float, area: float, temperature: float) -> torch.Tensor:
    """Barrier added by the hidden state: ``c dKi area / (k_B T)`` (dimensionless)."""
    return torch.as_tensor(c, dtype=torch.float64) * (d_ki * area / (K_B * temperature))


def gate_energy(vg, width, c_gate: float, r_gate: float) -> torch.Tensor:
    """Energy (J) of one gate pulse: ``C_gate V_g^2 + V_g^2 width / R_gate``."""
    vg = torch.as_tensor(vg, dtype=torch.float64)
    return c_gate * vg**2 + vg**2 * torch.as_tensor(width, dtype=torch.float64) / r_gate


@dataclass(frozen=True)
class MagnetoIonic:
    """Parameters of a card's ``[magneto_ionic]`` section (SI units).

    Attributes
    ----------
    c_init : float
        Hidden state of a fresh device, in [0, 1].
    dKi : float
        Interface anisotropy added at ``c = 1``, J/m^2.
    tau_ref, V_ref, V_0 : float
        ``tau_MI = tau_ref exp(-(|V_g| - V_ref) / V_0)``: s, V, V.
    V_th : float
        Threshold below which ``c`` does not move, V.
    C_gate, R_gate : float
        Gate capacitance (F) and leakage resistance (ohm) for the gate energy.
    """

    c_init: float
    dKi: float
    tau_ref: float
    V_ref: float
    V_0: float
    V_th: float
    C_gate: float
    R_gate: float

    @classmethod
    def from_card(cls, card) -> MagnetoIonic:
        return cls(**{f.name: card.section("magneto_ionic")[f.name] for f in fields(cls)})

    def rate(self, c, vg) -> torch.Tensor:
        """``dc/dt`` in 1/s (see :func:`rate`)."""
        return rate(c, vg, self.tau_ref, self.V_ref, self.V_0, self.V_th)

    def evolve(self, c, vg, width) -> torch.Tensor:
        """``c`` after a gate pulse (see :func:`evolve`)."""
        return evolve(c, vg, width, self.tau_ref, self.V_ref, self.V_0, self.V_th)

    def gate_energy(self, vg, width) -> torch.Tensor:
        """Energy of a gate pulse in J (see :func:`gate_energy`)."""
        return gate_energy(vg, width, self.C_gate, self.R_gate)
