"""The ``lowbias32`` integer hash as an Amaranth expression (the seeded arrays' random draws).

Source: C. Wellons, "Prospecting for hash functions" (hash-prospector, 2018). Bit-identical to
:func:`spinapse.golden.integer_model.array_models.lowbias32`, which the golden model uses for the
same draws.
"""

from __future__ import annotations

from amaranth import Value

_M = 0xFFFFFFFF


def lowbias32(x: Value) -> Value:
    """``x ^= x >> 16; x *= 0x7FEB352D; x ^= x >> 15; x *= 0x846CA68B; x ^= x >> 16`` (mod 2**32).

    ``x``: any unsigned value (its low 32 bits are used). Returns a 32-bit unsigned value;
    combinational (two 32 x 32 multiplies).
    """
    x = x[:32]
    x = (x ^ (x >> 16))[:32]
    x = (x * 0x7FEB352D)[:32]
    x = (x ^ (x >> 15))[:32]
    x = (x * 0x846CA68B)[:32]
    return (x ^ (x >> 16))[:32]
