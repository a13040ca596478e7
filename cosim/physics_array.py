"""The array side of ``SynapseArray`` in physics: row commands executed on torch device models.

:class:`PhysicsSynapseArray` holds one layer's ``rows x lanes`` metaplastic synapses
(:class:`spinapse.behavioral.metaplastic_synapse.MetaplasticSynapseArray`: MTJ bit + magneto-ionic
state ``c``) and executes whole row commands of the training engine with the card's pulse map
(:class:`spinapse.behavioral.pulse_map.PulseMap`, ``docs/pulse_map.md``). Two callers use the very
same object type, so they draw the same numbers from equally seeded generators:

- the co-simulation bridge (:mod:`spinapse.cosim.tb_bridge`), which answers the RTL engine's
  ``WRITE``/``GATE`` beats one row per Python call (:meth:`execute`);
- the golden prediction (:mod:`spinapse.cosim.bridge_case`), where
  :class:`~spinapse.golden.integer_model.learning.IntegerEngine` calls :meth:`write` (digital
  write-verify, the interface of ``BinaryArrayModel``) or :meth:`gate_all` (device mode, rows in
  order, only rows with a non-zero code: the order of the RTL update engine).

Reads are sensed from the true device state (the card's read noise, 1.5 %, is far below the P/AP
margin of TMR 110 %, so a noisy sense would never differ): they draw nothing and are charged read
energy ``V_read^2 G t_read`` per row read (:meth:`account_reads`).

Faults (:class:`Faults`): a seeded fraction of devices stuck at P or AP (drawn once, at
construction, from the generator) never change state, though they take their pulses and energy;
``write_fail`` makes a switching event fail with that probability on top of the physics (one draw
per pulsed device and per pulse).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from spinapse.behavioral.metaplastic_synapse import MetaplasticSynapseArray
from spinapse.behavioral.pulse_map import PulseMap

OP_WRITE, OP_GATE = 1, 2  # spinapse.rtl.synapse_array.SynapseOp values (rtl/ stays torch-free)
COUNTERS = (
    "write_pulses",
    "flips",
    "failed_writes",
    "stuck_failures",
    "injected_failures",
    "gate_pulses",
    "erase_pulses",
    "row_commands",
    "row_reads",
    "final_failures",
    "final_failures_stuck",
)
STATE = ("ap", "c", "energy_write", "energy_gate", "energy_read")
DEV_COUNTS = ("write_pulses", "gate_pulses", "reads", "flips")


@dataclass(frozen=True)
class Faults:
    """Device faults: stuck fractions and an extra write-failure rate.

    Attributes
    ----------
    stuck_p, stuck_ap : float
        Fractions of devices stuck at P (``W_b = +1``) and at AP (``W_b = -1``), each in [0, 1],
        together at most 1.
    write_fail : float
        Probability that a switching event fails on top of the physics, in [0, 1).

    Raises
    ------
    ValueError
        Naming the field and its allowed range.
    """

    stuck_p: float = 0.0
    stuck_ap: float = 0.0
    write_fail: float = 0.0

    def __post_init__(self) -> None:
        for name in ("stuck_p", "stuck_ap"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
                raise ValueError(f"faults.{name} must be a fraction in [0, 1], got {v!r}")
        if self.stuck_p + self.stuck_ap > 1.0:
            raise ValueError("faults.stuck_p + faults.stuck_ap must be at most 1")
        v = self.write_fail
        if not (isinstance(v, int | float) and 0.0 <= v < 1.0):
            raise ValueError(f"faults.write_fail must be in [0, 1), got {v!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def bits_of(word: int, lanes: int) -> np.ndarray:
    """bool ``[lanes]`` of an int (lane ``l`` at bit ``l``)."""
    raw = int(word).to_bytes((lanes + 7) // 8, "little")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")[:lanes].astype(bool)


def codes_of(word: int, lanes: int, code_bits: int) -> np.ndarray:
    """int64 ``[lanes]`` of packed ``code_bits`` fields (lane ``l`` at ``[l*b, (l+1)*b)``)."""
    bits = bits_of(word, lanes * code_bits).reshape(lanes, code_bits).astype(np.int64)
    return bits @ (1 << np.arange(code_bits, dtype=np.int64))


def word_of(bits: np.ndarray) -> int:
    """Packed int of a bool ``[lanes]`` (lane ``l`` at bit ``l``)."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


