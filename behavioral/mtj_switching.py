"""MTJ write path: probability that a current pulse switches the free layer (STT or SOT).

Below the critical current the switching is thermally activated (Neel-Brown; Zhang & Zhao, IEEE
TED 59(3):819, 2012; exponent ``b`` after Taniguchi):

    rate = (1 / tau0) exp(-Delta (1 - I / Ic0)^b)                 for I <  Ic0

Above it the precessional (Sun) rate grows linearly with the overdrive; it is added to the attempt
rate ``1 / tau0`` that the thermal law reaches at ``I = Ic0``, so the rate is continuous there:

    rate = 1 / tau0 + k_sun (I - Ic0),                              for I >= Ic0
    k_sun = [2 / (C + ln(pi^2 Delta / 4))] [mu_B P / (e m (1 + P^2))],  m = Ms V_free

A pulse of width ``t`` switches with ``P_sw = 1 - exp(-t rate)`` (Poisson escape). ``I`` is the
current that drives towards the other state: a pulse of the wrong polarity has ``I < 0`` and only
stabilises. Critical current of an STT junction: ``Ic0 = 4 e alpha k_B T Delta / (hbar eta)``
(Zhang et al., IEEE TED 59(3):819, 2012; alpha 0.02, eta 0.5, Delta 40 give 40 uA). SOT:
``Ic0 = Jc0 w_hm t_hm``.

Functions take tensors (any shape, broadcasting) in SI units: A, s, 1/s, K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from spinapse.behavioral.constants import EULER_GAMMA, HBAR, K_B, MU_B, Q_E


def critical_current_stt(delta, alpha: float, eta: float, temperature: float):
    """``Ic0 = 4 e alpha k_B T Delta / (hbar eta)`` in amperes (Zhang & Zhao 2012, PMA STT)."""
    return 4.0 * Q_E * alpha * K_B * temperature * delta / (HBAR * eta)


def sun_prefactor(delta, p_spin: float, moment: float):
    """``k_sun`` of the Sun model in 1/(A s): rate per ampere of overdrive above ``Ic0``.

    ``delta`` thermal stability (1), ``p_spin`` spin polarisation (1), ``moment = Ms V`` (A m^2).
    """
    log_term = torch.log(math.pi**2 * torch.as_tensor(delta, dtype=torch.float64) / 4.0)
    return (2.0 / (EULER_GAMMA + log_term)) * (MU_B * p_spin / (Q_E * moment * (1.0 + p_spin**2)))


def switching_rate(i, ic0, delta, tau0: float, b: float, k_sun) -> torch.Tensor:
    """Escape rate (1/s) of the free layer driven by current ``i`` (A) towards the other state.

    Continuous at ``i = ic0`` (both branches give ``1 / tau0``) and increasing in ``i``.
    """
    i = torch.as_tensor(i, dtype=torch.float64)
    x = i / ic0
    below = torch.exp(-delta * (1.0 - x).clamp(min=0.0) ** b) / tau0
    above = 1.0 / tau0 + k_sun * (i - ic0)
    return torch.where(x < 1.0, below, above)


def switching_probability(i, width, ic0, delta, tau0: float, b: float, k_sun) -> torch.Tensor:
    """``P_sw = 1 - exp(-width * rate(i))`` for a pulse of ``width`` seconds (float64 tensor)."""
    rate = switching_rate(i, ic0, delta, tau0, b, k_sun)
    return -torch.expm1(-torch.as_tensor(width, dtype=torch.float64) * rate)


@dataclass(frozen=True)
class MTJSwitching:
    """Write-path parameters of a card's ``[mtj_switching]`` section (SI units).

    Attributes
    ----------
    Delta0 : float
        Thermal stability ``E_b / k_B T`` of a device at hidden state ``c = 0``.
    tau0 : float
        Attempt time, s.
    b : float
        Exponent of ``(1 - I / Ic0)``: 1 (classic) to 2 (Taniguchi).
    T : float
        Temperature, K.
    alpha, eta : float
        Gilbert damping and spin-transfer efficiency (STT critical current).
    P_spin : float
        Spin polarisation (Sun model).
    Ms, t_F : float
        Free-layer saturation magnetisation (A/m) and thickness (m).
    d2d_sigma_Delta : float
        Relative (log-normal) device-to-device spread of ``Delta0``.
    """

    Delta0: float
    tau0: float
    b: float
    T: float
    alpha: float
    eta: float
    P_spin: float
    Ms: float
    t_F: float
    d2d_sigma_Delta: float

    @classmethod
    def from_card(cls, card) -> MTJSwitching:
        return cls(**{f.name: card.section("mtj_switching")[f.name] for f in fields(cls)})

    def moment(self, area: float) -> float:
        """Free-layer magnetic moment ``Ms t_F area`` in A m^2."""
        return self.Ms * self.t_F * area

    def sample_delta0(self, shape, generator: torch.Generator | None = None, dtype=torch.float64):
        """Per-device ``Delta0``: log-normal, relative spread ``d2d_sigma_Delta``, mean Delta0."""
        z = torch.randn(shape, generator=generator, dtype=dtype)
        sig = self.d2d_sigma_Delta
        return self.Delta0 * torch.exp(sig * z - 0.5 * sig * sig)


@dataclass(frozen=True)
class SOTWrite:
    """SOT write line of a card's ``[sot]`` section (SI units).

    The write current flows in a heavy-metal line under the free layer; the critical current is
    ``Ic0 = Jc0 w_hm t_hm`` at ``c = 0`` (Jc0 of order 1e11-1e12 A/m^2 in Ta/CoFeB, Liu et al.,
    Science 336, 555, 2012) and scales with Delta
    like the STT one. Write energy ``I^2 R_hm t`` with ``R_hm = rho_hm L_hm / (w_hm t_hm)``.
    """

    Jc0: float
    w_hm: float
    t_hm: float
    L_hm: float
    rho_hm: float

    @classmethod
    def from_card(cls, card) -> SOTWrite:
        return cls(**{f.name: card.section("sot")[f.name] for f in fields(cls)})

    @property
    def Ic0(self) -> float:
        """Critical current (A) at ``c = 0``."""
        return self.Jc0 * self.w_hm * self.t_hm

    @property
    def R_hm(self) -> float:
        """Heavy-metal write-path resistance (ohm)."""
        return self.rho_hm * self.L_hm / (self.w_hm * self.t_hm)
