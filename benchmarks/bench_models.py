#!/usr/bin/env python
"""Benchmark of the float tagger variants (issue 3): accuracy, AUC, rejection, MACs per jet, CPU jets/s.

Variants: full+U, full without U, Linformer (k = 4, 8) x ordering (pT, Delta-R, C/A clustering) with random
projections, Linformer k = 4 with physics-initialised projections (subjet blocks under C/A ordering, Delta-R
rings under Delta-R ordering, log blocks under pT ordering), top-k (k = 1, 2, 4), and the float ParT reference
with the same widths (LayerNorm + GELU + class-token blocks: what the L1 simplifications cost). Each at
N = 16 and 32 on the generated 5-class (hls4ml5) and 10-class (jetclass10) sets.

Data: ``<data-dir>/<class_set>_<n_per_class>.h5`` (default data dir: <tmp>/l1tagger-bench/data, outside the
checkout, shared with bench_qat.py); generated with ``l1tagger.data.generate`` if missing. Split 60/20/20 (train /
validation for checkpoint selection / test for the numbers reported; every row has n_train and n_test).
Results: <--out>/models.json and models.md (default benchmarks/results/; --tag writes models_<tag>.*). One row per
full config (class set, N, variant, data size, epochs, widths, seed, ...): a rerun with other settings adds rows,
the same settings replace theirs; every row records the command, the commit and the package versions.

Small run (2 CPU cores, minutes):   python benchmarks/bench_models.py --n-per-class 300 --epochs 8
Big run (GPU machine):              python benchmarks/bench_models.py --n-per-class 20000 --epochs 30 \
                                        --d-model 32 --n-blocks 2 --device auto
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from l1tagger.models import ModelConfig, count_macs  # noqa: E402
from l1tagger.training import TrainConfig, evaluate, load_tagger, train  # noqa: E402
from l1tagger.data.dataset import split_indices  # noqa: E402
from l1tagger.utils.atomic import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402
from l1tagger.utils.provenance import config_key, merge_rows, provenance, read_rows  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: generated datasets of this benchmark and bench_qat.py (outside the checkout)
DATA_DIR = Path(tempfile.gettempdir()) / "l1tagger-bench" / "data"
#: the options that make a row's config (besides class set, N and variant); the others say where things go
CONFIG_ARGS = ("n_per_class", "epochs", "batch_size", "lr", "d_model", "n_heads", "n_blocks", "features", "device",
               "seed")


def variants(full: bool) -> list[tuple[str, dict]]:
    v = [("full+U", dict(attention="full", pair_bias=True)),
         ("full", dict(attention="full", pair_bias=False))]
    for k in (4, 8):
        for order in ("pt", "dr", "cluster"):
            v.append((f"linformer k={k} {order}", dict(attention="linformer", pair_bias=True, linformer_k=k,
                                                         ordering=order)))
    for order, init in (("cluster", "blocks"), ("dr", "blocks"), ("pt", "log_blocks")):
        v.append((f"linformer k=4 {order} init={init}", dict(attention="linformer", pair_bias=True, linformer_k=4,
                                                            ordering=order, linformer_init=init)))
    for k in (1, 2, 4):
        v.append((f"topk k={k}+U", dict(attention="topk", pair_bias=True, topk_k=k)))
    v.append(("ParT-matched (LN+GELU)+U", dict(attention="full", pair_bias=True, _kind="part")))
    if full:
        v.append(("linformer k=4 cluster fixed blocks", dict(attention="linformer", pair_bias=True, linformer_k=4,
                                                             ordering="cluster", linformer_init="blocks",
                                                             linformer_fixed=True)))
    return v


def dataset(class_set: str, n_per_class: int, data_dir: Path, max_particles: int, workers: int = 1):
    from l1tagger.data.io import load_jets

    path = data_dir / f"{class_set}_{n_per_class}.h5"
    if not path.exists():
        from l1tagger.data.generate import generate

        print(f"generating {path} ...", flush=True)
        generate(class_set, n_per_class, path, seed=1, max_particles=max_particles, workers=workers)
    return load_jets(path), path


ORIGINAL_PARTICLE_ORDER = None


def orders_for(jets, path: Path, sizes: list[int]) -> dict:
    """Every ordering strategy at every N for the whole set, cached in ``<dataset>.orders.npz`` (the C/A
    reclustering needs FastJet, which a GPU machine may lack: precompute with --generate-only where it is)."""
    from l1tagger.features.ordering import ORDERINGS, particle_order

    keys = [(name, n) for name in ORDERINGS for n in sizes]
    cache = path.with_suffix(".orders.npz")
    have: dict = {}
    if cache.exists():
        with np.load(cache) as z:
            have = {k: z[k].astype(np.int64) for k in z.files if z[k].shape == jets.mask.shape}
    missing = [(name, n) for name, n in keys if f"{name}_{n}" not in have]
    for name, n in missing:
        have[f"{name}_{n}"] = particle_order(jets, name, n_keep=n)
    if missing:
        with atomic_path(cache, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: v.astype(np.int16) for k, v in have.items()})
    return have


def install_orders(subsets: dict[int, tuple]) -> None:
    """Route the feature step's ordering to the precomputed orders of the split subsets (looked up by object)."""
    global ORIGINAL_PARTICLE_ORDER
    from l1tagger.features import inputs

    if ORIGINAL_PARTICLE_ORDER is None:
        ORIGINAL_PARTICLE_ORDER = inputs.particle_order

    def lookup(jets, strategy, n_keep=None):
        entry = subsets.get(id(jets))
        key = f"{strategy}_{n_keep}"
        if entry is not None and entry[0] is jets and key in entry[1]:
            return entry[1][key]
        return ORIGINAL_PARTICLE_ORDER(jets, strategy, n_keep=n_keep)

    inputs.particle_order = lookup


