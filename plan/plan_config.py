"""The plan configuration: a ``[plan]`` table (and an optional ``[engine]`` table) in TOML.

Example (``spinapse/configs/plan.toml`` is the packaged one)::

    [plan]
    name = "example"
    network = [784, 64, 10]          # the chip: training engine n_in - hidden - n_out
    card = "mtj_mi_stt"              # device card (spinapse device list)
    node = "28nm"                    # SRAM bit cell (spinapse.plan.memory.BIT_CELLS)
    clock_hz = 100e6
    runs = ["runs/device.json"]      # results.json of device-aware runs, relative to this file
    synth_hidden = [8, 16]           # hidden widths synthesised for the logic fit
    scaling = [[784, 64, 10], [784, 4096, 4096, 10]]

    [plan.pulses]                    # the pulses of the per-operation energy table
    write_current_Ic0 = 1.2
    write_width = 10e-9              # s
    gate_voltage = 3.0               # V
    gate_width = 1e-4                # s

    [engine]                         # inference engine folding (spinapse rtl generate format)
    widths = [784, 64, 10]
    pe = [16, 10]
    simd = [49, 16]

Every field is checked where it enters; errors name the field and the allowed range.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spinapse.config import apply_overrides
from spinapse.plan.memory import BIT_CELLS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_widths(w: list[int], field: str) -> list[int]:
    if len(w) < 3 or any(x < 2 for x in w):
        raise ValueError(f"{field}: need [n_in, hidden..., n_out], each >= 2, got {w}")
    return w


class PulseConfig(_Strict):
    """The pulses whose energies the per-operation table shows (SI units).

    ``write_current_Ic0`` (multiple of the nominal ``Ic0``, (0, 10]), ``write_width`` (s,
    (0, 1e-3]), ``gate_voltage`` (V, (0, 100]), ``gate_width`` (s, (0, 10]).
    """

    write_current_Ic0: float = Field(1.2, gt=0.0, le=10.0)
    write_width: float = Field(10e-9, gt=0.0, le=1e-3)
    gate_voltage: float = Field(3.0, gt=0.0, le=100.0)
    gate_width: float = Field(1e-4, gt=0.0, le=10.0)


class PlanConfig(_Strict):
    """``[plan]``: the chip, its device card, node, clock, runs to read and the scaling list.

    Attributes
    ----------
    name : str
        Report folder name under ``results_dir`` (letters, digits, ``_.-``).
    network : list of int
        ``[n_in, n_hidden, n_out]`` of the training engine (two layers, each >= 2).
    modes : list of str
        ``"digital"`` and/or ``"device"``.
    card : str
        Device card name or path (an ``mtj_synapse`` card).
    node : str
        SRAM bit cell of :data:`spinapse.plan.memory.BIT_CELLS` (``130nm`` ... ``5nm``).
    array_efficiency : float
        Bit-cell share of the SRAM macro area, in (0, 1] (1: bit cells only).
    clock_hz : float
        Engine clock, Hz, in (0, 1e10].
    runs : list of str
        ``results.json`` files of device-aware runs (:mod:`spinapse.plan.run_energy`),
        relative to the plan file.
    synth_hidden : list of int
        At least two distinct hidden widths in [2, 1024] synthesised for the logic fit.
    scaling : list of list of int
        Networks of the scaling table, each ``[n_in, hidden..., n_out]`` with the same ``n_in``
        and ``n_out`` as ``network``.
    pulses : PulseConfig
        The pulses of the per-operation energy table.
    """

    name: str = Field("plan", pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    results_dir: str = "results"
    network: list[int] = Field(default_factory=lambda: [784, 64, 10])
    modes: list[Literal["digital", "device"]] = Field(
        default_factory=lambda: ["digital", "device"], min_length=1
    )
    card: str = "mtj_mi_stt"
    node: str = "28nm"
    array_efficiency: float = Field(1.0, gt=0.0, le=1.0)
    clock_hz: float = Field(100e6, gt=0.0, le=10e9)
    runs: list[str] = Field(default_factory=list)
    synth_hidden: list[int] = Field(default_factory=lambda: [8, 16], min_length=2)
    scaling: list[list[int]] = Field(
        default_factory=lambda: [
            [784, 64, 10],
            [784, 512, 512, 10],
            [784, 1024, 1024, 10],
            [784, 2048, 2048, 10],
            [784, 4096, 4096, 10],
        ],
        min_length=1,
    )
    pulses: PulseConfig = Field(default_factory=PulseConfig)

    @field_validator("network")
    @classmethod
    def _network(cls, v: list[int]) -> list[int]:
        if len(v) != 3:
            raise ValueError(
                f"the training engine has two layers: [n_in, n_hidden, n_out], got {v}"
            )
        return _check_widths(v, "network")

    @field_validator("node")
    @classmethod
    def _node(cls, v: str) -> str:
        if v not in BIT_CELLS:
            raise ValueError(f"unknown node {v!r}; known: {', '.join(BIT_CELLS)}")
        return v

    @field_validator("synth_hidden")
    @classmethod
    def _synth(cls, v: list[int]) -> list[int]:
        if len(set(v)) < 2 or min(v) < 2 or max(v) > 1024:
            raise ValueError(f"need at least two distinct widths in [2, 1024], got {v}")
        return v

    @field_validator("scaling")
    @classmethod
    def _scaling(cls, v: list[list[int]]) -> list[list[int]]:
        for w in v:
            _check_widths(w, "scaling")
        return v

    @model_validator(mode="after")
    def _same_ends(self) -> PlanConfig:
        # The logic fit holds for the synthesised input width and output lanes.
        n_in, n_out = self.network[0], self.network[-1]
        for w in self.scaling:
            if w[0] != n_in or w[-1] != n_out:
                raise ValueError(
                    f"scaling: every network must be {n_in}-...-{n_out} like plan.network, got {w}"
                )
        return self


class PlanFile(_Strict):
    plan: PlanConfig = Field(default_factory=PlanConfig)
    engine: dict[str, Any] | None = None


def packaged_plan_toml() -> Path:
    """Path of the packaged example (``spinapse/configs/plan.toml``)."""
    return Path(str(resources.files("spinapse").joinpath("configs/plan.toml")))


def load_plan(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> tuple[PlanConfig, Any, Path]:
    """Read a plan file (the packaged example when ``path`` is None), apply ``--set`` overrides.

    Returns
    -------
    (PlanConfig, EngineConfig or None, Path)
        The plan, the inference engine of its ``[engine]`` table (None without one), and the
        folder that relative ``runs`` paths are read from (the file's folder).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not TOML or a field is invalid (naming the field and the rule).
    """
    p = packaged_plan_toml() if path is None else Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: plan file not found")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML ({exc})") from None
    raw = apply_overrides(raw, overrides or [])
    try:
        doc = PlanFile.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(x) for x in err["loc"]) or "(root)"
            lines.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
        raise ValueError(f"invalid plan in {p}: " + "; ".join(lines)) from None
    engine = None
    if doc.engine is not None:
        from spinapse.rtl.engine_config import engine_config_from_dict

        engine = engine_config_from_dict(doc.engine)
    return doc.plan, engine, p.parent
