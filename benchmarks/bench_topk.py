"""Top-k attention that saves hardware (issue 16 item 3): full vs top-k (fused, and the unfused design it replaces)
vs Linformer at equal N, on the same graph shape.

    python benchmarks/bench_topk.py                       # N = 16, 32; top-k k = 2, 4, 8; Linformer k = 4
                                                          # (14 min on a shared 2-core machine)
    python benchmarks/bench_topk.py --n 64 --k 4 --linformer-k --unfused-n --jets 300   # N = 64: full, top-k 4
    python benchmarks/bench_topk.py --n 16 --k 4 --linformer-k --unfused-n --jets 300 --out /tmp/topk  # smoke, ~1 min

Models: the tiny random-init taggers of ``l1tagger.export.examples.tiny_config`` at N particles (d_model 8, 2 heads
of head_dim 4, 1 block, pair bias U from a pair MLP, 3 'l1' features), initialisation seed 0, calibrated on 256 toy
jets, exported with the floor recipe ``quantize/int8_floor.yaml`` (no training: the cost of the logic depends on the
graph's shape and widths, not on trained weights). Per model:

* da4ml: the graph lowered by ``l1tagger.rtl.lower.lower_model`` (top-k fused, or with ``--unfused-n`` also the
  unfused rank-network design), da4ml's cost of the logic (LUT-equivalents, its cost model) and its combinational
  depth (adder levels, da4ml's latency units), and the lowered logic checked bit for bit by da4ml's C++ interpreter
  against the QONNX reference on ``--jets`` toy jets (``l1tagger.export.examples.toy_inputs``, seed 0);
* the estimate (``l1tagger.report.estimates.estimate_graph``, 360 MHz): LUT, DSP, LUT + 55 DSP, latency cycles,
  and the attention blocks alone (the FirmwareSoftmax nodes and the attention x value products they feed).

A second table measures the selection networks alone on one row of N keys (da4ml cost): the unfused all-pairs rank
network (``l1tagger.rtl.softmax.rank_keep``: N(N-1) comparators, popcounts) against the fused k rounds of a balanced
argmax tree (``select_slots``: k(N-1) comparators, key multiplexers, k-1 winner clears), both on 8-bit logits with a
key mask, without value payload.

Results: <--out>/topk.{json,md} (default benchmarks/results/). Rows are keyed by their full config: a rerun with
other settings adds rows, the same settings replace theirs (said on stdout). Every row records the command, the
commit and the package versions (``l1tagger.utils.provenance``). Exported graphs go to a temporary --work folder
(removed) unless --work names one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from l1tagger.utils.provenance import add_rows, config_key, provenance

sys.path.insert(0, str(Path(__file__).parent))
from bench_rtl import quantized_twin  # noqa: E402  (the same calibrated random-init twin as bench_rtl)

RESULTS = Path(__file__).parent / "results"
RECIPE = "int8_floor"
MODEL = "l1tagger.export.examples.tiny_config (d_model 8, 2 heads, 1 block, pair bias U), random init seed 0"


def _av_layers(model) -> set[str]:
    """Names of the MatMul nodes fed by a softmax through its Quant (the attention x value products)."""
    g = model.graph
    sm_out = {n.output[0] for n in g.node if n.op_type == "FirmwareSoftmax"}
    q_out = {n.output[0] for n in g.node if n.op_type == "Quant" and n.input[0] in sm_out}
    return {n.name for n in g.node if n.op_type == "MatMul" and n.input[0] in q_out}


def bench_model(attention: str, n: int, k: int, fused_variants: list[bool], n_jets: int, workdir: Path) -> list[dict]:
    import onnx
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.export.examples import tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.export.reference import run_reference
    from l1tagger.report.estimates import estimate_graph
    from l1tagger.rtl.lower import lower_model

    torch.set_num_threads(1)
    cfg = tiny_config(attention, n_particles=n)
    if attention == "linformer":
        cfg = dataclasses.replace(cfg, linformer_k=k)
    elif attention == "topk":
        cfg = dataclasses.replace(cfg, topk_k=k)
    inputs = toy_inputs(cfg, max(n_jets, 256))
    qmodel = quantized_twin(cfg, Path(__file__).parents[1] / f"quantize/{RECIPE}.yaml", inputs)
    names = ("x", "mask", "pair")
    feed = {kk: inputs[kk][:n_jets] for kk in names}
    path = workdir / f"{attention}_n{n}_k{k}.onnx"
    t0 = time.time()
    export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[kk][:1]) for kk in names), path)
    ref = run_reference(ModelWrapper(str(path)), feed)["logits"].reshape(n_jets, -1)
    export_s = time.time() - t0
    av = _av_layers(onnx.load(str(path)))
    rows = []
    for fused in fused_variants:
        t0 = time.time()
        lm = lower_model(path, fuse_topk=fused)
        lower_s = time.time() - t0
        y = lm.decode_outputs(lm.comb.predict(lm.encode_inputs(feed), n_threads=1))["logits"].reshape(n_jets, -1)
        est = estimate_graph(path, fuse_topk=fused)
        tot = est["total"]
        att = [layer for layer in est["layers"] if layer["op"] == "FirmwareSoftmax" or layer["name"] in av]
        design = "full" if attention == "full" else (f"linformer k={k}" if attention == "linformer" else
                                                   f"top-k k={k} " + ("fused" if fused else "unfused"))
        row = {
            "design": design, "attention": attention, "n_particles": n, "k": k if attention != "full" else None,
            "fused": fused if attention == "topk" else None,
            "da4ml_cost": round(lm.comb.cost), "da4ml_depth": float(lm.comb.latency[1]),
            "est_lut": tot["lut"], "est_dsp": tot["dsp"], "est_lut_55dsp": tot["lut"] + 55 * tot["dsp"],
            "est_latency_cycles": tot["latency_cycles"],
            "att_est_lut": sum(layer["lut"] for layer in att), "att_est_dsp": sum(layer["dsp"] for layer in att),
            "bit_exact": bool(np.array_equal(y, ref)), "bit_exact_jets": n_jets,
            "bit_exact_which": f"first {n_jets} toy jets (l1tagger.export.examples.toy_inputs, seed 0), da4ml C++ "
                               f"interpreter vs QONNX reference, every logit",
            "lower_s": round(lower_s, 1), "export_s": round(export_s, 1),
        }
        config = {"attention": attention, "n_particles": n, "k": row["k"], "fused": row["fused"], "recipe": RECIPE,
                  "model": MODEL, "training": "none (random init, calibrated on 256 toy jets)", "init_seed": 0,
                  "jets": n_jets, "clock_MHz": 360.0}
        rows.append({**row, "config": config, "config_key": config_key(config), "provenance": provenance()})
    return rows


def selection_rows(ns: list[int], ks: list[int]) -> list[dict]:
    """da4ml cost of the selection networks alone, one row of N 8-bit logits with a key mask."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    from l1tagger.rtl.softmax import rank_keep, select_slots
    from l1tagger.rtl.traced import exact_decimal, select

    rows = []
    for n in ns:
        for k in ks:
            if k >= n:
                continue
            out = {}
            for name in ("rank network (unfused)", "k-round argmax (fused)"):
                with exact_decimal():
                    x, m = FixedVariableArrayInput((n,)), FixedVariableArrayInput((n,))
                    q = [v.quantize(1, 7, 0) for v in x._vars]
                    keep = [v.quantize(0, 1, 0) for v in m._vars]
                    if name.startswith("rank"):
                        res = rank_keep(q, keep, k)
                    else:
                        keys = [select(kb, qj + 129, 0) for qj, kb in zip(q, keep)]  # q - in_min + 1
                        res = [us for us, _ in select_slots(keys, [[] for _ in keys], k)]
                    comb = comb_trace(list(x._vars) + list(m._vars), [r for r in res if hasattr(r, "kif")],
                                      keep_dead_inputs=True)
                out[name] = round(comb.cost)
            config = {"table": "selection", "n_keys": n, "k": k, "logit_bits": 8}
            rows.append({"design": "selection network", "n_particles": n, "k": k,
                         "rank_network_cost": out["rank network (unfused)"],
                         "argmax_rounds_cost": out["k-round argmax (fused)"],
                         "config": config, "config_key": config_key(config), "provenance": provenance()})
    return rows


