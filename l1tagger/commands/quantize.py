"""``l1tagger quantize``: QAT fine-tuning of a float checkpoint per recipe, accuracy change vs float, export."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from l1tagger.errors import ConfigError

HELP = "quantization-aware fine-tuning (Brevitas) of a float checkpoint per recipe; --export writes the QONNX graph"
DESCRIPTION = """Fine-tune the quantized twin of a float checkpoint with one or more recipes (quantize/*.yaml) and
report the accuracy / AUC / rejection change against the float model on the validation jets.

For each recipe R the results go to OUT/R/ (OUT defaults to <checkpoint dir>/qat):
  qat.pt          quantized weights + recipe + model config + feature scaling (torch.load weights_only)
  metrics.json    float vs post-training-quantized vs QAT metrics, accuracy change, training history
  recipe.yaml     copy of the recipe used
With --export also:
  model.onnx      the cleaned QONNX graph (batch 1; FirmwareSoftmax custom nodes; power-of-two Quant nodes)
  manifest.json   sha256 of checkpoint/recipe/onnx, graph inputs and their fixed-point grids, softmax specs with
                  table digests, and the bit-exactness cross-check (Brevitas = QONNX reference = integer
                  emulation) on up to --check-jets validation jets.

Examples:
  l1tagger quantize --checkpoint runs/full16/best.pt --data data/hls4ml5.h5 --recipe quantize/int8.yaml --export
  l1tagger quantize --checkpoint /tmp/t/best.pt --data toy:600 --recipe quantize/int8.yaml \\
                    --recipe quantize/int6.yaml --epochs 1
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--checkpoint", required=True, help="float checkpoint from `l1tagger train` (best.pt)")
    p.add_argument("--recipe", required=True, action="append",
                   help="recipe YAML (repeat for several); e.g. quantize/int8.yaml")
    p.add_argument("--data", required=True, help="jets for fine-tuning: a file l1tagger's readers load, or toy:N[:C]")
    p.add_argument("--val", help="validation jets (default: 20%% of --data, split with --seed)")
    p.add_argument("--max-jets", type=int, help="read at most this many jets from each file")
    p.add_argument("--out", help="output directory (default: <checkpoint dir>/qat)")
    p.add_argument("--epochs", type=int, default=3, help="QAT epochs (0 = post-training quantization only)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--export", action="store_true", help="write model.onnx + manifest.json (QONNX export)")
    p.add_argument("--check-jets", type=int, default=1000,
                   help="validation jets for the bit-exactness cross-check at export (default 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_run(result, out_dir: Path, val_jets, check_jets: int) -> dict:
    """Export the QAT model, cross-check it on validation jets, write model.onnx and manifest.json."""
    import numpy as np
    import torch

    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.qat.softmax import SoftmaxSpec
    from l1tagger.training import build_inputs
    from l1tagger.utils.atomic import atomic_write_json

    model = result.model.eval()
    inp, _ = build_inputs(val_jets.subset(np.arange(min(len(val_jets), check_jets))), model.train_config.model,
                          model.feature_scaler)
    feed = inp.graph_feed()
    example = tuple(torch.as_tensor(v[:1]) for v in feed.values())
    onnx_path = out_dir / "model.onnx"
    wrapper = export_qonnx_model(model, example, onnx_path)
    check = crosscheck(model, wrapper, feed)
    rq = result.recipe
    manifest = {
        "format": "l1tagger-export-1",
        "recipe": rq.name,
        "files": {name: {"sha256": _sha256(out_dir / name)} for name in ("model.onnx", "qat.pt", "recipe.yaml")},
        "source_checkpoint": str(getattr(result, "source_checkpoint", "")),
        "source_checkpoint_sha256": _sha256(Path(result.source_checkpoint))
        if getattr(result, "source_checkpoint", None) else None,
        "inputs": {
            vi.name: {"shape": [d.dim_value for d in vi.type.tensor_type.shape.dim]}
            for vi in wrapper.graph.input if wrapper.get_initializer(vi.name) is None
        },
        "input_grid": {"bits": rq.kinds["input"].bits, "frac": rq.kinds["input"].frac, "signed": True,
                       "note": "x and pair are standardised with the checkpoint's feature scaler, then quantized "
                               "to this grid by the graph's first Quant nodes"},
        "outputs": [o.name for o in wrapper.graph.output],
        "class_names": list(model.class_names),
        "softmax": {name: {"spec": d, "table_digest": SoftmaxSpec.from_dict(d).table_digest()}
                    for name, d in model.softmax_specs.items()},
        "crosscheck": check.to_dict(),
        "ops": sorted({n.op_type for n in wrapper.graph.node}),
        "n_nodes": len(wrapper.graph.node),
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


def run(args) -> int:
    import torch

    from l1tagger.qat.finetune import QATConfig, qat_checkpoint, qat_finetune
    from l1tagger.qat.recipe import load_recipe
    from l1tagger.training.data import load_dataset, split
    from l1tagger.utils.atomic import atomic_path, atomic_torch_save, atomic_write_json

    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise ConfigError(f"checkpoint not found: {ckpt}")
    recipes = [load_recipe(r) for r in args.recipe]  # validate all before any work
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise ConfigError(f"recipes with the same name given twice: {names}")
    cfg = QATConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed).validate()
    jets = load_dataset(args.data, args.max_jets)
    if args.val:
        tr, va = jets, load_dataset(args.val, args.max_jets)
    else:
        tr, va = split(jets, (0.8, 0.2), args.seed)
    out_root = Path(args.out) if args.out else ckpt.parent / "qat"
    summary = {}
    for recipe in recipes:
        out = out_root / recipe.name
        out.mkdir(parents=True, exist_ok=True)
        res = qat_finetune(ckpt, recipe, tr, va, cfg, progress=not args.no_progress)
        res.source_checkpoint = ckpt
        with atomic_path(out / "recipe.yaml") as tmp:
            shutil.copyfile(recipe.source, tmp)  # the file read (a preset name resolves to one)
        atomic_torch_save(out / "qat.pt", qat_checkpoint(res, cfg))
        s = res.summary()
        s["checkpoint"] = str(ckpt)
        atomic_write_json(out / "metrics.json", s)
        line = (f"{recipe.name}: float acc {s['float']['accuracy']:.4f} -> PTQ {s['ptq']['accuracy']:.4f} -> "
                f"QAT {s['qat']['accuracy']:.4f} (change {s['accuracy_change']:+.4f}); "
                f"AUC {s['float']['auc_macro']:.4f} -> {s['qat']['auc_macro']:.4f}")
        if args.export:
            man = export_run(res, out, va, args.check_jets)
            cc = man["crosscheck"]
            line += (f"; exported {out / 'model.onnx'} ({man['n_nodes']} nodes), bit-exact on {cc['n_jets']} jets: "
                     f"{cc['bit_exact']}")
            if not cc["bit_exact"]:
                print(line)
                print(f"  first mismatch: {cc['first_mismatch']}")
                return 1
        print(line)
        summary[recipe.name] = {k: s[k] for k in ("float", "ptq", "qat", "accuracy_change", "auc_change")}
        torch.set_num_threads(1)
    atomic_write_json(out_root / "summary.json", summary)
    return 0
