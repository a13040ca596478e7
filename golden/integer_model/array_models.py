"""Seeded synapse-array models shared, bit for bit, by the integer golden model and the RTL arrays.

Two device models sit behind the ``SynapseArray`` interface (``docs/synapse_array.md``):

- :class:`BinaryArrayModel`: one bit per synapse (P/AP); a write pulse on a lane succeeds with
  probability ``p_success / 256`` (``256``: ideal array, always succeeds, no draw).
- :class:`HiddenStateArrayModel`: a signed integer hidden state per synapse (the magneto-ionic
  state of the METASPIN device); a gate pulse moves it by its code; a pulse that shrinks
  ``|h|`` is applied with probability ``table[|h| >> index_shift] / 256`` (probabilistic
  metaplasticity, Zohora et al., Sci. Rep. 2024); the sensed bit is ``h >= 0``.

Randomness is counter based so that both sides can reproduce it without sharing a sequence of
calls: each lane (column) ``l`` owns a 32-bit draw counter ``n_l`` and draw ``n`` of lane ``l`` is
``r = lowbias32(seed_l + n) >> 24`` (8 bits), with ``seed_l`` from :func:`lane_seeds`. A lane
draws once per pulse that needs a decision, in the order the engine sends them (row by row,
attempts of one row before the next row).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_M32 = 0xFFFFFFFF


def lowbias32(x: np.ndarray) -> np.ndarray:
    """The ``lowbias32`` integer hash (C. Wellons, "hash-prospector", 2018) on uint32 arrays.

    ``x ^= x >> 16; x *= 0x7FEB352D; x ^= x >> 15; x *= 0x846CA68B; x ^= x >> 16`` modulo 2**32.
    Input any integer array (taken modulo 2**32); returns uint64 values in ``[0, 2**32)``.
    """
    x = np.asarray(x, dtype=np.uint64) & _M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & _M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & _M32
    x ^= x >> np.uint64(16)
    return x


def lane_seeds(seed: int, lanes: int) -> list[int]:
    """Per-lane 32-bit seeds ``lowbias32(seed * 2**16 + lane)`` for ``lanes`` lanes.

    Raises
    ------
    ValueError
        If ``seed`` is not in ``[0, 2**15)`` or ``lanes < 1``.
    """
    if not 0 <= seed < (1 << 15):
        raise ValueError(f"seed must be in [0, 32768), got {seed}")
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    return [int(v) for v in lowbias32(np.arange(lanes, dtype=np.uint64) + (seed << 16))]


def _check_p(p: int, field: str) -> None:
    if not 0 <= p <= 256:
        raise ValueError(f"{field} must be in [0, 256] (probability in 1/256), got {p}")


class _LaneDraws:
    """Per-lane counters and the 8-bit draws of :func:`lowbias32`."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = np.asarray(seeds, dtype=np.uint64) & _M32
        self.count = np.zeros(len(seeds), dtype=np.uint64)

    def draw(self, lanes: np.ndarray) -> np.ndarray:
        """One draw (int64 in [0, 255]) for each lane where ``lanes`` (bool ``[L]``) is set."""
        idx = np.flatnonzero(lanes)
        r = lowbias32(self.seeds[idx] + self.count[idx]) >> np.uint64(24)
        self.count[idx] = (self.count[idx] + np.uint64(1)) & _M32
        out = np.zeros(lanes.shape[0], dtype=np.int64)
        out[idx] = r.astype(np.int64)
        return out

    def raw_rows(self, rows: int) -> np.ndarray:
        """One full 32-bit draw per lane for each of ``rows`` rows taken in order (uint64
        ``[rows, L]``, values in ``[0, 2**32)``); every lane's counter advances by ``rows``."""
        r = lowbias32(
            self.seeds[None, :] + self.count[None, :] + np.arange(rows, dtype=np.uint64)[:, None]
        )
        self.count = (self.count + np.uint64(rows)) & _M32
        return r

    def draw_rows(self, pulses: np.ndarray) -> np.ndarray:
        """Draws for a ``[rows, L]`` bool matrix of pulses taken row by row (one per pulse)."""
        p = pulses.astype(np.uint64)
        before = np.cumsum(p, axis=0) - p
        r = lowbias32(self.seeds[None, :] + self.count[None, :] + before) >> np.uint64(24)
        self.count = (self.count + p.sum(axis=0)) & _M32
        return np.where(pulses, r.astype(np.int64), 0)


