"""Ordered, resumable build steps (in the spirit of FINN's build_dataflow steps).

A step is a function ``step(cfg, ctx) -> dict[str, str]`` returning the artifact paths it wrote. Before running a
step the runner computes its *fingerprint*: a hash of the config fields the step declares it reads and of the
fingerprints of the steps it depends on. The record ``<run_dir>/steps/<name>.json`` stores that fingerprint and the
artifacts. On a rerun a step is skipped when its fingerprint is unchanged and all its artifacts still exist, so a
run resumes at the first step whose inputs changed, and everything downstream of it is redone.
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

StepFn = Callable[[Any, "StepContext"], dict[str, str]]


@dataclass(frozen=True)
class Step:
    name: str
    fn: StepFn
    reads: tuple[str, ...]  # config fields this step depends on
    after: tuple[str, ...] = ()  # upstream steps whose artifacts it consumes
    doc: str = ""


@dataclass
class StepContext:
    run_dir: Path
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)  # step name -> artifacts
    fingerprint: str = ""  # of the step now running: a work directory keyed by it resumes only its own work
    log: Callable[[str], None] = print

    def artifact(self, step: str, key: str) -> Path:
        try:
            return Path(self.artifacts[step][key])
        except KeyError:
            raise L1TaggerError(f"step {step!r} produced no artifact {key!r}") from None


def _config_value(cfg, name: str):
    value = getattr(cfg, name)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (str, Path)) and str(value) and Path(value).is_file():
        # a file-valued field (recipe, dataset, budget): its contents are an input of the step, not just its name
        return {"path": str(value), "content": _file_digest(Path(value))}
    if isinstance(value, Path):
        return str(value)
    return value


def _file_digest(path: Path) -> str:
    st = path.stat()
    if st.st_size > 64 * 2**20:  # large datasets: size + mtime, not a full hash
        return f"size={st.st_size},mtime={st.st_mtime_ns}"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fingerprint(step: Step, cfg, upstream: dict[str, str]) -> str:
    payload = {
        "step": step.name,
        "config": {name: _config_value(cfg, name) for name in step.reads},
        "upstream": {name: upstream[name] for name in step.after},
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_steps(
    steps: list[Step],
    cfg,
    run_dir: Path,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> StepContext:
    """Run ``steps`` in order, skipping up-to-date ones. Returns the context with every step's artifacts."""
    run_dir = Path(run_dir)
    (run_dir / "steps").mkdir(parents=True, exist_ok=True)
    names = [s.name for s in steps]
    for s in steps:
        missing = [a for a in s.after if a not in names[: names.index(s.name)]]
        if missing:
            raise L1TaggerError(f"step {s.name!r} depends on {missing}, which do not run before it")
    ctx = StepContext(run_dir=run_dir, log=log)
    fingerprints: dict[str, str] = {}
    for i, s in enumerate(steps, 1):
        fp = fingerprint(s, cfg, fingerprints)
        fingerprints[s.name] = fp
        record_path = run_dir / "steps" / f"{s.name}.json"
        record = _read_record(record_path)
        up_to_date = (
            not force
            and record is not None
            and record.get("fingerprint") == fp
            and all(Path(p).exists() for p in record.get("artifacts", {}).values())
        )
        if up_to_date:
            ctx.artifacts[s.name] = record["artifacts"]
            ctx.log(f"[{i}/{len(steps)}] {s.name}: up to date ({fp})")
            continue
        ctx.log(f"[{i}/{len(steps)}] {s.name}: running ({s.doc})")
        t0 = time.time()
        ctx.fingerprint = fp
        artifacts = s.fn(cfg, ctx)
        artifacts = {k: str(v) for k, v in (artifacts or {}).items()}
        ctx.artifacts[s.name] = artifacts
        atomic_write_json(
            record_path,
            {"step": s.name, "fingerprint": fp, "artifacts": artifacts, "seconds": round(time.time() - t0, 2)},
        )
        ctx.log(f"[{i}/{len(steps)}] {s.name}: done in {time.time() - t0:.1f} s")
    return ctx


def _read_record(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a damaged record means: run the step again
