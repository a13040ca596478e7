"""The composed metaplastic synapse: MTJ binary weight + magneto-ionic hidden state, as an array.

This is the pulse-level device API that training, co-simulation and the plan use. One object holds
``rows x cols`` devices of one card (``kind = "mtj_synapse"``). Per device it keeps:

- the free-layer state (P holds ``W_b = +1``, AP holds ``W_b = -1``),
- the hidden state ``c`` in [0, 1] (non-volatile, set by gate pulses),
- its own ``R_P`` and ``Delta0`` (device-to-device spread drawn once, at construction),
- energy counters (J, float64): write (``I^2 R t``), gate (``C V^2 + V^2 t / R``), read
  (``V^2 G t_read``), and pulse counters (int64).

Transactions (each a method; ``where`` selects devices, see below):

- :meth:`write` -- current pulses of amplitude (A), width (s) and polarity (+1 drives towards P
  i.e. ``W_b = +1``, -1 towards AP); each selected device flips with the probability of
  :mod:`spinapse.behavioral.mtj_switching` at its own ``Delta(c)`` and ``Ic0(c)``, drawn from the
  array's ``torch.Generator``.
- :meth:`gate` -- gate pulses of voltage (V) and width (s) move ``c`` (exact integration).
- :meth:`read` -- noisy conductances (S) at the read bias; :meth:`sense` -- ``W_b`` from a read.

``where`` is ``None`` (every device, row-major), a bool mask of shape ``[rows, cols]`` (the
selected devices in row-major order), or a pair ``(rows, cols)`` of 1-D int64 tensors of equal
length (devices in that order; repeats are applied in one step, so give each device once).
Per-device arguments (polarity, amplitude, width, voltage) are Python numbers or tensors that
broadcast to the number of selected devices. Results are 1-D tensors in selection order.

All randomness comes from the generator given at construction: equal seeds give equal runs.
"""

from __future__ import annotations

import torch

from spinapse.behavioral import magneto_ionic, mtj_read, mtj_switching
from spinapse.behavioral.card import DeviceCard, load_card
from spinapse.behavioral.magneto_ionic import MagnetoIonic
from spinapse.behavioral.mtj_read import MTJRead
from spinapse.behavioral.mtj_switching import MTJSwitching, SOTWrite

