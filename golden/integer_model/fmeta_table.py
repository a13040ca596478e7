"""The metaplastic attenuation ``f_meta`` as an integer lookup table indexed by ``|W_h|``.

Source: Laborieux et al., Nat. Commun. 12, 2549 (2021), Eq. 1:
``f_meta(W_h) = 1 - tanh^2(m |W_h|)``.
The hardware stores ``W_h`` as a signed integer in units of ``2**-frac_bits``; the table is
indexed by ``|W_h| >> index_shift`` and holds ``round(2**F_BITS * f_meta)`` at the centre of each
bin, so a step is attenuated with one multiply and one shift (see ``docs/learning_rule.md``).
The table is fixed when the RTL is built (``m`` is a build-time constant).
"""

from __future__ import annotations

import math

#: Fraction bits of a table entry: an entry of ``2**F_BITS`` means "no attenuation".
F_BITS = 8
F_ONE = 1 << F_BITS


def fmeta_table(m: float, wh_bits: int, frac_bits: int, index_shift: int) -> list[int]:
    """Integer table of ``f_meta``; entry ``k`` serves ``k << index_shift <= |W_h| < (k+1) << ..``.

    Parameters
    ----------
    m : float
        Metaplasticity, finite and >= 0 (``m = 0`` gives a table of ``F_ONE``).
    wh_bits : int
        Width of the signed ``W_h`` integer, in [2, 24].
    frac_bits : int
        ``W_h`` integer ``w`` means ``w / 2**frac_bits`` in the float model's units, in [0, 20].
    index_shift : int
        Bins of ``2**index_shift`` integer steps, in [0, wh_bits - 1].

    Returns
    -------
    list of int
        ``2**(wh_bits - 1 - index_shift) + 1`` entries in ``[0, F_ONE]`` (the last one covers
        ``|W_h| = 2**(wh_bits-1)``, the most negative value); entry 0 is ``F_ONE``.

    Raises
    ------
    ValueError
        If a parameter is outside its range.
    """
    if not (math.isfinite(m) and m >= 0):
        raise ValueError(f"m must be a finite number >= 0, got {m}")
    if not 2 <= wh_bits <= 24:
        raise ValueError(f"wh_bits must be in [2, 24], got {wh_bits}")
    if not 0 <= frac_bits <= 20:
        raise ValueError(f"frac_bits must be in [0, 20], got {frac_bits}")
    if not 0 <= index_shift <= wh_bits - 1:
        raise ValueError(f"index_shift must be in [0, {wh_bits - 1}], got {index_shift}")
    n = (1 << (wh_bits - 1 - index_shift)) + 1
    table = []
    for k in range(n):
        # Entry 0 must be exactly 1: weights near zero are never consolidated.
        centre = 0.0 if k == 0 else (k + 0.5) * (1 << index_shift) / (1 << frac_bits)
        table.append(int(round(F_ONE * (1.0 - math.tanh(m * centre) ** 2))))
    return table
