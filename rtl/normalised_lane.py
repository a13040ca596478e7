"""The normalised metaplastic step of one lane (issue 13): Adam's division by ``sqrt(v)`` as a
leading-one detector and a barrel shift, with stochastic rounding.

Combinational, like :mod:`spinapse.rtl.update_lane`; the arithmetic is that of
:meth:`spinapse.golden.integer_model.learning.IntegerEngine._update` and ``_norm_shift`` for a
rule with ``norm_decay > 0`` (``docs/learning_rule.md``, "Issue 13: a normalised step"):

- the second moment is factored (Shazeer & Stern, "Adafactor", ICML 2018): one register ``P_i``
  per row and one ``Q_j`` per lane, ``P' = P - (P >> d) + (h_in^2 << d)``,
  ``Q' = Q - (Q >> d) + (delta^2 << d)`` (:func:`moment`; ``d = norm_decay``; the square of
  ``delta_j`` is formed once per lane and pass, not per synapse);
- ``s_ij = ((bl(P_i) + bl(Q_j) + 1) >> 1) + c`` (:func:`bit_length`, :func:`norm_shift`), ``c``
  the bias correction of the task's step count, one value for the whole array;
- per synapse: ``M' = sat(M - sgn(M)(|M| >> leak_shift) + G)`` (the issue-5 accumulator),
  ``F`` from the f_meta ROM where the step shrinks ``|W_h|``, and
  ``W_h' = sat(W_h - sgn(M') ((D F + (r mod 2**T)) >> T))`` with ``D = (|M'| - dead_zone)+``,
  ``T = 8 + lr_shift - norm_gain + s_ij`` (a left shift where ``T < 0``) and ``r`` the lane's
  32-bit random draw (0 without ``stoch_round``) (:func:`normalised_weight`).

Per synapse this is one ``acc_bits x 9`` multiply (as in the issue-5 lane), an adder for the
random bits and one barrel shifter; the leading-one detectors and the ``delta^2`` squarer are per
lane or per row, shared by all synapses of that lane or row.
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal, Value, signed, unsigned

from spinapse.rtl.update_lane import F_BITS, attenuated, saturate


def bit_length(m: Module, value: Value, width: int, name: str) -> Signal:
    """Leading-one detector: the bit length of the unsigned ``width``-bit ``value`` (0 for 0,
    ``k + 1`` when bit ``k`` is the highest set bit), an unsigned signal."""
    out = Signal(range(width + 1), name=name)
    expr = 0
    for k in range(width):  # later (higher) bits take priority
        expr = Mux(value[k], k + 1, expr)
    m.d.comb += out.eq(expr)
    return out


def moment_width(rule, sq_bits: int) -> int:
    """Width of a moment register fed by squares of ``sq_bits`` bits: the fixed point of
    ``P - (P >> d) + (sq << d)`` is below ``2**(sq_bits + 2 d)``, plus one guard bit."""
    return sq_bits + 2 * rule.norm_decay + 1


def moment(m: Module, rule, old: Value, sq: Value, width: int, name: str) -> Signal:
    """``P' = P - (P >> d) + (sq << d)`` (``d = norm_decay``) as an unsigned ``width`` signal."""
    d = rule.norm_decay
    out = Signal(unsigned(width), name=name)
    m.d.comb += out.eq(old - (old >> d) + (sq << d))
    return out


def norm_shift(m: Module, len_p: Value, len_q: Value, corr: Value, name: str) -> Signal:
    """``s = ((bl(P) + bl(Q) + 1) >> 1) + corr`` from the two bit lengths and the correction."""
    out = Signal(8, name=name)
    m.d.comb += out.eq(((len_p + len_q + 1) >> 1) + corr)
    return out


def normalised_weight(
    m: Module, rule, rom: Array, w_h: Value, acc: Value, shift: Value, rand: Value, name: str
) -> Signal:
    """Digital mode: the new ``W_h`` after the normalised step driven by the new ``M``.

    ``shift`` is ``s_ij`` (unsigned), ``rand`` the lane's 32-bit draw (``0`` without
    ``stoch_round``); returns a signed ``wh_bits`` signal.
    """
    mag, f = attenuated(m, rule, rom, w_h, acc, name)
    num = Signal(unsigned(rule.acc_bits + 9), name=f"{name}_num")
    m.d.comb += num.eq(mag * f)
    base = F_BITS + rule.lr_shift - rule.norm_gain
    total = Signal(signed(10), name=f"{name}_total")
    m.d.comb += total.eq(base + shift)
    right = Signal(range(256), name=f"{name}_right")
    m.d.comb += right.eq(Mux(total > 0, total, 0))
    left = Signal(range(64), name=f"{name}_left")
    m.d.comb += left.eq(Mux(total < 0, -total, 0))
    keep = Signal(32, name=f"{name}_keep")  # rand mod 2**min(right, 32)
    m.d.comb += keep.eq(Mux(right >= 32, rand, rand & ((Const(1, 33) << right[:6]) - 1)))
    # A step never needs more than wh_bits + 1 bits: wider results saturate W_h anyway.
    wide = rule.acc_bits + 9 + 33 + max(0, -base) + 64
    rounded = Signal(unsigned(wide), name=f"{name}_rounded")
    m.d.comb += rounded.eq(Mux(total >= 0, (num + keep) >> right, num << left))
    step = Signal(unsigned(rule.wh_bits + 1), name=f"{name}_step")
    top = (1 << (rule.wh_bits + 1)) - 1
    m.d.comb += step.eq(Mux(rounded > top, top, rounded))
    moved = Signal(signed(rule.wh_bits + 3), name=f"{name}_moved")
    m.d.comb += moved.eq(Mux(acc < 0, w_h + step, w_h - step))
    return saturate(m, moved, rule.wh_bits, f"{name}_wh")