def write_results(rows, meta, suffix: str, out: Path = RESULTS, log=print) -> Path:
    """Add ``rows`` to ``out/models<suffix>.json`` (rows of other configs are kept) and rewrite the markdown."""
    path = out / f"models{suffix}.json"
    old = read_rows(path)
    if path.is_file() and "meta" in json.loads(path.read_text()):  # rows from before each row had its config
        legacy = json.loads(path.read_text())["meta"]
        old = [r if "config" in r or "legacy_meta" in r else {**r, "legacy_meta": legacy} for r in old]
    rows = merge_rows(old, rows, str(path), log)
    atomic_write_json(path, {"meta": meta, "rows": rows})
    atomic_write_text(out / f"models{suffix}.md", to_markdown(rows, meta))
    return path


def row_config(args, cs: str, N: int, name: str, kind: str) -> dict:
    return {"class_set": cs, "N": N, "variant": name, "model_kind": kind, "extended": args.extended,
            **{k: getattr(args, k) for k in CONFIG_ARGS}}


def merge(paths: list[str], suffix: str, out: Path = RESULTS) -> int:
    """Combine result files of partial runs (e.g. one per class set and N on a many-core machine)."""
    rows, metas = [], []
    for p in paths:
        d = json.loads(Path(p).read_text())
        rows += d["rows"]
        metas.append(d["meta"])
    meta = dict(metas[0])
    meta["merged_from"] = [str(p) for p in paths]
    meta["seconds"] = max(m["seconds"] for m in metas)
    keyed = [r for r in rows if "config_key" in r]
    if len(keyed) < len(rows):
        print(f"{len(rows) - len(keyed)} row(s) without a config (written before rows had one) are not merged")
    print(f"wrote {write_results(keyed, meta, suffix, out)}")
    return 0


