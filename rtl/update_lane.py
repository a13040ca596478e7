"""One lane of the metaplastic update: accumulator leak, f_meta lookup, step, saturation.

Combinational; the update engine instantiates one per lane. The arithmetic is that of
:meth:`spinapse.golden.integer_model.learning.IntegerEngine._update` (``docs/learning_rule.md``):

- ``M' = sat_acc(M - sgn(M) (|M| >> leak_shift) + G)``;
- ``D = max(|M'| - dead_zone, 0)`` (no step for a small, inconsistent ``M``);
- digital mode: ``F = table[min(|W_h| >> index_shift, last)]`` where ``(W_h >= 0) == (M' > 0)``
  (the step shrinks ``|W_h|``), else ``256``; ``W_h' = sat_wh(W_h - sgn(M') ((D F) >> (8 +
  lr_shift)))``;
- device mode: gate pulse ``polarity = M' < 0``, ``code = min(D >> lr_shift, 2**code_bits - 1)``.
"""

from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal, Value, signed, unsigned

F_BITS = 8


def saturate(m: Module, value: Value, bits: int, name: str) -> Signal:
    """A signed ``bits`` signal holding ``value`` clipped to ``[-2**(bits-1), 2**(bits-1) - 1]``."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = Signal(signed(bits), name=name)
    m.d.comb += out.eq(Mux(value > hi, hi, Mux(value < lo, lo, value)))
    return out


def fmeta_rom(table) -> Array:
    """The f_meta table as a constant array of 9-bit entries (values in [0, 256])."""
    if not table or any(not 0 <= int(v) <= 256 for v in table):
        raise ValueError("f_meta table must be a non-empty list of ints in [0, 256]")
    return Array(Const(int(v), 9) for v in table)


def accumulate(m: Module, rule, acc: Value, grad: Value, name: str) -> Signal:
    """``M' = sat_acc(M - sgn(M) (|M| >> leak_shift) + G)``; ``acc``, ``grad`` signed values."""
    mag = Signal(unsigned(rule.acc_bits), name=f"{name}_mag_old")
    m.d.comb += mag.eq(Mux(acc < 0, -acc, acc))
    leak = mag >> rule.leak_shift
    summed = Signal(signed(max(rule.acc_bits + 3, len(grad) + 2)), name=f"{name}_sum")
    m.d.comb += summed.eq(Mux(acc < 0, acc + leak, acc - leak) + grad)
    return saturate(m, summed, rule.acc_bits, f"{name}_acc")


def step_size(m: Module, rule, acc: Value, name: str) -> Signal:
    """``(|M| - dead_zone)+``: the part of ``|M|`` that makes a step (unsigned ``acc_bits``)."""
    mag = Signal(unsigned(rule.acc_bits), name=f"{name}_abs")
    m.d.comb += mag.eq(Mux(acc < 0, -acc, acc))
    if rule.dead_zone == 0:
        return mag
    out = Signal(unsigned(rule.acc_bits), name=f"{name}_mag")
    m.d.comb += out.eq(Mux(mag > rule.dead_zone, mag - rule.dead_zone, 0))
    return out


def attenuated(m: Module, rule, rom: Array, w_h: Value, acc: Value, name: str):
    """``(D, F)``: the step size ``(|M| - dead_zone)+`` and the f_meta factor (``table[min(|W_h|
    >> index_shift, last)]`` where the step shrinks ``|W_h|``, else ``256``)."""
    last = len(rom) - 1
    mag = step_size(m, rule, acc, name)
    w_mag = Signal(unsigned(rule.wh_bits), name=f"{name}_wmag")
    m.d.comb += w_mag.eq(Mux(w_h < 0, -w_h, w_h))
    idx = w_mag >> rule.index_shift
    shrink = (w_h >= 0) == (acc > 0)
    f = Signal(9, name=f"{name}_f")
    m.d.comb += f.eq(Mux(shrink, rom[Mux(idx > last, last, idx)], 1 << F_BITS))
    return mag, f


def apply_step(m: Module, rule, w_h: Value, acc: Value, mag: Value, f: Value, name: str) -> Signal:
    """Digital mode: the new ``W_h``, ``sat_wh(W_h - sgn(M') ((D F) >> (8 + lr_shift)))``, from
    ``W_h``, ``M'`` and the ``(D, F)`` of :func:`attenuated` (which the update engine registers
    between the two, so the multiply starts from a register)."""
    step = Signal(unsigned(rule.acc_bits + 9), name=f"{name}_step")
    m.d.comb += step.eq((mag * f) >> (F_BITS + rule.lr_shift))
    moved = Signal(signed(rule.acc_bits + 11), name=f"{name}_moved")
    m.d.comb += moved.eq(Mux(acc < 0, w_h + step, w_h - step))
    return saturate(m, moved, rule.wh_bits, f"{name}_wh")


def gate_pulse(m: Module, rule, acc: Value, name: str) -> tuple[Signal, Signal]:
    """Device mode: ``(polarity, code)`` of the gate pulse driven by the new ``M``."""
    mag = step_size(m, rule, acc, name)
    top = (1 << rule.code_bits) - 1
    code = Signal(rule.code_bits, name=f"{name}_code")
    shifted = mag >> rule.lr_shift
    m.d.comb += code.eq(Mux(shifted > top, top, shifted))
    return acc < 0, code
