"""The multi-layer binarized inference engine: image stream in, class and scores stream out.

Each layer is a :class:`spinapse.rtl.layer.Layer` with its own PE/SIMD folding and memories; the
output layer's scores go to the result register and a sequential argmax (one comparison per cycle
over the ``C`` classes). Streams
follow ``amaranth.lib.stream`` rules (a transfer happens on a cycle with ``valid & ready``;
payload stable while ``valid`` waits for ``ready``).

Timing: the layers form a pipeline (FINN's dataflow, one image per layer at a time). Layer ``l``
starts when its input is complete, it is idle and its previous output has been taken (or is
taken in the same cycle); it copies its input at start, so its producer may go on with the next
image. A layer's run lasts ``SF*NF + 5`` cycles after its start cycle. The output layer's scores
move into ``result`` when it is free or being taken; ``C - 1`` cycles of argmax scan later the
result is valid. Results leave in order.
Steady state, with an always-valid producer and an always-ready consumer: one image every
``max(max_l(SF_l * NF_l + 6), beats, C)`` cycles (:attr:`EngineConfig.schedule_cycles`);
latency from the last beat to the result: ``sum_l(SF_l * NF_l + 6) + C``
(:attr:`EngineConfig.latency_cycles`).

Run-time writes (``write`` stream): payload ``{sel, addr, data}``; ``sel = 2 l`` writes word
``addr`` of layer ``l``'s weight memory, ``sel = 2 l + 1`` its parameter memory (layouts in
:mod:`spinapse.rtl.folding`). Writes are accepted only while the engine is empty (no image
loading, in a layer or held in ``result``; ``write.ready`` is high exactly then), so a result
never mixes old and new weights. A ``sel`` or ``addr`` out of range is accepted and ignored.
Data wider than the target word is truncated.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.layer import Layer


def result_layout(config: EngineConfig) -> data.StructLayout:
    """Result payload: ``cls`` (class index) then ``scores`` (signed, one per class)."""
    return data.StructLayout(
        {
            "cls": config.class_width,
            "scores": data.ArrayLayout(signed(config.score_width), config.widths[-1]),
        }
    )


def write_layout(config: EngineConfig) -> data.StructLayout:
    """Write payload: ``sel`` (memory), ``addr`` (word), ``data`` (word bits, LSB first)."""
    return data.StructLayout(
        {
            "sel": config.write_select_width,
            "addr": config.write_addr_width,
            "data": config.write_data_width,
        }
    )


class InferenceEngine(wiring.Component):
    """Binarized MLP inference engine (see the module docstring for timing and write rules).

    Parameters
    ----------
    config : EngineConfig
        Widths and per-layer PE/SIMD folding (validated there: a folding that does not divide its
        layer raises ``ValueError`` when the config is built).
    input_copy : bool
        True (default): the image is loaded into a register and layer 0 copies it at its start,
        so the next image loads while it runs (the documented schedule). False: the image is
        loaded into a memory of ``SF_0`` words of ``SIMD_0`` bits that layer 0 reads fold by
        fold; the next image's beats wait until layer 0's run is over (no ``2 N_in``
        flip-flops, for small FPGAs; same results, a slower schedule when the input stream is
        fast). Needs ``in_width == SIMD_0`` (one beat per input fold).

    Raises
    ------
    ValueError
        If ``input_copy`` is False and ``in_width != SIMD_0``.
    Members
    -------
    image : In(stream.Signature(in_width))
        Image bits, ``N_in / in_width`` beats per image; bit ``k`` of beat ``b`` is pixel
        ``b * in_width + k`` (1 means +1).
    result : Out(stream.Signature(result_layout(config)))
        One beat per image.
    write : In(stream.Signature(write_layout(config)))
        Run-time weight and parameter writes.
    busy : Out(1)
        High while an image is anywhere in the engine (loading, in a layer, held in ``result``).

    TypeError
        If ``config`` is not an :class:`EngineConfig`.
    """

    def __init__(self, config: EngineConfig, input_copy: bool = True) -> None:
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, got {type(config).__name__}")
        self.config = config
        self.input_copy = bool(input_copy)
        if not self.input_copy and config.in_width != config.simd[0]:
            raise ValueError(
                f"input_copy=False needs in_width == SIMD of layer 0 ({config.simd[0]}), "
                f"got in_width={config.in_width}"
            )
        super().__init__(
            {
                "image": In(stream.Signature(config.in_width)),
                "result": Out(stream.Signature(result_layout(config))),
                "write": In(stream.Signature(write_layout(config))),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        layers = [
            Layer(f, slice_input=i == 0 and not self.input_copy) for i, f in enumerate(c.layers)
        ]
        for i, layer in enumerate(layers):
            m.submodules[f"layer{i}"] = layer
        n = len(layers)

        # Stage flags: `image_full` (the image register holds a whole image not yet taken by
        # layer 0) and `full[l]` (layer l's output is complete and not yet taken by its consumer).
        image = Signal(c.widths[0])
        beat = Signal(range(c.input_beats))
        loading = Signal()  # some beats of the next image transferred
        image_full = Signal()
        # One signal per layer (not one vector): a vector whose bits depend on each other's
        # neighbours looks like a combinational loop to Verilator, which then re-evaluates.
        full = [Signal(name=f"full{i}") for i in range(n)]
        starts = [Signal(name=f"start{i}") for i in range(n)]

        # Input: fill the image register beat by beat while it is free (or being taken now).
        if self.input_copy:
            m.d.comb += self.image.ready.eq(~image_full | starts[0])
            with m.If(self.image.valid & self.image.ready):
                m.d.sync += image.word_select(beat, c.in_width).eq(self.image.payload)
        else:
            # The image memory: beat b is input fold b of layer 0, which reads it during its
            # run; the next image waits for the run to end (so a read and a write of one
            # address never meet in a cycle).
            m.d.comb += self.image.ready.eq(~image_full & ~layers[0].busy & ~starts[0])
            m.submodules.image_memory = imem = memory.Memory(
                shape=c.in_width, depth=c.input_beats, init=[]
            )
            i_wr, i_rd = imem.write_port(), imem.read_port()
            m.d.comb += [
                i_wr.addr.eq(beat),
                i_wr.data.eq(self.image.payload),
                i_wr.en.eq(self.image.valid & self.image.ready),
                i_rd.addr.eq(layers[0].x_addr),
                layers[0].x_data.eq(i_rd.data),
            ]
        with m.If(self.image.valid & self.image.ready):
            with m.If(beat == c.input_beats - 1):
                m.d.sync += [beat.eq(0), loading.eq(0)]
            with m.Else():
                m.d.sync += [beat.eq(beat + 1), loading.eq(1)]
        with m.If(starts[0]):
            m.d.sync += image_full.eq(0)
        with m.If(self.image.valid & self.image.ready & (beat == c.input_beats - 1)):
            m.d.sync += image_full.eq(1)

        # Layers as a pipeline: layer l starts (copying its input) when its input is full, it
        # is idle and its own output is free: taken earlier, or taken by its consumer in this
        # very cycle (a restarted layer writes its first result two cycles later, after the
        # consumer's copy). Starting frees the input for the producer.
        out_valid = self.result.valid
        # taken_now[l]: the consumer of layer l's output takes it this cycle.
        taken_now = [Signal(name=f"taken{i}") for i in range(n)]
        for i in range(n - 1):
            m.d.comb += taken_now[i].eq(starts[i + 1])
        for i, layer in enumerate(layers):
            src_full = image_full if i == 0 else full[i - 1]
            if i > 0 or self.input_copy:
                m.d.comb += layer.x.eq(image if i == 0 else layers[i - 1].y)
            m.d.comb += [
                starts[i].eq(src_full & ~layer.busy & (~full[i] | taken_now[i])),
                layer.start.eq(starts[i]),
            ]
            with m.If(taken_now[i]):
                m.d.sync += full[i].eq(0)
            with m.If(layer.done):
                m.d.sync += full[i].eq(1)

        # Output: the last layer's scores move into the result register when the result stage
        # is free (or its result is being taken), then a scan over the C scores, one per cycle,
        # finds the first index of the maximum (ties keep the lower index, as numpy.argmax):
        # one comparator instead of a compare tree on the critical path.
        out = layers[-1]
        n_cls = c.widths[-1]
        scores = self.result.payload.scores
        scanning = Signal()
        k = Signal(range(n_cls))
        best = Signal(signed(c.score_width))
        best_idx = Signal(range(n_cls))
        cand = Signal(signed(c.score_width))
        m.d.comb += cand.eq(scores[k])
        m.d.comb += taken_now[n - 1].eq(full[n - 1] & ~scanning & (~out_valid | self.result.ready))
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += self.result.valid.eq(0)
        with m.If(taken_now[n - 1]):
            m.d.sync += [
                scores.eq(out.score),
                best.eq(out.score[0]),
                best_idx.eq(0),
                k.eq(1),
                scanning.eq(1),
            ]
        with m.If(scanning):
            take = cand > best
            with m.If(take):
                m.d.sync += [best.eq(cand), best_idx.eq(k)]
            with m.If(k == n_cls - 1):
                m.d.sync += [
                    scanning.eq(0),
                    self.result.valid.eq(1),
                    self.result.payload.cls.eq(Mux(take, k, best_idx)),
                ]
            with m.Else():
                m.d.sync += k.eq(k + 1)

        any_busy = Signal()
        m.d.comb += any_busy.eq(Cat(*(layer.busy for layer in layers)).any())
        m.d.comb += self.busy.eq(
            loading | image_full | Cat(*full).any() | any_busy | scanning | self.result.valid
        )

        # Run-time writes, only while the whole engine is empty.
        accept = Signal()
        m.d.comb += [
            self.write.ready.eq(~self.busy),
            accept.eq(self.write.valid & self.write.ready),
        ]
        p = self.write.payload
        for i, (layer, f) in enumerate(zip(layers, c.layers)):
            for bus, sel, depth in (
                (layer.weight_write, 2 * i, f.weight_depth),
                (layer.param_write, 2 * i + 1, f.param_depth),
            ):
                m.d.comb += [
                    bus.en.eq(accept & (p.sel == sel) & (p.addr < depth)),
                    bus.addr.eq(p.addr),
                    bus.data.eq(p.data),
                ]
        return m
