"""One folded layer: weight and parameter memories, the XNOR-popcount PE array, accumulators,
and the threshold unit (hidden layer) or score unit (output layer).

Schedule (see :mod:`spinapse.rtl.folding` for ``SF``, ``NF`` and the memory layout): after a
``start`` pulse the layer issues one weight word per cycle, neuron fold ``g`` outer and input fold
``s`` inner, for ``SF * NF`` cycles without bubbles. Pipeline: issue (memory addresses, input
slice) -> XNOR-popcount and accumulate -> threshold/score into the output register. ``done``
is high in the cycle the last result is visible, ``SF * NF + 3`` cycles after the ``start`` cycle.
``x`` is copied into the layer at ``start`` (the producer may then overwrite it); ``y``/``score``
are written group by group during a run and hold their values until the next run.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.folding import LayerFolding
from spinapse.rtl.score import Score, score_layout
from spinapse.rtl.threshold import Threshold, threshold_layout
from spinapse.rtl.xnor_popcount import XnorPopcount


def write_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """A memory write bus (driven by the writer): ``en``, ``addr``, ``data``; one word per cycle."""
    return wiring.Signature({"en": Out(1), "addr": Out(addr_width), "data": Out(data_width)})


class Layer(wiring.Component):
    """A folded binarized layer (see the module docstring for the schedule and latency).

    Parameters
    ----------
    folding : LayerFolding
        Sizes and PE/SIMD folding; ``folding.output`` selects scores instead of bits.

    Members
    -------
    x : In(N)
        Input bits (1 means +1), sampled in the ``start`` cycle.
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

    def __init__(self, folding: LayerFolding) -> None:
        if not isinstance(folding, LayerFolding):
            raise TypeError(f"folding must be a LayerFolding, got {type(folding).__name__}")
        self.folding = f = folding
        members = {
            "x": In(f.n_in),
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

        m.submodules.pe_array = pe_array = XnorPopcount(f.pe, f.simd)

        # Stage 0: issue.
        running = Signal()
        s = Signal(range(f.sf))
        g = Signal(range(f.nf))
        addr = Signal(range(f.weight_depth))
        x_slice = Signal(f.simd)
        v1, first1, last1 = Signal(), Signal(), Signal()
        g1 = Signal(range(f.nf))
        m.d.comb += [w_rd.addr.eq(addr), p_rd.addr.eq(g)]
        # The layer keeps its own copy of the input, taken at start: the producer may overwrite
        # its output (the next image) while this layer still works on the current one.
        xin = Signal(f.n_in)
        m.d.sync += [
            v1.eq(running),
            first1.eq(s == 0),
            last1.eq(running & (s == f.sf - 1)),
            g1.eq(g),
            x_slice.eq(xin.word_select(s, f.simd)),
        ]
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
            m.d.sync += [running.eq(1), s.eq(0), g.eq(0), addr.eq(0), xin.eq(self.x)]

        # Stage 1: XNOR-popcount of the word read for (g1, s) and accumulation per PE.
        m.d.comb += [pe_array.x.eq(x_slice), pe_array.w.eq(w_rd.data)]
        acc = Signal(data.ArrayLayout(f.count_width, f.pe))
        v2, g2 = Signal(), Signal(range(f.nf))
        param2 = Signal(param_shape)
        m.d.sync += [v2.eq(v1 & last1), g2.eq(g1)]
        with m.If(v1):
            for j in range(f.pe):
                base = Mux(first1, 0, acc[j])  # restart the sum on the first input fold
                m.d.sync += acc[j].eq(base + pe_array.count[j])
        with m.If(v1 & last1):
            m.d.sync += param2.eq(p_rd.data)

        # Stage 2: fold BatchNorm (threshold or score) and store the PE results of group g2.
        done = Signal()
        m.d.sync += done.eq(v2 & (g2 == f.nf - 1))
        m.d.comb += [self.done.eq(done), self.busy.eq(running | v1 | v2 | done)]
        if f.output:
            m.submodules.unit = unit = Score(f.pe, f.n_in)
            flat = Signal(f.n_out * f.score_width)
            m.d.comb += self.score.as_value().eq(flat)
            with m.If(v2):
                m.d.sync += flat.word_select(g2, f.pe * f.score_width).eq(unit.score.as_value())
        else:
            m.submodules.unit = unit = Threshold(f.pe, f.count_width, f.threshold_width)
            y = Signal(f.n_out)
            m.d.comb += self.y.eq(y)
            with m.If(v2):
                m.d.sync += y.word_select(g2, f.pe).eq(unit.bits)
        m.d.comb += [unit.count.eq(acc), unit.param.eq(param2)]
        return m
