"""Running a sweep's points: each an ordinary ``l1tagger run`` subprocess, started from a Dask task.

Scheduling, placement and retries of crashed workers are Dask's: ``dask.distributed.LocalCluster`` (one
single-threaded worker process per point at a time) on this machine, a dask-jobqueue cluster (Slurm, HTCondor) on a
batch system, or no Dask at all (``cluster: none``, one point after another). A point runs as

    python -m l1tagger.cli run <out>/points/<name>.yaml --wait-lock      (output: <out>/logs/<name>.log)

so it resumes like any ``l1tagger run`` (step fingerprints), waits for a dataset another point is generating, and
dies with its worker: the process gets SIGTERM when the worker thread that started it ends (Linux
``PR_SET_PDEATHSIG``), and an interrupted sweep stops every point process group (SIGINT, then SIGKILL after
:data:`STOP_GRACE_S`) through ``Client.run`` before it closes the cluster.

Only the standard library is imported at module level: Dask workers import this module to run :func:`run_point`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

#: seconds a point process gets to stop after SIGINT before its process group is killed
STOP_GRACE_S = 10.0

#: on a worker: the point processes it is running (pid -> Popen), for :func:`stop_points`
_RUNNING: dict[int, subprocess.Popen] = {}
_RUNNING_LOCK = threading.Lock()


def point_command(config_path: str | os.PathLike) -> list[str]:
    """The argument list that runs one point."""
    return [sys.executable, "-m", "l1tagger.cli", "run", str(config_path), "--wait-lock"]


def _child_setup() -> None:  # runs in the point process between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a worker may ignore SIGINT; the run must not
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def run_point(name: str, config_path: str, log_path: str, cwd: str) -> dict:
    """Run one point to its end (a Dask task, or called directly): ``l1tagger run`` in a subprocess of its own
    session, output appended to ``log_path``. Returns {"name", "returncode", "seconds", "log"}."""
    cmd = point_command(config_path)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"=== {_now()} {shlex.join(cmd)} (cwd {cwd})\n")
        log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True, preexec_fn=_child_setup)  # noqa: PLW1509 (async-safe)
        with _RUNNING_LOCK:
            _RUNNING[proc.pid] = proc
        try:
            rc = proc.wait()
        finally:
            with _RUNNING_LOCK:
                _RUNNING.pop(proc.pid, None)
    return {"name": name, "returncode": rc, "seconds": round(time.time() - t0, 1), "log": str(log_path)}


def stop_points(grace_s: float = STOP_GRACE_S) -> int:
    """Stop every point process this process started (SIGINT to its process group, SIGKILL after ``grace_s``);
    run on every worker by an interrupted sweep. Returns how many there were."""
    with _RUNNING_LOCK:
        procs = list(_RUNNING.values())
    for p in procs:
        _signal_group(p, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(p, signal.SIGKILL)
            p.wait()
    return len(procs)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the point's own session: its g++ / verilator children too
    except ProcessLookupError:
        pass


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def execute(points: list[tuple[str, str, str]], workers: int, kind: str, options: dict, cwd: str,
            on_done: Callable[[dict], None], log: Callable[[str], None]) -> None:
    """Run ``points`` ([(name, config_path, log_path)]) on ``workers`` Dask workers of a cluster of ``kind`` (local,
    slurm, htcondor; none = here, one after another), calling ``on_done(result)`` as each finishes. A point whose
    task raised (e.g. its worker died for good) gets returncode None and the "error". Ctrl-C (KeyboardInterrupt)
    stops the running points and closes the cluster before it propagates."""
    if kind == "none":
        for name, cfg, log_path in points:
            on_done(run_point(name, cfg, log_path, cwd))
        return
    from dask.distributed import Client, as_completed

    cluster = make_cluster(kind, workers, options)
    try:
        with Client(cluster) as client:
            log(f"Dask: {type(cluster).__name__} with {workers} worker(s), {len(points)} point(s) to run")
            futures = {client.submit(run_point, name, cfg, log_path, cwd, key=f"l1tagger-run-{name}", pure=False):
                       name for name, cfg, log_path in points}
            try:
                for fut in as_completed(list(futures)):
                    exc = fut.exception()
                    on_done(fut.result() if exc is None else
                            {"name": futures[fut], "returncode": None, "error": f"{type(exc).__name__}: {exc}"})
            except BaseException:
                # Ctrl-C on a terminal also reaches the local workers, which may be gone already: the scheduler's
                # complaints about them are noise here, and their points die with them (PR_SET_PDEATHSIG)
                logging.getLogger("distributed").setLevel(logging.CRITICAL)
                client.cancel(list(futures))
                try:
                    stopped = client.run(stop_points, on_error="return", wait=True)
                    n = sum(v for v in stopped.values() if isinstance(v, int))
                    gone = sum(not isinstance(v, int) for v in stopped.values())
                    log(f"stopped {n} running point(s)" + (f"; {gone} worker(s) already gone, their points end "
                                                           f"with them" if gone else ""))
                except Exception as exc:
                    log(f"could not reach the workers ({type(exc).__name__}: {exc}); their points end with them")
                raise
    finally:
        cluster.close()


def make_cluster(kind: str, workers: int, options: dict):
    """A started Dask cluster of ``kind`` with ``workers`` workers; its keyword ``options`` are passed through
    (ConfigError when the cluster class refuses them)."""
    from l1tagger.errors import ConfigError

    try:
        if kind == "local":
            from dask.distributed import LocalCluster

            # the worker processes start with SIGINT ignored: Ctrl-C on a terminal reaches the whole process group,
            # and only the sweep shall handle it (stop the points, close the cluster) instead of every worker
            # dying with a traceback
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                    silence_logs=logging.ERROR, **options)
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
        import dask_jobqueue

        from l1tagger.sweep.spec import CLUSTER_KINDS

        cluster = getattr(dask_jobqueue, CLUSTER_KINDS[kind])(**options)
        cluster.scale(n=workers)
        return cluster
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cluster: {kind} cluster refused its options {sorted(options)}: {exc}") from None


def pending_reason(cfg) -> str | None:
    """None when the point's run is complete for its config (every pipeline step's record carries the step's
    current fingerprint and its artifacts match their digests, report.json included), else why it must run."""
    from l1tagger.pipeline.run import STEPS
    from l1tagger.pipeline.steps import fingerprint, stale_reason

    fingerprints: dict[str, str] = {}
    for step in STEPS:
        fp = fingerprints[step.name] = fingerprint(step, cfg, fingerprints)
        try:
            record = json.loads((cfg.run_dir / "steps" / f"{step.name}.json").read_text())
        except (OSError, ValueError):
            record = None
        reason = stale_reason(record if isinstance(record, dict) else None, fp)
        if reason is not None:
            return f"step {step.name}: {reason}"
    if not (cfg.run_dir / "report.json").is_file():
        return "no report.json"
    return None


def plan(spec, log: Callable[[str], None] = print) -> list:
    """The points of ``spec`` that must run (their run is not complete), each point's state logged."""
    todo = []
    for p in spec.points:
        reason = pending_reason(p.config)
        if reason is not None:
            todo.append(p)
        log(f"point {p.name} ({p.describe()}): " + ("complete, not rerun" if reason is None else f"to run ({reason})"))
    log(f"sweep {spec.name}: {len(spec.points)} points, {len(spec.points) - len(todo)} complete, {len(todo)} to run "
        f"({spec.cluster.kind} cluster, {spec.workers} worker(s)); folder {spec.out}")
    return todo


