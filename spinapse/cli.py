"""The ``spinapse`` command line: a thin layer of verbs.

Each verb lives in its own module of :mod:`spinapse.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int`` as the parser
default. Verbs are discovered, so adding a verb is adding one file. A verb module imports torch
and the other heavy packages inside its ``main``, not at module import, so that ``spinapse
--help`` and argument errors answer at once (a test checks it).

Exit codes: 0 done, 2 usage error (bad configuration, bad file, output location not writable),
130 interrupted with Ctrl-C (the message says how to continue).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shlex
import sys

from spinapse import __version__, commands
from spinapse.errors import UsageError

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spinapse",
        description=(
            "Design, verify and prototype neuromorphic hardware whose synapses are "
            "metaplastic spintronic devices."
        ),
        epilog="'spinapse VERB --help' explains a verb, its options and its output files.",
    )
    parser.add_argument("--version", action="version", version=f"spinapse {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def interrupt_hint(args: argparse.Namespace, argv: list[str]) -> str:
    """What to tell a user who pressed Ctrl-C during ``args.verb`` (``argv``: its arguments)."""
    if hasattr(args, "resume"):
        again = " ".join(["spinapse", *(shlex.quote(a) for a in argv)])
        if "--resume" not in argv:
            again += " --resume"
        return (
            "interrupted. Every finished task is checkpointed and kept; to continue from the "
            f"last finished task, run the same command with --resume:\n  {again}"
        )
    return "interrupted; nothing was written half (result files are replaced atomically)."


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\nspinapse {args.verb}: {interrupt_hint(args, argv)}", file=sys.stderr)
        return INTERRUPTED
    except (UsageError, ValueError, FileNotFoundError) as exc:
        print(f"spinapse {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A result folder or file that cannot be written (read-only disk, a file where a
        # folder should be): the path and the reason, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        why = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError | NotADirectoryError):
            why = "a file stands where a folder is needed; choose another output path"
        print(f"spinapse {args.verb}: error: {where}{why}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