def write_results(rows: list[dict], out: Path) -> None:
    from l1tagger.utils.atomic import atomic_write_json, atomic_write_text

    path = out / "topk.json"
    rows = add_rows(path, rows)
    models = sorted((r for r in rows if r["design"] != "selection network"),
                    key=lambda r: (r["n_particles"], {"full": 0, "topk": 1, "linformer": 2}[r["attention"]],
                                   r["k"] or 0, not r.get("fused")))
    sel = sorted((r for r in rows if r["design"] == "selection network"), key=lambda r: (r["n_particles"], r["k"]))
    atomic_write_json(path, {"benchmark": "topk", "rows": models + sel,
                             "note": f"{MODEL}; {RECIPE}; da4ml cost = LUT-equivalents of da4ml's cost model; "
                                     "est_* = l1tagger.report.estimates at 360 MHz"})
    cols = ["N", "design", "da4ml cost", "vs full", "est LUT", "est DSP", "est LUT+55 DSP", "vs full",
            "attention est LUT", "attention est DSP", "est latency", "da4ml depth", "bit-exact jets", "commit"]
    lines = ["# Top-k attention that saves hardware (issue 16 item 3)", "",
             f"Models: {MODEL}, calibrated on 256 toy jets, {RECIPE} recipe, not trained (the logic's cost depends "
             "on the graph's shape and widths, not on trained weights). `top-k fused` = the firmware of "
             "docs/firmware_softmax.md (\"Top-k in hardware\"): k rounds of an argmax tree select the kept keys, the "
             "softmax runs on k slots, the attention x value product has k terms per output. `top-k unfused` = the "
             "design it replaces (all-pairs rank network, N-wide softmax and product; `fuse_topk=False`). "
             "da4ml cost: LUT-equivalents of da4ml 0.6's cost model for the lowered logic; da4ml depth: its "
             "combinational depth (adder levels). est: `l1tagger.report.estimates` (360 MHz; LUT+55 DSP is its "
             "single-number cost); `attention` = the FirmwareSoftmax nodes plus the attention x value products. "
             "bit-exact jets: toy jets through da4ml's C++ interpreter equal to the QONNX reference, every logit "
             "(0 = a mismatch). Regenerate: `python benchmarks/bench_topk.py` (commands and versions per row in "
             "topk.json).", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    full = {r["n_particles"]: r for r in models if r["attention"] == "full"}

    def rel(r, key):
        f = full.get(r["n_particles"])
        return f"{r[key] / f[key]:.2f}" if f and f[key] else ""

    for r in models:
        commit = ((r.get("provenance") or {}).get("commit") or "")[:10]
        lines.append("| " + " | ".join(str(v) for v in (
            r["n_particles"], r["design"], r["da4ml_cost"], rel(r, "da4ml_cost"), round(r["est_lut"]),
            round(r["est_dsp"]), round(r["est_lut_55dsp"]), rel(r, "est_lut_55dsp"), round(r["att_est_lut"]),
            round(r["att_est_dsp"]), r["est_latency_cycles"], r["da4ml_depth"],
            r["bit_exact_jets"] if r["bit_exact"] else 0, commit)) + " |")
    if sel:
        lines += ["", "Selection network alone (one row of N keys, 8-bit logits, key mask, no value payload; da4ml "
                  "cost):", "", "| N | k | rank network (unfused) | k-round argmax (fused) | ratio |",
                  "|---|---|---|---|---|"]
        for r in sel:
            lines.append(f"| {r['n_particles']} | {r['k']} | {r['rank_network_cost']} | {r['argmax_rounds_cost']} | "
                         f"{r['argmax_rounds_cost'] / r['rank_network_cost']:.2f} |")
    atomic_write_text(out / "topk.md", "\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[16, 32], help="particle counts N (default %(default)s)")
    p.add_argument("--k", type=int, nargs="+", default=[2, 4, 8], help="top-k k values (default %(default)s)")
    p.add_argument("--linformer-k", type=int, nargs="*", default=[4], help="Linformer k (default %(default)s)")
    p.add_argument("--unfused-n", type=int, nargs="*", default=[16],
                   help="N at which the unfused top-k is lowered too (slow at N = 32: minutes per k; default "
                        "%(default)s)")
    p.add_argument("--jets", type=int, default=1000, help="toy jets of the bit-exactness check (default %(default)s)")
    p.add_argument("--out", default=str(RESULTS), help="where topk.json / topk.md go (default %(default)s)")
    p.add_argument("--work", help="keep the exported graphs here (default: a temporary folder)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from l1tagger.utils.progress import progress, write

    jobs = [("full", n, 0, [True]) for n in a.n]
    jobs += [("topk", n, k, [True, False] if n in a.unfused_n else [True]) for n in a.n for k in a.k if k < n]
    jobs += [("linformer", n, k, [True]) for n in a.n for k in a.linformer_k]
    write_results(selection_rows(a.n, a.k), out)
    work = contextlib.nullcontext(a.work) if a.work else tempfile.TemporaryDirectory(prefix="l1t_bench_topk_")
    with work as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for att, n, k, variants in progress(jobs, desc="bench_topk", unit="model"):
            rows = bench_model(att, n, k, variants, a.jets, Path(tmp))
            write_results(rows, out)
            for r in rows:
                write(json.dumps({kk: v for kk, v in r.items() if kk not in ("provenance", "config")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
