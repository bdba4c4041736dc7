"""Firmware benchmark, per attention kind: conversion time, g++ compile time, C-sim throughput vs PyTorch.

    python benchmarks/bench_firmware.py [--recipe quantize/int8.yaml] [--n-jets 1000] [--kinds full linformer topk]

For each kind: the tiny example tagger (l1tagger.export.examples: N=8, 1 block, 2 heads, d=8, interaction bias)
is exported to QONNX, converted (l1tagger.convert, timed), compiled with g++ without trace hooks (timed), and run
on n_jets toy jets through hls4ml predict() (C simulation, jets/s) and through the same quantized PyTorch model
(Brevitas, 1 thread, one batch and jet by jet). The C-sim outputs are also checked bit for bit against the QONNX
reference (on the same n_jets toy jets, seed 5; each row says how many). Results: <--out>/firmware.json and
firmware.md (default benchmarks/results/): one row per full config (kind, recipe, jets), a rerun with other settings
adds rows, the same settings replace theirs; every row records the command, the commit and the package versions.
Projects are built in a temporary folder (removed). One g++ job at a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
#: seed of the toy jets (l1tagger.export.examples.toy_inputs)
JET_SEED = 5


def bench_kind(kind: str, recipe: str, n_jets: int, work: Path) -> dict:
    import torch

    from l1tagger.convert import ConvertConfig, build_hls_model, load_graph
    from l1tagger.export.examples import example_model, tiny_config, toy_inputs
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.export.reference import run_reference
    from l1tagger.verify.csim import hls_inputs

    cfg = tiny_config(kind)
    inputs = toy_inputs(cfg, n_jets, seed=JET_SEED)
    _, qmodel, _ = example_model(kind, recipe, inputs)
    names = ("x", "mask", "pair")
    feed = {k: inputs[k] for k in names}
    onnx_path = work / f"{kind}.onnx"
    export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[k][:1]) for k in names), onnx_path)

    t0 = time.perf_counter()
    model = load_graph(onnx_path)
    hls_model, fe = build_hls_model(model, work / f"prj_{kind}", ConvertConfig(trace=False))
    hls_model.write()
    convert_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    hls_model.compile()
    compile_s = time.perf_counter() - t0

    xs = hls_inputs(fe, feed)
    t0 = time.perf_counter()
    y = np.asarray(hls_model.predict(xs), np.float64).reshape(n_jets, -1)
    csim_s = time.perf_counter() - t0

    ref = run_reference(model, feed)["logits"].reshape(n_jets, -1)
    mismatches = int((y != ref).sum())

    args = tuple(torch.as_tensor(feed[k]) for k in names)
    with torch.no_grad():
        qmodel(*(a[:8] for a in args))  # warm-up
        t0 = time.perf_counter()
        qmodel(*args)
        torch_batch_s = time.perf_counter() - t0
        n1 = min(n_jets, 200)
        t0 = time.perf_counter()
        for i in range(n1):
            qmodel(*(a[i:i + 1] for a in args))
        torch_single_s = (time.perf_counter() - t0) / n1 * n_jets
    return {
        "kind": kind, "recipe": recipe, "n_jets": n_jets, "layers": len(fe.layers),
        "convert_s": round(convert_s, 2), "gxx_compile_s": round(compile_s, 2),
        "csim_jets_per_s": round(n_jets / csim_s, 1),
        "torch_batch_jets_per_s": round(n_jets / torch_batch_s, 1),
        "torch_single_jet_jets_per_s": round(n_jets / torch_single_s, 1),
        "csim_output_mismatches_vs_qonnx": mismatches, "bit_exact_jets": n_jets if mismatches == 0 else 0,
        "bit_exact_jets_which": f"{n_jets} toy jets (l1tagger.export.examples.toy_inputs, seed {JET_SEED})",
    }


def main(argv=None) -> int:
    import torch

    from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
    from l1tagger.utils.provenance import add_rows, config_key, provenance

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="quantize/int8.yaml")
    p.add_argument("--n-jets", type=int, default=1000)
    p.add_argument("--kinds", nargs="+", default=["full", "linformer", "topk"])
    p.add_argument("--out", default=str(RESULTS), help="where firmware.json / .md go (default %(default)s)")
    a = p.parse_args(argv)
    out_dir = Path(a.out)
    prov = provenance()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_fw_") as tmp:
        for kind in a.kinds:
            row = bench_kind(kind, a.recipe, a.n_jets, Path(tmp))
            print(row, flush=True)
            config = {"kind": kind, "model": "l1tagger.export.examples.tiny_config", "recipe": a.recipe,
                      "n_jets": a.n_jets, "jet_seed": JET_SEED, "torch_threads": 1}
            rows.append({**row, "machine": platform.machine(), "cpus": os.cpu_count(), "config": config,
                         "config_key": config_key(config), "provenance": prov})
    rows = add_rows(out_dir / "firmware.json", rows, field="results")
    out = {"benchmark": "firmware", "python": sys.version.split()[0],
           "note": "shared CPU cores (other jobs may run): timings are indicative", "results": rows}
    atomic_write_json(out_dir / "firmware.json", out)
    cols = ["kind", "recipe", "n_jets", "layers", "convert_s", "gxx_compile_s", "csim_jets_per_s",
            "torch_batch_jets_per_s", "torch_single_jet_jets_per_s", "csim_output_mismatches_vs_qonnx", "commit"]
    md = ["# Firmware benchmark (tiny taggers: N=8, 1 block, 2 heads, d=8, U)", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(((r.get("provenance") or {}).get("commit") or "")[:10] if c == "commit"
                             else str(r.get(c, "")) for c in cols) + " |" for r in rows]
    md += ["", out["note"] + ". n_jets: toy jets (seed 5) of the throughput runs and of the bit-exact comparison "
           "with the QONNX reference. One row per config; each row's command, commit and package versions are in "
           "firmware.json (rows without a commit were written before it was recorded). `l1tagger run` end-to-end "
           "wall time is measured by the pipeline benchmark.", ""]
    atomic_write_text(out_dir / "firmware.md", "\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
