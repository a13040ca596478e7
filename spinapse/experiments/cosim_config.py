"""Configuration of ``spinapse cosim``: pydantic models, TOML loading and ``--set`` overrides.

A file mirrors :class:`CosimConfig` (packaged default: ``spinapse/configs/cosim.toml``); overrides
use the syntax of ``spinapse train`` (``--set tasks.count=2 --set faults.stuck_p=0.05``). Every
field is checked where it enters; unknown fields are errors naming the field.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spinapse.config import apply_overrides, load_raw


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CosimTasks(_Strict):
    """Permuted tasks of the embedded digits (task 0 unpermuted; split seed 0)."""

    count: int = Field(5, ge=1, le=20, description="permuted tasks learned in sequence")
    epochs: int = Field(2, ge=1, le=100, description="passes over the training samples per task")
    train_samples: int = Field(
        3000, ge=1, le=3000, description="training digits per task (the first of a seeded order)"
    )
    test_samples: int = Field(2000, ge=1, le=2000, description="test digits per task")


class CosimNetwork(_Strict):
    """The on-chip network 784 - hidden - 10 and its integer rule."""

    hidden: int = Field(64, ge=2, le=1024, description="hidden neurons (lanes of layer 1)")
    m: float = Field(1.35, ge=0.0, le=100.0, description="metaplasticity m of the f_meta table")


class CosimFaults(_Strict):
    """Device faults on top of the physics."""

    stuck_p: float = Field(0.0, ge=0.0, le=1.0, description="fraction of devices stuck at P")
    stuck_ap: float = Field(0.0, ge=0.0, le=1.0, description="fraction of devices stuck at AP")
    write_fail: float = Field(0.0, ge=0.0, lt=1.0, description="extra write-failure rate")

    @model_validator(mode="after")
    def _total(self) -> CosimFaults:
        if self.stuck_p + self.stuck_ap > 1.0:
            raise ValueError("faults.stuck_p + faults.stuck_ap must be at most 1")
        return self


class CosimConfig(_Strict):
    """One full-system co-simulation run."""

    name: str = Field("cosim", min_length=1, description="results go to <out>/<name>/")
    out: str = Field("results", min_length=1, description="results folder")
    card: str = Field("mtj_mi_stt", min_length=1, description="device card (name or path)")
    mode: Literal["device", "digital"] = Field(
        "device", description="'device': gate pulses, hidden state c; 'digital': W_h, write-verify"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="initial W_h, task order, permutations")
    device_seed: int = Field(1, ge=0, le=2**31 - 1, description="device spread, faults, switching")
    baseline: bool = Field(True, description="also run the integer engine, m = 0, ideal array")
    tasks: CosimTasks = CosimTasks()
    network: CosimNetwork = CosimNetwork()
    faults: CosimFaults = CosimFaults()

    def out_dir(self) -> Path:
        """``out/name`` as an absolute path: the simulator process writes the checkpoints from
        its own build folder, where a relative path would land elsewhere."""
        return (Path(self.out) / self.name).resolve()

    def rule(self):
        """The :class:`~spinapse.golden.integer_model.learning.IntegerRule` of the run."""
        from spinapse.golden.integer_model.learning import IntegerRule

        return dataclasses.replace(IntegerRule(), n_hidden=self.network.hidden, m=self.network.m)


def default_cosim_toml() -> str:
    """Text of the packaged default (``spinapse/configs/cosim.toml``)."""
    return resources.files("spinapse").joinpath("configs/cosim.toml").read_text("utf-8")


def load_cosim_config(path=None, overrides: list[str] | None = None) -> CosimConfig:
    """Load a co-simulation configuration (packaged default when ``path`` is None).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming each bad field, what is allowed, and the value given.
    """
    if path is None:
        import tomllib

        raw, source = tomllib.loads(default_cosim_toml()), "cosim.toml"
    else:
        raw, source = load_raw(path), str(path)
    raw = apply_overrides(raw, overrides or [])
    if overrides:
        source += " with --set overrides"
    try:
        return CosimConfig.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(root)"
            parts.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
        raise ValueError(f"invalid configuration in {source}: " + "; ".join(parts)) from None
