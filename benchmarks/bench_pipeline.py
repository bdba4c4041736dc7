"""End-to-end wall time of `l1tagger run` on the built-in default, from nothing (fresh data, run and project dirs).

Run by hand:  python benchmarks/bench_pipeline.py [--config FILE]
Writes benchmarks/results/pipeline.{json,md} with the wall time of each step (from runs/<name>/steps/*.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from l1tagger.pipeline.config import load_run_config
from l1tagger.pipeline.run import STEPS, run_pipeline
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="RunConfig YAML (default: the built-in default)")
    ap.add_argument("--out", default="benchmarks/results/pipeline")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="l1t_bench_") as tmp:
        cfg = load_run_config(args.config, name="bench", runs_dir=f"{tmp}/runs", projects_dir=f"{tmp}/hls",
                              data_dir=f"{tmp}/data")
        t0 = time.perf_counter()
        run_pipeline(cfg, log=lambda m: None)
        total = time.perf_counter() - t0
        steps = {s.name: json.loads((cfg.run_dir / "steps" / f"{s.name}.json").read_text())["seconds"] for s in STEPS}
        csim = json.loads((cfg.run_dir / "csim" / "result.json").read_text())
        metrics = {st: json.loads((cfg.run_dir / "metrics" / f"{st}.json").read_text())["accuracy"]
                   for st in ("float", "qat", "firmware")}
    result = {"host": {"cpus": os.cpu_count(), "machine": platform.machine()}, "total_seconds": round(total, 1),
              "step_seconds": steps, "csim": {k: csim[k] for k in ("n_jets", "n_mismatch", "bit_exact")},
              "accuracy": metrics}
    atomic_write_json(f"{args.out}.json", result)
    rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in steps.items())
    atomic_write_text(f"{args.out}.md", f"# `l1tagger run` on the built-in default ({os.cpu_count()} CPUs)\n\n"
                      f"| step | seconds |\n|---|---|\n{rows}\n| **total** | **{total:.1f}** |\n\n"
                      f"C-sim: {csim['n_mismatch']} mismatching values on {csim['n_jets']} jets; accuracy float "
                      f"{metrics['float']:.4f}, QAT {metrics['qat']:.4f}, firmware {metrics['firmware']:.4f}.\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
