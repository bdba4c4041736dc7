"""RTL route benchmark: latency (cycles), da4ml LUT estimate and (with --yosys) Yosys LUT/FF/CARRY/DSP counts
against the number of particles N and the attention kind / k (full, Linformer k, top-k k).

    python benchmarks/bench_rtl.py --n 8 16 32 --attention full linformer topk --k 2 4 [--yosys] [--cosim]
                                   [--no-pair-bias] [--yosys-timeout 3600]

Models are the tiny random-init taggers of ``l1tagger.export.examples`` (d_model 8, 2 heads, 1 block, pair bias
unless --no-pair-bias), exported with the floor recipe ``quantize/int8_floor.yaml`` (da4ml rounds only by truncation
/ half-up). k is the Linformer projection size or the top-k k. A Yosys run that exceeds --yosys-timeout is
recorded as such (the da4ml estimate stays in the row).
Results: <--out>/rtl.json and rtl.md (default benchmarks/results/). Rows are keyed by their full config (attention,
N, k, pair bias, recipe, latency cutoff, clock, co-simulation jets, Yosys): subsets can be run separately, a rerun
with other settings adds a row, the same settings replace their row (said on stdout). Every row records the
command, the commit and the package versions; exported graphs and RTL projects go to a temporary --work folder
(removed) unless --work names one.
Reference anchors (../shared/REFERENCE.md): HGQ2+da4ml Linformer N=16: 72.8 %, 246k LUT, 103 ns, II 1 (XCU250,
post place-and-route); JEDI-linear N=32: 61.9k LUT, 33.1k FF, 60 ns (VU13P). Yosys counts are pre-place-and-route
synthesis counts from an open tool, not comparable one-to-one with Vivado post-route numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from l1tagger.utils.provenance import add_rows, config_key, provenance

RESULTS = Path(__file__).parent / "results"
#: the recipe of every model here (da4ml rounds only by truncation / half-up)
RECIPE = "int8_floor"
#: toy jets of the co-simulation (l1tagger.export.examples.toy_inputs, seed 0)
COSIM_JETS = 300


def quantized_twin(cfg, recipe_path: Path, inputs: dict, seed: int = 0):
    """Random-init float model -> calibrated Brevitas twin (as l1tagger.export.examples.example_model, any cfg)."""
    import torch

    from l1tagger.models import build_model
    from l1tagger.qat.ops import QuantOps, calibrate, load_float_state_dict
    from l1tagger.qat.recipe import load_recipe

    torch.manual_seed(seed)
    fmodel = build_model(cfg)
    ops = QuantOps(load_recipe(recipe_path))
    qmodel = build_model(cfg, ops=ops)
    load_float_state_dict(qmodel, fmodel.state_dict())
    args = tuple(torch.as_tensor(inputs[k][:256]) for k in ("x", "mask", "pair") if k in inputs)
    calibrate(qmodel, [args] * 2)
    return qmodel


def bench_one(attention: str, n: int, k: int, yosys: bool, cosim: bool, cutoff: float, clock_ns: float,
              workdir: Path, pair_bias: bool = True, yosys_timeout: int = 3600) -> dict:
    import torch

    from l1tagger.export.examples import tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.rtl.flow import run_rtl_flow
    from l1tagger.rtl.project import RtlConfig

    torch.set_num_threads(1)
    cfg = dataclasses.replace(tiny_config(attention, n_particles=n), pair_bias=pair_bias)
    if attention == "linformer":
        cfg = dataclasses.replace(cfg, linformer_k=k)
    elif attention == "topk":
        cfg = dataclasses.replace(cfg, topk_k=k)
    inputs = toy_inputs(cfg, COSIM_JETS)
    qmodel = quantized_twin(cfg, Path(__file__).parents[1] / f"quantize/{RECIPE}.yaml", inputs)
    names = ("x", "mask", "pair") if pair_bias else ("x", "mask")
    feed = {kk: inputs[kk] for kk in names}
    tag = f"{attention}_n{n}_k{k}_{'U' if pair_bias else 'noU'}"
    onnx_path = workdir / f"{tag}.onnx"
    export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[kk][:1]) for kk in names), onnx_path)
    t = time.time()
    from l1tagger.errors import VerificationError

    rtl_cfg = RtlConfig(top="tagger", latency_cutoff=cutoff, clock_ns=clock_ns)
    s = run_rtl_flow(onnx_path, workdir / f"rtl_{tag}", cosim=cosim, yosys=False,
                     n_jets=min(1000, len(feed["x"])), inputs=feed if cosim else None, cfg=rtl_cfg, progress=False)
    if yosys:
        from l1tagger.rtl.yosys import synthesize

        try:
            s["yosys"] = synthesize(workdir / f"rtl_{tag}", rtl_cfg.top, timeout_s=yosys_timeout)
        except VerificationError as exc:
            s["yosys_status"] = str(exc)
    row = {
        "key": f"{attention}/N={n}/k={k if attention != 'full' else '-'}/{'U' if pair_bias else 'noU'}",
        "attention": attention, "n_particles": n, "k": k if attention != "full" else None, "pair_bias": pair_bias,
        "latency_cycles": s["latency_cycles"], "latency_ns": round(s["latency_ns"], 1), "ii": s["ii"],
        "clock_ns": clock_ns, "latency_cutoff": cutoff,
        "da4ml_lut_estimate": round(s["da4ml_cost_estimate_lut"]), "register_bits": s["register_bits"],
        "lower_s": s["lower_s"], "flow_s": round(time.time() - t, 1),
    }
    if "yosys" in s:
        y = s["yosys"]
        row.update({"yosys_LUT": y["LUT"], "yosys_FF": y["FF"], "yosys_CARRY": y["CARRY"], "yosys_DSP": y["DSP"],
                    "yosys_tool": f"{y['tool']} {y['tool_version']}", "yosys_s": y["synth_s"], "source": "yosys"})
    else:
        row["source"] = "da4ml estimate"
        if "yosys_status" in s:
            row["yosys_status"] = s["yosys_status"]
    if "cosim" in s:
        row["cosim_bit_exact_jets"] = s["cosim"]["n_jets"] if s["cosim"]["bit_exact"] else 0
        row.update(cosim_bit_exact=s["cosim"]["bit_exact"], cosim_jets=s["cosim"]["n_jets"],
                   cosim_jets_which=f"{s['cosim']['n_jets']} toy jets (l1tagger.export.examples.toy_inputs, seed 0)")
    config = {"attention": attention, "n_particles": n, "k": row["k"], "pair_bias": pair_bias, "recipe": RECIPE,
              "model": "l1tagger.export.examples.tiny_config", "init_seed": 0, "latency_cutoff": cutoff,
              "clock_ns": clock_ns, "cosim_jets": min(1000, len(feed["x"])) if cosim else 0, "yosys": yosys}
    return {**row, "config": config, "config_key": config_key(config), "provenance": provenance()}


def calibrate_one(n: int, cutoff: float, clock_ns: float, workdir: Path, yosys_timeout: int = 3600) -> dict:
    """Yosys against da4ml's estimate on the hand-built single-head attention graph of ``l1tagger.rtl.examples``
    (x: n x 2 features, d = 2, firmware softmax with its ROMs, 2 logits): small enough for Yosys at every n."""
    from l1tagger.rtl.examples import tiny_attention
    from l1tagger.rtl.lower import lower_model
    from l1tagger.rtl.project import RtlConfig, write_project
    from l1tagger.rtl.yosys import synthesize

    rtl_cfg = RtlConfig(top="tiny", latency_cutoff=cutoff, clock_ns=clock_ns)
    out = workdir / f"calib_n{n}"
    t = time.time()
    _, man = write_project(lower_model(tiny_attention(n=n, f=2, d=2)), out, rtl_cfg)
    y = synthesize(out, rtl_cfg.top, timeout_s=yosys_timeout)
    return {"key": f"calibration/tiny_attention/N={n}", "attention": "calibration", "n_particles": n, "k": None,
            "pair_bias": False, "latency_cycles": man["latency_cycles"], "latency_ns": round(man["latency_ns"], 1),
            "ii": man["ii"], "clock_ns": clock_ns, "latency_cutoff": cutoff,
            "da4ml_lut_estimate": round(man["da4ml_cost_estimate_lut"]), "register_bits": man["register_bits"],
            "yosys_LUT": y["LUT"], "yosys_FF": y["FF"], "yosys_CARRY": y["CARRY"], "yosys_DSP": y["DSP"],
            "yosys_tool": f"{y['tool']} {y['tool_version']}", "yosys_s": y["synth_s"], "source": "yosys",
            "flow_s": round(time.time() - t, 1)}


def calibration_row(row: dict, n: int, cutoff: float, clock_ns: float) -> dict:
    config = {"calibration": "l1tagger.rtl.examples.tiny_attention(f=2, d=2)", "n_particles": n,
              "latency_cutoff": cutoff, "clock_ns": clock_ns, "yosys": True}
    return {**row, "config": config, "config_key": config_key(config), "provenance": provenance()}


def write_results(rows: list[dict], out: Path = RESULTS) -> None:
    from l1tagger.utils.atomic import atomic_write_json, atomic_write_text

    path = out / "rtl.json"
    rows = sorted(add_rows(path, rows), key=lambda r: (not r.get("pair_bias", True), r["attention"],
                                                       r["n_particles"], r["k"] or 0))
    atomic_write_json(path, {"benchmark": "rtl", "rows": rows,
                             "note": "tiny random-init taggers (d_model 8, 2 heads, 1 block; U = pair bias), "
                                     "int8_floor recipe; latency_cycles = da4ml pipeline stages (II 1); "
                                     "cosim_bit_exact_jets = co-simulated toy jets if all bit-exact, else 0"})
    cols = ["key", "latency_cutoff", "clock_ns", "latency_cycles", "latency_ns", "ii", "da4ml_lut_estimate",
            "register_bits", "yosys_LUT", "yosys_FF", "yosys_CARRY", "yosys_DSP", "yosys_s", "source",
            "cosim_bit_exact_jets", "commit"]
    lines = ["# RTL route (da4ml -> Verilog; Yosys synth_xilinx xcup)", "",
             "Tiny random-init taggers (d_model 8, 2 heads, 1 block; U = ParT pair bias computed by a pair MLP on "
             "chip from the pair-feature inputs), int8_floor recipe. Latency = da4ml pipeline stages at 2.78 ns "
             "(360 MHz), latency cutoff 8, II 1. Resource counts are labelled by source: `yosys` = Yosys "
             "synth_xilinx -family xcup cell counts (pre-place-and-route, an open synthesizer, products of two "
             "variables mapped to DSP48E2); `da4ml estimate` = da4ml's own cost model (LUT-equivalents, no DSPs). "
             "Regenerate: `python benchmarks/bench_rtl.py [--yosys]` (one row per full config; each row's command "
             "and commit are in rtl.json; rows without a commit were written before it was recorded). "
             "cosim_bit_exact_jets: toy jets co-simulated by Verilator, all bit-exact (0: a mismatch).", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        commit = ((r.get("provenance") or {}).get("commit") or "")[:10]
        lines.append("| " + " | ".join(commit if c == "commit" else str(r.get(c, "")) for c in cols) + " |")
    for r in rows:
        if r.get("note"):
            lines += ["", f"`{r['key']}`: {r['note']}."]
    full = [r for r in rows if r["attention"] != "calibration" and r.get("yosys_LUT")]
    if full:
        lines += ["", "Yosys on a whole tagger: " + "; ".join(
            f"{r['key']}: LUT / da4ml estimate = {r['yosys_LUT'] / r['da4ml_lut_estimate']:.2f}, FF / register bits = "
            f"{r['yosys_FF'] / r['register_bits']:.2f}, {r['yosys_DSP']} DSP, {r['yosys_s'] / 60:.0f} min of Yosys"
            for r in full) + " (the pair MLP's constant products stay in LUTs, so the ratio is above the attention "
            "head's)."]
    cal = [r for r in rows if r["attention"] == "calibration" and r.get("yosys_LUT")]
    if cal:
        lines += ["", "Calibration (rows `calibration/...`: the hand-built one-head attention graph with the firmware "
                  "softmax ROMs, small enough for Yosys): Yosys LUT / da4ml estimate = "
                  + ", ".join(f"{r['yosys_LUT'] / r['da4ml_lut_estimate']:.2f} (N={r['n_particles']}, "
                              f"+{r['yosys_DSP']} DSP)" for r in cal)
                  + "; Yosys FF / da4ml register bits = "
                  + ", ".join(f"{r['yosys_FF'] / r['register_bits']:.2f}" for r in cal)
                  + ". Products of two variables go to DSP48E2 in Yosys but count as LUTs in da4ml's estimate."]
    timeouts = [r for r in rows if r.get("yosys_status")]
    if timeouts:
        lines += ["", "Yosys did not finish for: " + "; ".join(f"{r['key']} ({r['yosys_status']})" for r in timeouts)]
    lines += ["", "Published anchors (../shared/REFERENCE.md; post place-and-route Vivado numbers on the hls4ml LHC "
              "jet dataset, not one-to-one comparable with Yosys counts):", "",
              "| system | N | accuracy | LUT | FF | DSP | latency |", "|---|---|---|---|---|---|---|",
              "| HGQ2+da4ml Linformer (XCU250) | 16 | 72.8 % | 246k | — | 0 | 103 ns, II 1 |",
              "| HGQ2+da4ml Linformer (XCU250) | 32 | 78.4 % | 267k | — | 0 | 140 ns, II 1 |",
              "| HGQ2+da4ml MHA (XCU250) | 32 | 77.0 % | 180k | — | — | 83 ns, II 1 |",
              "| JEDI-linear (VU13P) | 32 | 80.9 % | 61.9k | 33.1k | 0 | 60 ns (21 cycles), II 1 |"]
    atomic_write_text(out / "rtl.md", "\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--attention", nargs="+", default=["full", "linformer", "topk"])
    p.add_argument("--k", type=int, nargs="+", default=[4])
    p.add_argument("--no-pair-bias", action="store_true", help="models without the pair bias U (no pair MLP)")
    p.add_argument("--calibrate", type=int, nargs="*", metavar="N",
                   help="instead of the taggers: Yosys vs da4ml estimate on the hand-built attention graph at these N")
    p.add_argument("--yosys-timeout", type=int, default=3600, help="seconds per Yosys run before it is given up")
    p.add_argument("--yosys", action="store_true", help="run Yosys synthesis (slow: minutes per model)")
    p.add_argument("--cosim", action="store_true", help=f"Verilator co-simulation on {COSIM_JETS} toy jets (slow)")
    p.add_argument("--latency-cutoff", type=float, default=8.0)
    p.add_argument("--clock-ns", type=float, default=2.78)
    p.add_argument("--out", default=str(RESULTS), help="where rtl.json / rtl.md go (default %(default)s)")
    p.add_argument("--work", help="keep the exported graphs and RTL projects here (default: a temporary folder)")
    a = p.parse_args(argv)
    out = Path(a.out)
    from l1tagger.utils.progress import progress, write

    jobs = [(att, n, k) for att in a.attention for n in a.n for k in (a.k if att != "full" else [0])]
    rows = []
    work = contextlib.nullcontext(a.work) if a.work else tempfile.TemporaryDirectory(prefix="l1t_bench_rtl_")
    with work as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        if a.calibrate:
            for n in progress(a.calibrate, desc="calibration", unit="model"):
                row = calibration_row(calibrate_one(n, a.latency_cutoff, a.clock_ns, Path(tmp), a.yosys_timeout), n,
                                      a.latency_cutoff, a.clock_ns)
                write_results([row], out)
                write(json.dumps({k: v for k, v in row.items() if k != "provenance"}))
            return 0
        for att, n, k in progress(jobs, desc="bench_rtl", unit="model"):
            row = bench_one(att, n, k, a.yosys, a.cosim, a.latency_cutoff, a.clock_ns, Path(tmp),
                            pair_bias=not a.no_pair_bias, yosys_timeout=a.yosys_timeout)
            rows.append(row)
            write_results([row], out)
            write(json.dumps({k: v for k, v in row.items() if k != "provenance"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
