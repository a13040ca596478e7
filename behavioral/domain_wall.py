"""Multi-level domain-wall (DW) synapse: notched track, depinning, velocity, conductance.

Re-derived from the published forms (kinematic model of Edwards ... Incorvia, Friedman 2025;
notched DW-MTJ synapses, Leonard et al., APL 118, 202405, 2021; rising depinning thresholds as
built-in metaplasticity, Kaur & Pramanik, arXiv 2501.15102):

- ``n`` notches sit evenly in the read window ``[x_min, x_max]``: ``x_k = x_min + k dx``,
  ``dx = (x_max - x_min) / (n - 1)``; level ``k = 0`` is all P (``W`` most positive), level
  ``n - 1`` all AP.
- The wall leaves notch ``k`` only if ``|J| >= J_dep[k]``, with thresholds that rise from the
  centre outwards: ``J_dep[k] = J_dep0 (1 + dep_ramp |k - k_c| / k_c)``, ``k_c = (n - 1) / 2``.
  A wall far from the centre (a strong weight) is harder to move: metaplasticity.
- Steady velocity ``v(J) = sign(J) v_1 ((|J| - J_dep0) / (J_1 - J_dep0))^p`` above ``J_dep0``
  (0 below), with ``p = ln(v_2 / v_1) / ln((J_2 - J_dep0) / (J_1 - J_dep0))`` so that the curve
  passes through both measured points (about 9 m/s at 1e11 and 40 m/s at 1e12 A/m^2).
  Positive ``J`` moves the wall towards AP.
- Inertia: ``du/dt = (v_target - u) / tau_v``, ``dx/dt = u``; during a pulse from rest the wall
  covers ``d(t) = v (t - tau_v (1 - exp(-t / tau_v)))``.
- A pulse moves the wall notch by notch until it has covered the pulse's distance or meets a notch
  whose threshold exceeds ``|J|``; when the pulse ends between two notches the wall relaxes back
  into the last notch it passed.
- Conductance: ``s = (x - x_min) / (x_max - x_min)`` is the AP share of the read window,
  ``G = (1 - s) / R_P + s / R_AP(V)`` with ``TMR0 = R_AP / R_P - 1`` and the bias law of
  :mod:`spinapse.behavioral.mtj_read`.
- Write energy of a pulse: ``I^2 R_track t`` with ``R_track = rho L / (w t_track)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from spinapse.behavioral import mtj_read


@dataclass(frozen=True)
class DomainWall:
    """Parameters of a card's ``[domain_wall]`` section (SI units); see the module docstring."""

    length: float
    width: float
    thickness: float
    rho: float
    x_min: float
    x_max: float
    n_notches: float
    J_dep0: float
    dep_ramp: float
    v_1: float
    J_1: float
    v_2: float
    J_2: float
    tau_v: float
    R_P: float
    R_AP: float
    V_h: float
    read_noise_sigma: float
    V_read: float
    t_read: float
    level_init: float

    @classmethod
    def from_card(cls, card) -> DomainWall:
        return cls(**{f.name: card.section("domain_wall")[f.name] for f in fields(cls)})

    @property
    def levels(self) -> int:
        return int(self.n_notches)

    @property
    def spacing(self) -> float:
        """Notch pitch ``dx`` in m."""
        return (self.x_max - self.x_min) / (self.levels - 1)

    @property
    def exponent(self) -> float:
        """Velocity exponent ``p`` fitted through (J_1, v_1) and (J_2, v_2)."""
        return math.log(self.v_2 / self.v_1) / math.log(
            (self.J_2 - self.J_dep0) / (self.J_1 - self.J_dep0)
        )

    @property
    def TMR0(self) -> float:
        return self.R_AP / self.R_P - 1.0

    @property
    def cross_section(self) -> float:
        """Track cross-section ``w t`` in m^2 (current density ``J = I / (w t)``)."""
        return self.width * self.thickness

    @property
    def R_track(self) -> float:
        """Write-path resistance ``rho L / (w t)`` in ohms."""
        return self.rho * self.length / self.cross_section

    def thresholds(self, dtype=torch.float64) -> torch.Tensor:
        """Depinning densities ``J_dep[k]`` (A/m^2), shape ``[n_notches]``."""
        k = torch.arange(self.levels, dtype=dtype)
        kc = (self.levels - 1) / 2.0
        return self.J_dep0 * (1.0 + self.dep_ramp * (k - kc).abs() / kc)

    def notch_index(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest notch of position ``x`` (m), clamped to ``[0, n - 1]`` (int64)."""
        k = torch.floor((x - self.x_min) / self.spacing + 0.5)
        return k.clamp(0, self.levels - 1).to(torch.int64)

    def position(self, level: torch.Tensor) -> torch.Tensor:
        """Position (m) of notch ``level``."""
        return self.x_min + level.to(torch.float64) * self.spacing

    def velocity(self, j: torch.Tensor) -> torch.Tensor:
        """Steady wall velocity (m/s) at current density ``j`` (A/m^2), signed like ``j``."""
        j = torch.as_tensor(j, dtype=torch.float64)
        over = ((j.abs() - self.J_dep0) / (self.J_1 - self.J_dep0)).clamp(min=0.0)
        return torch.sign(j) * self.v_1 * over**self.exponent

    def rates(self, x: torch.Tensor, u: torch.Tensor, j: torch.Tensor):
        """``(dx/dt, du/dt)`` at position ``x`` (m), velocity ``u`` (m/s), density ``j`` (A/m^2).

        The target velocity is ``v(j)`` where ``|j|`` reaches the threshold of the nearest notch,
        0 elsewhere. Requires ``tau_v > 0``.
        """
        x = torch.as_tensor(x, dtype=torch.float64)
        u = torch.as_tensor(u, dtype=torch.float64)
        j = torch.as_tensor(j, dtype=torch.float64)
        jdep = self.thresholds()[self.notch_index(x)]
        target = torch.where(j.abs() >= jdep, self.velocity(j), torch.zeros_like(j))
        return u, (target - u) / self.tau_v

    def travel(self, j: torch.Tensor, width) -> torch.Tensor:
        """Distance (m, >= 0) covered from rest in a pulse of density ``j``, ``width`` seconds."""
        t = torch.as_tensor(width, dtype=torch.float64)
        v = self.velocity(j).abs()
        if self.tau_v == 0:
            return v * t
        return v * (t - self.tau_v * (-torch.expm1(-t / self.tau_v)))

    def pulse(self, level: torch.Tensor, j: torch.Tensor, width) -> torch.Tensor:
        """Notch (int64) after one pulse of density ``j`` (A/m^2) and ``width`` (s) from ``level``.

        Shapes broadcast; the result has the broadcast shape.
        """
        level, j = torch.broadcast_tensors(level.to(torch.int64), torch.as_tensor(j))
        j = j.to(torch.float64)
        step = torch.where(j >= 0, 1, -1).to(torch.int64)
        # A relative 1e-12 keeps a wall that covers exactly k pitches from stopping one short.
        hops = torch.floor(self.travel(j, width) / self.spacing * (1 + 1e-12)).to(torch.int64)
        thr = self.thresholds()
        free = torch.zeros_like(level)
        blocked = torch.zeros_like(level, dtype=torch.bool)
        last = self.levels - 1
        for m in range(self.levels - 1):
            here = level + step * m
            can = (~blocked) & (here >= 0) & (here <= last)
            can &= (here + step >= 0) & (here + step <= last)
            can &= j.abs() >= thr[here.clamp(0, last)]
            blocked |= ~can
            free += can.to(torch.int64)
        moved = torch.minimum(hops, free)
        return level + step * moved

    def conductance(self, level: torch.Tensor, v) -> torch.Tensor:
        """Read conductance (S) of notch ``level`` at read bias ``v`` (V)."""
        return self.conductance_at(self.position(level), v)

    def conductance_at(self, x: torch.Tensor, v) -> torch.Tensor:
        """Read conductance (S) with the wall at position ``x`` (m), bias ``v`` (V)."""
        s = (torch.as_tensor(x, dtype=torch.float64) - self.x_min) / (self.x_max - self.x_min)
        s = s.clamp(0.0, 1.0)
        v = torch.as_tensor(v, dtype=torch.float64)
        return mtj_read.conductance(s, v, self.R_P, self.TMR0, self.V_h)

    def write_energy(self, current, width) -> torch.Tensor:
        """Energy (J) of a write pulse of ``current`` amperes: ``I^2 R_track width``."""
        i = torch.as_tensor(current, dtype=torch.float64)
        return i**2 * self.R_track * torch.as_tensor(width, dtype=torch.float64)
