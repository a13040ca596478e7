"""``spinapse integer``: the on-chip integer rule against the float golden model (issue 13).

For each seed of the configuration (--config FILE.toml, default the packaged
spinapse/configs/integer_continual.toml), learns 5 permuted tasks of the embedded digits with four
models on the same network: the integer rule of the engine (bit-exact model of the RTL), the
same rule with m = 0, the float metaplastic BNN (Adam_meta) and the float BNN with m = 0. Prints a
per-seed table (accuracy right after each task, mean of the earlier tasks after the last) with
the acceptance checks, and writes comparison.json, comparison.csv and comparison.png to
results_dir/name/.
"""

from __future__ import annotations

import argparse

from spinapse.commands.train import add_override_option


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "integer",
        help="integer learning rule vs float golden model, per seed (issue 13 acceptance)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="comparison settings (default: spinapse/configs/integer_continual.toml)",
    )
    add_override_option(
        p,
        "override one setting, FIELD=VALUE with a TOML value, e.g. --set seeds=[0] "
        "--set rule.m=3.0 --set int_epochs=1; repeatable",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="seeds run at once in worker processes (default 1); results do not depend on it",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def load_compare_config(path: str | None, overrides: list[str]):
    """The :class:`~spinapse.experiments.integer_continual.IntegerCompareConfig` of a TOML file
    (``None``: the packaged ``spinapse/configs/integer_continual.toml``) with ``--set``
    overrides.

    Raises
    ------
    UsageError
        If the file is missing or not TOML, or a setting is invalid (the message names it).
    """
    import tomllib
    from pathlib import Path

    from pydantic import ValidationError

    from spinapse.config import apply_overrides
    from spinapse.errors import UsageError
    from spinapse.experiments.integer_continual import IntegerCompareConfig

    p = Path(path) if path else Path(__file__).parents[1] / "configs" / "integer_continual.toml"
    if not p.is_file():
        raise UsageError(f"{p}: configuration file not found")
    try:
        raw = tomllib.loads(p.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: not valid TOML ({exc})") from None
    try:
        raw = apply_overrides(raw, overrides)
        cfg = IntegerCompareConfig(**raw)
        cfg.integer_rule()
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"{p}: {errs}") from None
    except ValueError as exc:
        raise UsageError(f"{p}: {exc}") from None
    return cfg


def main(args: argparse.Namespace) -> int:
    # Imported here, not at module import: `spinapse --help` must not load torch.
    from pathlib import Path

    from spinapse.errors import UsageError
    from spinapse.experiments.integer_continual import run_comparison, table, write_results

    cfg = load_compare_config(args.config, args.overrides)
    if not 1 <= args.jobs <= 64:
        raise UsageError(f"--jobs must be in [1, 64], got {args.jobs}")
    doc = run_comparison(cfg, jobs=args.jobs, progress=not args.no_progress)
    files = write_results(doc, Path(cfg.results_dir) / cfg.name)
    print(table(doc))
    h = doc["holds"]
    print(
        f"every task within 5 points of float on every seed: "
        f"{'HOLDS' if h['within_5_points'] else 'DOES NOT HOLD'}; metaplastic >= 10 points "
        f"above m = 0 on every seed: {'HOLDS' if h['gain_10_points'] else 'DOES NOT HOLD'}"
    )
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
