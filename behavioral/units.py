"""Unit strings of device cards: parse ``"Ohm*um^2"``, ``"mJ/m^2"``, ``"ns"`` into an SI scale.

A unit string is a product of factors joined by ``*`` or ``/`` (everything after a ``/`` divides),
each factor an optional SI prefix plus a symbol, with an optional integer power ``^n``. Symbols
are kept as independent dimensions (``V/A`` is not reduced to ``Ohm``), so a card must write the
unit its field expects, only with any prefix: ``"kOhm"`` for an ``Ohm`` field, ``"nm"`` for ``m``.
``"1"`` is the unit of dimensionless numbers.
"""

from __future__ import annotations

import re

SYMBOLS = ("Ohm", "m", "s", "A", "V", "K", "J", "F", "T", "Hz")
PREFIXES = {
    "a": 1e-18,
    "f": 1e-15,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "m": 1e-3,
    "c": 1e-2,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
}
_FACTOR = re.compile(r"^([^\^]+)(?:\^(-?\d+))?$")

Dimension = tuple[tuple[str, int], ...]


def _symbol(token: str) -> tuple[float, str]:
    if token in SYMBOLS:
        return 1.0, token
    if len(token) > 1 and token[0] in PREFIXES and token[1:] in SYMBOLS:
        return PREFIXES[token[0]], token[1:]
    raise ValueError(f"unknown unit symbol {token!r} (symbols {', '.join(SYMBOLS)}, SI prefixes)")


def parse_unit(unit: str) -> tuple[float, Dimension]:
    """Return ``(scale, dimension)``: a value in ``unit`` times ``scale`` is in SI base symbols.

    ``dimension`` is a sorted tuple of ``(symbol, power)`` with zero powers dropped.

    Raises
    ------
    ValueError
        If the string is empty or a factor is not a known symbol with an optional prefix.
    """
    text = unit.replace(" ", "")
    if not text:
        raise ValueError("empty unit string")
    if text == "1":
        return 1.0, ()
    scale = 1.0
    powers: dict[str, int] = {}
    sign = 1
    for part in re.split(r"([*/])", text):
        if part == "*":
            continue
        if part == "/":
            sign = -1
            continue
        if part == "1":
            continue
        match = _FACTOR.match(part)
        if match is None:
            raise ValueError(f"cannot parse unit factor {part!r} in {unit!r}")
        factor, power = _symbol(match.group(1))
        n = sign * int(match.group(2) or 1)
        scale *= factor**n
        powers[power] = powers.get(power, 0) + n
    return scale, tuple(sorted((k, v) for k, v in powers.items() if v != 0))


def to_si(value: float, unit: str, expected: str) -> float:
    """Convert ``value`` given in ``unit`` to the SI unit ``expected`` (same symbols, no prefix).

    Raises
    ------
    ValueError
        If ``unit`` does not parse or its dimension differs from ``expected``.
    """
    scale, dim = parse_unit(unit)
    scale_e, dim_e = parse_unit(expected)
    if dim != dim_e:
        raise ValueError(f"unit {unit!r} is not a unit of {expected!r}")
    return value * scale / scale_e
