#!/usr/bin/env python
"""Benchmark of quantization (issue 4): float vs each recipe, accuracy / macro AUC / rejection on the test split.

Same model set, datasets and 60/20/20 split as benchmarks/bench_models.py (its ``variants()``/``dataset()``):
for each variant the float model is trained (same settings as the models benchmark), then for each recipe
(quantize/<name>.yaml) its Brevitas twin is calibrated, evaluated (PTQ) and fine-tuned (QAT) from the float
weights with the bit-exact firmware softmax, and evaluated on the same test jets. Goals: int8 within 1 % (relative)
of float accuracy, int6 within 2 %.

Results: <--out>/qat.json and qat.md (default benchmarks/results/; --tag writes qat_<tag>.*). One row per full
config (class set, N, variant, recipe, stage, data size, epochs, QAT epochs, widths, seed, ...): a rerun with other
settings adds rows, the same settings replace theirs; every row records the command, the commit, the package
versions and its test jets. Datasets: --data-dir (default <tmp>/l1tagger-bench/data, outside the checkout, shared
with bench_models.py).

Small run (2 CPU cores):  python benchmarks/bench_qat.py --class-sets hls4ml5 --sizes 16 --n-per-class 300 \
                              --only "full+U" "linformer k=4 pt" "topk k=2+U" --epochs 8 --qat-epochs 3
Big run (GPU machine):    python benchmarks/bench_qat.py --n-per-class 20000 --epochs 30 --qat-epochs 10
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_models import DATA_DIR, RESULTS, dataset, variants  # noqa: E402  (the models benchmark's set and data)

from l1tagger.models import ModelConfig  # noqa: E402
from l1tagger.qat.finetune import QATConfig, qat_finetune  # noqa: E402
from l1tagger.qat.recipe import load_recipe  # noqa: E402
from l1tagger.training import TrainConfig, evaluate, train  # noqa: E402
from l1tagger.data.dataset import split_indices  # noqa: E402
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from l1tagger.utils.provenance import config_key, merge_rows, provenance, read_rows  # noqa: E402

#: the options that make a row's config (besides class set, N, variant, recipe and stage)
CONFIG_ARGS = ("n_per_class", "epochs", "qat_epochs", "qat_lr", "batch_size", "lr", "d_model", "n_heads", "n_blocks",
               "features", "seed")


def _rej(m: dict) -> float | None:
    """Geometric mean over signal classes of the rejection at 50 % signal efficiency."""
    rej = m.get("rejection") or {}
    vals = []
    for v in rej.values():
        x = v.get("rej50") if isinstance(v, dict) else None
        if x is None and isinstance(v, dict):
            x = next((val for key, val in v.items() if "50" in str(key)), None)
        if isinstance(x, (int, float)) and np.isfinite(x) and x > 0:
            vals.append(float(x))
    return float(np.exp(np.mean(np.log(vals)))) if vals else None


def _row(args, cs, N, name, recipe, stage, m, t, prov) -> dict:
    settings = {k: getattr(args, k) for k in CONFIG_ARGS}
    config = {"class_set": cs, "N": N, "variant": name, "recipe": recipe, "stage": stage, **settings}
    return {"class_set": cs, "N": N, "variant": name, "recipe": recipe, "stage": stage,
            "accuracy": m["accuracy"], "auc_macro": m["auc_macro"], "rej50_geomean": _rej(m), "n_test": m["n_jets"],
            "seconds": t, "config": config, "config_key": config_key(config),
            "run_key": config_key({"class_set": cs, "N": N, "variant": name, **settings}), "provenance": prov}


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# QAT benchmark",
        "",
        "Settings per row (jets/class, float and QAT epochs, d_model, features, seed) in the table; each row's full "
        "config, command, commit and package versions are in the JSON file (rows without them were written before "
        "they were recorded: their settings are the file's meta).",
        "",
        "Test split (20 %). rel. change = (quantized - float) / float accuracy. PTQ = calibrated twin before "
        "fine-tuning; QAT = after. float+ft = the float model fine-tuned for the same extra epochs and learning "
        "rate as QAT (the fair baseline: QAT rows also get those extra epochs); 'vs ft' = (QAT - float+ft) / "
        "float+ft. Goals: int8 within 1 %, int6 within 2 %.",
        "",
        "| class set | N | variant | jets/class | epochs (QAT) | seed | recipe | stage | accuracy (test jets) | "
        "rel. change | vs ft | macro AUC | rej50 (geo. mean) | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def group(r):  # the rows of one float training (same data, model and settings)
        return r.get("run_key") or (r["class_set"], r["N"], r["variant"], json.dumps(r.get("legacy_meta")))

    floats = {group(r): r for r in rows if r["stage"] == "float"}
    fts = {group(r): r for r in rows if r["stage"] == "float+ft"}
    for r in rows:
        s = r.get("config") or {**(r.get("legacy_meta") or {}), **r}
        f = floats.get(group(r))
        rel = f"{(r['accuracy'] - f['accuracy']) / max(f['accuracy'], 1e-12):+.2%}" if f else "—"
        ft = fts.get(group(r))
        vs_ft = f"{(r['accuracy'] - ft['accuracy']) / max(ft['accuracy'], 1e-12):+.2%}" \
            if ft is not None and r["stage"] == "qat" else ""
        rej = f"{r['rej50_geomean']:.1f}" if r["rej50_geomean"] else "-"
        n_test = r.get("n_test") or (r.get("legacy_meta") or {}).get("n_test", "—")
        commit = ((r.get("provenance") or {}).get("commit") or "—")[:10]
        lines.append(f"| {r['class_set']} | {r['N']} | {r['variant']} | {s.get('n_per_class', '—')} | "
                     f"{s.get('epochs', '—')} ({s.get('qat_epochs', '—')}) | {s.get('seed', '—')} | "
                     f"{r['recipe']} | "
                     f"{r['stage']} | {r['accuracy']:.4f} ({n_test}) | {rel} | {vs_ft} | {r['auc_macro']:.4f} | "
                     f"{rej} | {commit} |")
    n_tests = [r.get("n_test") for r in rows if r.get("n_test")]
    if n_tests:
        p = np.mean([r["accuracy"] for r in rows]) if rows else 0.5
        sigma = math.sqrt(p * (1 - p) / min(n_tests))
        lines += ["", f"Statistical uncertainty of one accuracy: +-{sigma:.4f} absolute ({min(n_tests)} test jets, "
                      "binomial); differences smaller than ~2 sigma are noise."]
    lines += ["", f"Last run: {meta['platform']}, torch {meta['torch']}, {meta['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--class-sets", nargs="+", default=["hls4ml5", "jetclass10"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[16, 32])
    ap.add_argument("--n-per-class", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=8, help="float training epochs")
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--qat-lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--d-model", type=int, default=16)
    ap.add_argument("--n-heads", type=int, default=2)
    ap.add_argument("--n-blocks", type=int, default=1)
    ap.add_argument("--features", default="kin")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", default=str(DATA_DIR), help="generated datasets (default %(default)s)")
    ap.add_argument("--out", default=str(RESULTS), help="where qat[_<tag>].json / .md go (default %(default)s)")
    ap.add_argument("--recipes", nargs="+", default=["int8", "int8_floor", "int6", "int6_floor", "int4"])
    ap.add_argument("--only", nargs="*", help="run only variants whose name contains one of these strings")
    ap.add_argument("--tag", default="", help="results file suffix: qat_<tag>.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    recipes = {r: load_recipe(ROOT / "quantize" / f"{r}.yaml") for r in args.recipes}
    suffix = f"_{args.tag}" if args.tag else ""
    rows: list[dict] = []
    t_start = time.time()
    qcfg = QATConfig(epochs=args.qat_epochs, lr=args.qat_lr, batch_size=args.batch_size, seed=args.seed)
    meta = {k: getattr(args, k) for k in ("n_per_class", "epochs", "qat_epochs", "d_model", "n_heads", "n_blocks",
                                          "features", "sizes", "class_sets", "recipes", "seed")}
    meta.update(platform=platform.platform(), torch=torch.__version__)
    prov = provenance()
    results = Path(args.out) / f"qat{suffix}.json"
    previous = read_rows(results)
    if results.is_file() and "meta" in json.loads(results.read_text()):  # rows from before rows had their config
        legacy = json.loads(results.read_text())["meta"]
        previous = [r if "config" in r or "legacy_meta" in r else {**r, "legacy_meta": legacy} for r in previous]

    def flush():  # after every row: a cut-off run keeps what it finished
        meta["seconds"] = time.time() - t_start
        merged = merge_rows(previous, rows, str(results), log=lambda m: None)
        atomic_write_json(results, {"meta": meta, "rows": merged})
        atomic_write_text(results.with_suffix(".md"), to_markdown(merged, meta))

    for cs in args.class_sets:
        jets, path = dataset(cs, args.n_per_class, Path(args.data_dir), max(64, max(args.sizes)))
        # particle orderings are computed on the fly by the input builder (cluster ordering needs FastJet)
        tr, va, te = (jets.subset(i) for i in split_indices(len(jets), (0.6, 0.2, 0.2), args.seed))
        meta["n_test"] = len(te)
        for N in args.sizes:
            for name, opts in variants(False):
                if args.only and not any(s in name for s in args.only):
                    continue
                opts = dict(opts)
                if opts.pop("_kind", "l1") != "l1":
                    continue  # the ParT reference has no quantized twin
                mc = ModelConfig(n_particles=N, features=args.features, n_classes=len(jets.class_names),
                                 d_model=args.d_model, n_heads=args.n_heads, n_blocks=args.n_blocks,
                                 ffn_dim=2 * args.d_model, embed_dim=2 * args.d_model, head_dim=2 * args.d_model,
                                 **opts)
                tc = TrainConfig(model=mc, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 seed=args.seed, device="cpu")
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.time()
                    best = train(tc, tr, va, tmp, progress=False)
                    t_float = time.time() - t0
                    t0 = time.time()
                    ft = qat_finetune(best, None, tr, va, qcfg, progress=False)
                    rows.append(_row(args, cs, N, name, "float", "float", evaluate(ft.float_model, te), t_float,
                                     prov))
                    rows.append(_row(args, cs, N, name, "float+ft", "float+ft", evaluate(ft.model, te),
                                     time.time() - t0, prov))
                    for rname, recipe in recipes.items():
                        t0 = time.time()
                        res = qat_finetune(best, recipe, tr, va, qcfg, progress=False)
                        t_q = time.time() - t0
                        # PTQ numbers on the test split: re-run calibration-only (epochs 0) for a clean model
                        ptq = qat_finetune(best, recipe, tr, va, QATConfig(epochs=0, seed=args.seed),
                                           progress=False)
                        rows.append(_row(args, cs, N, name, rname, "ptq", evaluate(ptq.model, te), 0.0, prov))
                        rows.append(_row(args, cs, N, name, rname, "qat", evaluate(res.model, te), t_q, prov))
                        print(f"{cs} N={N} {name} {rname}: QAT acc {rows[-1]['accuracy']:.4f} "
                              f"(PTQ {rows[-2]['accuracy']:.4f})", flush=True)
                        flush()
    flush()
    replaced = {r["config_key"] for r in previous if r.get("config_key")} & {r["config_key"] for r in rows}
    if replaced:
        print(f"{results}: replaced {len(replaced)} earlier row(s) that have the same config as rows of this run")
    print(to_markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
