"""The ``l1tagger`` console command.

Each sub-command lives in its own module ``l1tagger.commands.<name>`` exposing

    HELP: str                                  one-line summary shown by ``l1tagger --help``
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int       exit code

Modules are imported lazily so that ``l1tagger --help`` stays fast and a broken optional
dependency of one command does not break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from l1tagger.errors import L1TaggerError

# Order is the data flow.
COMMANDS = [
    "generate",
    "inspect",
    "train",
    "evaluate",
    "interpret",
    "quantize",
    "convert",
    "csim",
    "build",
    "rtl",
    "report",
    "run",
]


def _load(name: str):
    return importlib.import_module(f"l1tagger.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="l1tagger",
        description="Transformer jet taggers: generate jets -> train -> QAT -> firmware -> C-sim proof -> report.",
    )
    parser.add_argument("--version", action="version", version=f"l1tagger {__import__('l1tagger').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = _load(name)
        except ModuleNotFoundError as exc:  # command not implemented in this build
            if exc.name == f"l1tagger.commands.{name}":
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except L1TaggerError as exc:
        print(f"l1tagger {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
