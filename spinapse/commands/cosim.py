"""``spinapse cosim``: continual learning on the RTL training engine with physics synapses.

Runs permuted tasks of the embedded digits on the Amaranth training engine in Verilator, every
binary weight and hidden state held by the torch compact models of a device card and driven
through the SynapseArray interface with the card's pulse map (docs/pulse_map.md). Writes
<out>/<name>/{results.json, accuracy.csv, devices.csv, cosim.png, checkpoints/}: the accuracy
matrix, per layer and task the writes, failed writes, flips and energies (write, gate, read),
the final mean c, and the m = 0 ideal-array baseline.
"""

from __future__ import annotations

import argparse

from spinapse.commands.train import add_override_option
from spinapse.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    from spinapse.experiments.cosim_config import CosimConfig

    fields = []
    for name, f in CosimConfig.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            for sub, g in ann.model_fields.items():
                fields.append(f"  {name}.{sub}: {g.description or ''} (default {g.default!r})")
        else:
            fields.append(f"  {name}: {f.description or ''} (default {f.default!r})")
    p = subparsers.add_parser(
        "cosim",
        help="continual learning on the RTL engine (Verilator) with physics synapses",
        description=__doc__.split("\n\n")[1],
        epilog="configuration fields (set any with --set FIELD=VALUE):\n" + "\n".join(fields),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE.toml", help="configuration (default: cosim.toml)")
    add_override_option(
        p,
        "override one configuration field, FIELD.SUB=VALUE with VALUE a TOML value, e.g. "
        "--set tasks.count=2 --set mode=digital --set faults.stuck_p=0.05; repeatable",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue a killed run from its last finished task"
    )
    p.add_argument(
        "--waves",
        metavar="A:B",
        type=_window,
        help="after the run, record an FST waveform of training steps A to B-1 (counted from 0 "
        "over the whole run; task t holds steps t*S to (t+1)*S-1 with S = tasks.epochs x "
        "tasks.train_samples), e.g. --waves 10:12 for steps 10 and 11: the window is replayed "
        "from the checkpoint of the task before it with the trace on from step A only; the "
        "file (dump.fst in the Verilator build folder, GTKWave or Surfer) is named in the "
        "output and in results.json; 0.5 MB per step for 784-16-10",
    )
    p.add_argument(
        "--stuck-sweep",
        metavar="PERCENTS",
        help="instead of a co-simulation: accuracy after the last task for each stuck-device "
        "fraction (percent, half at P, half at AP), e.g. --stuck-sweep 0,1,5,10,20, from the "
        "golden prediction of the co-simulation (same numbers while the two agree bit for bit, "
        "minutes instead of hours); writes stuck_sweep.{json,csv,png} in <out>/<name>/",
    )
    p.add_argument("--png", metavar="FILE", help="with --stuck-sweep: also write the figure here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def _window(text: str) -> tuple[int, int]:
    """``"A:B"`` -> ``(A, B)`` with ``0 <= A < B`` (argparse type of ``--waves``)."""
    parts = text.split(":")
    try:
        a, b = (int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B (two step numbers), got {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"expected 0 <= A < B, got {text!r}")
    return a, b


def main(args: argparse.Namespace) -> int:
    from spinapse.experiments.cosim_config import load_cosim_config
    from spinapse.experiments.cosim_run import run_cosim

    cfg = load_cosim_config(args.config, args.overrides)
    if args.stuck_sweep is not None:
        return _stuck_sweep(cfg, args)
    if args.png is not None:
        raise UsageError("--png goes with --stuck-sweep")
    doc = run_cosim(cfg, resume=args.resume, progress=not args.no_progress, waves=args.waves)
    print(format_summary(doc))
    if "waves" in doc:
        w = doc["waves"]
        print(f"waveform of steps {w['window'][0]}:{w['window'][1]}: {w['file']}")
    print(f"results: {doc['files']['json']}")
    return 0


def _stuck_sweep(cfg, args) -> int:
    from spinapse.experiments.cosim_faults import parse_fractions, stuck_sweep, write_sweep

    try:
        fractions = parse_fractions(args.stuck_sweep)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    doc = stuck_sweep(cfg, fractions, progress=not args.no_progress)
    files = write_sweep(cfg.out_dir(), doc, args.png)
    n = len(doc["points"][0]["acc_after_last"])
    print(f"accuracy (%) after task {n - 1}, {doc['card']}, {cfg.mode} mode (golden prediction)")
    print("stuck %".ljust(9) + "".join(f"task {j}".rjust(8) for j in range(n)) + "    mean")
    for p in doc["points"]:
        accs = "".join(f"{100 * a:8.1f}" for a in p["acc_after_last"])
        print(f"{100 * p['stuck_fraction']:<9g}{accs}{100 * p['mean_all']:8.1f}")
    print(f"results: {files['json']}, figure: {files['png']}")
    return 0


def format_summary(doc: dict) -> str:
    """Accuracy matrix (%) and per-layer device totals as text."""
    n = len(doc["acc"])
    lines = [f"test accuracy (%) on RTL + {doc['card']} ({doc['config']['mode']} mode)"]
    lines.append("after task".ljust(12) + "".join(f"task {j}".rjust(9) for j in range(n)))
    for i, row in enumerate(doc["acc"]):
        lines.append(str(i).ljust(12) + "".join(f"{100 * a:9.1f}" for a in row))
    if doc["mean_earlier_after_last"] is not None:
        lines.append(
            f"mean of tasks 0-{n - 2} after the last: {100 * doc['mean_earlier_after_last']:.1f} %"
        )
    if (
        "baseline_m0_ideal" in doc
        and doc["baseline_m0_ideal"]["mean_earlier_after_last"] is not None
    ):
        b = doc["baseline_m0_ideal"]["mean_earlier_after_last"]
        lines.append(f"  same engine, m = 0, ideal array: {100 * b:.1f} %")
    tot: dict = {}
    for r in doc["layers"]:
        t = tot.setdefault(r["layer"], {k: 0 for k in r if k not in ("after_task", "layer")})
        for k in t:
            t[k] = r[k] if k == "mean_c" else t[k] + r[k]
    for layer, t in tot.items():
        lines.append(
            f"layer {layer}: writes {t['write_pulses']}, failed {t['failed_writes']}, flips "
            f"{t['flips']}, energy write {t['write_energy_J']:.3e} J, gate {t['gate_energy_J']:.3e}"
            f" J, read {t['read_energy_J']:.3e} J, mean c {t['mean_c']:.4f}"
        )
    return "\n".join(lines)