class BinaryArrayModel:
    """Binary synapses with stochastic single-pulse writes.

    Parameters
    ----------
    bits : numpy.ndarray
        bool ``[rows, lanes]``, initial binary weights (True means +1); copied.
    p_success : int
        Probability in 1/256 that one write pulse switches a lane, in [0, 256].
    seeds : sequence of int
        One 32-bit seed per lane (:func:`lane_seeds`).

    Raises
    ------
    ValueError
        If ``p_success`` is out of range or the seeds do not match the lanes.
    """

    def __init__(self, bits: np.ndarray, p_success: int, seeds: Sequence[int]) -> None:
        _check_p(p_success, "p_success")
        self.bits = np.array(bits, dtype=bool)
        if len(seeds) != self.bits.shape[1]:
            raise ValueError(f"need {self.bits.shape[1]} lane seeds, got {len(seeds)}")
        self.p_success = p_success
        self.rng = _LaneDraws(seeds)

    def sense(self) -> np.ndarray:
        """Binary weights, bool ``[rows, lanes]`` (a view: do not modify)."""
        return self.bits

    def write(self, row: int, enable: np.ndarray, polarity: np.ndarray) -> None:
        """One pulse towards ``polarity`` on the ``enable`` lanes (bool ``[L]``) of ``row``."""
        if self.p_success >= 256:
            ok = enable
        else:
            ok = enable & (self.rng.draw(enable) < self.p_success)
        self.bits[row] = np.where(ok, polarity, self.bits[row])


class HiddenStateArrayModel:
    """Synapses that keep the hidden state ``h`` themselves; ``W_b = (h >= 0)``.

    Parameters
    ----------
    hidden : numpy.ndarray
        int ``[rows, lanes]`` initial hidden states; copied.
    h_bits : int
        ``h`` saturates to the signed ``h_bits`` range, in [2, 24].
    table : sequence of int
        Shrink-pulse success probabilities in 1/256 (from :func:`fmeta_table`), indexed by
        ``min(|h| >> index_shift, len(table) - 1)``.
    index_shift : int
        Table bin width ``2**index_shift`` (>= 0).
    seeds : sequence of int
        One 32-bit seed per lane.

    Raises
    ------
    ValueError
        If a parameter is out of range or shapes disagree.
    """

    def __init__(
        self,
        hidden: np.ndarray,
        h_bits: int,
        table: Sequence[int],
        index_shift: int,
        seeds: Sequence[int],
    ) -> None:
        if not 2 <= h_bits <= 24:
            raise ValueError(f"h_bits must be in [2, 24], got {h_bits}")
        if index_shift < 0:
            raise ValueError(f"index_shift must be >= 0, got {index_shift}")
        for k, p in enumerate(table):
            _check_p(p, f"table[{k}]")
        self.h = np.array(hidden, dtype=np.int64)
        if len(seeds) != self.h.shape[1]:
            raise ValueError(f"need {self.h.shape[1]} lane seeds, got {len(seeds)}")
        self.lo, self.hi = -(1 << (h_bits - 1)), (1 << (h_bits - 1)) - 1
        if self.h.min() < self.lo or self.h.max() > self.hi:
            raise ValueError(f"hidden states must lie in [{self.lo}, {self.hi}]")
        self.table = np.asarray(table, dtype=np.int64)
        self.index_shift = index_shift
        self.rng = _LaneDraws(seeds)

    def sense(self) -> np.ndarray:
        """Binary weights ``h >= 0``, bool ``[rows, lanes]``."""
        return self.h >= 0

    def gate_all(self, polarity: np.ndarray, code: np.ndarray) -> None:
        """One gate pulse per synapse with ``code > 0``, sent row by row.

        ``polarity`` bool ``[rows, lanes]`` (True: towards +), ``code`` int ``[rows, lanes]``
        (>= 0, the step in units of ``h``). Pulses that grow ``|h|`` (or start from ``h = 0``
        towards +) are always applied; the others draw once and apply if the draw is below
        ``table[|h| >> index_shift]``.
        """
        pulse = code > 0
        shrink = pulse & ((self.h >= 0) != polarity)
        idx = np.minimum(np.abs(self.h) >> self.index_shift, self.table.shape[0] - 1)
        r = self.rng.draw_rows(shrink)
        apply = pulse & (~shrink | (r < self.table[idx]))
        step = np.where(polarity, code, -code)
        self.h = np.where(apply, np.clip(self.h + step, self.lo, self.hi), self.h)