@torch.no_grad()
def throughput(model, inputs, batch: int = 256, repeats: int = 5) -> float:
    """CPU jets/s of the forward pass (1 thread, batch ``batch``), best of ``repeats``."""
    model = model.cpu().eval()
    n = min(batch, len(inputs))
    x, m, p = inputs.tensors(slice(0, n))
    model(x, m, p)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x, m, p)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--class-sets", nargs="+", default=["hls4ml5", "jetclass10"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[16, 32])
    ap.add_argument("--n-per-class", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--d-model", type=int, default=16)
    ap.add_argument("--n-heads", type=int, default=2)
    ap.add_argument("--n-blocks", type=int, default=1)
    ap.add_argument("--features", default="kin")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", default=str(DATA_DIR), help="generated datasets (default %(default)s)")
    ap.add_argument("--out", default=str(RESULTS), help="where models[_<tag>].json / .md go (default %(default)s)")
    ap.add_argument("--workers", type=int, default=1, help="generator processes if data must be generated")
    ap.add_argument("--generate-only", action="store_true", help="make the datasets and exit")
    ap.add_argument("--only", nargs="*", help="run only variants whose name contains one of these strings")
    ap.add_argument("--extended", action="store_true", help="also fixed (untrained) physics projections")
    ap.add_argument("--keep-checkpoints", help="copy each variant's best.pt into this directory")
    ap.add_argument("--tag", default="", help="results file suffix: models_<tag>.json")
    ap.add_argument("--merge", nargs="+", help="merge these result JSON files into models[_<tag>].json and exit")
    args = ap.parse_args()
    suffix = f"_{args.tag}" if args.tag else ""
    if args.merge:
        return merge(args.merge, suffix, Path(args.out))
    torch.set_num_threads(1)
    prov = provenance()
    rows = []
    t_start = time.time()
    for cs in args.class_sets:
        jets, path = dataset(cs, args.n_per_class, Path(args.data_dir), max(64, max(args.sizes)), args.workers)
        orders = orders_for(jets, path, args.sizes)
        if args.generate_only:
            continue
        parts = [(jets.subset(i), i) for i in split_indices(len(jets), (0.6, 0.2, 0.2), args.seed)]
        install_orders({id(s): (s, {k: o[i] for k, o in orders.items()}) for s, i in parts})
        tr, va, te = (s for s, _ in parts)
        for N in args.sizes:
            for name, opts in variants(args.extended):
                if args.only and not any(s in name for s in args.only):
                    continue
                opts = dict(opts)
                kind = opts.pop("_kind", "l1")
                mc = ModelConfig(n_particles=N, features=args.features, n_classes=len(jets.class_names),
                                 d_model=args.d_model, n_heads=args.n_heads, n_blocks=args.n_blocks,
                                 ffn_dim=2 * args.d_model, embed_dim=2 * args.d_model, head_dim=2 * args.d_model,
                                 **opts)
                tc = TrainConfig(model=mc, model_kind=kind, epochs=args.epochs, batch_size=args.batch_size,
                                 lr=args.lr, seed=args.seed, device=args.device)
                t0 = time.time()
                with tempfile.TemporaryDirectory() as tmp:
                    best = train(tc, tr, va, tmp, progress=False)
                    tagger = load_tagger(best)
                    if args.keep_checkpoints:
                        import shutil

                        slug = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
                        dest = Path(args.keep_checkpoints) / f"{cs}_N{N}_{slug}.pt"
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(best, dest)
                t_train = time.time() - t0
                m = evaluate(tagger, te)
                inputs = tagger.inputs(te)
                jps = throughput(tagger.model, inputs)
                rej = {c: (r or {}).get("rej50") for c, r in m["rejection"].items()}
                finite = [r for r in rej.values() if r is not None]
                row = {"class_set": cs, "N": N, "variant": name, "model_kind": kind,
                       "accuracy": m["accuracy"], "auc_macro": m["auc_macro"],
                       "rej50_per_class": rej,
                       "rej50_geomean": float(np.exp(np.mean(np.log(finite)))) if finite else None,
                       "macs_per_jet": count_macs(mc)["total"] if kind == "l1" else None,
                       "params": int(sum(p.numel() for p in tagger.model.parameters())),
                       "cpu_jets_per_s": jps, "train_seconds": t_train,
                       "n_train": len(tr), "n_test": len(te), "model_config": mc.to_dict()}
                config = row_config(args, cs, N, name, kind)
                row.update(config=config, config_key=config_key(config), provenance=prov)
                rows.append(row)
                meta = run_meta(args, t_start)
                write_results([row], meta, suffix, Path(args.out))  # after every row: a cut-off run keeps it
                print(f"{cs:10s} N={N:2d} {name:36s} acc {row['accuracy']:.3f} auc {row['auc_macro']:.3f} "
                      f"rej50 {row['rej50_geomean'] or float('nan'):7.1f} MACs {row['macs_per_jet'] or 0:8d} "
                      f"{jps:9.0f} jets/s  ({t_train:.0f} s)", flush=True)

    if args.generate_only:
        return 0
    print(f"wrote {len(rows)} row(s) to {Path(args.out) / f'models{suffix}.json'} and .md")
    return 0


def run_meta(args, t_start) -> dict:
    return {"args": {k: v for k, v in vars(args).items() if k != "merge"}, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": __import__("os").cpu_count(), "cuda": torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else None, "threads": torch.get_num_threads(),
            "seconds": time.time() - t_start,
            "note": "accuracy/AUC/rejection on the held-out 20 % test split; rej50 = 1/eps_B at eps_S = 50 % vs "
                    "the QCD/light classes, geometric mean over signal classes; MACs analytic (models/macs.py, "
                    "L1 variants only); jets/s = float forward on the CPU, 1 thread, batch 256"}


def settings(r: dict) -> dict:
    """The run settings of a row: its config, or the file-wide args of a row written before rows had one."""
    return r.get("config") or (r.get("legacy_meta") or {}).get("args") or {}


def to_markdown(rows, meta) -> str:
    lines = ["# Float tagger benchmark", "", meta["note"], "",
             "Settings per row: jets/class, epochs, d_model / heads / blocks, features, seed; each row's full config, "
             "command, commit and package versions are in the JSON file.", ""]
    groups: dict = {}
    for r in rows:
        a = settings(r)
        head = (f"{a.get('n_per_class')} jets/class, {a.get('epochs')} epochs, d_model {a.get('d_model')}, "
                f"{a.get('n_heads')} heads, {a.get('n_blocks')} block(s), features '{a.get('features')}', "
                f"seed {a.get('seed')}")
        groups.setdefault(head, []).append(r)
    for head, group in groups.items():
        lines += [f"## {head}", "",
                  "| class set | N | variant | accuracy (test jets) | macro AUC | rej50 (geo. mean) | MACs/jet | "
                  "params | CPU jets/s | commit |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in group:
            rej = f"{r['rej50_geomean']:.1f}" if r["rej50_geomean"] else "n/a"
            macs = f"{r['macs_per_jet']:,}" if r["macs_per_jet"] else "—"
            commit = ((r.get("provenance") or {}).get("commit") or "—")[:10]
            lines.append(f"| {r['class_set']} | {r['N']} | {r['variant']} | {r['accuracy']:.3f} ({r['n_test']}) | "
                         f"{r['auc_macro']:.3f} | {rej} | {macs} | {r['params']:,} | {r['cpu_jets_per_s']:,.0f} | "
                         f"{commit} |")
        lines += ["", *claims(group), ""]
    return "\n".join(lines) + "\n"


def claims(rows) -> list[str]:
    """The two seed claims, per class set and N, relative to full+U (accuracy difference, MACs ratio)."""
    out = ["## Seed claims against full+U (accuracy difference in points, MACs ratio)", "",
           "| class set | N | full+U acc | full (no U) | best Linformer k=4 | best Linformer k=8 | top-k k=1 | k=2 | k=4 |"
           " LN+GELU ParT-matched |", "|---|---|---|---|---|---|---|---|---|---|"]
    groups = sorted({(r["class_set"], r["N"]) for r in rows})
    for cs, N in groups:
        g = {r["variant"]: r for r in rows if r["class_set"] == cs and r["N"] == N}
        ref = g.get("full+U")
        if ref is None:
            continue

        def d(r):
            if r is None:
                return "—"
            txt = f"{100 * (r['accuracy'] - ref['accuracy']):+.1f}"
            if r.get("macs_per_jet") and ref.get("macs_per_jet"):
                txt += f" (x{r['macs_per_jet'] / ref['macs_per_jet']:.2f})"
            return txt

        def best(prefix):
            c = [r for v, r in g.items() if v.startswith(prefix)]
            if not c:
                return "—"
            b = max(c, key=lambda r: r["accuracy"])
            return f"{d(b)} [{b['variant'][len('linformer '):]}]"

        out.append(f"| {cs} | {N} | {ref['accuracy']:.3f} | {d(g.get('full'))} | {best('linformer k=4')} | "
                   f"{best('linformer k=8')} | {d(g.get('topk k=1+U'))} | {d(g.get('topk k=2+U'))} | "
                   f"{d(g.get('topk k=4+U'))} | {d(g.get('ParT-matched (LN+GELU)+U'))} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
