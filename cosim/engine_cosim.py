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

from spinapse.cosim.engine_load import model_writes, pack_write
from spinapse.cosim.runner import run_cocotb, sim_build_root
from spinapse.cosim.tb_inference_engine import write_case
from spinapse.golden.integer_inference import IntegerBNN
from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.inference_engine import InferenceEngine
from spinapse.rtl.verilog import convert

TOPLEVEL = "inference_engine"


def engine_verilog(config: EngineConfig) -> str:
    """Verilog text of the engine of ``config`` (top module ``inference_engine``)."""
    return convert(InferenceEngine(config), TOPLEVEL)


def run_engine_cosim(
    config: EngineConfig,
    phases: Sequence[tuple[IntegerBNN, np.ndarray]],
    backpressure: float = 0.0,
    tag: str = "",
    cxx_opt: str | None = None,
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
    name = f"engine_{config.name()}"
    case_dir = sim_build_root() / "cases" / name
    case_file = case_dir / f"case{tag}.json"
    out_file = case_dir / f"out{tag}.json"
    write_case(case_file, config, case_phases, backpressure)
    out_file.unlink(missing_ok=True)
    run_cocotb(
        name=name,
        verilog=engine_verilog(config),
        toplevel=TOPLEVEL,
        test_module="spinapse.cosim.tb_inference_engine",
        extra_env={"SPINAPSE_TB_CASE": str(case_file), "SPINAPSE_TB_OUT": str(out_file)},
        cxx_opt=cxx_opt,
    )
    return json.loads(Path(out_file).read_text(encoding="utf-8"))