def run_sweep(spec, dry_run: bool = False, wait_lock: bool = False, log: Callable[[str], None] = print) -> int:
    """Run the sweep ``spec`` (``l1tagger.sweep.spec.load_sweep``): write every point's run config, skip the points
    whose run is complete, run the others, collect the Pareto table. The sweep folder is locked meanwhile (held by
    another sweep: LockedError, or with ``wait_lock`` wait for it).

    Returns 0 when every point finished, 3 when the only failures are "not bit-exact" runs, else 1. Ctrl-C
    (KeyboardInterrupt) stops the running points and propagates; rerunning resumes.
    """
    from l1tagger.pipeline.config import dump_run_config
    from l1tagger.sweep import collect
    from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
    from l1tagger.utils.lock import LockedError, exclusive_lock
    from l1tagger.utils.progress import progress, write
    from l1tagger.utils.provenance import provenance

    if dry_run:
        plan(spec, log)
        return 0
    prov = provenance()
    with exclusive_lock(spec.out / ".lock", f"sweep folder {spec.out}", wait=wait_lock, error=LockedError, log=log):
        todo = plan(spec, log)
        for p in spec.points:
            atomic_write_text(spec.config_path(p), dump_run_config(p.config))
        atomic_write_json(spec.out / "sweep.json", {
            "source": str(spec.source), "name": spec.name, "provenance": prov,
            "points": [{"name": p.name, "origin": p.origin, "overrides": p.overrides,
                        "config": str(spec.config_path(p))} for p in spec.points]})
        results: dict[str, dict] = {}
        bar = progress(total=len(todo), desc=f"sweep {spec.name}", unit="point", disable=not todo)
        by_name = {p.name: p for p in todo}

        def on_done(res: dict) -> None:
            results[res["name"]] = res
            p = by_name[res["name"]]
            rc = res.get("returncode")
            if rc == 0:
                row = collect.point_row(p, p.config, res, spec.signal_efficiency)
                what = (f"finished in {res['seconds']:.0f} s: accuracy {collect.fmt_value(row['accuracy'])} on "
                        f"{row['accuracy_n_jets']} test jets, {row['bit_exact']['verdict']} on "
                        f"{row['bit_exact']['n_jets']} jets")
            else:
                why = {3: "not bit-exact", 130: "interrupted"}.get(rc, res.get("error") or "error")
                what = f"FAILED (exit {rc}: {why}); log {res.get('log') or spec.logs_dir / (p.name + '.log')}"
            write(f"[{len(results)}/{len(todo)}] point {p.name} ({p.describe()}): {what}")
            bar.update(1)

        try:
            if todo:
                execute([(p.name, str(spec.config_path(p)), str(spec.logs_dir / f"{p.name}.log")) for p in todo],
                        spec.workers, spec.cluster.kind, spec.cluster.options, os.getcwd(), on_done, log)
        finally:
            bar.close()
        doc = collect.collect(spec, results, prov)
    log(f"Pareto table: {spec.out / 'pareto.md'} (+ pareto.json{', pareto.png' if doc.get('plot') else ''})")
    codes = [r.get("returncode") for r in results.values() if r.get("returncode") != 0]
    if not codes:
        return 0
    log(f"{len(codes)} point(s) failed; rerun the same command to retry them (complete points are not rerun)")
    return 3 if all(c == 3 for c in codes) else 1
