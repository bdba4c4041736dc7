"""Generation rate of ``l1tagger.data.generate`` in jets/s per core, per class set (run by hand).

    python benchmarks/bench_generate.py                 # both class sets, MPI off (default) and on for hls4ml5
    python benchmarks/bench_generate.py --jets 100 --e2e # plus end-to-end `generate` of 5 x 1000 jets

Each class is generated in one process on one core (``generate_chunk``); the rate includes Pythia
initialisation, event generation, clustering, truth matching and substructure. Results go to
benchmarks/results/generate.json and generate.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from l1tagger.data.classes import get_class_set  # noqa: E402
from l1tagger.data.generate import GeneratorConfig, generate, generate_chunk, versions  # noqa: E402
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def bench_class_set(name: str, n_jets: int, cfg: GeneratorConfig, seed: int = 2024) -> dict:
    cs = get_class_set(name)
    rows = []
    generate_chunk(name, 0, 2, seed, cfg)  # warm imports (awkward, fastjet) outside the timing
    for k, spec in enumerate(cs.classes):
        t0 = time.perf_counter()
        _, st = generate_chunk(name, k, n_jets, seed + k, cfg)
        dt = time.perf_counter() - t0
        rows.append({"class": spec.name, "jets": n_jets, "events": st["n_events"], "init_s": st["init_s"],
                     "seconds": round(dt, 3), "cpu_s": st["cpu_s"], "jets_per_s": round(n_jets / dt, 1),
                     "jets_per_cpu_s": round(n_jets / st["cpu_s"], 1),
                     "jets_per_s_excl_init": round(n_jets / (dt - st["init_s"]), 1),
                     "jets_per_event": round(n_jets / max(st["n_events"], 1), 3)})
        print(f"  {name}/{spec.name:>5}: {rows[-1]['jets_per_s']:6.1f} jets/s wall, "
              f"{rows[-1]['jets_per_cpu_s']:6.1f} jets/CPU-s "
              f"({rows[-1]['jets_per_event']:.2f} jets/event, init {st['init_s']:.2f} s)", flush=True)
    tot_j = sum(r["jets"] for r in rows)
    tot_s = sum(r["seconds"] for r in rows)
    tot_c = sum(r["cpu_s"] for r in rows)
    return {"class_set": name, "mpi": cfg.mpi, "per_class": rows, "jets_per_s_per_core": round(tot_j / tot_s, 1),
            "jets_per_cpu_s": round(tot_j / tot_c, 1)}


def bench_e2e(n_per_class: int, workers: int, tmp: Path) -> dict:
    out = tmp / "bench_e2e.h5"
    if out.exists():
        out.unlink()
    t0 = time.perf_counter()
    generate("hls4ml5", n_per_class, out, seed=1, workers=workers, progress=True)
    dt = time.perf_counter() - t0
    from l1tagger.data.inspect import inspect_file

    summary = inspect_file(out, RESULTS / "generate_e2e_inspect.png")
    out.unlink()
    physics = {name: {k: c[k] for k in ("sdmass_peak", "sdmass_median", "tau21_mean")}
               for name, c in summary["classes"].items()}
    return {"class_set": "hls4ml5", "n_per_class": n_per_class, "workers": workers, "wall_s": round(dt, 1),
            "jets_per_s": round(5 * n_per_class / dt, 1), "physics": physics,
            "plot": "benchmarks/results/generate_e2e_inspect.png"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jets", type=int, default=200, help="jets per class and configuration (default 200)")
    ap.add_argument("--sets", default="hls4ml5,jetclass10")
    ap.add_argument("--no-mpi-compare", action="store_true", help="skip the MPI-on comparison")
    ap.add_argument("--e2e", action="store_true", help="also time `generate` of 5 x 1000 jets on all cores")
    ap.add_argument("--e2e-n", type=int, default=1000)
    args = ap.parse_args(argv)

    runs = []
    for name in args.sets.split(","):
        runs.append(bench_class_set(name, args.jets, GeneratorConfig()))
    if not args.no_mpi_compare:
        runs.append(bench_class_set("hls4ml5", args.jets, replace(GeneratorConfig(), mpi=True)))
    res = {
        "benchmark": "generate",
        "host": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                 "loadavg_1min": os.getloadavg()[0]},
        "versions": versions(),
        "runs": runs,
    }
    if args.e2e:
        res["end_to_end"] = bench_e2e(args.e2e_n, os.cpu_count() or 1, RESULTS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "generate.json", res)
    lines = ["# Generation rate (jets/s per core)", "",
             f"Host: {res['host']['cpu_count']} cores (shared; 1-min load {res['host']['loadavg_1min']:.1f}), "
             f"pythia8mc {res['versions']['pythia8mc']}, fastjet {res['versions']['fastjet']}. "
             "Each class generated in one process on one core; rates include Pythia init. jets/s = wall clock "
             "(depends on how busy the shared cores are); jets/CPU-s = per CPU-second of that process (the rate "
             "one free core gives). Command: `python benchmarks/bench_generate.py --e2e`", "",
             "| class set | MPI | class | jets/s wall | jets/CPU-s | wall excl. init | jets/event |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        for c in r["per_class"]:
            lines.append(f"| {r['class_set']} | {'on' if r['mpi'] else 'off'} | {c['class']} | {c['jets_per_s']} | "
                         f"{c['jets_per_cpu_s']} | {c['jets_per_s_excl_init']} | {c['jets_per_event']} |")
        lines.append(f"| **{r['class_set']}** | {'on' if r['mpi'] else 'off'} | **all** | "
                     f"**{r['jets_per_s_per_core']}** | **{r['jets_per_cpu_s']}** | | |")
    if "end_to_end" in res:
        e = res["end_to_end"]
        lines += ["", f"End to end: `generate('hls4ml5', {e['n_per_class']})` on {e['workers']} workers: "
                  f"{e['wall_s']} s wall ({e['jets_per_s']} jets/s).", "",
                  "Physics of that file (`l1tagger inspect`, plot `generate_e2e_inspect.png`):", "",
                  "| class | sdmass peak [GeV] | sdmass median [GeV] | mean tau21 |", "|---|---|---|---|"]
        lines += [f"| {n} | {p['sdmass_peak']:.1f} | {p['sdmass_median']:.1f} | {p['tau21_mean']:.3f} |"
                  for n, p in e["physics"].items()]
    atomic_write_text(RESULTS / "generate.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