Where = None | torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class MetaplasticSynapseArray:
    """``rows x cols`` metaplastic MTJ synapses of one device card.

    Parameters
    ----------
    card : DeviceCard or str
        A card of kind ``"mtj_synapse"`` (or a shipped card name / path).
    rows, cols : int
        Array shape.
    generator : torch.Generator, optional
        Source of every random draw (device spread, switching, read noise). A fresh generator
        seeded with 0 when omitted.
    weights : tensor, optional
        Initial ``W_b`` in {-1, +1}, shape ``[rows, cols]``; default all +1 (all P).
    c : float or tensor, optional
        Initial hidden state in [0, 1]; default the card's ``c_init``.

    Attributes
    ----------
    ap : bool tensor ``[rows, cols]``
        True where the device is AP (``W_b = -1``).
    c : float64 tensor ``[rows, cols]``
        Hidden state.
    r_p, delta0 : float64 tensors ``[rows, cols]``
        Per-device ``R_P`` (ohm) and ``Delta0``.
    energy_write, energy_gate, energy_read : float64 tensors ``[rows, cols]``
        Energy spent per device (J).
    write_pulses, gate_pulses, reads, flips : int64 tensors ``[rows, cols]``
        Pulse counts per device.

    Raises
    ------
    ValueError
        If the card is not an ``mtj_synapse``, a size is < 1, ``weights`` is not +-1 of the right
        shape, or ``c`` leaves [0, 1].
    """

    def __init__(
        self,
        card: DeviceCard | str,
        rows: int,
        cols: int,
        generator: torch.Generator | None = None,
        weights: torch.Tensor | None = None,
        c: float | torch.Tensor | None = None,
    ) -> None:
        if not isinstance(card, DeviceCard):
            card = load_card(card)
        if card.kind != "mtj_synapse":
            raise ValueError(f"card {card.name!r}: kind is {card.kind!r}, need 'mtj_synapse'")
        if rows < 1 or cols < 1:
            raise ValueError(f"array shape must be >= 1 x 1, got {rows} x {cols}")
        self.card = card
        self.rows, self.cols = int(rows), int(cols)
        self.read_p = MTJRead.from_card(card)
        self.sw = MTJSwitching.from_card(card)
        self.mi = MagnetoIonic.from_card(card)
        self.sot = SOTWrite.from_card(card) if card.variant == "sot" else None
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        self.generator = generator
        shape = (self.rows, self.cols)
        self.r_p = self.read_p.sample_r_p(shape, generator)
        self.delta0 = self.sw.sample_delta0(shape, generator)
        if weights is None:
            self.ap = torch.zeros(shape, dtype=torch.bool)
        else:
            w = torch.as_tensor(weights)
            if tuple(w.shape) != shape or not bool(((w == 1) | (w == -1)).all()):
                raise ValueError(f"weights must be +-1 of shape {shape}")
            self.ap = w < 0
        c0 = self.mi.c_init if c is None else c
        self.c = torch.as_tensor(c0, dtype=torch.float64).expand(shape).clone()
        if not bool(((self.c >= 0) & (self.c <= 1)).all()):
            raise ValueError("c must lie in [0, 1]")
        zeros = torch.zeros(shape, dtype=torch.float64)
        self.energy_write, self.energy_gate, self.energy_read = zeros.clone(), zeros.clone(), zeros
        counts = torch.zeros(shape, dtype=torch.int64)
        self.write_pulses, self.gate_pulses = counts.clone(), counts.clone()
        self.reads, self.flips = counts.clone(), counts

    # -- selection -------------------------------------------------------------------------
    def index(self, where: Where = None) -> torch.Tensor:
        """Flat (row-major) int64 indices of the devices selected by ``where``.

        Raises
        ------
        ValueError
            If a mask has the wrong shape or an index is out of range.
        """
        n = self.rows * self.cols
        if where is None:
            return torch.arange(n)
        if isinstance(where, tuple):
            r, c = (torch.as_tensor(t, dtype=torch.int64).reshape(-1) for t in where)
            if r.shape != c.shape:
                raise ValueError("where=(rows, cols) needs two 1-D tensors of equal length")
            if bool(((r < 0) | (r >= self.rows) | (c < 0) | (c >= self.cols)).any()):
                raise ValueError(f"where: index outside the {self.rows} x {self.cols} array")
            return r * self.cols + c
        mask = torch.as_tensor(where)
        if mask.dtype != torch.bool or tuple(mask.shape) != (self.rows, self.cols):
            raise ValueError(f"where mask must be bool of shape ({self.rows}, {self.cols})")
        return mask.reshape(-1).nonzero().reshape(-1)

    def _arg(self, value, n: int, name: str) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
        if t.numel() not in (1, n):
            raise ValueError(f"{name}: need one value or {n} (one per selected device)")
        return t.expand(n)

    # -- state ------------------------------------------------------------------------------
    def weights(self) -> torch.Tensor:
        """True ``W_b`` (no read, no noise): float64 ``[rows, cols]`` in {-1, +1}."""
        return torch.where(self.ap, -1.0, 1.0).to(torch.float64)

    def delta(self, where: Where = None) -> torch.Tensor:
        """``Delta(c) = Delta0 + c dKi area / (k_B T)`` of the selected devices."""
        return self._delta(self.index(where))

    def _delta(self, idx: torch.Tensor) -> torch.Tensor:
        shift = magneto_ionic.delta_shift(
            self.c.reshape(-1)[idx], self.mi.dKi, self.read_p.area, self.sw.T
        )
        return self.delta0.reshape(-1)[idx] + shift

    def _ic0(self, delta: torch.Tensor) -> torch.Tensor:
        if self.sot is not None:
            return self.sot.Ic0 * delta / self.sw.Delta0
        return mtj_switching.critical_current_stt(delta, self.sw.alpha, self.sw.eta, self.sw.T)

    def critical_current(self, where: Where = None) -> torch.Tensor:
        """``Ic0(c)`` (A) of the selected devices: STT formula, or SOT ``Jc0 w t`` scaled by
        ``Delta(c) / Delta0`` (nominal)."""
        return self._ic0(self.delta(where))

    def switching_probability(self, where: Where, polarity, amplitude, width) -> torch.Tensor:
        """Probability that one write pulse flips each selected device (no draw, no energy).

        Devices already in the target state get the (tiny) probability of a wrong-way flip
        against the current.
        """
        idx = self.index(where)
        n = idx.numel()
        return self._p_sw(
            idx,
            self._arg(polarity, n, "polarity"),
            self._arg(amplitude, n, "amplitude"),
            self._arg(width, n, "width"),
        )

    def _p_sw(self, idx, pol, amp, wid) -> torch.Tensor:
        if bool((amp < 0).any()) or bool((wid < 0).any()):
            raise ValueError("amplitude and width must be >= 0 (polarity carries the sign)")
        toward = self.ap.reshape(-1)[idx] != (pol < 0)
        i_eff = torch.where(toward, amp, -amp)
        d = self._delta(idx)
        k_sun = mtj_switching.sun_prefactor(d, self.sw.P_spin, self.sw.moment(self.read_p.area))
        return mtj_switching.switching_probability(
            i_eff, wid, self._ic0(d), d, self.sw.tau0, self.sw.b, k_sun
        )

    def _r_ap_at(self, amp: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # R_AP = V / I of AP devices ``idx`` at the bias their pulse current ``amp`` builds up
        # (mtj_read.bias_at_current_ap). A pulse train at one current (the card's write or flip
        # current: every pulse the engine sends) is answered from a per-device table made once
        # per current: the same elementwise float64 operations on every device, so the same
        # bits as solving for the selected devices, without 12 Newton steps per pulse.
        i_ap = amp.clamp(min=1e-300)
        a0 = float(i_ap[0])
        if not bool((i_ap == a0).all()):
            v = mtj_read.bias_at_current_ap(i_ap, self.r_p.reshape(-1)[idx], *self._tmr())
            return v / i_ap
        cache = self.__dict__.setdefault("_r_ap_cache", {})
        table = cache.get(a0)
        if table is None:
            full = torch.full((self.rows * self.cols,), a0, dtype=torch.float64)
            table = mtj_read.bias_at_current_ap(full, self.r_p.reshape(-1), *self._tmr()) / full
            cache[a0] = table
        return table[idx]

    def _tmr(self) -> tuple[float, float]:
        return self.read_p.TMR0, self.read_p.V_h

    # -- transactions -----------------------------------------------------------------------
    def write(self, where: Where, polarity, amplitude, width) -> torch.Tensor:
        """Apply one write pulse to each selected device; return which devices flipped (bool).

        Parameters
        ----------
        polarity : +1 or -1 (number or tensor)
            Target ``W_b``: +1 drives towards P, -1 towards AP.
        amplitude : float or tensor
            Pulse current in A (>= 0).
        width : float or tensor
            Pulse width in s (>= 0).
        """
        idx = self.index(where)
        n = idx.numel()
        amp = self._arg(amplitude, n, "amplitude")
        wid = self._arg(width, n, "width")
        p_sw = self._p_sw(idx, self._arg(polarity, n, "polarity"), amp, wid)
        flip = torch.rand(n, generator=self.generator, dtype=torch.float64) < p_sw
        ap = self.ap.reshape(-1)
        was_ap = ap[idx]
        if self.sot is not None:
            r = torch.full((n,), self.sot.R_hm, dtype=torch.float64)
        else:
            # The pulse sees the state it starts from: R_P, or R_AP at the bias it builds up.
            r = self.r_p.reshape(-1)[idx].clone()
            if bool(was_ap.any()):
                r[was_ap] = self._r_ap_at(amp[was_ap], idx[was_ap])
        self.energy_write.reshape(-1).index_add_(0, idx, amp**2 * r * wid)
        self.write_pulses.reshape(-1).index_add_(0, idx, torch.ones(n, dtype=torch.int64))
        self.flips.reshape(-1).index_add_(0, idx, flip.to(torch.int64))
        ap[idx] = was_ap ^ flip
        return flip

    def gate(self, where: Where, voltage, width) -> None:
        """Apply one gate pulse (``voltage`` V, ``width`` s) to each selected device."""
        idx = self.index(where)
        n = idx.numel()
        vg = self._arg(voltage, n, "voltage")
        wid = self._arg(width, n, "width")
        if bool((wid < 0).any()):
            raise ValueError("width must be >= 0")
        c = self.c.reshape(-1)
        c[idx] = self.mi.evolve(c[idx], vg, wid)
        self.energy_gate.reshape(-1).index_add_(0, idx, self.mi.gate_energy(vg, wid))
        self.gate_pulses.reshape(-1).index_add_(0, idx, torch.ones(n, dtype=torch.int64))

    def conductance(self, where: Where = None, voltage=None) -> torch.Tensor:
        """Noise-free conductance (S) of the selected devices at ``voltage`` (default V_read)."""
        idx = self.index(where)
        v = self.read_p.V_read if voltage is None else voltage
        v = self._arg(v, idx.numel(), "voltage")
        s = self.ap.reshape(-1)[idx].to(torch.float64)
        return mtj_read.conductance(
            s, v, self.r_p.reshape(-1)[idx], self.read_p.TMR0, self.read_p.V_h
        )

    def read(self, where: Where = None, voltage=None) -> torch.Tensor:
        """One noisy read: conductance (S) of each selected device; counts read energy."""
        idx = self.index(where)
        sel = (idx // self.cols, idx % self.cols)
        v = self.read_p.V_read if voltage is None else voltage
        v = self._arg(v, idx.numel(), "voltage")
        g = self.conductance(sel, v)
        self.energy_read.reshape(-1).index_add_(0, idx, v**2 * g * self.read_p.t_read)
        self.reads.reshape(-1).index_add_(0, idx, torch.ones(idx.numel(), dtype=torch.int64))
        return self.read_p.noisy(g, self.generator)

    def reference_conductance(self) -> float:
        """Sense threshold (S): mid-way between nominal ``G_P`` and ``G_AP`` at ``V_read``."""
        r_p = self.read_p.R_P
        v = torch.tensor(self.read_p.V_read, dtype=torch.float64)
        g_ap = 1.0 / mtj_read.resistance_ap(v, r_p, self.read_p.TMR0, self.read_p.V_h)
        return float(0.5 * (1.0 / r_p + g_ap))

    def sense(self, where: Where = None) -> torch.Tensor:
        """Sensed ``W_b`` (float64, +-1) of the selected devices from one noisy read."""
        g = self.read(where)
        return torch.where(g > self.reference_conductance(), 1.0, -1.0).to(torch.float64)

    def energy(self) -> dict[str, float]:
        """Total energy (J) per kind and pulse counts over the whole array."""
        return {
            "write_J": float(self.energy_write.sum()),
            "gate_J": float(self.energy_gate.sum()),
            "read_J": float(self.energy_read.sum()),
            "write_pulses": int(self.write_pulses.sum()),
            "gate_pulses": int(self.gate_pulses.sum()),
            "reads": int(self.reads.sum()),
            "flips": int(self.flips.sum()),
        }
