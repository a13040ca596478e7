"""Co-simulate the inference engine on Verilator against the integer golden model.

:func:`run_engine_cosim` converts the engine of a configuration to Verilog, writes a case file
(run-time writes of each model, images, the integer model's expected classes and scores), runs
:mod:`spinapse.cosim.tb_inference_engine` through :func:`spinapse.cosim.runner.run_cocotb` and
returns the testbench's measurements. It raises ``AssertionError`` on any mismatch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from amaranth import ClockDomain, ClockSignal, DomainRenamer, Fragment, Module, ResetSignal, Signal
from amaranth.lib import wiring

from spinapse.cosim.engine_load import model_writes, pack_write
from spinapse.cosim.runner import run_cocotb, sim_build_root
from spinapse.cosim.tb_inference_engine import write_case
from spinapse.golden.integer_model.inference import IntegerBNN
from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.inference_engine import InferenceEngine
from spinapse.rtl.verilog import convert

TOPLEVEL = "inference_engine"


class _RegisteredReset(wiring.Component):
    """The engine with its synchronous reset taken from a register of ``rst`` (one cycle later)."""

    def __init__(self, config: EngineConfig, input_copy: bool = True) -> None:
        self.config = config
        self.input_copy = input_copy
        super().__init__(_engine_signature(config, input_copy))

    def elaborate(self, platform):
        m = Module()
        m.domains.engine = engine_domain = ClockDomain("engine")
        rst_q = Signal(init=1, reset_less=True)
        m.d.sync += rst_q.eq(ResetSignal("sync"))
        m.d.comb += [engine_domain.clk.eq(ClockSignal("sync")), engine_domain.rst.eq(rst_q)]
        m.submodules.engine = engine = DomainRenamer("engine")(
            InferenceEngine(self.config, self.input_copy)
        )
        _connect_ports(m, self, engine)
        return m


class _PortsOnlyTop(wiring.Component):
    """The engine two levels down, under a top module that holds nothing but its ports.

    Verilator re-evaluates, on every model evaluation (twice per clock under cocotb), all logic
    that reads a top-level input or a public signal (cocotb may write those at any time), where
    other logic is evaluated once per clock edge. The runner makes only the top module's signals
    public (``--public-depth 1``), so: the top holds only ports; the engine's synchronous reset,
    which every register's next-state logic reads, comes from a register of ``rst`` one level
    down (:class:`_RegisteredReset`). Otherwise the whole datapath, popcount trees included,
    would be evaluated three times per cycle. The engine itself is untouched.
    """

    def __init__(self, config: EngineConfig, input_copy: bool = True) -> None:
        self.config = config
        self.input_copy = input_copy
        super().__init__(_engine_signature(config, input_copy))

    def elaborate(self, platform):
        m = Module()
        m.submodules.shell = shell = _RegisteredReset(self.config, self.input_copy)
        _connect_ports(m, self, shell)
        return m


def _connect_ports(m: Module, outer: wiring.Component, inner: wiring.Component) -> None:
    wiring.connect(m, wiring.flipped(outer.image), inner.image)
    wiring.connect(m, wiring.flipped(outer.write), inner.write)
    wiring.connect(m, inner.result, wiring.flipped(outer.result))
    m.d.comb += outer.busy.eq(inner.busy)


def _engine_signature(config: EngineConfig, input_copy: bool = True) -> wiring.Signature:
    engine = InferenceEngine(config, input_copy)
    Fragment.get(engine, None)  # elaborated once so Amaranth does not warn it went unused
    return engine.signature


def engine_verilog(config: EngineConfig, input_copy: bool = True) -> str:
    """Verilog of the engine of ``config`` for co-simulation: top module ``inference_engine``
    with the engine's ports, the engine itself one level down (see :class:`_PortsOnlyTop`);
    ``input_copy`` as :class:`~spinapse.rtl.inference_engine.InferenceEngine`."""
    return convert(_PortsOnlyTop(config, input_copy), TOPLEVEL)


def run_engine_cosim(
    config: EngineConfig,
    phases: Sequence[tuple[IntegerBNN, np.ndarray]],
    backpressure: float = 0.0,
    tag: str = "",
    cxx_opt: str | None = None,
    input_copy: bool = True,
) -> dict:
    """Run the engine on Verilator for each ``(model, image bits uint8 [B, N_in])`` phase.

    Each phase first writes all of its model's weights and parameters through the write stream,
    then streams its images; every result is checked against ``model.predict``.

    Parameters
    ----------
    config : EngineConfig
    phases : sequence of (IntegerBNN, numpy.ndarray)
    backpressure : float
        Probability in ``[0, 1]`` of a random stall before each result, and random gaps
        between images when > 0.
    tag : str
        Added to the case file name (letters, digits, ``-_``).
    cxx_opt : str, optional
        C++ optimisation of the Verilator model (see :func:`run_cocotb`).
    input_copy : bool
        False: the engine with its image memory (see
        :class:`~spinapse.rtl.inference_engine.InferenceEngine`; needs ``in_width == SIMD_0``).

    Returns
    -------
    dict
        ``checked``, ``images``, ``cycles_per_image``, ``wall_s``, ``sim_cycles``, ...

    Raises
    ------
    ValueError
        If ``backpressure`` is outside ``[0, 1]`` or a model does not fit the engine.
    AssertionError
        If any result differs from the integer model or the simulation fails.
    """
    if not 0.0 <= backpressure <= 1.0:
        raise ValueError(f"backpressure must be in [0, 1], got {backpressure}")
    case_phases = []
    for model, bits in phases:
        cls, scores = model.predict(bits)
        case_phases.append(
            {
                "writes": [pack_write(config, *w) for w in model_writes(config, model)],
                "images": [config.image_words(b) for b in np.asarray(bits, dtype=np.uint8)],
                "expected": list(zip(cls.tolist(), scores.tolist())),
            }
        )
    name = f"engine_{config.name()}" + ("" if input_copy else "_imem")
    case_dir = sim_build_root() / "cases" / name
    case_file = case_dir / f"case{tag}.json"
    out_file = case_dir / f"out{tag}.json"
    write_case(case_file, config, case_phases, backpressure)
    out_file.unlink(missing_ok=True)
    run_cocotb(
        name=name,
        verilog=engine_verilog(config, input_copy),
        toplevel=TOPLEVEL,
        test_module="spinapse.cosim.tb_inference_engine",
        extra_env={"SPINAPSE_TB_CASE": str(case_file), "SPINAPSE_TB_OUT": str(out_file)},
        cxx_opt=cxx_opt,
    )
    return json.loads(Path(out_file).read_text(encoding="utf-8"))
