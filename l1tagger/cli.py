"""The ``l1tagger`` console command.

Each sub-command lives in its own module ``l1tagger.commands.<name>`` exposing

    HELP: str                                  one-line summary shown by ``l1tagger --help``
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int       exit code

Modules are imported lazily so that ``l1tagger --help`` stays fast and a broken optional
dependency of one command does not break the others.

Failures a user can cause end with one line on stderr, ``l1tagger <command>: error: <file>: <problem>``, and exit
code 1: every :class:`~l1tagger.errors.L1TaggerError`, an ``OSError`` (unwritable or impossible output folder, disk
full, ...) and invalid YAML. Ctrl-C prints ``l1tagger <command>: interrupted`` and exits with 130 (a command that
handles the interrupt itself, e.g. to say where to resume, returns 130 and prints its own line). Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

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
    prog = f"l1tagger {args.command}"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except L1TaggerError as exc:
        return _fail(prog, str(exc))
    except OSError as exc:
        return _fail(prog, os_error_message(exc))
    except Exception as exc:
        yaml = sys.modules.get("yaml")  # imported by whoever parsed YAML; not here (keeps --help fast)
        if yaml is not None and isinstance(exc, yaml.YAMLError):
            return _fail(prog, yaml_error_message(exc, yaml_arguments(args)))
        raise


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return 1


def one_line(message: str) -> str:
    """A message on one line (multi-line tool messages joined with '; ')."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def os_error_message(exc: OSError) -> str:
    """``<file>: <reason>`` of an OSError (``<file> -> <file2>`` for a rename)."""
    if exc.filename is None or not exc.strerror:
        return str(exc) or type(exc).__name__
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    return f"{where}: {exc.strerror}"


def yaml_arguments(args: argparse.Namespace) -> list[str]:
    """The YAML files named on the command line (to name the file when the YAML parser only saw a string)."""
    return [v for k, v in sorted(vars(args).items()) if not k.startswith("_") and isinstance(v, str)
            and v.lower().endswith((".yaml", ".yml")) and Path(v).is_file()]


def yaml_error_message(exc, candidates: list[str]) -> str:
    """``<file>: line L, column C: <problem>`` of a yaml.YAMLError."""
    mark = getattr(exc, "problem_mark", None)
    name = getattr(mark, "name", None)
    if not name or name.startswith("<"):
        name = candidates[0] if len(candidates) == 1 else "YAML input"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return f"{name}: {where}invalid YAML: {problem}" + (f" ({context})" if context else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
