"""Host link of the training system: protocol version 2, over a byte stream (the UART).

Version 2 is what a training system answers (an inference system answers version 1, see
:mod:`spinapse.rtl.host_link`); ``'I'``, ``'C'``, ``'Z'`` and the ``'?'`` reply keep their
version-1 framing, with a training info block and training counters. Every command is one opcode
byte, then its fields, little-endian; every reply starts with the opcode it answers (``'R'`` for
``'X'``). One command at a time: the host sends the next command only after the whole reply of
the previous one has arrived (:class:`spinapse.boards.training_driver.TrainingDriver` keeps it).

=========  ============================================  =======================================
opcode     host sends                                    board replies
=========  ============================================  =======================================
``'I'``    nothing                                       ``'I'``, ``2``, info block (16 bytes,
                                                         :func:`training_info_bytes`)
``'T'``    thresholds ``T1`` (``n_hidden``) then ``T2``  ``'T'`` once loaded (``thr_load``: the
           (``n_out``), 3 bytes each, two's complement   task's thresholds, kept per task by the
           (18-bit range, units ``2**-thr_frac``)        host)
``'U'``    nothing                                       ``'U'``, the thresholds as ``'T'`` sends
                                                         them (they move while training)
``'L'``    image (``n_in / 8`` bytes, pixel ``8 b + i``  ``'L'``, prediction of the step's forward
           at bit ``i`` of byte ``b``), label (1 byte)   pass (1 byte), after the update
``'X'``    image                                         ``'R'``, prediction (1 byte); no update,
                                                         thresholds unchanged
``'A'``    nothing                                       ``'A'`` once every accumulator ``M`` is
                                                         0 (``acc_clear``, the task switch)
``'S'``    write success ``p`` (2 bytes, in 1/256,       ``'S'``
           ``[0, 256]``; arrays without it ignore it)
``'P'``    layer (1 byte: 1 or 2), row (2 bytes)         ``'P'``, the row: ``W_b`` bits, ``W_h``,
                                                         ``M`` (:func:`training_sizes`)
``'C'``    nothing                                       ``'C'``, steps (4), inferences (4),
                                                         writes (4), retries (4), failures (4),
                                                         busy cycles (4), framing errors (2),
                                                         overruns (2)
``'Z'``    nothing                                       ``'Z'`` after zeroing every ``'C'``
                                                         counter but the UART's
other      --                                            ``'?'`` and the byte received
=========  ============================================  =======================================

The info block: ``n_in``, ``n_hidden``, ``n_out`` (2 bytes each), mode (0 digital, 1 device),
``wh_bits``, ``acc_bits``, threshold bits (18), ``thr_frac`` (1 byte each), 1 if the arrays take
a run-time write success (``'S'``) else 0, and the 32-bit model identifier the system was built
with (:func:`spinapse.rtl.uart_training.model_id`: the initial ``W_h`` and ``W_b`` are memory
contents fixed at build time, so the host checks that the board carries the model it expects).

``'P'`` rows: lane ``l`` of the ``W_b`` bits at bit ``l``; ``W_h`` and ``M`` packed ``wh_bits`` /
``acc_bits`` per lane, two's complement, lane ``l`` at ``[l * bits, (l + 1) * bits)``, each field
zero-padded to whole bytes for ``max(n_hidden, n_out)`` lanes (layer 2 rows are shorter: the
lanes above ``n_out`` read 0). ``W_h`` is the engine's memory in digital mode, the array's hidden
state in device mode where the array has one (``peek_h``), else 0. Layer 1 rows are
``0..n_in - 1``, layer 2 rows ``0..n_hidden - 1``; a row out of range reads row 0. ``peek_acc``
and ``peek_wh`` (digital mode) answer one clock after ``peek_row`` (the engine's block RAM read
port, shared with the host while the engine is idle); the link sets the row in the cycle before
the reply starts.

Counters: ``steps`` (``'L'`` done), ``inferences`` (``'X'`` done), ``writes``/``retries``/
``failures`` (the update engines' write-verify counts since the last ``'Z'``), engine busy
cycles; 32 bits, wrapping. The UART's counts saturate at 65535 and are not cleared by ``'Z'``.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spinapse.rtl.training_engine import THR_BITS

PROTOCOL_VERSION = 2
THR_FIELD_BYTES = 3
"""Bytes per threshold on the link (an 18-bit two's complement value, sign-extended)."""
COUNTER_NAMES = ("steps", "inferences", "writes", "retries", "failures", "busy_cycles")
"""The 32-bit counters of a ``'C'`` reply, in order (then framing errors and overruns, 16 bits)."""


def _nbytes(bits: int) -> int:
    return (bits + 7) // 8


def training_sizes(rule) -> dict[str, int]:
    """Byte counts of protocol version 2 for ``rule`` (an ``IntegerRule``): ``image``,
    ``thresholds`` (``T1`` and ``T2`` fields), ``lanes`` (lanes of a ``'P'`` row), ``bits``,
    ``wh``, ``acc`` (its fields) and ``row`` (a whole ``'P'`` reply), ``counters`` (a whole
    ``'C'`` reply), ``info`` (the info block).

    Raises
    ------
    ValueError
        If ``n_in`` is not a multiple of 8 or ``n_out`` exceeds 256.
    """
    if rule.n_in % 8:
        raise ValueError(f"the host link needs n_in ({rule.n_in}) to be a multiple of 8")
    if rule.n_out > 256:
        raise ValueError(f"a label is one byte: n_out ({rule.n_out}) must be <= 256")
    lanes = max(rule.n_hidden, rule.n_out)
    sizes = {
        "image": rule.n_in // 8,
        "thresholds": THR_FIELD_BYTES * (rule.n_hidden + rule.n_out),
        "lanes": lanes,
        "bits": _nbytes(lanes),
        "wh": _nbytes(lanes * rule.wh_bits),
        "acc": _nbytes(lanes * rule.acc_bits),
        "counters": 1 + 4 * len(COUNTER_NAMES) + 4,
        "info": 16,
    }
    sizes["row"] = 1 + sizes["bits"] + sizes["wh"] + sizes["acc"]
    return sizes


def training_info_bytes(rule, mode: str, has_p_success: bool, model: int) -> bytes:
    """The 16-byte info block after ``'I'`` and the version byte (see the module docstring).

    Raises
    ------
    ValueError
        If ``mode`` is not ``"digital"`` or ``"device"`` or ``model`` is not 32-bit.
    """
    if mode not in ("digital", "device"):
        raise ValueError(f"mode must be 'digital' or 'device', got {mode!r}")
    if not 0 <= int(model) < 1 << 32:
        raise ValueError(f"model identifier must be a 32-bit unsigned int, got {model!r}")
    out = bytearray()
    for v in (rule.n_in, rule.n_hidden, rule.n_out):
        out += int(v).to_bytes(2, "little")
    out += bytes([0 if mode == "digital" else 1, rule.wh_bits, rule.acc_bits, THR_BITS])
    out += bytes([rule.thr_frac, 1 if has_p_success else 0])
    out += int(model).to_bytes(4, "little")
    return bytes(out)


def _args_bytes(rule, sizes) -> dict[int, int]:
    return {
        ord("T"): sizes["thresholds"],
        ord("L"): sizes["image"] + 1,
        ord("X"): sizes["image"],
        ord("S"): 2,
        ord("P"): 3,
    }


class TrainingHostLink(wiring.Component):
    """Command decoder between a byte stream and the training engine's host members.

    Parameters
    ----------
    rule : object
        Integer rule constants (``IntegerRule``; ``n_in`` a multiple of 8).
    mode : str
        ``"digital"`` or ``"device"`` (reported by ``'I'``).
    has_p_success : bool
        Whether the arrays take a run-time write success (``p_success`` is then driven).
    model : int
        32-bit model identifier reported by ``'I'``.

    Members
    -------
    rx : In(stream.Signature(8)); tx : Out(stream.Signature(8))
        Bytes from and to the host.
    x, label, start, train, thr_load, thr1_in, thr2_in, acc_clear : Out
    busy, done, pred, thr1, thr2, writes, retries, failures : In
        To and from the :class:`~spinapse.rtl.training_engine.TrainingEngine` members of the
        same names.
    p_success : Out(9)
        Write success of the arrays in 1/256 (256 after reset).
    peek_row1 : Out(range(n_in)); peek_row2 : Out(range(n_hidden))
    peek_bits1, peek_wh1, peek_acc1, peek_bits2, peek_wh2, peek_acc2 : In
        Row views of both layers (lanes packed as in the ``'P'`` reply).
    framing_errors, overruns : In(16)
        The UART receiver's counters.

    Raises
    ------
    ValueError
        As :func:`training_sizes` and :func:`training_info_bytes`.
    """

    def __init__(self, rule, mode: str, has_p_success: bool, model: int) -> None:
        self.rule, self.mode = rule, mode
        self.sizes = training_sizes(rule)
        self.info = training_info_bytes(rule, mode, has_p_success, model)
        n_in, n_h, n_out = rule.n_in, rule.n_hidden, rule.n_out
        members = {
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "x": Out(n_in),
            "label": Out(range(n_out)),
            "start": Out(1),
            "train": Out(1),
            "thr_load": Out(1),
            "thr1_in": Out(n_h * THR_BITS),
            "thr2_in": Out(n_out * THR_BITS),
            "acc_clear": Out(1),
            "busy": In(1),
            "done": In(1),
            "pred": In(range(n_out)),
            "thr1": In(n_h * THR_BITS),
            "thr2": In(n_out * THR_BITS),
            "writes": In(32),
            "retries": In(32),
            "failures": In(32),
            "p_success": Out(9, init=256),
            "framing_errors": In(16),
            "overruns": In(16),
        }
        for k, (rows, lanes) in enumerate([(n_in, n_h), (n_h, n_out)], start=1):
            members[f"peek_row{k}"] = Out(range(rows))
            members[f"peek_bits{k}"] = In(lanes)
            members[f"peek_wh{k}"] = In(lanes * rule.wh_bits)
            members[f"peek_acc{k}"] = In(lanes * rule.acc_bits)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        r, z = self.rule, self.sizes
        n_in, n_h, n_out = r.n_in, r.n_hidden, r.n_out
        m = Module()
        byte = self.rx.payload
        got = Signal()
        m.d.comb += got.eq(self.rx.valid & self.rx.ready)

        # Arguments: byte k of a command lands at bits [8k, 8k + 8) of ``arg``.
        args = _args_bytes(r, z)
        arg_bytes = max(args.values())
        arg = Signal(8 * arg_bytes)
        arg_len = Signal(range(arg_bytes + 1))
        arg_idx = Signal(range(arg_bytes + 1))
        opcode = Signal(8)

        # What the engine sees, straight from the argument bytes.
        thr_words = [
            arg[24 * j : 24 * j + THR_BITS] for j in range(n_h + n_out)
        ]  # 3-byte fields, the low 18 bits
        m.d.comb += [
            self.x.eq(arg[:n_in]),
            self.label.eq(arg[n_in : n_in + 8]),
            self.thr1_in.eq(Cat(*thr_words[:n_h])),
            self.thr2_in.eq(Cat(*thr_words[n_h:])),
        ]
        layer = arg[:8]
        row = arg[8:24]
        m.d.comb += [
            self.peek_row1.eq(Mux(row < n_in, row, 0)),
            self.peek_row2.eq(Mux(row < n_h, row, 0)),
        ]

        # Counters: engine counts relative to their value at the last 'Z'.
        counts = {name: Signal(32, name=name) for name in ("steps", "inferences", "busy_cycles")}
        bases = {
            name: Signal(32, name=f"{name}_base") for name in ("writes", "retries", "failures")
        }
        with m.If(self.busy):
            m.d.sync += counts["busy_cycles"].eq(counts["busy_cycles"] + 1)
        rel = {name: (getattr(self, name) - bases[name])[:32] for name in bases}

        def sext(value, width, nbytes):
            return Cat(value, *([value[width - 1]] * (8 * nbytes - width)))

        def pad(value, nbytes):
            return Cat(value, Const(0, 8 * nbytes - len(value)))

        thr_now = [
            self.thr1.word_select(j, THR_BITS)
            if j < n_h
            else self.thr2.word_select(j - n_h, THR_BITS)
            for j in range(n_h + n_out)
        ]
        thr_msg = Cat(Const(ord("U"), 8), *[sext(t, THR_BITS, THR_FIELD_BYTES) for t in thr_now])
        second = layer == 2
        row_msg = Cat(
            Const(ord("P"), 8),
            pad(Mux(second, self.peek_bits2, self.peek_bits1), z["bits"]),
            pad(Mux(second, self.peek_wh2, self.peek_wh1), z["wh"]),
            pad(Mux(second, self.peek_acc2, self.peek_acc1), z["acc"]),
        )
        counters_msg = Cat(
            Const(ord("C"), 8),
            counts["steps"],
            counts["inferences"],
            rel["writes"],
            rel["retries"],
            rel["failures"],
            counts["busy_cycles"],
            self.framing_errors,
            self.overruns,
        )
        info = bytes([ord("I"), PROTOCOL_VERSION]) + self.info
        pred_byte = pad(self.pred, 1)
        messages = {
            ord("I"): (Const(int.from_bytes(info, "little"), 8 * len(info)), len(info)),
            ord("T"): (Const(ord("T"), 8), 1),
            ord("U"): (thr_msg, 1 + z["thresholds"]),
            ord("L"): (Cat(Const(ord("L"), 8), pred_byte), 2),
            ord("X"): (Cat(Const(ord("R"), 8), pred_byte), 2),
            ord("A"): (Const(ord("A"), 8), 1),
            ord("S"): (Const(ord("S"), 8), 1),
            ord("P"): (row_msg, z["row"]),
            ord("C"): (counters_msg, z["counters"]),
            ord("Z"): (Const(ord("Z"), 8), 1),
        }
        assert len(counters_msg) == 8 * z["counters"] and len(row_msg) == 8 * z["row"]
        reply = Signal(max(len(v) for v, _ in messages.values()))
        reply_len = Signal(range(len(reply) // 8 + 1))
        reply_idx = Signal(range(len(reply) // 8 + 1))
        with m.Switch(opcode):
            for code, (msg, nbytes) in messages.items():
                with m.Case(code):
                    m.d.comb += [reply.eq(msg), reply_len.eq(nbytes)]
            with m.Default():
                m.d.comb += [reply.eq(Cat(Const(ord("?"), 8), opcode)), reply_len.eq(2)]

        with m.FSM():
            with m.State("CMD"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += [opcode.eq(byte), arg_idx.eq(0)]
                    with m.Switch(byte):
                        for code, nbytes in args.items():
                            with m.Case(code):
                                m.d.sync += arg_len.eq(nbytes)
                                m.next = "ARGS"
                        with m.Default():
                            m.next = "EXEC"
            with m.State("ARGS"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += [arg.word_select(arg_idx, 8).eq(byte), arg_idx.eq(arg_idx + 1)]
                    with m.If(arg_idx == arg_len - 1):
                        m.next = "EXEC"
            with m.State("EXEC"):
                # Every engine command waits for the engine to be idle (it always is here: the
                # host waits for each reply, and a reply is sent after the engine finished).
                with m.If(~self.busy):
                    with m.Switch(opcode):
                        with m.Case(ord("L"), ord("X")):
                            m.d.comb += [self.start.eq(1), self.train.eq(opcode == ord("L"))]
                            m.next = "RUN"
                        with m.Case(ord("T")):
                            m.d.comb += self.thr_load.eq(1)
                            m.next = "REPLY"
                        with m.Case(ord("A")):
                            m.d.comb += self.acc_clear.eq(1)
                            m.next = "CLEAR"
                        with m.Case(ord("S")):
                            p = arg[:16]
                            m.d.sync += self.p_success.eq(Mux(p > 256, 256, p))
                            m.next = "REPLY"
                        with m.Case(ord("Z")):
                            m.d.sync += [c.eq(0) for c in counts.values()]
                            m.d.sync += [bases[n].eq(getattr(self, n)) for n in bases]
                            m.next = "REPLY"
                        with m.Default():
                            # 'P': the row is set from the last argument byte, and EXEC lasts
                            # a cycle before REPLY reads the row: the engine's M and W_h are
                            # block RAM whose read port answers one clock after its address.
                            m.next = "REPLY"
            with m.State("RUN"):
                with m.If(self.done):
                    with m.If(opcode == ord("L")):
                        m.d.sync += counts["steps"].eq(counts["steps"] + 1)
                    with m.Else():
                        m.d.sync += counts["inferences"].eq(counts["inferences"] + 1)
                    m.next = "REPLY"
            with m.State("CLEAR"):
                # The engine raises busy in the cycle after acc_clear; wait for it to fall.
                m.next = "CLEAR_WAIT"
            with m.State("CLEAR_WAIT"):
                with m.If(~self.busy):
                    m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += [
                    self.tx.valid.eq(1),
                    self.tx.payload.eq(reply.word_select(reply_idx, 8)),
                ]
                with m.If(self.tx.ready):
                    with m.If(reply_idx == reply_len - 1):
                        m.d.sync += reply_idx.eq(0)
                        m.next = "CMD"
                    with m.Else():
                        m.d.sync += reply_idx.eq(reply_idx + 1)
        return m
