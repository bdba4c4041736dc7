"""``l1tagger quantize``: QAT fine-tuning of a float checkpoint per recipe, accuracy change vs float, export."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from l1tagger.cli import add_data_argument, add_n_jets_argument
from l1tagger.errors import ConfigError

HELP = "quantization-aware fine-tuning (Brevitas) of a float checkpoint per recipe; --export writes the QONNX graph"
DESCRIPTION = """Fine-tune the quantized twin of a float checkpoint with one or more recipes (quantize/*.yaml) and
report the accuracy / AUC / rejection change against the float model on the validation jets.

For each recipe R the results go to OUT/R/ (OUT defaults to <checkpoint dir>/qat):
  qat.pt          quantized weights + recipe + model config + feature scaling (torch.load weights_only)
  metrics.json    float vs post-training-quantized vs QAT metrics, accuracy change, training history
  recipe.yaml     copy of the recipe used
  manifest.json   provenance (source checkpoint + sha256, recipe + sha256, QAT settings) and sha256 of every file
With --export also:
  model.onnx      the cleaned QONNX graph (batch 1; FirmwareSoftmax custom nodes; power-of-two Quant nodes)
  manifest.json   + graph inputs and their fixed-point grids, softmax specs with table digests, and the
                  bit-exactness cross-check (Brevitas = QONNX reference = integer emulation) on up to --check-jets
                  validation jets.

The same routine writes the pipeline's qat step (l1tagger.qat.artifact). Exit code 3 when the exported graph is
not bit-exact with the Brevitas model (its manifest.json names the first differing tensor).

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
    add_data_argument(p, "jets for fine-tuning", required=True)
    p.add_argument("--val", help="validation jets (default: 20%% of --data, split with --seed)")
    add_n_jets_argument(p, "read at most N jets from each file, a class-balanced sample drawn with --seed")
    p.add_argument("--out", help="output directory (default: <checkpoint dir>/qat)")
    p.add_argument("--epochs", type=int, default=3, help="QAT epochs (0 = post-training quantization only)")
    p.add_argument("--target-ebops", type=float, default=None,
                   help="HGQ recipes: the EBOPs target (default: the recipe's, or derived from --budget)")
    p.add_argument("--budget", default=None,
                   help="HGQ recipes with `target_ebops: budget`: the budget the target follows from (default: the "
                        "default budget of `l1tagger run`)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--export", action="store_true", help="write model.onnx + manifest.json (QONNX export)")
    p.add_argument("--check-jets", type=int, default=1000,
                   help="validation jets for the bit-exactness cross-check at export (default 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    import torch

    from l1tagger.qat.artifact import save_qat_artifacts
    from l1tagger.qat.finetune import QATConfig, qat_finetune
    from l1tagger.qat.recipe import load_recipe
    from l1tagger.data.dataset import load_dataset, split
    from l1tagger.utils.atomic import atomic_write_json

    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        raise ConfigError(f"--checkpoint {ckpt}: no such file")
    if args.check_jets < 1:
        raise ConfigError(f"--check-jets must be >= 1, got {args.check_jets}")
    from l1tagger.qat.target import resolve_target
    from l1tagger.report.budgets import DEFAULT_BUDGET

    recipes = [load_recipe(r) for r in args.recipe]  # validate all before any work
    targets = [resolve_target(r, args.target_ebops, args.budget or DEFAULT_BUDGET) for r in args.recipe]
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise ConfigError(f"recipes with the same name given twice: {names}")
    cfg = QATConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed).validate()
    jets = load_dataset(args.data, args.n_jets, args.seed)
    if args.val:
        tr, va = jets, load_dataset(args.val, args.n_jets, args.seed)
    else:
        tr, va = split(jets, (0.8, 0.2), args.seed)
    out_root = Path(args.out) if args.out else ckpt.parent / "qat"
    summary = {}
    for recipe, target in zip(recipes, targets):
        out = out_root / recipe.name
        if target is not None:  # the resolved target travels in the recipe the QAT artifact records
            recipe = dataclasses.replace(recipe, hgq=dataclasses.replace(recipe.hgq,
                                                                         target_ebops=target["target_ebops"]))
            print(f"{recipe.name}: HGQ target {target['target_ebops']:,.0f} EBOPs from {target['source']} "
                  f"({target['detail']})")
        res = qat_finetune(ckpt, recipe, tr, va, cfg, progress=not args.no_progress)
        # a cross-check that is not bit-exact raises NotBitExactError (exit code 3) after writing the evidence
        man = save_qat_artifacts(res, out, cfg, va, export=args.export, check_jets=args.check_jets)
        s = res.summary()
        line = (f"{recipe.name}: float acc {s['float']['accuracy']:.4f} -> PTQ {s['ptq']['accuracy']:.4f} -> "
                f"QAT {s['qat']['accuracy']:.4f} (change {s['accuracy_change']:+.4f}); "
                f"AUC {s['float']['auc_macro']:.4f} -> {s['qat']['auc_macro']:.4f}")
        if args.export:
            cc = man["crosscheck"]
            line += f"; exported {out / 'model.onnx'} ({man['n_nodes']} nodes), bit-exact on {cc['n_jets']} jets"
        print(line)
        summary[recipe.name] = {k: s[k] for k in ("float", "ptq", "qat", "accuracy_change", "auc_change")}
        torch.set_num_threads(1)
    atomic_write_json(out_root / "summary.json", summary)
    return 0
