"""``l1tagger evaluate``: physics metrics of a trained checkpoint on any dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from l1tagger.cli import add_checkpoint_argument, add_data_argument, add_n_jets_argument

HELP = "metrics of a checkpoint on a dataset: accuracy, AUCs, background rejection, ROC PNG"
DESCRIPTION = """Evaluate a checkpoint written by 'l1tagger train' (--checkpoint) on the --data jets (any format the
readers load).

Writes OUT/metrics.json (accuracy, macro and per-class one-vs-rest AUC, rejection 1/eps_B at eps_S = 50 %, 99 %
and the ParT paper's working points, per signal class against the QCD/light classes) and OUT/roc.png.
The dataset must have the checkpoint's class names in the same order.

Example:
  l1tagger evaluate --checkpoint runs/full16/best.pt --data data/hls4ml5_test.h5 --out runs/full16/test
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_checkpoint_argument(p, "best.pt / last.pt from l1tagger train", required=True, positional="checkpoint_")
    add_data_argument(p, "jets to evaluate on", required=True, positional="dataset")
    p.add_argument("--out", required=True, help="output directory for metrics.json and roc.png")
    add_n_jets_argument(p, "evaluate on at most N jets: a random subset with every class in proportion")
    p.add_argument("--seed", type=int, default=0, help="seed of the --n-jets subset (default 0)")
    p.add_argument("--background", nargs="+", help="background class names (default: QCD/light classes by name)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device (default cpu)")


def run(args) -> int:
    from l1tagger.data.dataset import load_dataset
    from l1tagger.training import evaluate, load_tagger, write_metrics

    tagger = load_tagger(args.checkpoint, device=args.device)
    jets = load_dataset(args.data, args.n_jets, args.seed)
    metrics = evaluate(tagger, jets, with_curves=True, background=args.background)
    out = Path(args.out)
    metrics["checkpoint"] = str(args.checkpoint)
    metrics["dataset"] = str(args.data)
    write_metrics(metrics, out / "metrics.json", out / "roc.png", title=f"{Path(args.data).name}")
    print(f"{len(jets)} jets: accuracy {metrics['accuracy']:.4f}, macro AUC {metrics['auc_macro']:.4f}")
    for name, r in metrics["rejection"].items():
        if r:
            rej = (f"> {r['rej50_lower_bound']} (no background jet passed)" if r["rej50"] is None
                   else f"{r['rej50']:.1f}")
            print(f"  {name}: rejection at eps_S=50%: {rej}")
    print(f"wrote {out / 'metrics.json'} and {out / 'roc.png'}")
    return 0
