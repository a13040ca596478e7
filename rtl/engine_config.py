"""Engine configurations read from TOML (the ``[engine]`` table), and the default one.

File format::

    [engine]
    widths = [784, 256, 256, 10]   # N_in, hidden..., classes
    pe = [32, 16, 10]              # one per layer, divides the layer's neuron count
    simd = [98, 64, 4]             # one per layer, divides the layer's input width
    in_width = 784                 # optional: image bits per input beat (default N_in)

The default is ``spinapse/configs/inference_engine.toml`` (package data).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from spinapse.rtl.folding import EngineConfig

_KEYS = {"widths", "pe", "simd", "in_width"}


def engine_config_from_dict(table: dict) -> EngineConfig:
    """Validate an ``[engine]`` table into an :class:`EngineConfig`.

    Raises
    ------
    ValueError
        If a key is missing or unknown, a value is not a list of integers, or the folding does
        not divide the network (see :class:`EngineConfig`).
    """
    unknown = set(table) - _KEYS
    if unknown:
        raise ValueError(f"[engine] has unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    for key in ("widths", "pe", "simd"):
        if key not in table:
            raise ValueError(f"[engine] needs '{key}' (a list of integers)")
        v = table[key]
        if not isinstance(v, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in v
        ):
            raise ValueError(f"[engine].{key} must be a list of integers, got {v!r}")
    in_width = table.get("in_width", 0)
    if not isinstance(in_width, int) or isinstance(in_width, bool):
        raise ValueError(f"[engine].in_width must be an integer, got {in_width!r}")
    return EngineConfig.from_lists(table["widths"], table["pe"], table["simd"], in_width)


def load_engine_config(path: str | Path) -> EngineConfig:
    """Read the ``[engine]`` table of a TOML file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not valid TOML, has no ``[engine]`` table, or the table is invalid.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"engine config not found: {p}")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: invalid TOML: {exc}") from None
    if not isinstance(doc.get("engine"), dict):
        raise ValueError(f"{p}: needs an [engine] table")
    return engine_config_from_dict(doc["engine"])


def default_engine_config() -> EngineConfig:
    """The packaged default: 784-256-256-10, PE (32, 16, 10), SIMD (98, 64, 4), one beat."""
    text = resources.files("spinapse").joinpath("configs/inference_engine.toml").read_text("utf-8")
    return engine_config_from_dict(tomllib.loads(text)["engine"])
