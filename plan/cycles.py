"""Cycle model of the engines: cycles per inference and per training step, images per second.

Training engine (:class:`spinapse.rtl.training_engine.TrainingEngine`, batch 1), counted from
its state machine with an array that answers a ``READ`` in the next cycle (the ideal, stochastic
and hidden-state arrays of ``rtl/``), from the ``start`` cycle to the ``done`` cycle inclusive:

- forward (``train = 0``): ``sum_l (R_l + 2) + 2`` cycles, ``R_l`` the rows (inputs) of layer
  ``l``: one ``READ`` per row back to back, one cycle to close each layer, one for the output
  layer's registered argmax, one ``DONE``. For the two-layer engine: ``n_in + n_hidden + 6``.
- training step: forward ``+ 1`` (backward) ``+ sum_l (R_l + 3)``: each layer's update engine
  streams its rows, one per cycle, plus 3 per layer (start, the first row's memory read and
  ``READ``, done) in both modes, plus 3 per write-verify attempt of a row in digital mode
  (write, verify, check; the sweep resumes without a bubble).

Checked against the Amaranth simulation of the RTL for several shapes (``tests/test_plan.py``).
The RTL engine has two layers; for deeper networks the same schedule per layer is assumed.

Inference engine (:class:`spinapse.rtl.inference_engine.InferenceEngine`): the steady-state
interval and latency of :class:`spinapse.rtl.folding.EngineConfig` (FINN-style PE/SIMD folding).
"""

from __future__ import annotations

from collections.abc import Sequence

MODES = ("digital", "device")
SWEEP_CYCLES = 3
"""Cycles of one layer's update sweep beyond one per row (start, pipeline fill, done)."""
WRITE_ATTEMPT_CYCLES = 3


def _rows(widths: Sequence[int]) -> list[int]:
    if len(widths) < 3 or any(int(w) < 1 for w in widths):
        raise ValueError(f"network widths must be >= 3 positive integers, got {list(widths)}")
    return [int(w) for w in widths[:-1]]


def forward_cycles(widths: Sequence[int]) -> int:
    """Cycles of one inference on the training engine (``train = 0``), network ``widths``.

    Raises
    ------
    ValueError
        If ``widths`` has fewer than 3 entries or a width < 1.
    """
    return sum(r + 2 for r in _rows(widths)) + 2


def training_cycles(widths: Sequence[int], mode: str, write_attempt_rows: float = 0.0) -> float:
    """Cycles of one training step (batch 1).

    Parameters
    ----------
    widths : sequence of int
        ``[n_in, hidden..., n_out]``.
    mode : str
        ``"digital"`` or ``"device"``.
    write_attempt_rows : float
        Digital mode: rows per step that needed a write-verify attempt (each costs 3 cycles;
        a row retried twice counts twice), >= 0. Ignored in device mode.

    Raises
    ------
    ValueError
        If ``mode`` is unknown, ``write_attempt_rows`` < 0, or ``widths`` is invalid.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if write_attempt_rows < 0:
        raise ValueError(f"write_attempt_rows must be >= 0, got {write_attempt_rows}")
    rows = _rows(widths)
    cycles = forward_cycles(widths) + 1 + sum(r + SWEEP_CYCLES for r in rows)
    if mode == "digital":
        cycles += WRITE_ATTEMPT_CYCLES * write_attempt_rows
    return cycles


def per_second(cycles: float, clock_hz: float) -> float:
    """Operations per second at ``clock_hz`` for ``cycles`` per operation.

    Raises
    ------
    ValueError
        If either argument is not > 0.
    """
    if not cycles > 0 or not clock_hz > 0:
        raise ValueError(f"cycles and clock_hz must be > 0, got {cycles}, {clock_hz}")
    return clock_hz / cycles