class PhysicsSynapseArray:
    """``rows x lanes`` physics synapses behind one ``SynapseArray`` port (row commands).

    Parameters
    ----------
    card : DeviceCard
        An ``mtj_synapse`` card with a ``[pulses]`` table.
    rows, lanes : int
        Layer shape: ``rows`` presynaptic inputs, ``lanes`` postsynaptic neurons (``>= 1``).
    generator : torch.Generator
        Every draw (device spread, faults, switching) comes from it, in command order.
    init_bits : numpy.ndarray
        bool ``[rows, lanes]``: initial binary weights (True: ``W_b = +1``, P).
    faults : Faults, optional
    code_bits : int
        Width of a ``GATE`` code (``IntegerRule.code_bits``).
    misorder_pulse : int, optional
        For negative tests only: the row command with this index (0-based, counting write-pulse
        commands) draws its devices in reverse lane order, a deliberately mis-ordered pulse.

    Attributes
    ----------
    dev : MetaplasticSynapseArray
        The devices (state ``ap``, ``c`` float64, energies in J).
    bits : numpy.ndarray
        bool ``[rows, lanes]``, the sensed weights (kept equal to ``~dev.ap``).
    stuck : torch.Tensor
        bool ``[rows, lanes]``, stuck devices.
    counts : dict[str, int]
        ``write_pulses`` (device pulses of WRITE or flip kind), ``flips`` (state changes),
        ``failed_writes`` (write pulses that left the device where it was; equals
        ``stuck_failures + injected_failures`` plus the physics' own misses),
        ``stuck_failures``, ``injected_failures``, ``gate_pulses`` (consolidating),
        ``erase_pulses``, ``row_commands``, ``row_reads``; digital mode: ``final_failures``
        (lanes still wrong after the last write-verify attempt: the RTL ``failures`` counter)
        and ``final_failures_stuck`` (those of them on stuck devices).
    retry_limit : int
        Write-verify retries after the first pulse (``IntegerRule.retry_limit``), to tell the
        last attempt of a write from the others.
    time_s : float
        Simulated device time: per row command its longest pulse (plus the erase pulse), per
        row read ``t_read`` (rows are pulsed one at a time, lanes in parallel).

    Raises
    ------
    ValueError
        If the card has no pulse map or a shape disagrees.
    """

    def __init__(
        self,
        card,
        rows: int,
        lanes: int,
        generator: torch.Generator,
        init_bits: np.ndarray,
        faults: Faults | None = None,
        code_bits: int = 4,
        misorder_pulse: int | None = None,
        retry_limit: int = 3,
    ) -> None:
        init_bits = np.asarray(init_bits, dtype=bool)
        if init_bits.shape != (rows, lanes):
            raise ValueError(f"init_bits must have shape ({rows}, {lanes}), got {init_bits.shape}")
        self.pulses = PulseMap.from_card(card)
        self.faults = faults or Faults()
        self.rows, self.lanes, self.code_bits = rows, lanes, code_bits
        self.generator = generator
        w = torch.from_numpy(np.where(init_bits, 1.0, -1.0))
        self.dev = MetaplasticSynapseArray(card, rows, lanes, generator=generator, weights=w)
        f = self.faults
        if f.stuck_p > 0 or f.stuck_ap > 0:
            u = torch.rand((rows, lanes), generator=generator, dtype=torch.float64)
            self.stuck_p = u < f.stuck_p
            self.stuck_ap = (u >= f.stuck_p) & (u < f.stuck_p + f.stuck_ap)
        else:
            self.stuck_p = torch.zeros((rows, lanes), dtype=torch.bool)
            self.stuck_ap = self.stuck_p.clone()
        self.stuck = self.stuck_p | self.stuck_ap
        self.dev.ap[self.stuck_p] = False
        self.dev.ap[self.stuck_ap] = True
        self.bits = (~self.dev.ap).numpy().copy()
        # Conductance at V_read of every device, kept in step with its state (recomputed for the
        # devices a pulse switched): a step charges a read of all rows, and recomputing 50 000
        # conductances per step was three quarters of the golden prediction's time.
        self._g = self.dev.conductance(None).reshape(rows, lanes)
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.time_s = 0.0
        self.misorder_pulse = misorder_pulse
        self._pulse_index = 0
        self.retry_limit = retry_limit
        # (pulse index, devices, positions that failed) of the first pulses with a miss: the
        # negative test mis-orders one of them (a pulse where every device switches would come
        # out the same in any order).
        self.missed_pulses: list[tuple[int, int, list[int]]] = []
        self._verify = (-1, None, 0)  # (row, lanes still wrong, attempt) of the running write

    # -- the SynapseArray side ---------------------------------------------------------------
    def sense(self) -> np.ndarray:
        """Binary weights, bool ``[rows, lanes]`` (True: +1); a view, do not modify."""
        return self.bits

    def account_reads(self, row: int | None = None, times: int = 1) -> None:
        """Charge ``times`` reads of one row (``row``) or of every row (``None``): read energy
        ``V_read^2 G(state) t_read`` per device, ``reads`` counts, and ``t_read`` per row read."""
        d = self.dev
        v = d.read_p.V_read
        if row is None:
            d.energy_read += (v * v * d.read_p.t_read * times) * self._g
            d.reads += times
            n_rows = self.rows * times
        else:
            d.energy_read[row] += (v * v * d.read_p.t_read * times) * self._g[row]
            d.reads[row] += times
            n_rows = times
        self.counts["row_reads"] += n_rows
        self.time_s += n_rows * d.read_p.t_read

    def start_step(self, reads_per_row: int) -> None:
        """Start of a training step: charge its reads of every row (forward pass, and the
        digital update sweep) and forget the write-verify of the previous step."""
        self.account_reads(None, reads_per_row)
        self._verify = (-1, None, 0)

    def write(self, row: int, enable: np.ndarray, polarity: np.ndarray) -> None:
        """Digital ``WRITE``: one ``write_current`` pulse towards ``polarity`` (bool ``[lanes]``)
        on the ``enable`` lanes of ``row``, then the verify ``READ`` of the row (charged).

        Within a step the engine retries only the lanes still wrong, on the same row, so a
        pulse on a subset of the previous pulse's failed lanes of the same row is its next
        attempt; lanes still wrong after attempt ``retry_limit`` are final failures."""
        p = self.pulses
        self.counts["row_commands"] += 1
        enable = np.asarray(enable, dtype=bool)
        cols = np.flatnonzero(enable)
        pol = np.asarray(polarity, dtype=bool)
        self._switch(row, cols, pol[cols], p.write_current, p.write_width)
        self.time_s += p.write_width
        self.account_reads(row)
        last_row, last_wrong, attempt = self._verify
        retry = last_row == row and last_wrong is not None and not (enable & ~last_wrong).any()
        attempt = attempt + 1 if retry else 0
        wrong = enable & (self.bits[row] != pol)
        if attempt == self.retry_limit:
            self.counts["final_failures"] += int(wrong.sum())
            self.counts["final_failures_stuck"] += int((wrong & self.stuck[row].numpy()).sum())
        self._verify = (row, wrong, attempt)

    def gate_rows(self, rows, enable, polarity, code) -> None:
        """Device-mode ``GATE`` beats of one training step, rows in the given (ascending) order.

        Per device: where the polarity agrees with the sensed bit, a consolidating gate pulse
        (``c`` rises); where it disagrees, a flip pulse towards the polarity, and an erasing gate
        pulse if the device flipped. Each device takes at most one beat per step (the update
        engine visits a row once), so the step is applied in two vectorised calls (the flip
        pulses, then every gate pulse), devices in row-major order; the golden side
        (:meth:`gate_all`) makes the same calls.

        Parameters
        ----------
        rows : sequence of int
            Row of each beat, ascending, each once.
        enable, polarity : numpy.ndarray
            bool ``[len(rows), lanes]``.
        code : numpy.ndarray
            int ``[len(rows), lanes]`` in ``[0, 2**code_bits)``; code 0 is no pulse.
        """
        p = self.pulses
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        code = np.asarray(code, dtype=np.int64)
        polarity = np.asarray(polarity, dtype=bool)
        enable = np.asarray(enable, dtype=bool) & (code > 0)
        agree = enable & (polarity == self.bits[rows])
        against = enable & ~agree
        self.counts["row_commands"] += int(rows.size)
        flip_w = np.where(against, code * p.flip_width, 0.0)
        gate_w = np.where(agree, code * p.gate_width, 0.0)
        r_idx, l_idx = np.nonzero(against)
        flipped_rows = np.zeros(rows.size, dtype=bool)
        # Gate pulses of the step: erasing ones on the devices that flipped, consolidating ones
        # on the agreeing devices. The two sets are disjoint and a gate pulse acts on each
        # device alone, so one call with a voltage and a width per device gives the same
        # numbers as two (one torch call fewer per layer and step).
        g_rows, g_cols, g_volt, g_width = [], [], [], []
        if r_idx.size:
            dev_rows = rows[r_idx]
            done = self._switch(
                dev_rows,
                l_idx,
                polarity[r_idx, l_idx],
                p.flip_current,
                torch.from_numpy(flip_w[r_idx, l_idx]),
            )
            if done.any():
                n = int(done.sum())
                g_rows.append(dev_rows[done])
                g_cols.append(l_idx[done])
                g_volt.append(np.full(n, p.erase_voltage))
                g_width.append(np.full(n, p.erase_width))
                self.counts["erase_pulses"] += n
                flipped_rows[r_idx[done]] = True
        r_idx, l_idx = np.nonzero(agree)
        if r_idx.size:
            g_rows.append(rows[r_idx])
            g_cols.append(l_idx)
            g_volt.append(np.full(r_idx.size, p.gate_voltage))
            g_width.append(gate_w[r_idx, l_idx])
            self.counts["gate_pulses"] += int(r_idx.size)
        if g_rows:
            sel = (
                torch.from_numpy(np.concatenate(g_rows)),
                torch.from_numpy(np.concatenate(g_cols)),
            )
            volt = torch.from_numpy(np.concatenate(g_volt).astype(np.float64))
            self.dev.gate(sel, volt, torch.from_numpy(np.concatenate(g_width).astype(np.float64)))
        longest = np.maximum(flip_w.max(axis=1) + flipped_rows * p.erase_width, gate_w.max(axis=1))
        self.time_s += float(longest.sum())

    def gate_all(self, polarity: np.ndarray, code: np.ndarray) -> None:
        """Device mode, golden side: the beats the RTL update engine sends in one step (one per
        row with a non-zero code, rows in order), through :meth:`gate_rows`.
        ``polarity`` bool, ``code`` int ``[rows, lanes]``."""
        rows = np.flatnonzero((code > 0).any(axis=1))
        self.gate_rows(rows, code[rows] > 0, polarity[rows], code[rows])

    def execute(self, op: int, row: int, enable: int, polarity: int) -> None:
        """Bridge side: one RTL ``WRITE`` beat given as its packed fields (``enable`` and
        ``polarity`` lane ``l`` at bit ``l``); device-mode ``GATE`` beats go to
        :meth:`gate_rows` a whole step at a time.

        Raises
        ------
        ValueError
            If ``op`` is not WRITE or ``row`` is out of range.
        """
        if not 0 <= row < self.rows:
            raise ValueError(f"row must be in [0, {self.rows}), got {row}")
        if op != OP_WRITE:
            raise ValueError(f"op must be WRITE ({OP_WRITE}), got {op}")
        self.write(row, bits_of(enable, self.lanes), bits_of(polarity, self.lanes))

    # -- physics ---------------------------------------------------------------------------------
    def _switch(self, rows, cols: np.ndarray, polarity, current, width) -> np.ndarray:
        """Write pulses on devices ``(rows, cols)`` (int arrays of equal length, or one row
        and its lanes) towards ``polarity`` (bool, one per device); returns a bool per device:
        it changed state. Stuck devices and the extra failure rate are applied here."""
        cols = np.asarray(cols, dtype=np.int64)
        rows = np.broadcast_to(np.asarray(rows, dtype=np.int64), cols.shape).copy()
        n = cols.size
        if n == 0:
            return np.zeros(0, dtype=bool)
        if self.misorder_pulse is not None and self._pulse_index == self.misorder_pulse:
            order = np.arange(n)[::-1].copy()
        else:
            order = np.arange(n)
        self._pulse_index += 1
        rows_t, cols_t = torch.from_numpy(rows[order]), torch.from_numpy(cols[order])
        if isinstance(width, torch.Tensor):
            width = width[torch.from_numpy(order)]
        pol = torch.from_numpy(np.where(np.asarray(polarity, dtype=bool)[order], 1.0, -1.0))
        d = self.dev
        flip = d.write((rows_t, cols_t), pol, current, width)
        undo = self.stuck[rows_t, cols_t]
        self.counts["stuck_failures"] += int(undo.sum())
        if self.faults.write_fail > 0:
            lost = torch.rand(n, generator=self.generator, dtype=torch.float64)
            lost = (lost < self.faults.write_fail) & flip & ~undo
            self.counts["injected_failures"] += int(lost.sum())
            undo = undo | lost
        undo = undo & flip
        if bool(undo.any()):
            d.ap[rows_t[undo], cols_t[undo]] ^= True
            d.flips[rows_t[undo], cols_t[undo]] -= 1
        done = (flip & ~undo).numpy()
        if not done.all() and len(self.missed_pulses) < 64:
            miss = np.flatnonzero(~done).tolist()
            self.missed_pulses.append((self._pulse_index - 1, n, miss))
        self.counts["write_pulses"] += n
        self.counts["flips"] += int(done.sum())
        self.counts["failed_writes"] += n - int(done.sum())
        self.bits[rows, cols] = ~d.ap[torch.from_numpy(rows), torch.from_numpy(cols)].numpy()
        if done.any():
            sel = (rows_t[torch.from_numpy(done)], cols_t[torch.from_numpy(done)])
            self._g[sel] = d.conductance(sel)
        out = np.empty(n, dtype=bool)
        out[order] = done
        return out

    # -- reports and checkpoints ---------------------------------------------------------------
    def report(self) -> dict:
        """Counters, energies (J), simulated time (s) and mean ``c`` of the layer."""
        e = self.dev.energy()
        return {
            **self.counts,
            "write_energy_J": e["write_J"],
            "gate_energy_J": e["gate_J"],
            "read_energy_J": e["read_J"],
            "device_time_s": self.time_s,
            "mean_c": float(self.dev.c.mean()),
            "stuck_devices": int(self.stuck.sum()),
        }

    def state_dict(self) -> dict:
        """Everything that evolves (device tensors, counters, time), for checkpoints."""
        out = {k: getattr(self.dev, k).clone() for k in STATE}
        out.update({f"dev_{k}": getattr(self.dev, k).clone() for k in DEV_COUNTS})
        out["counts"] = dict(self.counts)
        out["time_s"] = self.time_s
        out["pulse_index"] = self._pulse_index
        return out

    def load_state_dict(self, state: dict) -> None:
        for k in STATE:
            setattr(self.dev, k, state[k].clone())
        for k in DEV_COUNTS:
            setattr(self.dev, k, state[f"dev_{k}"].clone())
        self.counts = dict(state["counts"])
        self.time_s = float(state["time_s"])
        self._pulse_index = int(state["pulse_index"])
        self.bits = (~self.dev.ap).numpy().copy()
        self._g = self.dev.conductance(None).reshape(self.rows, self.lanes)


def physics_layers(card, rule, init_bits, seed: int, faults: Faults | None = None, misorder=None):
    """The two layers' arrays of one run and their shared generator (seeded with ``seed``).

    ``init_bits``: bool ``[n_in, n_hidden]`` and ``[n_hidden, n_out]``; layer 1 is built first
    (its device spread and faults are drawn first). ``misorder``: ``(layer, pulse index)`` for
    the negative test, or ``None``. Returns ``(arrays, generator)``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    arrays = []
    for k, bits in enumerate(init_bits):
        mis = misorder[1] if misorder is not None and misorder[0] == k else None
        rows, lanes = np.shape(bits)
        arrays.append(
            PhysicsSynapseArray(
                card, rows, lanes, gen, bits, faults, rule.code_bits, mis, rule.retry_limit
            )
        )
    return arrays, gen
