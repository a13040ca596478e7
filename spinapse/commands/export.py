"""``spinapse export RESULTS_DIR``: a trained run as the inference engine's weight/threshold image.

Takes the folder a ``spinapse train`` run wrote, the BatchNorm copy of ``--task`` (default 0) of
``--run`` (default: the only run), exports it to integers (thresholds and output scales from
BatchNorm with statistics over that task's training set) and writes, into ``RESULTS_DIR/engine/``
(or ``--out``): ``<run>_task<t>.bin`` (the host link's write commands: send it to a board's serial
port to load the engine), ``.npz`` (integer model, binarized test set) and ``.json`` (summary).
The engine is the board's (``--board``, default ulx3s-85f) or an ``[engine]`` TOML
(``--config``); its widths must equal the network's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spinapse.errors import UsageError


def engine_for(args: argparse.Namespace):
    """The engine configuration of ``--config`` or ``--board`` (shared with ``infer``)."""
    from spinapse.boards.targets import board
    from spinapse.rtl.engine_config import load_engine_config

    try:
        if args.config:
            return load_engine_config(args.config)
        return board(args.board).engine
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(f"--config/--board: {exc}") from None


def add_model_arguments(p: argparse.ArgumentParser, engine: bool = True) -> None:
    """``--run``, ``--task`` and, with ``engine``, ``--board``, ``--config`` (shared with
    ``infer`` and ``session``)."""
    from spinapse.boards.targets import BOARDS

    p.add_argument("--run", help="run label in the results (default: the only run)")
    p.add_argument("--task", type=int, default=0, help="task whose BatchNorm copy to use (0)")
    if not engine:
        return
    p.add_argument(
        "--board", default="ulx3s-85f", choices=sorted(BOARDS), help="engine of this board"
    )
    p.add_argument("--config", help="TOML with an [engine] table (instead of --board's engine)")


def _export(args: argparse.Namespace) -> int:
    from spinapse.experiments.engine_export import export_run, write_export

    exp = export_run(args.results_dir, engine_for(args), task=args.task, run=args.run)
    out = Path(args.out) if args.out else Path(args.results_dir) / "engine"
    paths = write_export(exp, out)
    print(
        f"{exp.label} task {exp.task} ({exp.task_name}) -> engine {exp.config.name()}: "
        f"{len(exp.writes)} words"
    )
    for kind, p in paths.items():
        print(f"  {kind}: {p}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="turn a trained run into the inference engine's weight/threshold image",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="folder of a 'spinapse train' run")
    add_model_arguments(p)
    p.add_argument("-o", "--out", help="output folder (default RESULTS_DIR/engine)")
    p.set_defaults(func=_export)
