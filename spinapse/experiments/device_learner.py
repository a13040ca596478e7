"""Device-backed learners: the metaplastic BNN whose binary weights live in simulated synapses.

Both learners implement the runner's :class:`spinapse.experiments.learner.Learner` protocol and hold
one :class:`spinapse.behavioral.metaplastic_synapse.MetaplasticSynapseArray` per layer (``[out,
in]`` devices). The forward pass always uses the weights the devices actually hold (a failed write
shows up as a wrong weight); the gradient reaches the learner as the gradient with respect to
``W_b`` (straight-through, as in the float model). BatchNorm is digital and task-dependent, with
plain Adam, exactly as in :class:`spinapse.experiments.learner.GoldenLearner`.

- :class:`DigitalDeviceLearner` (mode ``digital``): ``W_h`` stays in digital memory and is trained
  with Adam_meta (``m`` per layer); a device is written only when ``sign(W_h)`` flips, with
  write-verify (pulse, sense, retry up to ``max_tries``) at a strong pulse.
- :class:`HiddenStateDeviceLearner` (mode ``device``): no ``W_h``. Adam's step ``d`` (moments
  kept digitally) is turned into pulses. Where ``d`` grows ``|W|`` (``d W_b > 0``) a positive
  gate pulse of width ``tau_MI(V_g) |d| / consolidation_scale`` raises the hidden state ``c``,
  so ``c = 1 - exp(-G / consolidation_scale)`` of the accumulated growth ``G`` (consolidation).
  Where ``d`` pushes towards a flip the device gets a write pulse towards ``sign(d)`` whose width
  is proportional to ``|d|``; its success probability falls with ``c``: with ``Ic0``
  proportional to ``Delta(c)`` and ``b = 1``,
  ``P_sw ~ (|d| / flip_scale) exp(-(Delta(c) - Delta0))``, the probabilistic metaplasticity of
  Zohora et al. (Sci. Rep. 2024) realised by the magneto-ionic barrier shift. The written
  devices are sensed; those that flipped hold a new, weak weight and get a long negative gate
  pulse that erases their consolidation (``c -> c e^-5``), as ``|W_h|`` restarts from zero when
  ``sign(W_h)`` flips in the digital rule.

Initial weights come from the BNN's seeded initialisation (``sign(W_h)``), programmed into the
arrays at construction (not counted as training writes). Evaluation reads the devices' states;
only the reads of write-verify are charged as read energy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from spinapse.behavioral import magneto_ionic, mtj_switching
from spinapse.behavioral.card import DeviceCard
from spinapse.behavioral.metaplastic_synapse import MetaplasticSynapseArray
from spinapse.behavioral.write_verify import write_verify
from spinapse.golden.float_model.adam_meta import AdamMeta, bnn_optimizer
from spinapse.golden.float_model.binarized import binarize, sign_ste
from spinapse.golden.float_model.bnn import BNN

ARRAY_STATE = ("ap", "c", "r_p", "delta0", "energy_write", "energy_gate", "energy_read")
ARRAY_COUNTS = ("write_pulses", "gate_pulses", "reads", "flips")


def nominal_critical_current(array: MetaplasticSynapseArray) -> float:
    """``Ic0`` (A) of the card's nominal device at ``c = 0``."""
    if array.sot is not None:
        return array.sot.Ic0
    sw = array.sw
    return float(mtj_switching.critical_current_stt(sw.Delta0, sw.alpha, sw.eta, sw.T))


def nominal_rate(array: MetaplasticSynapseArray, current: float) -> float:
    """Switching rate (1/s) of the nominal device at ``c = 0`` under ``current`` (A)."""
    sw = array.sw
    k_sun = mtj_switching.sun_prefactor(sw.Delta0, sw.P_spin, sw.moment(array.read_p.area))
    ic0 = nominal_critical_current(array)
    i = torch.tensor(current, dtype=torch.float64)
    return float(mtj_switching.switching_rate(i, ic0, sw.Delta0, sw.tau0, sw.b, k_sun))


