"""``spinapse session --model RESULTS_DIR --target golden|sim|serial:PORT``: training host script.

Loads a one-hidden-layer ``spinapse train`` result onto the on-chip training engine (initial
``W_h``/``W_b`` from the float hidden weights, thresholds from task ``--task``'s folded
BatchNorm: docs/fpga_prototype.md), then over the host link (protocol 2): infers ``--images``
test digits, clears the accumulators, trains ``--steps`` steps on the task's training digits and
reads the counters. Targets: ``golden`` (the integer golden model behind the same bytes),
``sim`` (the training system's RTL with seeded binary arrays, or with
hidden-state arrays in ``--mode device``, on Verilator, driven through its
UART pins; built once per model), ``serial:PORT`` (a board whose bitstream carries this model).
Unless ``--no-golden``, a ``sim`` or board run is followed by the golden model's run of the same
script, and the command says whether every result is identical (exit 1 on ``sim`` if not). The
record goes to ``session-<target>.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spinapse.errors import UsageError


def _transports(args, model):
    """(name, transport factory) of the target and, unless --no-golden, of the golden model."""
    from spinapse.golden.integer_model.array_models import lane_seeds
    from spinapse.rtl.uart_training import model_id

    rule = model.rule
    seeds = [
        lane_seeds(args.array_seed * 2 + k, n) for k, n in enumerate((rule.n_hidden, rule.n_out))
    ]
    mid = model_id(rule, args.mode, model.init_wh)

    def golden():
        from spinapse.cosim.golden_link import GoldenTransport

        return GoldenTransport(rule, model.init_wh, seeds, mid, args.mode)

    target = args.target
    if target == "golden":
        make = golden
    elif target == "sim":

        def make():
            from spinapse.cosim.uart_sim import SimTransport, build_uart_training_sim

            print(
                f"building the Verilator model of the {rule.n_in}-{rule.n_hidden}-{rule.n_out} "
                f"training system ({args.mode} mode) with this model (once per model)..."
            )
            exe = build_uart_training_sim(rule, model.init_wh, seeds, mode=args.mode)
            return SimTransport(exe, timeout_s=300)
    elif target.startswith("serial:") and len(target) > len("serial:"):

        def make():
            from spinapse.boards.serial_link import SerialTransport

            return SerialTransport(target[len("serial:") :], baud=args.baud, timeout_s=30)
    else:
        raise UsageError(
            f"--target {target!r}: allowed 'golden', 'sim' or 'serial:PORT' (serial:/dev/ttyUSB1)"
        )
    runs = [(target.split(":")[0], make)]
    if target != "golden" and not args.no_golden:
        runs.append(("golden", golden))
    return runs, mid


def _session(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spinapse.boards.driver import ProtocolError
    from spinapse.boards.training_driver import TrainingDriver
    from spinapse.experiments.host_session import compare_records, run_session
    from spinapse.experiments.training_load import load_training_model
    from spinapse.io import write_json

    if not 0 <= args.p_success <= 256:
        raise UsageError(f"--p-success must be in [0, 256] (1/256 units), got {args.p_success}")
    if args.mode == "device" and args.p_success != 256:
        raise UsageError(
            "--p-success: device mode's hidden-state arrays have no write probability "
            "(they apply f_meta to gate pulses); leave it at 256"
        )
    if not 0 <= args.array_seed < 1 << 14:
        raise UsageError(f"--array-seed must be in [0, 16383], got {args.array_seed}")
    model = load_training_model(args.model, task=args.task, run=args.run)
    runs, mid = _transports(args, model)
    out = Path(args.out) if args.out else Path(args.model) / "engine"

    def bar(it, desc, total):
        return tqdm(it, desc=desc, total=total, unit="chunk", disable=args.no_progress)

    records = {}
    for name, make in runs:
        transport = make()
        try:
            driver = TrainingDriver(transport, model.rule, args.mode, mid)
            try:
                rec = run_session(
                    driver,
                    model,
                    images=args.images,
                    steps=args.steps,
                    seed=args.seed,
                    p_success=args.p_success,
                    read_state=args.state,
                    progress=bar,
                )
            except (ProtocolError, TimeoutError) as exc:
                raise UsageError(f"--target {args.target}: {exc}") from None
            except ValueError as exc:
                raise UsageError(f"--images/--steps: {exc}") from None
        finally:
            transport.close()
        rec = {
            "run": model.label,
            "task": model.task,
            "target": args.target if name != "golden" else "golden",
            "engine": f"{model.rule.n_in}-{model.rule.n_hidden}-{model.rule.n_out} {args.mode}",
            "flipped_hidden_neurons": model.flipped,
            **rec,
        }
        records[name] = rec
        path = write_json(out / f"session-{name}.json", rec)
        inf, tr, c = rec["inference"], rec["training"], rec["counters"]
        print(
            f"{model.label} task {model.task} on {rec['target']} "
            f"(model {rec['identify']['model']}):"
        )
        print(
            f"  inferred {inf['images']} digits: accuracy {100 * inf['accuracy']:.2f} % "
            f"(integer inference model {100 * inf['inference_model_accuracy']:.2f} %, "
            f"{inf['differ_from_inference_model']} predictions differ)"
        )
        if tr["steps"]:
            print(f"  trained {tr['steps']} steps: {100 * tr['accuracy']:.2f} % predicted right")
        print(
            f"  counters: {c['steps']} steps, {c['inferences']} inferences, {c['writes']} writes, "
            f"{c['retries']} retries, {c['failures']} failures, {c['busy_cycles']} busy cycles, "
            f"{c['framing_errors']} framing errors, {c['overruns']} overruns; {rec['seconds']} s"
        )
        print(f"  record: {path}")
    if len(records) == 2:
        differ = compare_records(*records.values())
        if differ:
            print(f"DIFFERENT from the golden model: {', '.join(differ)}")
            return 1 if args.target == "sim" else 0
        print(
            "identical to the golden model: predictions, thresholds, counters (busy cycles "
            "against the RTL's cycle model)" + (", state" if args.state else "")
        )
    return 0


def register(subparsers) -> None:
    from spinapse.commands.export import add_model_arguments

    p = subparsers.add_parser(
        "session",
        help="host script of the training system: load a model, infer, train, read counters",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--model", required=True, metavar="RESULTS_DIR", help="a 'spinapse train' run")
    p.add_argument("--target", required=True, help="'golden', 'sim' or 'serial:PORT'")
    add_model_arguments(p, engine=False)
    p.add_argument("--images", type=int, default=2000, help="test digits to infer (2000)")
    p.add_argument("--steps", type=int, default=100, help="training steps, batch 1 (100)")
    p.add_argument("--seed", type=int, default=0, help="order of the training digits (0)")
    p.add_argument(
        "--p-success",
        type=int,
        default=256,
        help="single-pulse write success of the arrays in 1/256, [0, 256] (256: ideal)",
    )
    p.add_argument(
        "--mode",
        choices=("digital", "device"),
        default="digital",
        help="digital: W_h in the engine, binary arrays with write-verify; device: W_h as the "
        "hidden state of the arrays, gate pulses (default digital)",
    )
    p.add_argument("--array-seed", type=int, default=1, help="seed of the arrays' lane draws (1)")
    p.add_argument("--state", action="store_true", help="also read back every row at the end")
    p.add_argument("--no-golden", action="store_true", help="do not run the golden model after")
    p.add_argument("--baud", type=int, default=115200, help="serial speed (as built)")
    p.add_argument("-o", "--out", help="folder of session-*.json (default RESULTS_DIR/engine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_session)
