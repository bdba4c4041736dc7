"""Benchmark row of the jet-image ViT baseline: accuracy, AUC, MACs per jet and CPU jets/s, per task.

Run by hand (not part of the test suite):

    python benchmarks/bench_vit.py --data data/hls4ml5.h5              # generated or downloaded jets
    python benchmarks/bench_vit.py --generate 600 --workers 14         # generate hls4ml5 jets first (Pythia 8)
    python benchmarks/bench_vit.py --toy                               # plumbing check on toy jets

For each task (``qcd_vs_top``, ``w_vs_z``; ``all`` = every class of the file) the jets are split 60/20/20
(stratified, --seed), a ViT is trained from scratch on the train part, evaluated on the test part with the
particle taggers' metrics (``l1tagger.training.metrics.compute_metrics``), and its attention fractions are
computed on the test part (``interpret_vit``). Cost: analytic MACs per jet (``vit_macs``, checked against torch's
FLOP counter in the tests) and measured CPU throughput of the model forward pass (``--threads`` torch threads,
batch 1 and batch 256) and of the jet-image step.

Fine-tuning as in the jet-image ViT papers (a pretrained checkpoint, only the last blocks trained, a few hundred
jets per class): pretrain the 5-class model, then fine-tune it on jets generated with another seed (so no test jet
was seen in pretraining):

    python benchmarks/bench_vit.py --generate 1200 --tasks all
    python benchmarks/bench_vit.py --generate 1200 --seed 2 --tasks qcd_vs_top w_vs_z \
        --init-checkpoint runs/bench_vit/all/best.pt --finetune-blocks 1 --train-per-class 300 --name vit_finetune

Writes <--results>/<name>.json and <name>.md (default benchmarks/results/; the checkpoints and interpret PNG/JSON
under --work, default <tmp>/l1tagger-bench/vit, outside the checkout). One row per full config (task, data and its
jet counts, image, model, training settings, seed): a rerun with other settings adds rows, the same settings
replace theirs; every row records the command, the commit and the package versions, and its train/test jets.
"""

from __future__ import annotations

import argparse
import json
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from l1tagger.data.jetset import JetSet  # noqa: E402
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from l1tagger.utils.provenance import config_key, merge_rows, provenance, read_rows  # noqa: E402
from l1tagger.vit import (InterpretConfig, JetImageConfig, ViTConfig, ViTTrainConfig, evaluate_vit,  # noqa: E402
                          interpret_vit, jet_images, train_vit, vit_macs)
from l1tagger.training.metrics import auc  # noqa: E402
from l1tagger.vit.images import image_mass_proxy  # noqa: E402
from l1tagger.vit.model import count_parameters  # noqa: E402
from l1tagger.vit.tasks import TASKS, select_task  # noqa: E402