class _DeviceLearnerBase:
    """Shared parts: arrays, forward with device weights, task-dependent BN, checkpoints."""

    def __init__(
        self,
        model: BNN,
        card: DeviceCard,
        seed: int,
        lr: float,
        batch_size: int,
        test_batch_size: int,
    ) -> None:
        if batch_size < 2 or test_batch_size < 1:
            raise ValueError(
                f"batch_size must be >= 2 (training uses batch statistics) and test_batch_size "
                f">= 1, got {batch_size} and {test_batch_size}"
            )
        self.model = model
        self.card = card
        self.lr = float(lr)
        self.batch_size, self.test_batch_size = int(batch_size), int(test_batch_size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.arrays = [
            MetaplasticSynapseArray(
                card,
                lin.out_features,
                lin.in_features,
                generator=self.generator,
                weights=binarize(lin.weight.detach()).to(torch.float64),
            )
            for lin in model.linears
        ]
        self.bn_copies: list[list[dict[str, torch.Tensor]]] = []
        self.log: list[dict[str, Any]] = []
        # Training samples that reached a step: the denominator of energy per sample (plan).
        self.train_samples = 0
        # Training set of the task in progress; its population statistics (measured with the
        # weights the devices hold) are stale after every epoch.
        self._current_x: torch.Tensor | None = None
        self._stale = False

    def _refresh_statistics(self) -> None:
        if self._stale and self._current_x is not None:
            if self.model.test_statistics == "population":
                self.model.store_statistics(self._current_x, self.device_weights())
        self._stale = False

    # -- forward ------------------------------------------------------------------------------
    def device_weights(self) -> list[torch.Tensor]:
        """``W_b`` held by each layer's devices, float32 ``[out, in]``."""
        return [a.weights().to(torch.float32) for a in self.arrays]

    def forward(self, x: torch.Tensor, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits of the BNN computed with ``weights`` (device ``W_b``) instead of sign(W_h).

        The gradient with respect to each weight lands in ``model.linears[i].weight.grad``
        (straight-through: ``W_b + (W - W.detach())`` has the value ``W_b``).
        """
        n = len(self.model.linears)
        for i, (lin, bn) in enumerate(zip(self.model.linears, self.model.bns)):
            w = weights[i] + (lin.weight - lin.weight.detach())
            x = bn(F.linear(x, w))
            if i < n - 1:
                x = sign_ste(x)
        return x

    # -- runner hooks ---------------------------------------------------------------------------
    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
        self.model.train()
        order = torch.randperm(x.shape[0], generator=generator)
        total, batches = 0.0, 0
        for idx in torch.split(order, self.batch_size):
            if idx.numel() < 2:
                continue
            self.model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.forward(x[idx], self.device_weights()), y[idx])
            loss.backward()
            self.step()
            self.train_samples += int(idx.numel())
            total += float(loss.detach())
            batches += 1
        self._current_x, self._stale = x, True
        return total / max(batches, 1)

    def step(self) -> None:  # pragma: no cover - each mode defines it
        raise AssertionError("subclasses define step()")

    def end_task(self, index: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(self.bn_copies) != index:
            raise ValueError(f"end_task({index}) after {len(self.bn_copies)} finished tasks")
        self._current_x, self._stale = x, True
        self._refresh_statistics()
        self.bn_copies.append(self.model.bn_state())
        self.log.append({"after_task": index, **self.device_report()})

    @torch.no_grad()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.eval()
        weights = self.device_weights()
        bounds = list(range(0, x.shape[0], self.test_batch_size)) + [x.shape[0]]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < 2:
            bounds.pop(-2)
        correct = 0
        for a, b in zip(bounds[:-1], bounds[1:]):
            correct += int((self.forward(x[a:b], weights).argmax(dim=1) == y[a:b]).sum())
        return correct / x.shape[0]

    def evaluate(self, index: int, x: torch.Tensor, y: torch.Tensor) -> float:
        if index >= len(self.bn_copies):
            self._refresh_statistics()
            return self._accuracy(x, y)
        current = self.model.bn_state()
        self.model.load_bn_state(self.bn_copies[index])
        try:
            return self._accuracy(x, y)
        finally:
            self.model.load_bn_state(current)

    # -- reports and checkpoints ----------------------------------------------------------------
    def failed_writes(self) -> int:
        """Writes that did not reach their target (defined by each mode)."""
        raise AssertionError("subclasses define failed_writes()")

    def device_report(self) -> dict[str, Any]:
        """Totals over all arrays: pulses, flips, failed writes and energies (J)."""
        layers = [a.energy() for a in self.arrays]
        total = {k: sum(layer[k] for layer in layers) for k in layers[0]}
        return {
            "device_writes": total["write_pulses"],
            "flips": total["flips"],
            "failed_writes": self.failed_writes(),
            "write_energy_J": total["write_J"],
            "gate_pulses": total["gate_pulses"],
            "gate_energy_J": total["gate_J"],
            "reads": total["reads"],
            "read_energy_J": total["read_J"],
            "mean_c": [float(a.c.mean()) for a in self.arrays],
            "train_samples": self.train_samples,
            "layers": layers,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "bn_copies": self.bn_copies,
            "arrays": [
                {k: getattr(a, k).clone() for k in ARRAY_STATE + ARRAY_COUNTS} for a in self.arrays
            ],
            "generator": self.generator.get_state(),
            "log": self.log,
            "train_samples": self.train_samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.bn_copies = [list(c) for c in state["bn_copies"]]
        for a, s in zip(self.arrays, state["arrays"]):
            for k in ARRAY_STATE + ARRAY_COUNTS:
                setattr(a, k, s[k].clone())
        self.generator.set_state(state["generator"])
        self.log = list(state["log"])
        self.train_samples = int(state.get("train_samples", 0))


class DigitalDeviceLearner(_DeviceLearnerBase):
    """Mode ``digital``: ``W_h`` in memory (Adam_meta), devices written when ``sign(W_h)`` flips.

    Parameters
    ----------
    model : BNN
        Supplies ``W_h`` (its initial signs program the arrays) and the BatchNorm layers.
    card : DeviceCard
        An ``mtj_synapse`` card.
    meta : sequence of float
        ``m`` of each layer for Adam_meta (>= 0).
    seed : int
        Seed of the arrays' generator (device spread, switching draws, read noise).
    lr, weight_decay, batch_size, test_batch_size
        As :class:`spinapse.experiments.learner.GoldenLearner`.
    write_amplitude : float
        Write-verify pulse current as a multiple of the nominal ``Ic0`` (c = 0), > 0.
    write_width : float
        Write-verify pulse width, s, > 0.
    max_tries : int
        Pulses per write before it counts as failed, >= 1.

    Raises
    ------
    ValueError
        If ``meta`` has the wrong length or a setting is out of range.
    """

    def __init__(
        self,
        model: BNN,
        card: DeviceCard,
        meta: Sequence[float],
        seed: int,
        lr: float = 0.005,
        weight_decay: float = 1e-7,
        batch_size: int = 100,
        test_batch_size: int = 1000,
        write_amplitude: float = 1.2,
        write_width: float = 10e-9,
        max_tries: int = 5,
    ) -> None:
        super().__init__(model, card, seed, lr, batch_size, test_batch_size)
        if len(meta) != len(model.linears):
            raise ValueError(f"meta has {len(meta)} values, the model has {len(model.linears)}")
        if not write_amplitude > 0 or not write_width > 0 or max_tries < 1:
            raise ValueError("write_amplitude, write_width must be > 0 and max_tries >= 1")
        self.meta = [float(m) for m in meta]
        self.weight_decay = float(weight_decay)
        self.write_current = write_amplitude * nominal_critical_current(self.arrays[0])
        self.write_width = float(write_width)
        self.max_tries = int(max_tries)
        self.target = [binarize(lin.weight.detach()) for lin in model.linears]
        self.failed = 0
        self.optimizer = self._fresh_optimizer()

    def _fresh_optimizer(self) -> AdamMeta:
        return bnn_optimizer(self.model, self.meta, self.lr, self.weight_decay)

    def start_task(self, index: int) -> None:
        self.optimizer = self._fresh_optimizer()

    def step(self) -> None:
        self.optimizer.step()
        for i, (lin, arr) in enumerate(zip(self.model.linears, self.arrays)):
            new = binarize(lin.weight.detach())
            flipped = new != self.target[i]
            self.target[i] = new
            if bool(flipped.any()):
                res = write_verify(
                    arr,
                    flipped,
                    new[flipped].to(torch.float64),
                    self.write_current,
                    self.write_width,
                    self.max_tries,
                )
                self.failed += res.failed

    def failed_writes(self) -> int:
        return self.failed

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "target": self.target, "failed": self.failed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.target = [t.clone() for t in state["target"]]
        self.failed = int(state["failed"])
        self.optimizer = self._fresh_optimizer()


class HiddenStateDeviceLearner(_DeviceLearnerBase):
    """Mode ``device``: consolidation in the magneto-ionic state ``c``, flips by write pulses.

    Parameters
    ----------
    model : BNN
        Supplies the initial signs and the BatchNorm layers; its weights only carry gradients.
    card : DeviceCard
        An ``mtj_synapse`` card.
    seed : int
        Seed of the arrays' generator.
    lr, batch_size, test_batch_size
        Adam settings for the step ``d`` and for BatchNorm.
    write_amplitude : float
        Write pulse current as a multiple of the nominal ``Ic0`` (c = 0), in (0, 1]: the
        thermally activated regime, where the barrier shift acts.
    flip_scale : float
        ``|d|`` at which a pulse at ``c = 0`` switches with probability ``1 - 1/e``, > 0.
    consolidation_scale : float
        Accumulated growth that brings ``c`` to ``1 - 1/e``, > 0.
    gate_voltage : float
        ``|V_g|`` of the gate pulses, V, above the card's ``V_th``.

    Raises
    ------
    ValueError
        If a setting is out of range.
    """

    def __init__(
        self,
        model: BNN,
        card: DeviceCard,
        seed: int,
        lr: float = 0.005,
        batch_size: int = 100,
        test_batch_size: int = 1000,
        write_amplitude: float = 0.9,
        flip_scale: float = 0.05,
        consolidation_scale: float = 1.0,
        gate_voltage: float = 3.0,
    ) -> None:
        super().__init__(model, card, seed, lr, batch_size, test_batch_size)
        if not 0 < write_amplitude <= 1:
            raise ValueError(
                f"write_amplitude must be in (0, 1] for mode device, got {write_amplitude}"
            )
        if not flip_scale > 0 or not consolidation_scale > 0:
            raise ValueError("flip_scale and consolidation_scale must be > 0")
        mi = self.arrays[0].mi
        if not gate_voltage > mi.V_th:
            raise ValueError(f"gate_voltage must exceed the card's V_th = {mi.V_th} V")
        self.write_current = write_amplitude * nominal_critical_current(self.arrays[0])
        # Width at which a pulse of write_current switches the nominal c = 0 device with
        # probability 1 - 1/e: the unit that maps |d| / flip_scale onto pulse widths.
        self.t_ref = 1.0 / nominal_rate(self.arrays[0], self.write_current)
        self.flip_scale = float(flip_scale)
        self.consolidation_scale = float(consolidation_scale)
        self.gate_voltage = float(gate_voltage)
        self.reset_decays = 5.0
        self.tau_gate = float(magneto_ionic.tau_mi(gate_voltage, mi.tau_ref, mi.V_ref, mi.V_0))
        self.betas, self.eps = (0.9, 0.999), 1e-8
        self.start_task(0)

    def start_task(self, index: int) -> None:
        self.moments = [
            (torch.zeros_like(lin.weight), torch.zeros_like(lin.weight))
            for lin in self.model.linears
        ]
        self.t = 0
        self.bn_optimizer = torch.optim.Adam(self.model.bn_parameters(), lr=self.lr)

    @torch.no_grad()
    def step(self) -> None:
        self.bn_optimizer.step()
        self.t += 1
        b1, b2 = self.betas
        for lin, arr, (m, v) in zip(self.model.linears, self.arrays, self.moments):
            g = lin.weight.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(1 - b2**self.t)).add_(self.eps)
            d = -(self.lr / (1 - b1**self.t)) * m / denom
            w = arr.weights().to(d.dtype)
            grow = d * w > 0
            shrink = d * w < 0
            mag = d.abs().to(torch.float64)
            if bool(grow.any()):
                arr.gate(
                    grow, self.gate_voltage, self.tau_gate * mag[grow] / self.consolidation_scale
                )
            if bool(shrink.any()):
                arr.write(
                    shrink,
                    -w[shrink].to(torch.float64),
                    self.write_current,
                    self.t_ref * mag[shrink] / self.flip_scale,
                )
                # A device that did flip holds a new, weak weight: sense it and erase its
                # consolidation with a long negative gate pulse (c -> c exp(-reset_decays)).
                flipped = torch.zeros_like(shrink)
                flipped[shrink] = arr.sense(shrink).to(w.dtype) != w[shrink]
                if bool(flipped.any()):
                    arr.gate(flipped, -self.gate_voltage, self.reset_decays * self.tau_gate)

    def failed_writes(self) -> int:
        # Every write pulse here is a deliberate trial; the ones that did not switch.
        return sum(int(a.write_pulses.sum() - a.flips.sum()) for a in self.arrays)
