"""Memory inventory of the chip per mode and network shape, and its SRAM area per node.

Per layer ``l`` with ``R`` rows (inputs) and ``C`` lanes (neurons), ``S = R C`` synapses, and the
constants of the integer rule (:class:`spinapse.golden.integer_model.learning.IntegerRule`):

========================  ==========================  ===========================  ==========
memory                    digital mode                device mode                  held in
========================  ==========================  ===========================  ==========
``W_b``                   ``S`` devices               ``S`` devices                MTJ array
``W_h``                   ``wh_bits * S``             0 (device hidden state c)    SRAM
``M`` (accumulators)      ``acc_bits * S``            ``acc_bits * S``             SRAM
thresholds ``T``          ``18 * C``                  ``18 * C``                   registers
counters                  ``3 * 32`` per layer        ``3 * 32`` per layer         registers
f_meta ROM                ``9 * entries`` per layer   0 (the device applies it)    logic
========================  ==========================  ===========================  ==========

Inference mode (:class:`spinapse.rtl.inference_engine.InferenceEngine`): weight memories
``PE * SIMD`` bits x ``NF * SF`` words and parameter memories per layer, all SRAM (layouts in
:mod:`spinapse.rtl.folding`).

Registers and the ROM are counted as logic by the synthesis (:mod:`spinapse.plan.yosys_cmos`);
they are listed here so every stored bit is seen. SRAM area = bits x bit-cell area / array
efficiency, with the published 6T high-density bit cells of :data:`BIT_CELLS` (cell only: no
periphery unless ``array_efficiency`` < 1 is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

THR_BITS = 18  # rtl/training_engine.py THR_BITS
COUNTER_BITS = 3 * 32  # writes, retries, failures of each update engine
ROM_ENTRY_BITS = 9  # rtl/update_lane.py: entries in [0, 256]

#: Published 6T SRAM bit-cell areas (um^2) per node, with their sources.
BIT_CELLS: dict[str, tuple[float, str]] = {
    "130nm": (2.45, "Intel 130 nm, Tyagi et al., IEDM 2000: 2.45 um^2 6T cell"),
    "90nm": (1.0, "Intel 90 nm, Thompson et al., IEDM 2002: 1.0 um^2 6T cell"),
    "45nm": (0.346, "Intel 45 nm HK/MG, Mistry et al., IEDM 2007: 0.346 um^2 6T cell"),
    "28nm": (0.127, "TSMC 28 nm LP, Wu et al., VLSI Technology 2009: 0.127 um^2 6T cell"),
    "22nm": (0.092, "Intel 22 nm tri-gate, Auth et al., VLSI Technology 2012: 0.092 um^2 HD cell"),
    "16nm": (0.07, "TSMC 16 nm FinFET, Wu et al., IEDM 2014: 0.07 um^2 HD 6T cell"),
    "7nm": (0.027, "TSMC 7 nm FinFET, Wu et al., IEDM 2016: 0.027 um^2 HD 6T cell"),
    "5nm": (0.021, "TSMC 5 nm EUV, Yeap et al., IEDM 2019: 0.021 um^2 HD 6T cell"),
}


@dataclass(frozen=True)
class MemoryEntry:
    """One memory of one layer.

    Attributes
    ----------
    name : str
        ``W_b``, ``W_h``, ``M``, ``thresholds``, ``counters``, ``f_meta ROM``, ``weights``,
        ``parameters``.
    layer : int
        Layer index (0 = first).
    bits : int
        Stored bits (device count for ``W_b`` in the MTJ array).
    kind : str
        ``"device"`` (MTJ array), ``"sram"``, ``"register"`` or ``"logic"`` (constant ROM).
    """

    name: str
    layer: int
    bits: int
    kind: str


def layer_shapes(widths: Sequence[int]) -> list[tuple[int, int]]:
    """``(rows, lanes)`` of every layer of ``widths = [n_in, hidden..., n_out]``.

    Raises
    ------
    ValueError
        If fewer than 3 widths are given or one is < 1.
    """
    w = [int(x) for x in widths]
    if len(w) < 3 or min(w) < 1:
        raise ValueError(f"network widths must be >= 3 positive integers, got {list(widths)}")
    return list(zip(w[:-1], w[1:]))


def training_memories(widths: Sequence[int], mode: str, rule) -> list[MemoryEntry]:
    """Memories of the training chip (engine + arrays) in ``mode`` for ``widths``.

    ``rule`` supplies ``wh_bits``, ``acc_bits``, ``index_shift`` (table size); see the module
    table.

    Raises
    ------
    ValueError
        If ``mode`` is not ``"digital"`` or ``"device"`` or ``widths`` is invalid.
    """
    if mode not in ("digital", "device"):
        raise ValueError(f"mode must be 'digital' or 'device', got {mode!r}")
    entries = (1 << (rule.wh_bits - 1 - rule.index_shift)) + 1
    out = []
    for layer, (rows, lanes) in enumerate(layer_shapes(widths)):
        s = rows * lanes
        out.append(MemoryEntry("W_b", layer, s, "device"))
        if mode == "digital":
            out.append(MemoryEntry("W_h", layer, rule.wh_bits * s, "sram"))
        out.append(MemoryEntry("M", layer, rule.acc_bits * s, "sram"))
        out.append(MemoryEntry("thresholds", layer, THR_BITS * lanes, "register"))
        out.append(MemoryEntry("counters", layer, COUNTER_BITS, "register"))
        if mode == "digital":
            out.append(MemoryEntry("f_meta ROM", layer, ROM_ENTRY_BITS * entries, "logic"))
    return out


def inference_memories(config) -> list[MemoryEntry]:
    """Weight and parameter memories of an inference engine (:class:`EngineConfig`)."""
    out = []
    for layer, f in enumerate(config.layers):
        out.append(MemoryEntry("weights", layer, f.weight_width * f.weight_depth, "sram"))
        out.append(MemoryEntry("parameters", layer, f.param_width * f.param_depth, "sram"))
    return out


def totals(entries: Sequence[MemoryEntry]) -> dict[str, int]:
    """Bits by kind (``device``, ``sram``, ``register``, ``logic``) and by name."""
    out: dict[str, int] = {}
    for e in entries:
        out[e.kind] = out.get(e.kind, 0) + e.bits
        out[f"{e.name}"] = out.get(e.name, 0) + e.bits
    return out


def sram_area_um2(bits: int, node: str, array_efficiency: float = 1.0) -> float:
    """SRAM area (um^2) of ``bits`` at ``node`` (a key of :data:`BIT_CELLS`).

    Raises
    ------
    ValueError
        If the node is unknown or ``array_efficiency`` is outside (0, 1].
    """
    if node not in BIT_CELLS:
        raise ValueError(f"node {node!r} unknown; known: {', '.join(BIT_CELLS)}")
    if not 0 < array_efficiency <= 1:
        raise ValueError(f"array_efficiency must be in (0, 1], got {array_efficiency}")
    return bits * BIT_CELLS[node][0] / array_efficiency
