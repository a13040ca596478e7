"""``spinapse infer --model RESULTS_DIR --target sim|serial:PORT``: the test set on the engine.

Exports the run as ``spinapse export`` does, opens the target -- ``sim``: the board's RTL
(engine, host link, UART) on Verilator, driven through its UART pins; ``serial:PORT``: a board
running ``spinapse fpga build``'s bitstream -- checks that it carries the same engine, loads the
weights and thresholds, streams the task's test images and prints the engine's accuracy next to
the integer golden model's, with the number of differing predictions (0 on ``sim``: the RTL is
bit-exact). Writes ``infer.json`` (accuracies, counts, counters, time) into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from spinapse.commands.export import add_model_arguments, engine_for
from spinapse.errors import UsageError


def _transport(target: str, board_name: str | None, config, baud: int):
    if target == "sim":
        from spinapse.boards.targets import board
        from spinapse.cosim.uart_sim import SimTransport, build_uart_sim

        prefer_memory = board_name is not None and not board(board_name).input_copy
        input_copy = not (prefer_memory and config.in_width == config.simd[0])
        print(f"building the Verilator model of {config.name()} (once per engine)...")
        return SimTransport(build_uart_sim(config, input_copy=input_copy), timeout_s=120)
    if target.startswith("serial:") and len(target) > len("serial:"):
        from spinapse.boards.serial_link import SerialTransport

        return SerialTransport(target[len("serial:") :], baud=baud)
    raise UsageError(f"--target {target!r}: allowed 'sim' or 'serial:PORT' (serial:/dev/ttyUSB1)")


def _infer(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spinapse.boards.driver import EngineDriver, ProtocolError
    from spinapse.experiments.engine_export import export_run
    from spinapse.io import write_json

    config = engine_for(args)
    exp = export_run(args.model, config, task=args.task, run=args.run)
    n = len(exp.test_y) if args.limit is None else min(args.limit, len(exp.test_y))
    if n < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    bits, labels = exp.test_bits[:n], exp.test_y[:n]
    golden, _ = exp.integer.predict(bits)
    transport = _transport(args.target, None if args.config else args.board, config, args.baud)
    start = time.perf_counter()
    try:
        driver = EngineDriver(transport, config)
        try:
            driver.identify()
        except (ProtocolError, TimeoutError) as exc:
            raise UsageError(f"--target {args.target}: {exc}") from None
        driver.write_words(exp.writes)
        driver.clear_counters()
        cls = np.empty(n, dtype=np.int64)
        batch = 100
        for a in tqdm(range(0, n, batch), desc="infer", unit="batch", disable=args.no_progress):
            cls[a : a + batch], _ = driver.infer(bits[a : a + batch])
        counters = driver.counters()
    finally:
        transport.close()
    seconds = time.perf_counter() - start
    acc, gold_acc = float(np.mean(cls == labels)), float(np.mean(golden == labels))
    differ = int(np.sum(cls != golden))
    print(f"{exp.label} task {exp.task} ({exp.task_name}), {n} test images on {args.target}:")
    print(f"  engine accuracy  {100 * acc:.2f} %")
    print(f"  golden (integer) {100 * gold_acc:.2f} %  ({differ} predictions differ)")
    print(f"  {counters.images} images, {counters.busy_cycles} engine busy cycles, {seconds:.1f} s")
    record = {
        "run": exp.label,
        "task": exp.task,
        "target": args.target,
        "engine": config.name(),
        "images": n,
        "engine_accuracy": acc,
        "golden_accuracy": gold_acc,
        "differing_predictions": differ,
        "counters": vars(counters),
        "seconds": round(seconds, 2),
    }
    out = Path(args.out) if args.out else Path(args.model) / "engine"
    print(f"  record: {write_json(out / 'infer.json', record)}")
    return 0 if differ == 0 or args.target != "sim" else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "infer",
        help="run a trained model's test set on the engine (simulation or board)",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--model", required=True, metavar="RESULTS_DIR", help="a 'spinapse train' run")
    p.add_argument("--target", required=True, help="'sim' or 'serial:PORT'")
    add_model_arguments(p)
    p.add_argument("--baud", type=int, default=115200, help="serial speed (as built)")
    p.add_argument("--limit", type=int, help="first N test images only")
    p.add_argument("-o", "--out", help="folder of infer.json (default RESULTS_DIR/engine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_infer)
