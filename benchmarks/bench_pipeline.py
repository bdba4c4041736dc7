"""End-to-end wall time of `l1tagger run` on the built-in default, from nothing (fresh data, run and project dirs).

Run by hand:  python benchmarks/bench_pipeline.py [--config FILE] [--out DIR] [--work DIR]

Writes <--out>/pipeline.{json,md} (default benchmarks/results/) with the wall time of each step (from
runs/<name>/steps/*.json), the accuracies with the test jets behind them and the C-simulation verdict with its jets.
One row per full run config (epochs, seed, data size, ...): a rerun with other settings adds a row, the same
settings replace theirs; every row records the command, the commit and the package versions. The run itself goes
into a fresh temporary folder (removed) unless --work names one (which must not hold an earlier run: the benchmark
times a run from nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from l1tagger.pipeline.config import DERIVED, load_run_config
from l1tagger.pipeline.run import STEPS, run_pipeline
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
from l1tagger.utils.dataclass_io import to_dict
from l1tagger.utils.provenance import add_rows, config_key, provenance

RESULTS = Path(__file__).resolve().parent / "results"
#: where the run config's own paths go: not part of a row's config
WHERE = ("name", "runs_dir", "projects_dir", "data_dir")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="RunConfig YAML (default: the built-in default)")
    ap.add_argument("--out", default=str(RESULTS), help="where pipeline.json / .md go (default %(default)s)")
    ap.add_argument("--work", help="run here instead of a temporary folder (must be empty or absent)")
    args = ap.parse_args(argv)
    if args.work and Path(args.work).exists() and any(Path(args.work).iterdir()):
        ap.error(f"--work {args.work} is not empty: the benchmark times a run from nothing")
    work = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="l1t_bench_")
    with work as tmp:
        cfg = load_run_config(args.config, name="bench", runs_dir=f"{tmp}/runs", projects_dir=f"{tmp}/hls",
                              data_dir=f"{tmp}/data")
        t0 = time.perf_counter()
        run_pipeline(cfg, log=lambda m: None)
        total = time.perf_counter() - t0
        steps = {s.name: json.loads((cfg.run_dir / "steps" / f"{s.name}.json").read_text())["seconds"] for s in STEPS}
        check = json.loads((cfg.run_dir / "csim" / "firmware_check.json").read_text())
        metrics = {st: json.loads((cfg.run_dir / "metrics" / f"{st}.json").read_text())
                   for st in ("float", "qat", "firmware")}
    config = {k: v for k, v in to_dict(cfg, fixed=DERIVED).items() if k not in WHERE}
    row = {"host": {"cpus": os.cpu_count(), "machine": platform.machine()}, "total_seconds": round(total, 1),
           "step_seconds": steps,
           "csim": {"n_jets": check["n_jets"], "bit_exact": check["bit_exact"],
                    "jets": f"the first {check['n_jets']} of the {metrics['qat']['n_jets']} test-split jets "
                            f"(shuffled with seed {cfg.seed})"},
           "accuracy": {st: m["accuracy"] for st, m in metrics.items()},
           "accuracy_jets": {st: m["n_jets"] for st, m in metrics.items()},
           "config": config, "config_key": config_key(config), "provenance": provenance()}
    out = Path(args.out)
    rows = add_rows(out / "pipeline.json", [row])
    atomic_write_json(out / "pipeline.json", {"benchmark": "pipeline", "rows": rows})
    atomic_write_text(out / "pipeline.md", markdown(rows))
    print(json.dumps({k: v for k, v in row.items() if k != "config"}, indent=2))
    return 0


def markdown(rows: list[dict]) -> str:
    lines = ["# `l1tagger run` from nothing", "",
             "One row per run config; each row's full config, command, commit and package versions are in "
             "pipeline.json (a row without them was written before they were recorded).", ""]
    for r in rows:
        cfg, prov = r.get("config") or {}, r.get("provenance") or {}
        data = f"dataset {cfg['dataset']}" if cfg.get("dataset") else f"n_per_class {cfg.get('n_per_class')}"
        what = (f"{data}, seed {cfg['seed']}, train {cfg['train']['epochs']} epochs, QAT {cfg['qat']['epochs']} "
                f"epochs, recipe {cfg['recipe']}" if cfg else "built-in default of its time")
        steps = "\n".join(f"| {k} | {v:.1f} |" for k, v in r["step_seconds"].items())
        acc, jets = r["accuracy"], r.get("accuracy_jets") or {}
        njets = lambda st: f" ({jets[st]} jets)" if st in jets else ""  # noqa: E731
        lines += [f"## {what} ({r['host']['cpus']} CPUs, commit {(prov.get('commit') or 'unknown')[:10]})", "",
                  "| step | seconds |", "|---|---|", steps, f"| **total** | **{r['total_seconds']:.1f}** |", "",
                  f"C-sim: {'bit-exact' if r['csim']['bit_exact'] else 'NOT bit-exact'} on {r['csim']['n_jets']} "
                  f"jets{' (' + r['csim']['jets'] + ')' if r['csim'].get('jets') else ''}; "
                  f"accuracy float {acc['float']:.4f}{njets('float')}, QAT {acc['qat']:.4f}{njets('qat')}, firmware "
                  f"{acc['firmware']:.4f}{njets('firmware')}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
