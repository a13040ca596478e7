"""One folded layer: weight and parameter memories, the XNOR-popcount PE array, accumulators,
and the threshold unit (hidden layer) or score unit (output layer).

Schedule (see :mod:`spinapse.rtl.folding` for ``SF``, ``NF`` and the memory layout): after a
``start`` pulse the layer issues one weight word per cycle, neuron fold ``g`` outer and input fold
``s`` inner, for ``SF * NF`` cycles without bubbles. Pipeline (one register between stages, so
the critical path is short enough for an FPGA at 50-100 MHz): issue (memory address, input
slice) -> memory read -> registered memory word -> XNOR and registered partial popcounts (chunks
of :data:`~spinapse.rtl.folding.POPCOUNT_CHUNK` bits) -> sum and accumulate -> threshold/score
into the output register. ``done`` is high in the cycle the last result is visible,
``SF * NF + 5`` cycles after the ``start`` cycle (:attr:`LayerFolding.run_cycles`).

Memories: the weight and parameter memories have one synchronous read port and one write port;
writes happen only while the layer is idle (``busy`` low), so a read and a write of one address
never meet in a cycle: FPGA flows may drop Yosys' read-during-write collision logic
(``COLLISION_X_MASK``), which :mod:`spinapse.boards` does.
``x`` is copied into the layer at ``start`` (the producer may then overwrite it); ``y``/``score``
are written group by group during a run and hold their values until the next run.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.folding import POPCOUNT_CHUNK, LayerFolding
from spinapse.rtl.score import Score, score_layout
from spinapse.rtl.threshold import Threshold, threshold_layout
from spinapse.rtl.xnor_popcount import RegisteredXnorPopcount


def write_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """A memory write bus (driven by the writer): ``en``, ``addr``, ``data``; one word per cycle."""
    return wiring.Signature({"en": Out(1), "addr": Out(addr_width), "data": Out(data_width)})


class Layer(wiring.Component):
    """A folded binarized layer (see the module docstring for the schedule and latency).

    Parameters
    ----------
    folding : LayerFolding
        Sizes and PE/SIMD folding; ``folding.output`` selects scores instead of bits.
    slice_input : bool
        False (default): ``x`` is copied into the layer at ``start``. True: no ``x``; the layer
        reads its input slice by slice from a memory outside (``N`` flip-flops and an
        ``SF``-way multiplexer fewer), through ``x_addr`` and ``x_data``.

    Members
    -------
    x : In(N)
        Input bits (1 means +1), sampled in the ``start`` cycle (not with ``slice_input``).
    x_addr : Out(range(SF))
        With ``slice_input``: the input fold wanted; ``x_data`` must show its ``SIMD`` bits
        (input ``x_addr * SIMD + k`` at bit ``k``) in the next cycle, as a synchronous memory
        read port does. The producer must not change the memory while ``busy``.
    x_data : In(SIMD)
        With ``slice_input``: the slice addressed in the previous cycle.
    start : In(1)
        Pulse to start one run; ignored while ``busy``.
    busy : Out(1)
    done : Out(1)
        One-cycle pulse when the results are complete.
    y : Out(M)
        Hidden layer: output bits, neuron ``n`` at bit ``n``.
    score : Out(ArrayLayout(signed(W), M))
        Output layer: integer scores.
    weight_write, param_write : In(write_signature(...))
        Run-time writes into the weight and parameter memories (layout in
        :mod:`spinapse.rtl.folding`); only while not ``busy``. Out-of-range addresses are ignored.

    Raises
    ------
    TypeError
        If ``folding`` is not a :class:`LayerFolding`.
    """

    def __init__(self, folding: LayerFolding, slice_input: bool = False) -> None:
        if not isinstance(folding, LayerFolding):
            raise TypeError(f"folding must be a LayerFolding, got {type(folding).__name__}")
        self.folding = f = folding
        self.slice_input = bool(slice_input)
        members = {
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "weight_write": In(
                write_signature(max(1, (f.weight_depth - 1).bit_length()), f.weight_width)
            ),
            "param_write": In(
                write_signature(max(1, (f.param_depth - 1).bit_length()), f.param_width)
            ),
        }
        if self.slice_input:
            members["x_addr"] = Out(range(f.sf))
            members["x_data"] = In(f.simd)
        else:
            members["x"] = In(f.n_in)
        if f.output:
            members["score"] = Out(data.ArrayLayout(signed(f.score_width), f.n_out))
        else:
            members["y"] = Out(f.n_out)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        f = self.folding
        m = Module()
        param_shape = (
            data.ArrayLayout(score_layout(), f.pe)
            if f.output
            else data.ArrayLayout(threshold_layout(f.threshold_width), f.pe)
        )
        m.submodules.weights = wmem = memory.Memory(
            shape=f.weight_width, depth=f.weight_depth, init=[]
        )
        m.submodules.params = pmem = memory.Memory(shape=param_shape, depth=f.param_depth, init=[])
        w_rd = wmem.read_port()
        p_rd = pmem.read_port()
        for mem, bus, depth in (
            (wmem, self.weight_write, f.weight_depth),
            (pmem, self.param_write, f.param_depth),
        ):
            wr = mem.write_port()
            m.d.comb += [
                wr.addr.eq(bus.addr),
                wr.data.eq(bus.data),
                wr.en.eq(bus.en & (bus.addr < depth)),
            ]

        m.submodules.pe_array = pe_array = RegisteredXnorPopcount(f.pe, f.simd, POPCOUNT_CHUNK)

        # Stage 0: issue (memory address, input slice). Each later stage k carries the flags of
        # the word issued k cycles earlier: valid, first/last input fold, neuron group.
        running = Signal()
        s = Signal(range(f.sf))
        g = Signal(range(f.nf))
        addr = Signal(range(f.weight_depth))
        x_slice = Signal(f.simd)
        v = [Signal(name=f"v{k}") for k in range(4)]
        first = [Signal(name=f"first{k}") for k in range(4)]
        last = [Signal(name=f"last{k}") for k in range(4)]
        gs = [Signal(range(f.nf), name=f"g{k}") for k in range(4)]
        m.d.sync += [v[1].eq(running), first[1].eq(s == 0), last[1].eq(s == f.sf - 1), gs[1].eq(g)]
        for k in (2, 3):
            m.d.sync += [
                v[k].eq(v[k - 1]),
                first[k].eq(first[k - 1]),
                last[k].eq(last[k - 1]),
                gs[k].eq(gs[k - 1]),
            ]
        m.d.comb += w_rd.addr.eq(addr)
        # The layer keeps its own copy of the input, taken at start: the producer may overwrite
        # its output (the next image) while this layer still works on the current one.
        if self.slice_input:
            m.d.comb += [self.x_addr.eq(s), x_slice.eq(self.x_data)]
        else:
            xin = Signal(f.n_in)
            m.d.sync += x_slice.eq(xin.word_select(s, f.simd))
        with m.If(running):
            m.d.sync += addr.eq(addr + 1)
            with m.If(s == f.sf - 1):
                m.d.sync += s.eq(0)
                with m.If(g == f.nf - 1):
                    m.d.sync += [g.eq(0), running.eq(0), addr.eq(0)]
                with m.Else():
                    m.d.sync += g.eq(g + 1)
            with m.Else():
                m.d.sync += s.eq(s + 1)
        with m.Elif(self.start & ~self.busy):
            m.d.sync += [running.eq(1), s.eq(0), g.eq(0), addr.eq(0)]
            if not self.slice_input:
                m.d.sync += xin.eq(self.x)

        # Stage 1: the memory word is out; register it (and the input slice) so the memory's
        # clock-to-out does not add to the XNOR-popcount path.
        w_q = Signal(f.weight_width)
        x_q = Signal(f.simd)
        m.d.sync += [w_q.eq(w_rd.data), x_q.eq(x_slice)]

        # Stage 2: XNOR and registered partial popcounts (inside pe_array); the parameter word
        # of the group is addressed now and read out in stage 3.
        m.d.comb += [pe_array.x.eq(x_q), pe_array.w.eq(w_q), p_rd.addr.eq(gs[2])]

        # Stage 3: sum of the partial counts and accumulation per PE.
        acc = Signal(data.ArrayLayout(f.count_width, f.pe))
        v4, g4 = Signal(), Signal(range(f.nf))
        param4 = Signal(param_shape)
        m.d.sync += [v4.eq(v[3] & last[3]), g4.eq(gs[3])]
        with m.If(v[3]):
            for j in range(f.pe):
                base = Mux(first[3], 0, acc[j])  # restart the sum on the first input fold
                m.d.sync += acc[j].eq(base + pe_array.count[j])
        with m.If(v[3] & last[3]):
            m.d.sync += param4.eq(p_rd.data)

        # Stage 4: fold BatchNorm (threshold or score) and store the PE results of group g4.
        done = Signal()
        m.d.sync += done.eq(v4 & (g4 == f.nf - 1))
        m.d.comb += [
            self.done.eq(done),
            self.busy.eq(running | v[1] | v[2] | v[3] | v4 | done),
        ]
        if f.output:
            m.submodules.unit = unit = Score(f.pe, f.n_in)
            flat = Signal(f.n_out * f.score_width)
            m.d.comb += self.score.as_value().eq(flat)
            with m.If(v4):
                m.d.sync += flat.word_select(g4, f.pe * f.score_width).eq(unit.score.as_value())
        else:
            m.submodules.unit = unit = Threshold(f.pe, f.count_width, f.threshold_width)
            y = Signal(f.n_out)
            m.d.comb += self.y.eq(y)
            with m.If(v4):
                m.d.sync += y.word_select(g4, f.pe).eq(unit.bits)
        m.d.comb += [unit.count.eq(acc), unit.param.eq(param4)]
        return m
