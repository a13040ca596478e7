"""The training system a board carries: rule, initial model and device-calibrated arrays.

:func:`emulated_training_system` assembles what :class:`spinapse.boards.training_top.TrainingTop`
needs for a digital-mode training engine ``n_in -> n_hidden -> n_out`` whose two arrays are
synapse emulators (:class:`~spinapse.rtl.emulated_array.EmulatedSynapseArray`) calibrated on a
device card at build time (:func:`spinapse.cosim.emulator_calibration.switching_probabilities`:
the card's nominal device, codes 1..3 at 0.9, 1.1, 1.3 x ``Ic0``, 10 ns pulses). The engine's
``WRITE`` pulses reach the emulator with one build-time code
(:class:`~spinapse.rtl.write_code.FixedWriteCode`); its write-verify retries the synapses that
did not switch, and the hidden state ``W_h`` stays in the engine (digital mode), so the
emulator's level stays at its initial 0. Initial ``W_h``:
:func:`spinapse.golden.integer_model.learning.initial_w_h`; ``W_b = W_h >= 0``.

:func:`pin_training_system` is the mixed-signal prototype: the same engine drives a chip on the
board's ``synapse_array`` pins (:class:`spinapse.boards.array_pins.PinBank`) through one
:class:`~spinapse.rtl.lane_serializer.LaneSerializer` that carries both layers' rows, lane group
by lane group, over the bank's few lanes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spinapse.cosim.emulator_calibration import switching_probabilities, switching_table
from spinapse.golden.integer_model.array_models import lane_seeds
from spinapse.golden.integer_model.learning import IntegerRule, initial_w_h
from spinapse.rtl.emulated_array import EmulatedSynapseArray
from spinapse.rtl.uart_training import model_id
from spinapse.rtl.write_code import FixedWriteCode

CODE_BITS = 2
"""Pulse-code width of the board's arrays (codes 1..3: the calibration's three currents)."""
LEVEL_BITS = 2


@dataclasses.dataclass
class BoardTraining:
    """What a training top is built from (see :class:`spinapse.boards.training_top.TrainingTop`)."""

    rule: IntegerRule
    tables: list
    init_wh: list
    arrays: list
    model: int
    table: list | None
    write_code: int
    pin_bank: object | None = None
    """The board's pin bank (:class:`spinapse.boards.array_pins.PinBank`) when the arrays are
    on pins; the top elaborates it."""

    def describe(self) -> dict:
        """JSON-ready summary for ``build.json``."""
        r = self.rule
        out = {
            "network": f"{r.n_in}-{r.n_hidden}-{r.n_out}",
            "mode": "digital",
            "arrays": "emulator" if self.pin_bank is None else "pins",
            "write_code": self.write_code,
            "model_id": self.model,
        }
        if self.table is not None:
            out["switching_table_level0"] = [row[0] for row in self.table]
        if self.pin_bank is not None:
            ser, arr = self.pin_bank.serializer, self.pin_bank.array
            out["pins"] = {
                "lanes_per_group": ser.group,
                "groups": ser.n_groups,
                "address_fields": ser.fields,
                "setup_cycles": arr.setup_cycles,
                "pulse_cycles": arr.pulse_cycles,
            }
        return out


def emulated_training_system(
    n_hidden: int = 4,
    card: str = "mtj_mi_stt",
    write_code: int = 2,
    seed: int = 0,
    n_in: int = 784,
    n_out: int = 10,
) -> BoardTraining:
    """The training system with emulated arrays (see the module docstring).

    Parameters
    ----------
    n_hidden : int
        Hidden neurons (the lanes of layer 1), >= 2.
    card : str
        Device card the emulator is calibrated on (``behavioral/cards``).
    write_code : int
        Code of every ``WRITE`` pulse, 1..3 (0.9, 1.1, 1.3 x ``Ic0``).
    seed : int
        Seed of the initial ``W_h`` and of the emulators' xorshift lanes.
    n_in, n_out : int
        Inputs (a multiple of 8) and classes.

    Raises
    ------
    ValueError
        If a size or the code is out of range (from the rule, the arrays or the adapter).
    """
    rule = dataclasses.replace(
        IntegerRule(), n_in=n_in, n_hidden=n_hidden, n_out=n_out, code_bits=CODE_BITS
    )
    init_wh = initial_w_h(rule, seed)
    table = switching_table(switching_probabilities(card, CODE_BITS, LEVEL_BITS))
    arrays = []
    for k, (rows, lanes) in enumerate(((n_in, n_hidden), (n_hidden, n_out))):
        bits = [sum(1 << j for j, w in enumerate(row) if w >= 0) for row in np.asarray(init_wh[k])]
        emulator = EmulatedSynapseArray(
            rows, lanes, CODE_BITS, LEVEL_BITS, table, lane_seeds(seed + 1 + k, lanes), bits
        )
        arrays.append(FixedWriteCode(emulator, write_code))
    model = model_id(rule, "digital", init_wh)
    return BoardTraining(rule, rule.tables(), init_wh, arrays, model, table, write_code)


def pin_training_system(
    board_name: str,
    n_hidden: int = 4,
    write_code: int = 2,
    seed: int = 0,
    n_in: int = 784,
    n_out: int = 10,
    setup_cycles: int = 1,
    pulse_cycles: int = 4,
) -> BoardTraining:
    """The training system with both layers on a chip behind the board's pin bank.

    The engine's two ports go through one :class:`~spinapse.rtl.lane_serializer.LaneSerializer`
    (group = the bank's lanes; layer ``k`` row ``r`` lane group ``g`` at the narrow address
    documented there) into a :class:`~spinapse.rtl.pin_array.PinSynapseArray`; ``WRITE`` pulses
    carry ``write_code`` (:class:`~spinapse.rtl.write_code.FixedWriteCode`). The chip's initial
    ``W_b`` is the chip's own (the host programs it to ``W_h >= 0`` of the initial model, which
    :func:`~spinapse.rtl.uart_training.model_id` identifies); write-verify rewrites every lane of
    an updated row that disagrees with ``W_h >= 0``.

    Parameters
    ----------
    board_name : str
        A board of :data:`spinapse.boards.array_pins.ARRAY_PINS`.
    n_hidden, write_code, seed, n_in, n_out
        As :func:`emulated_training_system`.
    setup_cycles, pulse_cycles : int
        Pin timing of :class:`~spinapse.rtl.pin_array.PinSynapseArray`.

    Raises
    ------
    ValueError
        If the board has no pin bank, the rows do not fit its address lines, or a size or the
        code is out of range.
    """
    from spinapse.boards.array_pins import ARRAY_PINS, PinBank
    from spinapse.rtl.lane_serializer import LaneSerializer

    if board_name not in ARRAY_PINS:
        raise ValueError(f"no synapse-array pins for {board_name!r}; allowed: {sorted(ARRAY_PINS)}")
    spec = ARRAY_PINS[board_name]
    rule = dataclasses.replace(
        IntegerRule(), n_in=n_in, n_hidden=n_hidden, n_out=n_out, code_bits=spec["code_bits"]
    )
    init_wh = initial_w_h(rule, seed)
    serializer = LaneSerializer(rule.layer_shapes(), spec["code_bits"], spec["lanes"])
    bank = PinBank(board_name, serializer, setup_cycles, pulse_cycles)
    arrays = [FixedWriteCode(view, write_code) for view in serializer.views()]
    model = model_id(rule, "digital", init_wh)
    return BoardTraining(
        rule, rule.tables(), init_wh, arrays, model, None, write_code, pin_bank=bank
    )
