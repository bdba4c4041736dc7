"""Generation rate of ``l1tagger.data.generate`` in jets/s per core, per class set (run by hand).

    python benchmarks/bench_generate.py                 # both class sets, MPI off (default) and on for hls4ml5
    python benchmarks/bench_generate.py --jets 100 --e2e # plus end-to-end `generate` of 5 x 1000 jets

Each class is generated in one process on one core (``generate_chunk``); the rate includes Pythia
initialisation, event generation, clustering, truth matching and substructure. Results go to
<--out>/generate.json and generate.md (default benchmarks/results/): one row per full config (class set, MPI, jets,
seed; the end-to-end run: jets per class and workers), a rerun with other settings adds rows, the same settings
replace theirs; every row records the command, the commit and the package versions. The end-to-end file is written
into a temporary folder (removed), its inspect plot into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from l1tagger.data.classes import get_class_set  # noqa: E402
from l1tagger.data.generate import GeneratorConfig, generate, generate_chunk, versions  # noqa: E402
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from l1tagger.utils.provenance import config_key, merge_rows, provenance, read_rows  # noqa: E402

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
    config = {"kind": "rate", "class_set": name, "mpi": cfg.mpi, "jets_per_class": n_jets, "seed": seed}
    return {"class_set": name, "mpi": cfg.mpi, "per_class": rows, "jets_per_s_per_core": round(tot_j / tot_s, 1),
            "jets_per_cpu_s": round(tot_j / tot_c, 1), "config": config, "config_key": config_key(config)}


def bench_e2e(n_per_class: int, workers: int, tmp: Path, out: Path) -> dict:
    h5 = tmp / "bench_e2e.h5"
    if h5.exists():
        h5.unlink()
    t0 = time.perf_counter()
    generate("hls4ml5", n_per_class, h5, seed=1, workers=workers, progress=True)
    dt = time.perf_counter() - t0
    from l1tagger.data.inspect import inspect_file

    summary = inspect_file(h5, out / "generate_e2e_inspect.png")
    h5.unlink()
    physics = {name: {k: c[k] for k in ("sdmass_peak", "sdmass_median", "tau21_mean")}
               for name, c in summary["classes"].items()}
    config = {"kind": "end_to_end", "class_set": "hls4ml5", "n_per_class": n_per_class, "workers": workers,
              "seed": 1}
    return {"class_set": "hls4ml5", "n_per_class": n_per_class, "n_jets": 5 * n_per_class, "workers": workers,
            "wall_s": round(dt, 1), "jets_per_s": round(5 * n_per_class / dt, 1), "physics": physics,
            "plot": str(out / "generate_e2e_inspect.png"), "config": config, "config_key": config_key(config)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jets", type=int, default=200, help="jets per class and configuration (default 200)")
    ap.add_argument("--sets", default="hls4ml5,jetclass10")
    ap.add_argument("--no-mpi-compare", action="store_true", help="skip the MPI-on comparison")
    ap.add_argument("--e2e", action="store_true", help="also time `generate` of 5 x 1000 jets on all cores")
    ap.add_argument("--e2e-n", type=int, default=1000)
    ap.add_argument("--out", default=str(RESULTS), help="where generate.json / .md go (default %(default)s)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    for name in args.sets.split(","):
        runs.append(bench_class_set(name, args.jets, GeneratorConfig()))
    if not args.no_mpi_compare:
        runs.append(bench_class_set("hls4ml5", args.jets, replace(GeneratorConfig(), mpi=True)))
    if args.e2e:
        with tempfile.TemporaryDirectory(prefix="l1t_bench_gen_") as tmp:
            runs.append(bench_e2e(args.e2e_n, os.cpu_count() or 1, Path(tmp), out))
    host = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "loadavg_1min": os.getloadavg()[0]}
    prov = {**provenance(), "generator_versions": versions()}
    for r in runs:
        r.update(host=host, provenance=prov)
    path = out / "generate.json"
    runs = merge_rows(previous_rows(path), runs, str(path))
    atomic_write_json(path, {"benchmark": "generate", "runs": runs})
    text = markdown(runs)
    atomic_write_text(out / "generate.md", text)
    print(text)
    return 0


def previous_rows(path: Path) -> list[dict]:
    """The rows of an earlier generate.json; a file from before rows had provenance (host, versions and the
    end-to-end result at the top level) is converted: its host and versions go into each of its rows, its
    end-to-end result becomes a row."""
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    rows = read_rows(path, field="runs")
    if "host" not in data:
        return rows
    legacy = {"host": data["host"], "provenance": {"generator_versions": data.get("versions")}}
    rows = [{**legacy, **r} for r in rows]
    e = data.get("end_to_end")
    if isinstance(e, dict):
        config = {"kind": "end_to_end", "class_set": e.get("class_set"), "n_per_class": e.get("n_per_class"),
                  "workers": e.get("workers"), "seed": 1}
        rows.append({**legacy, **e, "config": config, "config_key": config_key(config)})
    return rows


def markdown(runs: list[dict]) -> str:
    rates = [r for r in runs if (r.get("config") or {}).get("kind", "rate") == "rate"]
    e2e = [r for r in runs if (r.get("config") or {}).get("kind") == "end_to_end"]
    lines = ["# Generation rate (jets/s per core)", "",
             "Each class generated in one process on one core; rates include Pythia init. jets/s = wall clock "
             "(depends on how busy the shared cores are); jets/CPU-s = per CPU-second of that process (the rate "
             "one free core gives). Command: `python benchmarks/bench_generate.py --e2e`; each row's command, "
             "commit, versions and host load are in generate.json (rows without them were written before they were "
             "recorded).", "",
             "| class set | MPI | jets/class | class | jets/s wall | jets/CPU-s | wall excl. init | jets/event | "
             "1-min load | commit |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rates:
        load = (r.get("host") or {}).get("loadavg_1min")
        info = (f"{load:.1f}" if load is not None else "—", ((r.get("provenance") or {}).get("commit") or "—")[:10])
        for c in r["per_class"]:
            lines.append(f"| {r['class_set']} | {'on' if r['mpi'] else 'off'} | {c['jets']} | {c['class']} | "
                         f"{c['jets_per_s']} | {c['jets_per_cpu_s']} | {c['jets_per_s_excl_init']} | "
                         f"{c['jets_per_event']} | {info[0]} | {info[1]} |")
        lines.append(f"| **{r['class_set']}** | {'on' if r['mpi'] else 'off'} | | **all** | "
                     f"**{r['jets_per_s_per_core']}** | **{r['jets_per_cpu_s']}** | | | | |")
    for e in e2e:
        lines += ["", f"End to end: `generate('hls4ml5', {e['n_per_class']})` ({5 * e['n_per_class']} jets) on "
                  f"{e['workers']} workers: {e['wall_s']} s wall ({e['jets_per_s']} jets/s).", "",
                  f"Physics of that file (`l1tagger inspect`, plot `{Path(e['plot']).name}`):", "",
                  "| class | sdmass peak [GeV] | sdmass median [GeV] | mean tau21 |", "|---|---|---|---|"]
        lines += [f"| {n} | {p['sdmass_peak']:.1f} | {p['sdmass_median']:.1f} | {p['tau21_mean']:.3f} |"
                  for n, p in e["physics"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
