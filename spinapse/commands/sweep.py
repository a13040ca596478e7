"""``spinapse sweep``: a study of many runs (seeds x m x device cards x methods ...) on Dask.

Expands a sweep file (a base experiment plus [sweep.grid]: any configuration field over a
list of values) into runs, trains each with the same function as 'spinapse train' on a Dask
cluster (a local one by default, or a running scheduler), skips runs whose result files already
exist, retries once a run whose worker died, and writes the sweep report: sweep.json, sweep.csv,
sweep_groups.csv, groups.png and tradeoff_m.png (retention and plasticity against m, mean and sd
over seeds) into results/<name>/. Each run's files go to results/<name>/<run>/ with a
config.toml that 'spinapse train --config' re-runs alone. Exit status 1 if a run failed.

example sweep file (spinapse/configs/m_sweep.toml reproduces docs/continual_learning.md):

  name = "m-sweep"
  [train]
  epochs = 40
  [sweep.grid]
  method.meta = [0, 4, 4.5, 5]
  seed = [0, 1, 2]
"""

from __future__ import annotations

import argparse
import sys

from spinapse.commands.train import OVERRIDE_HELP, add_override_option
from spinapse.experiments.cluster import check_scheduler, dask_client, default_workers, describe


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="many runs from a grid of configuration fields, on a Dask cluster",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="SWEEP.toml",
        required=True,
        help="sweep file: experiment tables plus [sweep] base = FILE and [sweep.grid]",
    )
    add_override_option(p, OVERRIDE_HELP.replace("override one", "override, in every run, one"))
    p.add_argument(
        "--scheduler",
        default="local",
        metavar="local|tcp://HOST:PORT",
        help="'local' (default): a Dask LocalCluster of --workers single-threaded processes; "
        "or the address of a running Dask scheduler (docs/sweeps.md: Slurm recipe)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"worker processes of the local cluster (default: one per core, {default_workers()} "
        "here); ignored with a scheduler address",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per run (default 1: results are bit-reproducible and equal "
        "to spinapse train's)",
    )
    p.add_argument(
        "--dashboard",
        default=":8787",
        metavar="ADDRESS",
        help="dashboard address of the local cluster (default :8787, needs bokeh: "
        "pip install 'spinapse[cluster]'); 'none' for none",
    )
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.add_argument(
        "--report",
        action="store_true",
        help="train nothing: write the report of the runs finished so far (while a sweep runs)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # Imported here, not at module import: `spinapse --help` must not load torch.
    from spinapse.experiments.experiment import set_threads
    from spinapse.experiments.sweep import RunRecord, pending_runs, run_sweep
    from spinapse.experiments.sweep_grid import load_sweep
    from spinapse.experiments.sweep_report import sweep_document, table, write_report

    set_threads(args.threads)
    check_scheduler(args.scheduler)
    sweep = load_sweep(args.config, args.overrides)
    todo, done = pending_runs(sweep)
    print(
        f"sweep {sweep.base.name}: {len(sweep.runs)} runs over {', '.join(sweep.fields)} "
        f"({len(done)} finished before), into {sweep.folder}"
    )
    if args.dry_run:
        names = {r.run.name for r in done}
        for run in sweep.runs:
            print(f"  {run.name}{'  (finished)' if run.name in names else ''}")
        return 0
    records = list(done)
    if args.report:
        records += [RunRecord(run, "pending") for run in todo]
    elif todo:
        dashboard = None if args.dashboard == "none" else args.dashboard
        with dask_client(args.scheduler, workers=args.workers, dashboard=dashboard) as client:
            print(describe(client), flush=True)
            records += run_sweep(
                client, sweep, todo, threads=args.threads, progress=not args.no_progress
            )
    order = {r.name: i for i, r in enumerate(sweep.runs)}
    records.sort(key=lambda r: order[r.run.name])
    doc = sweep_document(sweep, records)
    files = write_report(sweep, doc)
    print(table(doc))
    failed = [r for r in records if r.status == "failed"]
    for r in failed:
        print(f"failed: {r.run.name} after {r.attempts} attempt(s): {r.error}", file=sys.stderr)
    print("report: " + ", ".join(str(p) for p in files.values()))
    return 1 if failed else 0
