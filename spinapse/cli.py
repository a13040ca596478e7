"""The ``spinapse`` command line: a thin layer of verbs.

Each verb lives in its own module of :mod:`spinapse.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int`` as the parser
default. Verbs are discovered, so adding a verb is adding one file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from spinapse import __version__, commands
from spinapse.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spinapse",
        description=(
            "Design, verify and prototype neuromorphic hardware whose synapses are "
            "metaplastic spintronic devices."
        ),
    )
    parser.add_argument("--version", action="version", version=f"spinapse {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        print(f"spinapse {args.verb}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