def stratified_split(labels: np.ndarray, seed: int, fractions=(0.6, 0.2, 0.2)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.cumsum([int(round(f * len(idx))) for f in fractions[:-1]])
        for p, chunk in zip(parts, np.split(idx, cuts)):
            p.extend(chunk.tolist())
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


def throughput(model, size: int, batch: int, seconds: float = 2.0) -> float:
    """Jets per second of the forward pass on random images of the model's size."""
    x = torch.rand(batch, size, size)
    model.eval()
    with torch.no_grad():
        model(x)  # warm-up
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += batch
    return n / (time.perf_counter() - t0)


def image_throughput(jets: JetSet, cfg: JetImageConfig) -> float:
    t0 = time.perf_counter()
    jet_images(jets, cfg)
    return len(jets) / (time.perf_counter() - t0)


def load_data(args) -> JetSet:
    if args.toy:
        from l1tagger.data.synthetic import toy_jets

        js = toy_jets(args.toy_jets, 32, 5, seed=args.seed)
        js.class_names = ["g", "q", "W", "Z", "t"]  # toy prongs 1..5 under the physics names: plumbing only
        js.meta["note"] = "TOY jets renamed g,q,W,Z,t: numbers are not physics"
        return js
    from l1tagger.data.io import load_jets

    path = args.data
    if args.generate:
        from l1tagger.data.generate import generate

        path = Path(args.work) / f"hls4ml5_{args.generate}_s{args.seed}.h5"
        if not path.exists():
            generate("hls4ml5", args.generate, path, seed=args.seed, max_particles=128, workers=args.workers)
    if not path:
        raise SystemExit("give --data PATH, --generate N or --toy")
    return load_jets(path)


def previous_rows(path: Path) -> list[dict]:
    """The rows of an earlier results file; rows from before each row had its config get the file-wide
    description of their run (data, class counts, image, model, command) as ``legacy_meta``."""
    rows = read_rows(path)
    if not rows:
        return rows
    top = json.loads(path.read_text())
    legacy = {k: top.get(k) for k in ("data", "class_counts", "image", "model", "machine", "command")}
    return [r if "config" in r or "legacy_meta" in r else {**r, "legacy_meta": legacy} for r in rows]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="jet file any l1tagger reader loads")
    p.add_argument("--generate", type=int, default=0, help="generate this many hls4ml5 jets per class first")
    p.add_argument("--workers", type=int, default=None, help="generator processes")
    p.add_argument("--toy", action="store_true", help="use toy jets (plumbing check, not physics)")
    p.add_argument("--toy-jets", type=int, default=1500)
    p.add_argument("--tasks", nargs="+", default=["qcd_vs_top", "w_vs_z"], help=f"from {sorted(TASKS)} or 'all'")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--size", type=int, default=32, help="image pixels per side")
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and the throughput runs")
    p.add_argument("--seed", type=int, default=1, help="generation, split, initialisation and training seed")
    p.add_argument("--init-checkpoint", default="", help="fine-tune from this local checkpoint (e.g. an 'all' best.pt)")
    p.add_argument("--finetune-blocks", type=int, default=-1, help="train only the last K blocks (+norm, head)")
    p.add_argument("--train-per-class", type=int, default=0, help="use at most N training jets per class (0 = all)")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "l1tagger-bench" / "vit"),
                   help="checkpoints and interpret outputs (default %(default)s)")
    p.add_argument("--results", "--out", default=str(ROOT / "benchmarks" / "results"),
                   help="where <name>.json / <name>.md go (default %(default)s)")
    p.add_argument("--name", default="vit", help="results file stem")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    jets = load_data(args)
    data_label = jets.meta.get("note") or str(jets.meta.get("source_file", jets.meta.get("source")))
    image = JetImageConfig(size=args.size, centre="centroid", rotate=True, flip=True)
    prov = provenance(["benchmarks/bench_vit.py", *(argv if argv is not None else sys.argv[1:])])
    rows = []
    for task in args.tasks:
        data = jets if task == "all" else select_task(jets, TASKS[task])
        tr, va, te = (data.subset(i) for i in stratified_split(data.labels, args.seed))
        if args.train_per_class:
            keep = np.concatenate([np.flatnonzero(tr.labels == c)[:args.train_per_class]
                                   for c in range(len(tr.class_names))])
            tr = tr.subset(np.sort(keep))
        model_cfg = ViTConfig(image=image, patch_size=args.patch, dim=args.dim, depth=args.depth, heads=args.heads,
                              mlp_dim=2 * args.dim)
        cfg = ViTTrainConfig(model=model_cfg, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, num_threads=args.threads, init_checkpoint=args.init_checkpoint,
                             finetune_blocks=args.finetune_blocks)
        t0 = time.perf_counter()
        work = Path(args.work) / (task if not args.init_checkpoint else f"{task}_finetune")
        res = train_vit(cfg, tr, va, work, resume=False)
        train_s = time.perf_counter() - t0
        test = evaluate_vit(res.model, te)
        interp = interpret_vit(res.model, te, work / "interpret",
                               InterpretConfig(tasks={task: TASKS[task]} if task in TASKS else {}))
        macs = vit_macs(res.model.config)
        proxy_auc = None
        if len(res.model.config.class_names) == 2:  # the simplest image-based reference: a mass proxy
            te_task = select_task(te, TASKS[task]) if task in TASKS else te
            proxy = image_mass_proxy(jet_images(te_task, image), image)
            proxy_auc = auc(proxy, te_task.labels == 1)
        row = {
            "task": task, "classes": res.model.config.class_names,
            "init_checkpoint": args.init_checkpoint or None, "finetune_blocks": args.finetune_blocks, "n_train": len(tr), "n_val": len(va),
            "n_test": len(te), "epochs": args.epochs, "best_epoch": res.best_epoch, "train_seconds": train_s,
            "accuracy": test["accuracy"], "auc_macro": test["auc_macro"], "auc_per_class": test["auc_per_class"],
            "rejection": test["rejection"], "image_mass_proxy_auc": proxy_auc, "macs_per_jet": macs["total"], "macs_breakdown": macs,
            "parameters": count_parameters(res.model),
            "cpu_jets_per_s_batch1": throughput(res.model, args.size, 1),
            "cpu_jets_per_s_batch256": throughput(res.model, args.size, 256),
            "image_jets_per_s": image_throughput(te, image),
            "attention_fraction": interp["mean_attention_fraction"],
            "area_fraction": interp["mean_area_fraction"],
            "pt_fraction": interp["mean_pt_fraction"],
            "attention_fraction_task": interp["tasks"].get(task),
            "interpret_dir": str(work / "interpret"),
        }
        config = {"task": task, "data": data_label, "class_counts": jets.class_counts(), "n_train": len(tr),
                  "n_val": len(va), "n_test": len(te), "image": dataclasses.asdict(image),
                  "model": dataclasses.asdict(model_cfg),
                  **{k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "threads", "seed", "init_checkpoint",
                                                   "finetune_blocks", "train_per_class")}}
        row.update(config=config, config_key=config_key(config), provenance=prov)
        rows.append(row)
        print(f"{task}: acc {row['accuracy']:.3f} auc {row['auc_macro']:.3f} "
              f"{row['cpu_jets_per_s_batch256']:.0f} jets/s", flush=True)

    results = Path(args.results)
    out = {
        "benchmark": "jet-image ViT baseline (issue 8)",
        "data": data_label,
        "class_counts": jets.class_counts(),
        "image": dataclasses.asdict(image),
        "model": {"patch": args.patch, "dim": args.dim, "depth": args.depth, "heads": args.heads,
                  "mlp_dim": 2 * args.dim},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": args.threads},
        "command": prov["command"],
        "note": "data, class counts, image, model, machine and command above are those of the last run; every row "
                "has its own config (with its jets) and provenance",
        "rows": merge_rows(previous_rows(results / f"{args.name}.json"), rows, str(results / f"{args.name}.json")),
    }
    atomic_write_json(results / f"{args.name}.json", out)
    md = ["# ViT baseline benchmark\n", f"Data: {out['data']} ({out['class_counts']}).  ",
          f"Image {args.size}x{args.size}, patch {args.patch}, dim {args.dim}, depth {args.depth}, "
          f"heads {args.heads}; torch threads {args.threads} on {platform.processor() or platform.machine()}.  ",
          f"Command: `{out['command']}` (the last run; every row's own config, command and commit are in "
          f"{args.name}.json; rows without a commit were written before it was recorded)\n",
          "| task | data | epochs | seed | train/test jets | accuracy | AUC (macro) | MACs/jet | params | "
          "CPU jets/s (b=1) | CPU jets/s (b=256) | images/s | mass-proxy AUC | commit |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        c = r.get("config") or r.get("legacy_meta") or {}
        md.append(f"| {r['task']} | {c.get('data', '—')} | {r['epochs']} | {c.get('seed', '—')} | "
                  f"{r['n_train']}/{r['n_test']} | {r['accuracy']:.3f} | {r['auc_macro']:.3f} | "
                  f"{r['macs_per_jet'] / 1e6:.2f} M | {r['parameters']} | {r['cpu_jets_per_s_batch1']:.0f} | "
                  f"{r['cpu_jets_per_s_batch256']:.0f} | {r['image_jets_per_s']:.0f} | "
                  f"{'-' if r['image_mass_proxy_auc'] is None else format(r['image_mass_proxy_auc'], '.3f')} | "
                  f"{((r.get('provenance') or {}).get('commit') or '—')[:10]} |")
    md.append("\nmass-proxy AUC: AUC of Σ_ij I_i I_j ΔR_ij² (≈ 2 m²/pT²) computed from the same test images, "
              "second class as signal: the simplest image-based reference.")
    md.append("\nMean attention fraction (rollout share inside circles around exclusive-kT subjets):\n")
    md.append("(region nK_rR: K exclusive-kT subjets, circles of radius R; the area fraction is what a uniform map "
              "scores, the pT fraction what the jet image itself scores)\n")
    md.append("| task | region | class | mean attention fraction | mean area fraction | mean pT fraction |")
    md.append("|---|---|---|---|---|---|")
    for r in out["rows"]:
        for region in ("n2_r0.2", "n3_r0.2"):
            for cls, val in r["attention_fraction"].get(region, {}).items():
                md.append(f"| {r['task']} | {region} | {cls} | {val:.3f} | {r['area_fraction'][region][cls]:.3f} | "
                          f"{r['pt_fraction'][region][cls]:.3f} |")
    atomic_write_text(results / f"{args.name}.md", "\n".join(md) + "\n")
    print(f"wrote {results / args.name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
