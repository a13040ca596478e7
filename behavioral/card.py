"""Device cards: TOML files that hold every parameter of a device with value, unit and source.

A card looks like this (the values are converted to SI on loading)::

    [card]
    name = "mtj_mi_stt"
    kind = "mtj_synapse"          # or "domain_wall_synapse"
    variant = "stt"               # mtj_synapse only: "stt" or "sot"
    description = "..."

    [mtj_read]
    RA = { value = 9.8, unit = "Ohm*um^2", source = "... Zhang et al., IEEE TED 59, 819 (2012)" }

Sections and fields are fixed by :data:`SCHEMA`; every field must have a ``value`` (number), a
``unit`` (any prefix of the field's SI unit, see :mod:`spinapse.behavioral.units`) and a non-empty
``source``. Loading checks names, units and ranges, and every error names the field
(``[mtj_switching].Delta0``) and the rule that was broken.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from spinapse.behavioral.units import to_si


@dataclass(frozen=True)
class FieldSpec:
    """One card field: SI unit, allowed range and meaning.

    ``lo``/``hi`` bound the SI value; ``lo_open``/``hi_open`` make a bound exclusive.
    """

    unit: str
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    doc: str = ""

    def range_text(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"

    def contains(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below


INF = math.inf
_F = FieldSpec

SCHEMA: dict[str, dict[str, FieldSpec]] = {
    "mtj_read": {
        "RA": _F("Ohm*m^2", 0, 1e-9, lo_open=True, doc="resistance-area product of the P state"),
        "diameter": _F("m", 0, 1e-6, lo_open=True, doc="junction diameter (circular pillar)"),
        "TMR0": _F("1", 0, 10, lo_open=True, doc="zero-bias tunnel magnetoresistance"),
        "V_h": _F("V", 0, 10, lo_open=True, doc="bias at which TMR has halved"),
        "read_noise_sigma": _F("1", 0, 1, hi_open=True, doc="relative read noise per read"),
        "d2d_sigma_RA": _F("1", 0, 1, hi_open=True, doc="relative device-to-device RA spread"),
        "V_read": _F("V", 0, 2, lo_open=True, doc="read bias"),
        "t_read": _F("s", 0, 1, lo_open=True, doc="read pulse width"),
    },
    "mtj_switching": {
        "Delta0": _F("1", 0, 1000, lo_open=True, doc="thermal stability factor at c = 0"),
        "tau0": _F("s", 0, 1, lo_open=True, doc="attempt time"),
        "b": _F("1", 1, 2, doc="exponent of (1 - I/Ic0) in the Neel-Brown law"),
        "T": _F("K", 0, 1000, lo_open=True, doc="temperature"),
        "alpha": _F("1", 0, 1, lo_open=True, doc="Gilbert damping"),
        "eta": _F("1", 0, 1, lo_open=True, doc="spin-transfer efficiency"),
        "P_spin": _F("1", 0, 1, lo_open=True, hi_open=True, doc="spin polarisation (Sun model)"),
        "Ms": _F("A/m", 0, 1e7, lo_open=True, doc="saturation magnetisation of the free layer"),
        "t_F": _F("m", 0, 1e-7, lo_open=True, doc="free-layer thickness"),
        "d2d_sigma_Delta": _F("1", 0, 1, hi_open=True, doc="relative device spread of Delta"),
    },
    "sot": {
        "Jc0": _F("A/m^2", 0, 1e15, lo_open=True, doc="critical current density at c = 0"),
        "w_hm": _F("m", 0, 1e-5, lo_open=True, doc="heavy-metal line width"),
        "t_hm": _F("m", 0, 1e-6, lo_open=True, doc="heavy-metal line thickness"),
        "L_hm": _F("m", 0, 1e-4, lo_open=True, doc="heavy-metal line length (write path)"),
        "rho_hm": _F("Ohm*m", 0, 1e-3, lo_open=True, doc="heavy-metal resistivity"),
    },
    "magneto_ionic": {
        "c_init": _F("1", 0, 1, doc="hidden state of a fresh device"),
        "dKi": _F("J/m^2", 0, 1e-2, doc="interface anisotropy added at c = 1"),
        "tau_ref": _F("s", 0, 1e9, lo_open=True, doc="time constant at V_ref"),
        "V_ref": _F("V", 0, 100, lo_open=True, doc="reference gate voltage"),
        "V_0": _F("V", 0, 100, lo_open=True, doc="gate voltage per e-fold of the rate"),
        "V_th": _F("V", 0, 100, doc="no ionic motion below this |V_g|"),
        "C_gate": _F("F", 0, 1e-6, doc="gate capacitance (charged once per pulse)"),
        "R_gate": _F("Ohm", 0, INF, lo_open=True, doc="gate leakage resistance"),
    },
    # Pulse map of the co-simulation bridge (docs/pulse_map.md): how each SynapseArray command
    # becomes device pulses. Optional: only cards that drive the RTL engine need it.
    "pulses": {
        "write_current": _F("A", 0, 1e-2, lo_open=True, doc="digital WRITE pulse current"),
        "write_width": _F("s", 0, 1e-3, lo_open=True, doc="digital WRITE pulse width"),
        "flip_current": _F("A", 0, 1e-2, lo_open=True, doc="device-mode flip pulse current"),
        "flip_width": _F("s", 0, 1e-3, lo_open=True, doc="flip pulse width per code unit"),
        "gate_voltage": _F("V", 0, 100, lo_open=True, doc="consolidating gate pulse voltage"),
        "gate_width": _F("s", 0, 1e3, lo_open=True, doc="gate pulse width per code unit"),
        "erase_voltage": _F("V", -100, 0, hi_open=True, doc="erasing gate pulse after a flip"),
        "erase_width": _F("s", 0, 1e4, doc="erasing gate pulse width"),
    },
    "domain_wall": {
        "length": _F("m", 0, 1e-5, lo_open=True, doc="track length"),
        "width": _F("m", 0, 1e-5, lo_open=True, doc="track width"),
        "thickness": _F("m", 0, 1e-6, lo_open=True, doc="track thickness"),
        "rho": _F("Ohm*m", 0, 1e-3, lo_open=True, doc="track resistivity (write energy)"),
        "x_min": _F("m", 0, 1e-5, doc="start of the read window"),
        "x_max": _F("m", 0, 1e-5, lo_open=True, doc="end of the read window"),
        "n_notches": _F("1", 2, 1024, integer=True, doc="notches (levels) in the read window"),
        "J_dep0": _F("A/m^2", 0, 1e15, lo_open=True, doc="depinning density of the centre notch"),
        "dep_ramp": _F("1", 0, 100, doc="relative threshold rise from centre to end notch"),
        "v_1": _F("m/s", 0, 1e4, lo_open=True, doc="velocity at J_1"),
        "J_1": _F("A/m^2", 0, 1e15, lo_open=True, doc="first velocity point"),
        "v_2": _F("m/s", 0, 1e4, lo_open=True, doc="velocity at J_2"),
        "J_2": _F("A/m^2", 0, 1e15, lo_open=True, doc="second velocity point"),
        "tau_v": _F("s", 0, 1e-6, doc="velocity time constant (wall inertia)"),
        "R_P": _F("Ohm", 0, 1e9, lo_open=True, doc="read resistance with the window all P"),
        "R_AP": _F("Ohm", 0, 1e9, lo_open=True, doc="zero-bias read resistance all AP"),
        "V_h": _F("V", 0, 10, lo_open=True, doc="bias at which TMR has halved"),
        "read_noise_sigma": _F("1", 0, 1, hi_open=True, doc="relative read noise per read"),
        "V_read": _F("V", 0, 2, lo_open=True, doc="read bias"),
        "t_read": _F("s", 0, 1, lo_open=True, doc="read pulse width"),
        "level_init": _F("1", 0, 1023, integer=True, doc="notch of a fresh device"),
    },
}

KINDS: dict[str, tuple[str, ...]] = {
    "mtj_synapse": ("mtj_read", "mtj_switching", "magneto_ionic"),
    "domain_wall_synapse": ("domain_wall",),
}
OPTIONAL: dict[str, tuple[str, ...]] = {"mtj_synapse": ("pulses",), "domain_wall_synapse": ()}
VARIANTS = ("stt", "sot")
HEADER_KEYS = ("name", "kind", "variant", "description")


@dataclass(frozen=True)
class DeviceCard:
    """A validated device card.

    Attributes
    ----------
    name, kind, variant, description : str
        From the ``[card]`` table; ``variant`` is ``"stt"``/``"sot"`` (``""`` for domain walls).
    values : dict[str, dict[str, float]]
        Section -> field -> value in SI units (floats; integer fields hold whole numbers).
    units, sources : dict[str, dict[str, str]]
        The unit and source strings as written in the card.
    path : Path or None
        Where the card was read from.
    """

    name: str
    kind: str
    variant: str
    description: str
    values: dict[str, dict[str, float]]
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    def section(self, name: str) -> dict[str, float]:
        """The SI values of one section (a copy).

        Raises
        ------
        KeyError
            If the card has no such section.
        """
        if name not in self.values:
            raise KeyError(f"card {self.name!r} has no section [{name}]")
        return dict(self.values[name])


def _check_field(section: str, key: str, entry: object, spec: FieldSpec) -> tuple[float, str, str]:
    where = f"[{section}].{key}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a table {{ value = ..., unit = ..., source = ... }}")
    extra = sorted(set(entry) - {"value", "unit", "source"})
    if extra:
        raise ValueError(f"{where}: unknown key(s) {extra}; allowed: value, unit, source")
    for need in ("value", "unit", "source"):
        if need not in entry:
            raise ValueError(f"{where}: missing '{need}'")
    value, unit, source = entry["value"], entry["unit"], entry["source"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: value must be a number, got {value!r}")
    if not isinstance(unit, str):
        raise ValueError(f"{where}: unit must be a string, got {unit!r}")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: source must be a non-empty string")
    try:
        si = to_si(float(value), unit, spec.unit)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (expected a unit of {spec.unit!r})") from None
    if not math.isfinite(si) or not spec.contains(si):
        # Dimensionless quantities carry the unit "1", which reads as a number when printed.
        given = f"{value!r}" if unit == "1" else f"{value!r} {unit}"
        in_si = f"{si:g}" if spec.unit == "1" else f"{si:g} {spec.unit}"
        shown = given if given == in_si else f"{given} = {in_si}"
        raise ValueError(f"{where}: value {shown} is outside {spec.range_text()}")
    if spec.integer and si != int(si):
        raise ValueError(f"{where}: must be a whole number, got {value!r}")
    return si, unit, source


def _cross_checks(values: dict[str, dict[str, float]]) -> None:
    dw = values.get("domain_wall")
    if dw is not None:
        if not dw["x_min"] < dw["x_max"] <= dw["length"]:
            raise ValueError("[domain_wall].x_max: need x_min < x_max <= length")
        if dw["level_init"] >= dw["n_notches"]:
            raise ValueError("[domain_wall].level_init: must be < n_notches")
        if not dw["J_dep0"] < dw["J_1"] < dw["J_2"]:
            raise ValueError("[domain_wall].J_1: need J_dep0 < J_1 < J_2")
        if not dw["v_1"] < dw["v_2"]:
            raise ValueError("[domain_wall].v_2: need v_2 > v_1")
        if not dw["R_P"] < dw["R_AP"]:
            raise ValueError("[domain_wall].R_AP: need R_AP > R_P")
    mi = values.get("magneto_ionic")
    if mi is not None and mi["V_th"] > mi["V_ref"]:
        raise ValueError("[magneto_ionic].V_th: must not exceed V_ref")


def parse_card(data: dict, path: Path | None = None) -> DeviceCard:
    """Validate a card already read from TOML and return a :class:`DeviceCard`.

    Raises
    ------
    ValueError
        Naming the section and field: unknown section or key, missing value/unit/source, unit
        not of the field's dimension, value outside the field's range, bad ``[card]`` header.
    """
    if "card" not in data or not isinstance(data["card"], dict):
        raise ValueError("missing [card] table (name, kind, variant, description)")
    head = data["card"]
    unknown = sorted(set(head) - set(HEADER_KEYS))
    if unknown:
        raise ValueError(f"[card].{unknown[0]}: unknown key; allowed: {', '.join(HEADER_KEYS)}")
    for key in ("name", "kind", "description"):
        if not isinstance(head.get(key), str) or not head[key].strip():
            raise ValueError(f"[card].{key}: missing or empty")
    kind = head["kind"]
    if kind not in KINDS:
        raise ValueError(f"[card].kind: {kind!r} is not one of {', '.join(KINDS)}")
    variant = head.get("variant", "")
    required = list(KINDS[kind])
    if kind == "mtj_synapse":
        if variant not in VARIANTS:
            raise ValueError(f"[card].variant: {variant!r} is not one of {', '.join(VARIANTS)}")
        if variant == "sot":
            required.append("sot")
    elif variant:
        raise ValueError(f"[card].variant: only mtj_synapse cards have a variant, got {variant!r}")
    sections = [k for k in data if k != "card"]
    optional = [k for k in OPTIONAL[kind] if k in data]
    for name in sections:
        if name not in required and name not in optional:
            known = ", ".join(required + list(OPTIONAL[kind]))
            raise ValueError(f"[{name}]: unknown section for kind {kind!r}; expected: {known}")
    values: dict[str, dict[str, float]] = {}
    units: dict[str, dict[str, str]] = {}
    sources: dict[str, dict[str, str]] = {}
    for name in required + optional:
        table = data.get(name)
        if not isinstance(table, dict):
            raise ValueError(f"[{name}]: missing section")
        spec = SCHEMA[name]
        for key in table:
            if key not in spec:
                raise ValueError(f"[{name}].{key}: unknown field; known: {', '.join(spec)}")
        values[name], units[name], sources[name] = {}, {}, {}
        for key, fspec in spec.items():
            if key not in table:
                raise ValueError(f"[{name}].{key}: missing field ({fspec.doc}, {fspec.unit})")
            si, unit, source = _check_field(name, key, table[key], fspec)
            values[name][key], units[name][key], sources[name][key] = si, unit, source
    _cross_checks(values)
    return DeviceCard(
        name=head["name"],
        kind=kind,
        variant=variant,
        description=head["description"],
        values=values,
        units=units,
        sources=sources,
        path=path,
    )


def cards_dir() -> Path:
    """The folder of the cards shipped with spinapse (``behavioral/cards``)."""
    return Path(str(resources.files("spinapse.behavioral") / "cards"))


def list_cards() -> list[Path]:
    """Paths of the shipped cards, sorted by name."""
    return sorted(cards_dir().glob("*.toml"))


def load_card(name_or_path: str | Path) -> DeviceCard:
    """Load a card by shipped name (``"mtj_mi_stt"``) or by path to a TOML file.

    Raises
    ------
    FileNotFoundError
        If no such card or file exists.
    ValueError
        If the TOML does not parse or the card fails validation (message names the file).
    """
    path = Path(name_or_path)
    if not path.suffix == ".toml" or not path.exists():
        shipped = cards_dir() / f"{Path(name_or_path).stem}.toml"
        if shipped.exists():
            path = shipped
        elif not path.exists():
            names = ", ".join(p.stem for p in list_cards())
            raise FileNotFoundError(f"no device card {str(name_or_path)!r}; shipped: {names}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: not valid TOML: {exc}") from None
    try:
        return parse_card(data, path)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
