"""Host link of the inference engine: a byte-command protocol over a byte stream (the UART).

The protocol (version 1). Every command is one opcode byte, then its fields, little-endian;
every reply starts with the opcode it answers. Commands are executed in order.

=========  =====================================  ==============================================
opcode     host sends                             board replies
=========  =====================================  ==============================================
``'I'``    nothing                                ``'I'``, version (1 byte), then the info block
                                                  (:func:`info_bytes`: widths, PE, SIMD, byte
                                                  sizes of a write word and a score)
``'W'``    sel (1), addr (2), data (``DW`` bytes)  ``'W'`` once the word is written (``DW`` =
                                                  ``ceil(write_data_width / 8)``; ``sel``/``addr``
                                                  as in :mod:`spinapse.rtl.inference_engine`)
``'X'``    image (``N_in / 8`` bytes, bit ``i``    later, in order: ``'R'``, class (1 byte), then
           of byte ``b`` is pixel ``8 b + i``)     ``C`` scores of ``SB`` bytes each (two's
                                                  complement, ``SB = ceil(score_width / 8)``)
``'C'``    nothing                                ``'C'``, images done (4), engine busy cycles
                                                  (4), UART framing errors (2), overruns (2)
``'Z'``    nothing                                ``'Z'`` after clearing the counters
other      --                                     ``'?'`` and the byte received
=========  =====================================  ==============================================

``'X'`` commands pipeline: the link takes the next command while earlier images are in the engine,
and each result is sent as soon as it leaves the engine. Flow control is the host's: it keeps at
most two images ahead of the results it has read. (A result is held in the engine until its
last byte is sent, and a result may be longer than an image, so a third image could reach the
link while it waits for the engine to take a beat; the UART then drops bytes and counts them
in ``overruns``.) Every other command first waits until
all results of earlier images have been sent, so replies never interleave. ``'W'`` waits for the
engine to be empty (its write rule), so a result never mixes old and new weights.
Counters are 32-bit and wrap; the UART counts saturate at 65535.

Version 2 is the training system's protocol (:mod:`spinapse.rtl.training_link`: thresholds of
the current task in and out, train on a labelled image, infer, clear accumulators, set the
arrays' write success, read a row of ``W_b``/``W_h``/``M``, training counters). Its ``'I'``
reply carries version 2, so each host driver recognises the system it talks to; this module's
inference protocol stays version 1.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.folding import EngineConfig
from spinapse.rtl.inference_engine import result_layout, write_layout

PROTOCOL_VERSION = 1


def _nbytes(bits: int) -> int:
    return (bits + 7) // 8


def info_bytes(config: EngineConfig) -> bytes:
    """The info block after ``'I'`` and the version byte: layer count ``L`` (1 byte); ``L + 1``
    widths (2 bytes each); ``L`` PE and ``L`` SIMD values (2 bytes each); ``DW`` (2 bytes, bytes
    of a write word) and ``SB`` (1 byte, bytes of a score)."""
    out = bytearray([config.n_layers])
    for v in (*config.widths, *config.pe, *config.simd):
        out += int(v).to_bytes(2, "little")
    out += _nbytes(config.write_data_width).to_bytes(2, "little")
    out.append(_nbytes(config.score_width))
    return bytes(out)


def link_sizes(config: EngineConfig) -> dict[str, int]:
    """Byte counts of the protocol for ``config``: ``write_data`` (``DW``), ``image``, ``score``
    (``SB``) and ``result`` (a whole ``'R'`` reply).

    Raises
    ------
    ValueError
        If ``N_in`` or the engine's ``in_width`` is not a multiple of 8 (the link sends whole
        bytes as input beats).
    """
    if config.widths[0] % 8 or config.in_width % 8:
        raise ValueError(
            f"the host link needs N_in ({config.widths[0]}) and in_width ({config.in_width}) "
            "to be multiples of 8"
        )
    sb = _nbytes(config.score_width)
    return {
        "write_data": _nbytes(config.write_data_width),
        "image": config.widths[0] // 8,
        "score": sb,
        "result": 2 + config.widths[-1] * sb,
    }


class HostLink(wiring.Component):
    """Command decoder between a byte stream and the inference engine's streams.

    Parameters
    ----------
    config : EngineConfig
        The engine's configuration (``N_in`` and ``in_width`` multiples of 8).

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host.
    tx : Out(stream.Signature(8))
        Bytes to the host.
    image : Out(stream.Signature(in_width))
    write : Out(stream.Signature(write_layout(config)))
    result : In(stream.Signature(result_layout(config)))
        Connected to the engine's members of the same names.
    engine_busy : In(1)
        The engine's ``busy`` (counted in busy cycles).
    framing_errors, overruns : In(16)
        The UART receiver's counters (reported by ``'C'``).

    Raises
    ------
    ValueError
        If ``N_in`` or ``in_width`` is not a multiple of 8.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.sizes = link_sizes(config)
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "image": Out(stream.Signature(config.in_width)),
                "write": Out(stream.Signature(write_layout(config))),
                "result": In(stream.Signature(result_layout(config))),
                "engine_busy": In(1),
                "framing_errors": In(16),
                "overruns": In(16),
            }
        )

    def elaborate(self, platform) -> Module:
        c, z = self.config, self.sizes
        m = Module()
        byte = self.rx.payload
        got = Signal()
        m.d.comb += got.eq(self.rx.valid & self.rx.ready)

        images = Signal(32)
        busy_cycles = Signal(32)
        with m.If(self.engine_busy):
            m.d.sync += busy_cycles.eq(busy_cycles + 1)

        # Images sent to the engine whose result has not been sent back yet.
        inflight = Signal(range(1 << 8))
        image_in = Signal()  # the last beat of an image is taken this cycle
        result_out = Signal()  # the last byte of a result is sent this cycle
        with m.If(image_in & ~result_out):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(result_out & ~image_in):
            m.d.sync += inflight.eq(inflight - 1)

        # Replies other than results: a message value and its length, sent byte by byte.
        info = bytes([ord("I"), PROTOCOL_VERSION]) + info_bytes(c)
        info_msg = Const(int.from_bytes(info, "little"), 8 * len(info))
        counters_msg = Cat(
            Const(ord("C"), 8), images, busy_cycles, self.framing_errors, self.overruns
        )
        reply = Signal(max(len(info_msg), len(counters_msg), 16))
        reply_len = Signal(range(len(reply) // 8 + 1))
        reply_idx = Signal(range(len(reply) // 8 + 1))
        replying = Signal()

        # Results: the engine's result payload stays stable while valid, so it is sent straight
        # from the engine's register, byte by byte.
        payload = self.result.payload
        sw, sb = c.score_width, z["score"]
        cls = payload.cls
        fields = [Const(ord("R"), 8), Cat(cls, Const(0, 8 - len(cls)))]
        for j in range(c.widths[-1]):
            s = payload.scores[j].as_unsigned()
            fields.append(Cat(s, *([s[sw - 1]] * (8 * sb - sw))))
        result_msg = Cat(*fields)
        res_idx = Signal(range(z["result"]))
        sending_result = Signal()
        m.d.comb += sending_result.eq(self.result.valid & ~replying)

        with m.If(sending_result):
            m.d.comb += [
                self.tx.valid.eq(1),
                self.tx.payload.eq(result_msg.word_select(res_idx, 8)),
            ]
            with m.If(self.tx.ready):
                with m.If(res_idx == z["result"] - 1):
                    m.d.sync += [res_idx.eq(0), images.eq(images + 1)]
                    m.d.comb += [self.result.ready.eq(1), result_out.eq(1)]
                with m.Else():
                    m.d.sync += res_idx.eq(res_idx + 1)
        with m.Elif(replying):
            m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(reply.word_select(reply_idx, 8))]
            with m.If(self.tx.ready):
                with m.If(reply_idx == reply_len - 1):
                    m.d.sync += [reply_idx.eq(0), replying.eq(0)]
                with m.Else():
                    m.d.sync += reply_idx.eq(reply_idx + 1)

        # Command decoder.
        quiet = Signal()  # no result pending or being sent, no reply being sent
        m.d.comb += quiet.eq((inflight == 0) & ~self.result.valid & ~replying)
        count = Signal(range(max(z["write_data"], z["image"], 3) + 1))
        opcode = Signal(8)
        header = Signal(24)  # sel, addr lo, addr hi
        wdata = Signal(8 * z["write_data"])
        beat_bytes = c.in_width // 8
        beat = Signal(c.in_width)
        beat_count = Signal(range(beat_bytes + 1))
        image_count = Signal(range(z["image"] + 1))

        # The reply is chosen by the opcode register (no copy: the counters do not change while
        # the link is quiet, except busy cycles, which stop when the engine is empty).
        messages = {
            ord("I"): (info_msg, len(info)),
            ord("C"): (counters_msg, len(counters_msg) // 8),
            ord("Z"): (Const(ord("Z"), 8), 1),
            ord("W"): (Const(ord("W"), 8), 1),
        }
        with m.Switch(opcode):
            for code, (msg, _) in messages.items():
                with m.Case(code):
                    m.d.comb += reply.eq(msg)
            with m.Default():
                m.d.comb += reply.eq(Cat(Const(ord("?"), 8), opcode))

        def start_reply(nbytes):
            m.d.sync += [reply_len.eq(nbytes), reply_idx.eq(0), replying.eq(1)]

        with m.FSM():
            with m.State("CMD"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += [opcode.eq(byte), count.eq(0)]
                    with m.Switch(byte):
                        with m.Case(ord("W")):
                            m.next = "W_HEADER"
                        with m.Case(ord("X")):
                            m.d.sync += [beat_count.eq(0), image_count.eq(0)]
                            m.next = "X_DATA"
                        with m.Default():  # 'I', 'C', 'Z' and unknown opcodes: a reply
                            m.next = "WAIT_QUIET"
            with m.State("W_HEADER"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += [header.eq(Cat(header[8:], byte)), count.eq(count + 1)]
                    with m.If(count == 2):
                        m.d.sync += count.eq(0)
                        m.next = "W_DATA"
            with m.State("W_DATA"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += [wdata.eq(Cat(wdata[8:], byte)), count.eq(count + 1)]
                    with m.If(count == z["write_data"] - 1):
                        m.next = "W_ISSUE"
            with m.State("W_ISSUE"):
                m.d.comb += [
                    self.write.valid.eq(quiet),
                    self.write.payload.sel.eq(header[:8]),
                    self.write.payload.addr.eq(header[8:24]),
                    self.write.payload.data.eq(wdata),
                ]
                with m.If(self.write.valid & self.write.ready):
                    m.next = "WAIT_QUIET"
            with m.State("X_DATA"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += [
                        beat.eq(Cat(beat[8:], byte)) if c.in_width > 8 else beat.eq(byte),
                        beat_count.eq(beat_count + 1),
                        image_count.eq(image_count + 1),
                    ]
                    with m.If(beat_count == beat_bytes - 1):
                        m.next = "X_BEAT"
            with m.State("X_BEAT"):
                m.d.comb += [self.image.valid.eq(1), self.image.payload.eq(beat)]
                with m.If(self.image.ready):
                    m.d.sync += beat_count.eq(0)
                    with m.If(image_count == z["image"]):
                        m.d.comb += image_in.eq(1)
                        m.next = "CMD"
                    with m.Else():
                        m.next = "X_DATA"
            with m.State("WAIT_QUIET"):
                with m.If(quiet):
                    with m.Switch(opcode):
                        for code, (_, nbytes) in messages.items():
                            with m.Case(code):
                                start_reply(nbytes)
                                if code == ord("Z"):
                                    m.d.sync += [images.eq(0), busy_cycles.eq(0)]
                        with m.Default():
                            start_reply(2)
                    m.next = "CMD"
        return m
