"""A trained tagger through the open RTL route, set against the published HGQ2+da4ml Linformer (N = 16).

Run by hand (minutes; with --yosys add the synthesis time, which grows fast with the model):

    python benchmarks/bench_rtl_trained.py [--yosys] [--no-pair-bias] [--n-per-class 2000] [--name NAME]

It runs ``l1tagger run`` on Pythia 8 + FastJet jets of the hls4ml class set (g, q, W, Z, t), N = 16 particles with
the three "l1" features (log pT/pT_jet, Δη, Δφ: the 16 x 3 inputs of the anchor), a Linformer (k = 4) trained,
QAT-fine-tuned with the floor recipe ``quantize/int8_floor.yaml``, exported, converted and C-simulated as usual,
then the ``rtl`` step: da4ml Verilog, checked bit for bit on the test-bench jets by da4ml's C++ interpreter
(--cosim: also Verilator, slow at this size), and (--yosys) Yosys counts. The C simulation and the RTL checks run
on the first --n-csim-jets jets of the shuffled test split (default 1000; 0 = the whole test split); every row says
how many jets each figure rests on.

Results: <--out>/rtl_trained.{json,md} (default benchmarks/results/), one row per full config (the run config with
epochs, seed and data size, and the RTL options): a rerun with other settings adds a row, a rerun with the same
settings replaces its row (and says so). Every row records the command, the commit and the package versions. The
runs, HLS projects and generated jets go under --work (default: <tmp>/l1tagger-bench/rtl_trained, outside the
checkout; kept, so a rerun resumes).

The anchor (../shared/REFERENCE.md): HGQ2+da4ml Linformer 16 x 3, 72.8 % accuracy, 246k LUT, 0 DSP, 103 ns,
II 1, XCU250 post place-and-route, on the hls4ml LHC jet dataset (Delphes, ~600k training jets). Ours are other
jets (Pythia 8 + FastJet, no detector simulation) and far fewer of them: the same kind of jets and task, not the
same dataset, so the deltas below say where we stand, not a like-for-like ranking.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from l1tagger.pipeline.config import DERIVED, load_run_config
from l1tagger.pipeline.run import run_pipeline
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
from l1tagger.utils.dataclass_io import to_dict
from l1tagger.utils.provenance import add_rows, config_key, provenance

RESULTS = Path(__file__).parent / "results"
ANCHOR = {"system": "HGQ2+da4ml Linformer 16x3", "accuracy": 0.728, "lut": 246000, "dsp": 0, "latency_ns": 103,
          "ii": 1, "part": "XCU250", "source": "arXiv:2510.24784 Table 1 [transcribed], ../shared/REFERENCE.md"}
#: where the run config's own paths go: not part of a row's config (moving --work is not another measurement)
WHERE = ("name", "runs_dir", "projects_dir", "data_dir")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yosys", action="store_true", help="also co-simulate with Verilator and synthesize with Yosys")
    ap.add_argument("--cosim", action="store_true",
                    help="also co-simulate with Verilator (slow for this size: the check is otherwise da4ml's C++ "
                         "interpreter of the same logic)")
    ap.add_argument("--no-pair-bias", action="store_true", help="without the ParT pair bias U")
    ap.add_argument("--n-per-class", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1, help="generation, split, initialisation and training seed")
    ap.add_argument("--n-csim-jets", type=int, default=1000,
                    help="test-split jets checked bit for bit by the C simulation and the RTL checks (0 = all)")
    ap.add_argument("--recipe", default="int8_floor", help="a floor recipe in quantize/ (int8_floor, int6_floor)")
    ap.add_argument("--d-model", type=int, default=16)
    ap.add_argument("--name", default=None, help="run name (default: derived from the options)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "l1tagger-bench" / "rtl_trained"),
                    help="where runs/, hls_projects/ and data/ go (kept: resumable; default %(default)s)")
    ap.add_argument("--out", default=str(RESULTS), help="where rtl_trained.json / .md go (default %(default)s)")
    a = ap.parse_args(argv)
    n_test = round(0.2 * 5 * a.n_per_class) + 1  # an upper bound of the test split: "all" below it
    name = a.name or (f"linformer_n16_l1_{'noU' if a.no_pair_bias else 'U'}_d{a.d_model}_{a.recipe}_"
                      f"{a.n_per_class}jpc_e{a.epochs}_s{a.seed}")
    work = Path(a.work)
    cfg = load_run_config(
        None, name=name, runs_dir=str(work / "bench_runs"), projects_dir=str(work / "bench_hls"),
        data_dir=str(work / "bench_data"), class_set="hls4ml5", n_per_class=a.n_per_class, seed=a.seed,
        n_particles=16, features="l1", attention="linformer", linformer_k=4, pair_bias=not a.no_pair_bias,
        epochs=a.epochs, d_model=a.d_model, ffn_dim=2 * a.d_model, n_csim_jets=a.n_csim_jets or n_test,
        recipe=str(Path(__file__).resolve().parents[1] / "quantize" / f"{a.recipe}.yaml"),
        rtl="yosys" if a.yosys else ("cosim" if a.cosim else "verilog"),
    )
    config = {k: v for k, v in to_dict(cfg, fixed=DERIVED).items() if k not in WHERE}
    config["recipe"] = a.recipe  # the preset's name, not the checkout's path to it
    t0 = time.perf_counter()
    run_pipeline(cfg)
    total = time.perf_counter() - t0
    run = cfg.run_dir
    metrics = {st: json.loads((run / "metrics" / f"{st}.json").read_text()) for st in ("float", "qat", "firmware")}
    acc = {st: m["accuracy"] for st, m in metrics.items()}
    csim = json.loads((run / "csim" / "firmware_check.json").read_text())
    rtl = json.loads((cfg.project_dir / "rtl" / "rtl_summary.json").read_text())
    check = rtl.get("cosim") or rtl["interp"]
    n_test = metrics["qat"]["n_jets"]
    which = (f"the first {csim['n_jets']} of the {n_test} test-split jets (shuffled with seed {a.seed})"
             if csim["n_jets"] < n_test else f"all {n_test} test-split jets")
    y = rtl.get("yosys")
    lut, lut_src = (y["LUT"], f"yosys {y['tool_version']}") if y else (round(rtl["da4ml_cost_estimate_lut"]),
                                                                       "da4ml estimate")
    row = {
        "name": name, "pair_bias": not a.no_pair_bias, "n_per_class": a.n_per_class, "epochs": a.epochs,
        "seed": a.seed, "d_model": a.d_model, "recipe": a.recipe,
        "accuracy_float": acc["float"], "accuracy_qat": acc["qat"], "accuracy_test_jets": n_test,
        "accuracy_firmware_tb": csim["firmware_accuracy"], "tb_jets": csim["n_jets"],
        "csim_bit_exact": csim["bit_exact"], "csim_bit_exact_jets": csim["n_jets"], "bit_exact_jets_which": which,
        "rtl_check": check["source"], "rtl_bit_exact": check["bit_exact"], "rtl_check_jets": check["n_jets"],
        "latency_cycles": rtl["latency_cycles"], "latency_ns": round(rtl["latency_ns"], 1), "ii": rtl["ii"],
        "lut": lut, "lut_source": lut_src, "ff": y["FF"] if y else None, "dsp": y["DSP"] if y else None,
        "carry": y["CARRY"] if y else None, "da4ml_lut_estimate": round(rtl["da4ml_cost_estimate_lut"]),
        "delta_accuracy_vs_anchor": round(acc["qat"] - ANCHOR["accuracy"], 4),
        "lut_ratio_vs_anchor": round(lut / ANCHOR["lut"], 3),
        "latency_ratio_vs_anchor": round(rtl["latency_ns"] / ANCHOR["latency_ns"], 3),
        "wall_s": round(total, 1), "host": {"cpus": os.cpu_count(), "machine": platform.machine()},
        "config": config, "config_key": config_key(config), "provenance": provenance(),
    }
    out = Path(a.out)
    rows = add_rows(out / "rtl_trained.json", [row])
    atomic_write_json(out / "rtl_trained.json", {"benchmark": "rtl_trained", "anchor": ANCHOR, "rows": rows})
    text = markdown(rows)
    atomic_write_text(out / "rtl_trained.md", text)
    print(text)
    return 0


def markdown(rows: list[dict]) -> str:
    lines = ["# A trained tagger through the open RTL route vs the HGQ2+da4ml Linformer (N = 16)", "",
             "Regenerate: `python benchmarks/bench_rtl_trained.py [--yosys] [--no-pair-bias]` (each row: its own "
             "command and commit in rtl_trained.json). Ours: Pythia 8 + FastJet hls4ml-class jets (g, q, W, Z, t), "
             "16 particles x 3 features, Linformer k = 4, one block, 2 heads, floor-rounding QAT recipe as named; "
             "accuracy on the whole test split (QAT = the firmware's arithmetic: C sim and RTL are bit-exact to it "
             "on the jets named). Anchor: hls4ml LHC jet dataset, ~600k training jets, Vivado post place-and-route. "
             "Different jets and training-set sizes: the deltas say where we stand, not a like-for-like ranking.", "",
             "| system | U | jets/class | epochs | seed | accuracy (QAT; test jets) | RTL bit-exact (jets, check) | "
             "latency | II | LUT (source) | FF | DSP | Δ accuracy | LUT / anchor | latency / anchor | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        commit = ((r.get("provenance") or {}).get("commit") or "—")[:10]
        lines.append(
            f"| {r['name']} | {'yes' if r['pair_bias'] else 'no'} | {r['n_per_class']} | {r.get('epochs', '—')} | "
            f"{r.get('seed', '—')} | {r['accuracy_qat']:.4f} ({r.get('accuracy_test_jets', '—')}) | "
            f"{r['rtl_bit_exact']} ({r['rtl_check_jets']} jets, {r['rtl_check']}) | {r['latency_cycles']} cycles = "
            f"{r['latency_ns']} ns | {r['ii']} | {r['lut']:,} ({r['lut_source']}) | {r['ff'] or '—'} | "
            f"{r['dsp'] if r['dsp'] is not None else '—'} | {r['delta_accuracy_vs_anchor']:+.4f} | "
            f"{r['lut_ratio_vs_anchor']} | {r['latency_ratio_vs_anchor']} | {commit} |")
    lines.append(f"| {ANCHOR['system']} (published) | no | ~120k | — | — | {ANCHOR['accuracy']:.3f} | — | "
                 f"{ANCHOR['latency_ns']} ns | 1 | {ANCHOR['lut']:,} (Vivado) | — | 0 | — | 1 | 1 | — |")
    which = [f"{r['name']}: {r['bit_exact_jets_which']}" for r in rows if r.get("bit_exact_jets_which")]
    lines += ["", "Jets checked bit for bit (C simulation and RTL): " + ("; ".join(which) if which else "—") + ".",
              "Rows without a test-jet count or commit were written before those were recorded (their bit-exactness "
              "check covered the first 1000 jets of the shuffled test split)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
