"""Ordered, resumable build steps (in the spirit of FINN's build_dataflow steps).

A step is a function ``step(cfg, ctx) -> dict[str, str]`` returning the artifact paths it wrote. Before running a
step the runner computes its *fingerprint*: a hash of the config fields the step declares it reads and of the
fingerprints of the steps it depends on. The record ``<run_dir>/steps/<name>.json`` stores that fingerprint, the
artifacts and a digest of each (size + sha256; size + mtime above 64 MiB; for a directory the sha256 of its
manifest.json). On a rerun a step is skipped when its fingerprint is unchanged and every artifact still matches its
digest, so a run resumes at the first step whose inputs changed (or whose artifacts were damaged: the log says
which), and everything downstream of it is redone. A step's record is removed before the step runs and written
only when it returns, so an interrupted or failed step is never taken as done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from l1tagger.errors import L1TaggerError
from l1tagger.utils.atomic import atomic_write_json
from l1tagger.utils.hashing import LARGE_FILE_BYTES, artifact_digest, sha256_file, verify_artifact

StepFn = Callable[[Any, "StepContext"], dict[str, str]]


@dataclass(frozen=True)
class Step:
    name: str
    fn: StepFn
    reads: tuple[str, ...]  # config fields this step depends on: a section ("model") or a dotted field of one
    after: tuple[str, ...] = ()  # upstream steps whose artifacts it consumes
    doc: str = ""


class StepInterrupted(KeyboardInterrupt):
    """Ctrl-C while a step ran (or was being checked); ``step`` names it. No record was written for it."""

    def __init__(self, step: str):
        super().__init__(step)
        self.step = step


@dataclass
class StepContext:
    run_dir: Path
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)  # step name -> artifacts
    fingerprint: str = ""  # of the step now running: a work directory keyed by it resumes only its own work
    log: Callable[[str], None] = print
    force: bool = False  # --force: every step reruns and may not reuse cached work
    fresh: bool = False  # the step now running must not resume partial work (--force, or damaged artifacts)
    wait_lock: bool = False  # wait for locks held by other processes instead of failing
    step: str = ""  # name of the step now running

    def artifact(self, step: str, key: str) -> Path:
        try:
            return Path(self.artifacts[step][key])
        except KeyError:
            raise L1TaggerError(f"step {step!r} produced no artifact {key!r}") from None


def _config_value(cfg, name: str):
    """The value of config field ``name`` as it enters a fingerprint: a dotted name reaches into a section
    (``model.n_particles``), a section is taken whole, a file-valued field by its contents."""
    value = cfg
    for part in name.split("."):
        value = getattr(value, part)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    input_file = getattr(cfg, "input_file", None)  # configs that resolve file-valued fields themselves
    path = input_file(name) if callable(input_file) else (
        Path(value) if isinstance(value, (str, Path)) and str(value) else None)
    if path is not None and Path(path).is_file():
        # a file-valued field (recipe, dataset, budget): its contents are an input of the step, not just its name
        return {"path": str(value), "content": _file_digest(Path(path))}
    if isinstance(value, Path):
        return str(value)
    return value


def _file_digest(path: Path) -> str:
    st = path.stat()
    if st.st_size > LARGE_FILE_BYTES:  # large datasets: size + mtime, not a full hash
        return f"size={st.st_size},mtime={st.st_mtime_ns}"
    return sha256_file(path)[:16]


def fingerprint(step: Step, cfg, upstream: dict[str, str]) -> str:
    payload = {
        "step": step.name,
        "config": {name: _config_value(cfg, name) for name in step.reads},
        "upstream": {name: upstream[name] for name in step.after},
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def stale_reason(record: dict | None, fp: str) -> str | None:
    """None when ``record`` shows the step done with fingerprint ``fp`` and intact artifacts, else why not."""
    if record is None:
        return "not run yet"
    if record.get("fingerprint") != fp:
        return "inputs changed"
    digests = record.get("digests")
    if not isinstance(digests, dict):
        return "its record has no artifact digests (written by an older l1tagger)"
    for key, path in record.get("artifacts", {}).items():
        problem = verify_artifact(path, digests.get(key))
        if problem:
            return f"artifact {key!r} does not match its record: {problem}"
    return None


def run_steps(
    steps: list[Step],
    cfg,
    run_dir: Path,
    force: bool = False,
    log: Callable[[str], None] = print,
    wait_lock: bool = False,
) -> StepContext:
    """Run ``steps`` in order, skipping up-to-date ones. Returns the context with every step's artifacts.

    Ctrl-C raises :class:`StepInterrupted` naming the step it hit.
    """
    run_dir = Path(run_dir)
    (run_dir / "steps").mkdir(parents=True, exist_ok=True)
    names = [s.name for s in steps]
    for s in steps:
        missing = [a for a in s.after if a not in names[: names.index(s.name)]]
        if missing:
            raise L1TaggerError(f"step {s.name!r} depends on {missing}, which do not run before it")
    ctx = StepContext(run_dir=run_dir, log=log, force=force, wait_lock=wait_lock)
    fingerprints: dict[str, str] = {}
    for i, s in enumerate(steps, 1):
        ctx.step = s.name
        try:
            _run_one(s, i, len(steps), cfg, run_dir, ctx, fingerprints)
        except StepInterrupted:
            raise
        except KeyboardInterrupt:
            raise StepInterrupted(s.name) from None
    ctx.step = ""
    return ctx


def _run_one(s: Step, i: int, n: int, cfg, run_dir: Path, ctx: StepContext, fingerprints: dict[str, str]) -> None:
    fp = fingerprint(s, cfg, fingerprints)
    fingerprints[s.name] = fp
    record_path = run_dir / "steps" / f"{s.name}.json"
    record = _read_record(record_path)
    reason = "--force" if ctx.force else stale_reason(record, fp)
    if reason is None:
        ctx.artifacts[s.name] = record["artifacts"]
        ctx.log(f"[{i}/{n}] {s.name}: up to date ({fp})")
        return
    damaged = reason.startswith("artifact ")
    if damaged:
        ctx.log(f"[{i}/{n}] {s.name}: rerunning, {reason}")
    ctx.log(f"[{i}/{n}] {s.name}: running ({s.doc})")
    t0 = time.time()
    ctx.fingerprint = fp
    ctx.fresh = ctx.force or damaged
    record_path.unlink(missing_ok=True)  # from here on the step counts as not done until it returns
    artifacts = s.fn(cfg, ctx)
    artifacts = {k: str(v) for k, v in (artifacts or {}).items()}
    ctx.artifacts[s.name] = artifacts
    atomic_write_json(
        record_path,
        {"step": s.name, "fingerprint": fp, "artifacts": artifacts,
         "digests": {k: artifact_digest(p) for k, p in artifacts.items()}, "seconds": round(time.time() - t0, 2)},
    )
    ctx.log(f"[{i}/{n}] {s.name}: done in {time.time() - t0:.1f} s")


def _read_record(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged record means: run the step again
    return record if isinstance(record, dict) and isinstance(record.get("artifacts"), dict) else None
