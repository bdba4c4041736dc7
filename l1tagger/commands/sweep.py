"""``l1tagger sweep``: a grid of ordinary, resumable ``l1tagger run`` points on Dask, and their Pareto table."""

from __future__ import annotations

import argparse

HELP = "run a grid of `l1tagger run` points (locally or on a Dask cluster, resumable) and tabulate their Pareto front"
DESCRIPTION = """\
Expand a sweep file into ordinary `l1tagger run` points, run them in parallel with Dask (local worker processes by
default; Slurm / HTCondor through dask-jobqueue), and collect pareto.json / pareto.md / pareto.png: accuracy and
background rejection at a fixed signal efficiency against da4ml LUTs, EBOPs and estimated LUTs, latency, and every
point's bit-exact verdict with the number of jets behind it.

  name: attn
  base: {n_per_class: 2000, model: {n_particles: 16}, recipe: int8_floor, rtl: verilog}   # or a run YAML path
  grid:
    model.attention: [full, linformer, topk]
    seed: [1, 2]
  points: [{model.attention: topk, model.topk_k: 4}]     # optional, after the grid's points
  workers: 2
  cluster: local           # none | local | {kind: slurm, cores: 2, memory: 8GB, walltime: '04:00:00', ...}
  signal_efficiency: 0.5
  out: sweeps/attn

Every point's whole config is built and checked (values, recipe, budget, dataset, directories) before anything
runs; a bad key or value fails naming the point and the key. Each point is named <name>-<hash of its overrides>
and runs as `l1tagger run <out>/points/<name>.yaml --wait-lock` (log: <out>/logs/<name>.log). Interrupted (Ctrl-C,
SIGTERM, a lost worker), the same command resumes: points whose run is complete are not rerun, the others resume
at their first unfinished step. Exit status: 0 all points finished, 3 some were not bit-exact (and nothing else
failed), 1 other failures, 130 interrupted. See docs/sweep.md.
"""


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("sweep", metavar="SWEEP.yaml", help="the sweep file")
    p.add_argument("--out", help="the sweep folder (overrides the file's out:)")
    p.add_argument("--workers", type=int, help="Dask workers = points at a time (overrides the file's workers:)")
    p.add_argument("--cluster", choices=("none", "local"),
                   help="run here instead of the file's cluster: (local = Dask worker processes, none = one point "
                        "after another without Dask)")
    p.add_argument("--wait-lock", action="store_true",
                   help="if another sweep is writing the same sweep folder, wait for it instead of failing")
    p.add_argument("--dry-run", action="store_true",
                   help="check the sweep file and every point's config, list the points and which are complete, and "
                        "exit without running anything")


def run(args) -> int:
    import signal
    import sys
    import threading

    from l1tagger.sweep.engine import run_sweep
    from l1tagger.sweep.spec import load_sweep

    spec = load_sweep(args.sweep, out=args.out, workers=args.workers, cluster=args.cluster)

    def terminate(signum, frame):  # SIGTERM (batch systems, kill): the same clean stop as Ctrl-C
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers only go there
    previous = signal.signal(signal.SIGTERM, terminate) if main_thread else None
    try:
        return run_sweep(spec, dry_run=args.dry_run, wait_lock=args.wait_lock)
    except KeyboardInterrupt:
        print(f"l1tagger sweep: interrupted; complete points are kept, rerun the same command to resume (sweep "
              f"folder {spec.out})", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
