"""The ``l1tagger`` console command.

Each sub-command lives in its own module ``l1tagger.commands.<name>`` exposing

    HELP: str                                  one-line summary shown by ``l1tagger --help``
    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int       exit code

Modules are imported lazily so that ``l1tagger --help`` stays fast and a broken optional
dependency of one command does not break the others.

Failures a user can cause end with one line on stderr, ``l1tagger <command>: error: <file>: <problem>``, and exit
code 1: every :class:`~l1tagger.errors.L1TaggerError`, an ``OSError`` (unwritable or impossible output folder, disk
full, ...) and invalid YAML. "Not bit-exact" exits with 3 in every command (``csim``, ``rtl``, ``quantize --export``,
``run``): a :class:`~l1tagger.errors.NotBitExactError` ends like other errors but with code 3. Ctrl-C
prints ``l1tagger <command>: interrupted`` and exits with 130 (a command that handles the interrupt itself, e.g. to
say where to resume, returns 130 and prints its own line). Anything else is a bug and keeps its traceback.

One spelling per concept, through the ``add_*_argument`` helpers below: ``--data`` (jets: a file or toy:N[:C]),
``--checkpoint``, ``--n-jets`` (a jet count), ``--inputs`` (an .npz of graph inputs), ``--clock-ns`` (clock period).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from l1tagger.errors import L1TaggerError, NotBitExactError

#: exit status of every "not bit-exact" verdict (C simulation, RTL checks, export cross-check, a pipeline step)
EXIT_NOT_BIT_EXACT = 3

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
    "sweep",
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
    missing = [flag for dest, flag in getattr(args, "_required", ()) if getattr(args, dest, None) is None]
    if missing:
        args._parser.error(f"the following arguments are required: {', '.join(missing)}")
    prog = f"l1tagger {args.command}"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except L1TaggerError as exc:
        _fail(prog, str(exc))
        return EXIT_NOT_BIT_EXACT if isinstance(exc, NotBitExactError) else 1
    except OSError as exc:
        return _fail(prog, os_error_message(exc))
    except Exception as exc:
        yaml = sys.modules.get("yaml")  # imported by whoever parsed YAML; not here (keeps --help fast)
        if yaml is not None and isinstance(exc, yaml.YAMLError):
            return _fail(prog, yaml_error_message(exc, yaml_arguments(args)))
        raise


class _StoreOnce(argparse.Action):
    """Store into ``target`` (default: ``dest``), refusing a second value: the one spelling of a concept and its
    older positional form may not both be given."""

    def __init__(self, option_strings, dest, target: str | None = None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.target = target or dest

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.target, None) is not None:
            parser.error(f"--{self.target.replace('_', '-')} is given twice (as an option and positionally)")
        setattr(namespace, self.target, values)


def _add_one_spelling(p: argparse.ArgumentParser, dest: str, help_text: str, required: bool,
                      positional: str | None, metavar: str) -> None:
    """``--<dest>`` (``args.<dest>``); ``positional``: the older positional spelling, still read, hidden from --help.
    ``required`` is checked after parsing (by :func:`main`), so either spelling satisfies it."""
    flag = "--" + dest.replace("_", "-")
    p.add_argument(flag, dest=dest, action=_StoreOnce, default=None, metavar=metavar,
                   help=help_text + (" (required)" if required and positional else ""),
                   required=required and not positional)
    if positional:
        p.add_argument(positional, nargs="?", action=_StoreOnce, target=dest, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        if required:
            p.set_defaults(_required=[*(p.get_default("_required") or []), (dest, flag)], _parser=p)


def add_data_argument(p: argparse.ArgumentParser, what: str, required: bool = False,
                      positional: str | None = None) -> None:
    """``--data`` (``args.data``): jets, a file any l1tagger reader loads or ``toy:N[:C]``."""
    _add_one_spelling(p, "data", f"{what}: a jets file any l1tagger reader loads (HDF5, JetClass ROOT), or "
                                 f"toy:N[:C]", required, positional, "DATA")


def add_checkpoint_argument(p: argparse.ArgumentParser, what: str, required: bool = False,
                            positional: str | None = None) -> None:
    """``--checkpoint`` (``args.checkpoint``)."""
    _add_one_spelling(p, "checkpoint", what, required, positional, "CKPT")


def add_n_jets_argument(p: argparse.ArgumentParser, what: str, default: int | None = None,
                        old_spellings: tuple[str, ...] = ("--max-jets",)) -> None:
    """``--n-jets N`` (``args.n_jets``); ``old_spellings`` stay accepted, hidden from --help."""
    p.add_argument("--n-jets", type=int, default=default, metavar="N",
                   help=what + (f" (default {default})" if default is not None else ""))
    for flag in old_spellings:
        p.add_argument(flag, dest="n_jets", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_inputs_argument(p, what: str, old_spellings: tuple[str, ...] = ()) -> None:
    """``--inputs FILE.npz`` (``args.inputs``): one array per graph input (x, mask, pair), batch first. ``p``: a
    parser or an argument group (e.g. mutually exclusive with --data)."""
    p.add_argument("--inputs", metavar="NPZ", help=what)
    for flag in old_spellings:
        p.add_argument(flag, dest="inputs", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_clock_ns_argument(p: argparse.ArgumentParser, default_doc: str, old_spellings: tuple[str, ...] = ()) -> None:
    """``--clock-ns`` (``args.clock_ns``, None when not given: the command takes ``default_doc``)."""
    p.add_argument("--clock-ns", type=float, default=None, metavar="NS",
                   help=f"clock period in ns (default: {default_doc})")
    for flag in old_spellings:
        p.add_argument(flag, dest="clock_ns", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


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
