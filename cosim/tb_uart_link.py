"""cocotb testbench of a UART system through its serial pins (cocotbext-uart).

It serves the inference system (protocol version 1, :mod:`spinapse.rtl.host_link`) and the
training system (version 2, :mod:`spinapse.rtl.training_link`): both have ``rx``, ``tx``.

The case file named by ``SPINAPSE_TB_CASE`` (JSON, :func:`write_link_case`) holds the UART bit
time and a list of commands, each with the bytes the host sends and the reply the protocol
prescribes (``null`` for a byte the test does not know in advance,
the engine busy-cycle count). A :class:`cocotbext.uart.UartSource` drives ``rx``, a
:class:`cocotbext.uart.UartSink` decodes ``tx``; the host keeps the protocol's flow rule (at most
two ``'X'`` commands unanswered; any other command only once every earlier reply is in). Every
reply byte is compared; mismatches go to the JSON file named by ``SPINAPSE_TB_OUT``.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotbext.uart import UartSink, UartSource

from spinapse.io import write_json

PERIOD_NS = 10


def write_link_case(
    path, divisor: int, commands: list[tuple[bytes, list[int | None]]], window: int = 2
) -> None:
    """Write a case: ``divisor`` (clock cycles per bit) and ``(sent bytes, expected reply)``
    pairs; an expected byte of ``None`` is not checked. ``window``: ``'X'`` commands sent ahead
    of their replies (2: protocol version 1; 1: every command waits for the previous reply, as
    protocol version 2 requires)."""
    doc = {
        "divisor": int(divisor),
        "window": int(window),
        "commands": [{"send": s.hex(), "reply": list(r)} for s, r in commands],
    }
    write_json(path, doc)


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def protocol_end_to_end(dut):
    """Every reply byte equals the protocol's; no framing errors or overruns occur."""
    with open(os.environ["SPINAPSE_TB_CASE"], encoding="utf-8") as fh:
        case = json.load(fh)
    baud = 1e9 / (case["divisor"] * PERIOD_NS)
    dut.rx.value = 1
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    source = UartSource(dut.rx, baud=baud, bits=8, stop_bits=1)
    sink = UartSink(dut.tx, baud=baud, bits=8, stop_bits=1)
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    commands = case["commands"]
    window = case.get("window", 2)
    bit_cycles = 10 * case["divisor"]
    budget = sum(len(c["send"]) // 2 + len(c["reply"]) for c in commands) * bit_cycles
    budget = 4 * budget + 100_000
    mismatches = []
    checked = 0

    async def collect(i):
        nonlocal checked
        want = commands[i]["reply"]
        got = []
        while len(got) < len(want):
            got += list(await sink.read(1))  # read(n) fails when fewer than n are queued
        for k, (g, w) in enumerate(zip(got, want)):
            if w is not None:
                checked += 1
                if g != w:
                    mismatches.append({"command": i, "byte": k, "got": g, "expected": w})

    async def body():
        pending = []  # indices of commands whose replies are not read yet
        for i, cmd in enumerate(commands):
            is_image = cmd["send"][:2] == b"X".hex()
            while pending and (not is_image or len(pending) >= window):
                await collect(pending.pop(0))
            await source.write(bytes.fromhex(cmd["send"]))
            pending.append(i)
        while pending:
            await collect(pending.pop(0))

    await with_timeout(body(), budget * PERIOD_NS, timeout_unit="ns")
    write_json(os.environ["SPINAPSE_TB_OUT"], {"checked": checked, "mismatches": mismatches})
    assert not mismatches, f"{len(mismatches)} reply bytes differ; first: {mismatches[0]}"
