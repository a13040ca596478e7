"""``SynapseArray``: the one interface between a learning engine and any array of synapses.

An array holds ``rows x lanes`` binary synapses (row = presynaptic input, lane = postsynaptic
neuron). The engine sends commands on ``cmd`` (an ``amaranth.lib.stream``); the array answers each
``READ`` with one beat on ``sense``, in order. The transfer rules are written in
``docs/synapse_array.md``. Four implementations sit behind it: :class:`IdealSynapseArray` (tests),
the seeded stochastic and hidden-state arrays (``stochastic_array.py``,
``hidden_state_array.py``), and later the co-simulation bridge and the board pins.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class SynapseOp(enum.Enum, shape=2):
    """Command of a :class:`SynapseArraySignature` ``cmd`` beat.

    - ``READ``: sense the binary weights of ``row`` (one ``sense`` beat answers it);
    - ``WRITE``: one switching pulse on every ``enable`` lane of ``row`` towards ``polarity``
      (1: +1 / P, 0: -1 / AP); may fail on a stochastic device: verify with ``READ``;
    - ``GATE``: one gate pulse on every ``enable`` lane that moves the device hidden state
      towards ``polarity`` by ``code`` (width/amplitude code, device units).
    """

    READ = 0
    WRITE = 1
    GATE = 2


def _check(name: str, value: int, lo: int, hi: int) -> None:
    if not (isinstance(value, int) and lo <= value <= hi):
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")


def command_layout(rows: int, lanes: int, code_bits: int) -> data.StructLayout:
    """Payload of a ``cmd`` beat: ``op``, ``row``, ``col`` (column group, one group here),
    ``enable``/``polarity`` (``lanes`` bits, lane ``l`` at bit ``l``) and ``code``
    (``lanes * code_bits`` bits, lane ``l`` at ``[l*code_bits, (l+1)*code_bits)``)."""
    return data.StructLayout(
        {
            "op": SynapseOp,
            "row": range(rows),
            "col": 1,
            "enable": lanes,
            "polarity": lanes,
            "code": lanes * code_bits,
        }
    )


class SynapseArraySignature(wiring.Signature):
    """Signature of a synapse array port, seen from the engine (the engine drives ``cmd``).

    Parameters
    ----------
    rows : int
        Rows (presynaptic inputs), in [1, 65536].
    lanes : int
        Synapses per row sensed or pulsed in parallel (postsynaptic neurons), in [1, 1024].
    code_bits : int
        Width of one lane's pulse code, in [1, 8].

    Members
    -------
    cmd : Out(stream.Signature(command_layout(rows, lanes, code_bits)))
        Commands; ``cmd.ready`` low means the array is busy.
    sense : In(stream.Signature(lanes))
        One beat per ``READ``, in order: bit ``l`` is 1 where the synapse of lane ``l`` is +1.

    Raises
    ------
    ValueError
        If a parameter is outside its range.
    """

    def __init__(self, rows: int, lanes: int, code_bits: int) -> None:
        _check("rows", rows, 1, 1 << 16)
        _check("lanes", lanes, 1, 1024)
        _check("code_bits", code_bits, 1, 8)
        self.rows, self.lanes, self.code_bits = rows, lanes, code_bits
        super().__init__(
            {
                "cmd": Out(stream.Signature(command_layout(rows, lanes, code_bits))),
                "sense": In(stream.Signature(lanes)),
            }
        )

    def __eq__(self, other):
        return isinstance(other, SynapseArraySignature) and (
            self.rows,
            self.lanes,
            self.code_bits,
        ) == (other.rows, other.lanes, other.code_bits)

    def __hash__(self):
        return hash((self.rows, self.lanes, self.code_bits))

    def __repr__(self) -> str:
        return f"SynapseArraySignature({self.rows}, {self.lanes}, {self.code_bits})"


def row_memory(m: Module, bus, width: int, init, peek_row, peek_data):
    """Row store and ``cmd.ready`` of a simulated array (the part all of them share).

    Every array here keeps one word per row, reads and writes the row of the ``cmd`` beat in the
    cycle it is accepted and accepts a command whenever no ``sense`` beat is stuck, so that part
    is built once; an array adds only what its pulse does to a row word and what a ``READ``
    senses, through :func:`serve_commands`.

    Parameters
    ----------
    m : Module
        Module of the array; the memory becomes its submodule ``mem``.
    bus : In(SynapseArraySignature)
        The array's port.
    width : int
        Bits per row word (``lanes``, or ``lanes * h_bits`` for hidden states).
    init : list of int
        Initial row words.
    peek_row, peek_data : Value
        Host/test view: ``peek_data`` is driven with the word of row ``peek_row``.

    Returns
    -------
    rd, peek, wr
        Combinational read port at ``cmd.payload.row``, combinational read port at ``peek_row``,
        and the write port at ``cmd.payload.row`` (``en`` and ``data`` left to
        :func:`serve_commands`).
    """
    m.submodules.mem = mem = Memory(shape=width, depth=bus.signature.rows, init=init)
    rd = mem.read_port(domain="comb")
    peek = mem.read_port(domain="comb")
    wr = mem.write_port()
    cmd, sense = bus.cmd, bus.sense
    m.d.comb += [
        peek.addr.eq(peek_row),
        peek_data.eq(peek.data),
        rd.addr.eq(cmd.payload.row),
        wr.addr.eq(cmd.payload.row),
        cmd.ready.eq(~sense.valid | sense.ready),
    ]
    return rd, peek, wr


def serve_commands(m: Module, bus, wr, sensed, pulse_op: SynapseOp, new_word) -> None:
    """Answer an accepted ``READ`` with ``sensed``; write ``new_word`` on an accepted ``pulse_op``.

    Kept in one place because it fixes the timing every array promises (``sense.valid`` from the
    cycle after the ``READ`` until taken, a pulse seen by the next command). Other ops are
    accepted and ignored. Call it after :func:`row_memory` and after any other logic of the
    array, so that its statements come last in the module (the generated netlist then stays as
    it was when each array wrote this out itself).

    Parameters
    ----------
    m : Module
        Module of the array.
    bus : In(SynapseArraySignature)
        The array's port.
    wr : WritePort
        Write port returned by :func:`row_memory`.
    sensed : Value
        ``lanes`` bits a ``READ`` answers (bit ``l`` = 1 where lane ``l`` is +1).
    pulse_op : SynapseOp
        The op that changes the row (``WRITE`` or ``GATE``).
    new_word : Value
        Row word after that pulse.
    """
    cmd, sense = bus.cmd, bus.sense
    with m.If(sense.valid & sense.ready):
        m.d.sync += sense.valid.eq(0)
    with m.If(cmd.valid & cmd.ready):
        with m.Switch(cmd.payload.op):
            with m.Case(SynapseOp.READ):
                m.d.sync += [sense.payload.eq(sensed), sense.valid.eq(1)]
            with m.Case(pulse_op):
                m.d.comb += [wr.en.eq(1), wr.data.eq(new_word)]


class IdealSynapseArray(wiring.Component):
    """A deterministic binary array: every ``WRITE`` pulse switches its lanes; ``GATE`` is ignored.

    Timing: accepts one command per cycle while the previous ``sense`` beat is taken (or none is
    pending); a ``READ`` accepted in cycle ``t`` is answered with ``sense.valid`` from ``t + 1``
    (the bits as they were in cycle ``t``); a ``WRITE`` accepted in ``t`` is seen by a ``READ``
    accepted in ``t + 1`` or later.

    Parameters
    ----------
    rows, lanes, code_bits : int
        As :class:`SynapseArraySignature`.
    init : list of int, optional
        Initial row words (bit ``l`` of word ``r`` is lane ``l`` of row ``r``); default all 0.

    Members
    -------
    bus : In(SynapseArraySignature(rows, lanes, code_bits))
    peek_row : In(range(rows))
        Host/test view: ``peek_bits`` shows that row's bits combinationally.
    peek_bits : Out(lanes)

    Raises
    ------
    ValueError
        If a parameter is outside its range or ``init`` has the wrong length.
    """

    def __init__(self, rows: int, lanes: int, code_bits: int, init=None) -> None:
        sig = SynapseArraySignature(rows, lanes, code_bits)
        self.init = list(init) if init is not None else [0] * rows
        if len(self.init) != rows:
            raise ValueError(f"init must have {rows} row words, got {len(self.init)}")
        super().__init__({"bus": In(sig), "peek_row": In(range(rows)), "peek_bits": Out(lanes)})

    def elaborate(self, platform) -> Module:
        m = Module()
        rd, _, wr = row_memory(
            m, self.bus, self.bus.signature.lanes, self.init, self.peek_row, self.peek_bits
        )
        en, pol = self.bus.cmd.payload.enable, self.bus.cmd.payload.polarity
        serve_commands(m, self.bus, wr, rd.data, SynapseOp.WRITE, (rd.data & ~en) | (pol & en))
        return m
