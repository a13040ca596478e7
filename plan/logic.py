"""Digital logic of the engines: Yosys generic-CMOS counts per block, and their scaling.

Blocks synthesised (the RTL itself, converted by Amaranth, counted by
:mod:`spinapse.plan.yosys_cmos`; memories excluded, see :mod:`spinapse.plan.memory`):

- training engine, each mode, ``n_in - h - n_out`` for each ``h`` of the plan's synthesis
  widths: ``training_engine`` (forward XNOR-popcount accumulators, thresholds, hinge error,
  backward pass, control), ``training_engine.upd1`` (update engine of layer 1: ``h`` lanes) and
  ``training_engine.upd2`` (layer 2: ``n_out`` lanes);
- the inference engine of the plan's ``[engine]`` folding.

Scaling (training engine): the logic grows with the lanes of each layer's update engine and with
the hidden neurons of the forward/backward datapath. Two synthesised widths give, per mode, the
cost of one update lane and of one hidden neuron (least squares, exact for two points); a network
``[n_in, h_1, ..., n_out]`` is then estimated as
``control(sum h) + sum_l update(lanes_l)``. Widths beyond those synthesised are extrapolations
(the report says which); the residual of ``upd2`` (not in the fit) is reported as a check.
Measured: fitted at 784-8-10 and 784-16-10, the 784-32-10 engine is predicted within 5 %
(digital) and +5.6 % (device) of its synthesis (slow test in ``tests/test_plan.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from spinapse.io import write_text
from spinapse.plan.yosys_cmos import SynthResult, default_cache_dir, synthesize

TOP = "training_engine"


def _sources_digest() -> str:
    """SHA-256 of the RTL and integer-model sources the engines are built from."""
    from spinapse import golden, rtl

    h = hashlib.sha256()
    for pkg in (rtl, golden):
        for path in sorted(Path(pkg.__file__).parent.rglob("*.py")):
            h.update(str(path.name).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _cached_verilog(key: dict, build: Callable[[], str], cache_dir=None) -> str:
    # Amaranth's conversion runs Yosys too (seconds per design): keep its text by the sources'
    # digest and the parameters, so an unchanged plan converts nothing.
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256(
        json.dumps({**key, "sources": _sources_digest()}, sort_keys=True).encode()
    ).hexdigest()
    path = cache / "verilog" / f"{digest}.v"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    text = build()
    write_text(path, text)
    return text


def training_verilog(
    n_in: int, n_hidden: int, n_out: int, mode: str, rule_fields: dict, cache_dir=None
) -> str:
    """Verilog of the training engine (arrays outside) for this shape and mode (cached)."""
    from spinapse.golden.integer_model.learning import IntegerRule
    from spinapse.rtl.training_engine import TrainingEngine
    from spinapse.rtl.verilog import convert

    rule = IntegerRule(n_in=n_in, n_hidden=n_hidden, n_out=n_out, **rule_fields)
    key = {"block": TOP, "mode": mode, "rule": rule.as_dict()}
    return _cached_verilog(
        key, lambda: convert(TrainingEngine(rule, mode, rule.tables()), TOP), cache_dir
    )


def inference_verilog(config, cache_dir=None) -> str:
    """Verilog of the inference engine of an :class:`EngineConfig` (cached)."""
    from spinapse.rtl.inference_engine import InferenceEngine
    from spinapse.rtl.verilog import convert

    key = {"block": "inference_engine", "config": asdict(config)}
    return _cached_verilog(
        key, lambda: convert(InferenceEngine(config), "inference_engine"), cache_dir
    )


@dataclass(frozen=True)
class LinearCost:
    """``a + b x`` transistors."""

    a: float
    b: float

    def __call__(self, x: float) -> float:
        return self.a + self.b * x

    @classmethod
    def fit(cls, xs: Sequence[float], ys: Sequence[float]) -> LinearCost:
        """Least-squares line through ``(xs, ys)``.

        Raises
        ------
        ValueError
            With fewer than two distinct ``xs``.
        """
        if len(set(xs)) < 2:
            raise ValueError(f"need at least two distinct synthesis widths, got {list(xs)}")
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        return cls(my - b * mx, b)


@dataclass(frozen=True)
class TrainingLogicModel:
    """Per-mode transistor model of the training engine, fitted to synthesised widths.

    Attributes
    ----------
    mode : str
    n_in, n_out : int
        The shape the fit holds for (input register width, output lanes).
    control : LinearCost
        ``training_engine`` local transistors against the total hidden neurons.
    update : LinearCost
        One update engine against its lanes.
    synthesized : dict[int, SynthResult]
        The synthesis of each width ``h``.
    """

    mode: str
    n_in: int
    n_out: int
    control: LinearCost
    update: LinearCost
    synthesized: dict[int, SynthResult]

    def estimate(self, widths: Sequence[int]) -> dict[str, float]:
        """Transistors of ``control``, ``update`` (all layers) and ``total`` for ``widths``.

        Raises
        ------
        ValueError
            If ``widths`` does not start with ``n_in`` and end with ``n_out`` of the fit.
        """
        w = [int(x) for x in widths]
        if len(w) < 3 or w[0] != self.n_in or w[-1] != self.n_out:
            raise ValueError(
                f"network {w} must be {self.n_in}-...-{self.n_out} (the synthesised shape)"
            )
        control = self.control(sum(w[1:-1]))
        update = sum(self.update(lanes) for lanes in w[1:])
        return {"control": control, "update": update, "total": control + update}

    def upd2_residual(self) -> float:
        """Largest relative error of the lane model on the layer-2 engines (not fitted)."""
        worst = 0.0
        for r in self.synthesized.values():
            got = r.blocks[f"{TOP}.upd2"].transistors
            worst = max(worst, abs(self.update(self.n_out) - got) / got)
        return worst


def fit_training_logic(
    n_in: int,
    n_out: int,
    hidden: Sequence[int],
    mode: str,
    rule_fields: dict | None = None,
    cache_dir=None,
    progress: Callable[[str], None] | None = None,
) -> TrainingLogicModel:
    """Synthesise the training engine at each hidden width and fit :class:`TrainingLogicModel`.

    Raises
    ------
    ValueError
        If fewer than two distinct hidden widths are given.
    RuntimeError
        If Yosys fails.
    """
    rule_fields = dict(rule_fields or {})
    results = {}
    for h in sorted(set(int(x) for x in hidden)):
        if progress:
            progress(f"synthesise training engine {mode} {n_in}-{h}-{n_out}")
        v = training_verilog(n_in, h, n_out, mode, rule_fields, cache_dir)
        results[h] = synthesize(v, TOP, cache_dir)
    hs = list(results)
    control = LinearCost.fit(hs, [results[h].blocks[TOP].local_transistors for h in hs])
    update = LinearCost.fit(hs, [results[h].blocks[f"{TOP}.upd1"].transistors for h in hs])
    return TrainingLogicModel(mode, n_in, n_out, control, update, results)
