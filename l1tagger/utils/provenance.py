"""Where a result came from: one record for every benchmark row and sweep table, and the rule for adding rows.

    from l1tagger.utils.provenance import provenance, config_key, add_rows

    row = {"config": cfg, "config_key": config_key(cfg), **numbers, "provenance": provenance()}
    rows = add_rows(results_json, [row])      # same config: replaced (said on stdout); other config: appended
    atomic_write_json(results_json, {..., "rows": rows})

``provenance()`` holds the command line, the l1tagger commit (``git rev-parse HEAD`` of the checkout the package
is imported from; null outside a git checkout or without git) and whether that checkout had uncommitted changes,
the versions of the packages behind the numbers (torch, brevitas, qonnx, hls4ml, da4ml, l1tagger), the Python
version and a UTC timestamp. No host name, user name or home path is recorded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Sequence

from l1tagger.errors import ConfigError

#: the distributions whose versions a result depends on
PACKAGES = ("l1tagger", "torch", "brevitas", "qonnx", "hls4ml", "da4ml")

#: how long one git call may take before the commit is recorded as unknown
GIT_TIMEOUT_S = 10


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """{distribution: installed version, or None when it is not installed}."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def source_checkout() -> Path:
    """The directory holding the imported ``l1tagger`` package (the checkout of an editable install)."""
    import l1tagger

    return Path(l1tagger.__file__).resolve().parent.parent


def git_state(path: str | Path | None = None) -> dict:
    """{"commit": HEAD sha or None, "dirty": True/False (tracked files changed) or None} of the git checkout at
    ``path`` (default: the l1tagger source checkout); both None outside a git checkout or without git."""
    where = Path(path) if path is not None else source_checkout()
    commit = _git(["rev-parse", "HEAD"], where)
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a shell line (``python`` in front of a script path; ``l1tagger`` for the console script)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("l1tagger", "cli.py") and Path(argv[0]).parent.name != "benchmarks":
        argv = ["l1tagger", *argv[1:]]
    elif argv and argv[0].endswith(".py"):
        argv = ["python", *argv]
    return shlex.join(argv)


def provenance(argv: Sequence[str] | None = None) -> dict:
    """The provenance record of a result produced by the command ``argv`` (default: this process's)."""
    return {
        "command": command_line(argv),
        **git_state(),
        "versions": package_versions(),
        "python": platform.python_version(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def config_key(config: dict) -> str:
    """A short stable hash of a result's full config (a JSON-able mapping): rows with equal configs share it."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_rows(path: str | Path, field: str = "rows") -> list[dict]:
    """The rows of a results JSON file (``{field: [...]}``); [] when the file does not exist. A file written before
    it had rows (one JSON object without ``field``) is one legacy row: the whole object."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid results JSON file ({exc}); move it away to start a new one") \
            from None
    if isinstance(data, dict) and field not in data:
        return [data]
    rows = data.get(field) if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{path}: expected a JSON object with a list of row objects under {field!r}")
    return rows


def add_rows(path: str | Path, new: Iterable[dict], field: str = "rows",
             log: Callable[[str], None] = print) -> list[dict]:
    """The rows of the results file ``path`` with ``new`` added (see :func:`merge_rows`)."""
    return merge_rows(read_rows(path, field), new, str(path), log)


def merge_rows(rows: list[dict], new: Iterable[dict], where: str = "results",
               log: Callable[[str], None] = print) -> list[dict]:
    """``rows`` with ``new`` added: a new row replaces an old one only when both have the same ``config_key`` (the
    same full config: a repeat of the same measurement; the replacement is logged), otherwise it is appended. Old
    rows without a ``config_key`` (written before it existed) are kept as they are."""
    rows = list(rows)
    for row in new:
        key = row.get("config_key")
        if key is None:
            raise ValueError("a new result row needs a config_key (l1tagger.utils.provenance.config_key)")
        same = [i for i, r in enumerate(rows) if r.get("config_key") == key]
        for i in reversed(same):
            old = rows.pop(i)
            when = (old.get("provenance") or {}).get("timestamp", "an earlier run")
            log(f"{where}: replacing the row of {when} that has the same config ({key})")
        rows.append(row)
    return rows
