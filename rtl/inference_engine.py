"""The multi-layer binarized inference engine: image stream in, class and scores stream out.

Layers run one after the other on one image (:class:`spinapse.rtl.layer.Layer`, each with its own
PE/SIMD folding and memories); the output layer's scores go through :class:`Argmax`. Streams
follow ``amaranth.lib.stream`` rules (a transfer happens on a cycle with ``valid & ready``;
payload stable while ``valid`` waits for ``ready``).

Timing: the last image beat's transfer registers a start pulse for layer 0; every layer takes
``SF*NF + 3`` cycles from its start to its ``done``, which starts the next one; the output layer's
``done`` registers the scores and class into ``result`` (valid) until it is taken. One image is in
flight: the ``image`` stream is ready again in the cycle after the result transfers. Cycles per
image (accept to next accept) with an always-ready consumer and an always-valid producer:
``beats + sum(SF_l * NF_l + 3) + 2`` (:attr:`EngineConfig.schedule_cycles`).

Run-time writes (``write`` stream): payload ``{sel, addr, data}``; ``sel = 2 l`` writes word
``addr`` of layer ``l``'s weight memory, ``sel = 2 l + 1`` its parameter memory (layouts in
:mod:`spinapse.rtl.folding`). Writes are accepted only while no image is being computed or held
(``write.ready`` is high exactly then), so a result never mixes old and new weights. A ``sel`` or
``addr`` out of range is accepted and ignored. Data wider than the target word is truncated.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.argmax import Argmax
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
        High while an image is loading, computing or waiting in ``result``.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`EngineConfig`.
    """

    def __init__(self, config: EngineConfig) -> None:
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, got {type(config).__name__}")
        self.config = config
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
        layers = [Layer(f) for f in c.layers]
        for i, layer in enumerate(layers):
            m.submodules[f"layer{i}"] = layer

        image = Signal(c.widths[0])
        beat = Signal(range(c.input_beats))
        loading = Signal()  # some beats of the current image transferred
        computing = Signal()
        holding = Signal()  # result valid, waiting for ready
        idle = ~(computing | holding)

        # Input: fill the image register beat by beat; the last beat starts layer 0.
        m.d.comb += self.image.ready.eq(idle)
        last_beat = Signal()
        m.d.comb += last_beat.eq(self.image.valid & self.image.ready & (beat == c.input_beats - 1))
        with m.If(self.image.valid & self.image.ready):
            m.d.sync += image.word_select(beat, c.in_width).eq(self.image.payload)
            with m.If(beat == c.input_beats - 1):
                m.d.sync += [beat.eq(0), loading.eq(0), computing.eq(1)]
            with m.Else():
                m.d.sync += [beat.eq(beat + 1), loading.eq(1)]
        m.d.comb += self.busy.eq(loading | computing | holding)

        # Layers in sequence: each one's done starts the next.
        m.d.comb += layers[0].x.eq(image)
        start0 = Signal()
        m.d.sync += start0.eq(last_beat)
        m.d.comb += layers[0].start.eq(start0)
        for a, b in zip(layers[:-1], layers[1:]):
            m.d.comb += [b.x.eq(a.y), b.start.eq(a.done)]

        # Output: scores and argmax registered into the result payload.
        out = layers[-1]
        m.submodules.argmax = argmax = Argmax(c.widths[-1], c.score_width)
        m.d.comb += argmax.score.eq(out.score)
        with m.If(out.done):
            m.d.sync += [
                self.result.payload.scores.eq(out.score),
                self.result.payload.cls.eq(argmax.index),
                self.result.valid.eq(1),
                computing.eq(0),
                holding.eq(1),
            ]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [self.result.valid.eq(0), holding.eq(0)]

        # Run-time writes, only while no image is computing or held.
        accept = Signal()
        m.d.comb += [
            self.write.ready.eq(idle & ~loading),
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
