"""``l1tagger train``: train a float tagger (L1 tagger or the ParT reference)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from l1tagger.cli import add_data_argument, add_n_jets_argument
from l1tagger.errors import ConfigError
from l1tagger.utils.yamlio import load_yaml

HELP = "train a float tagger (full+U / linformer / topk, or the ParT reference) with checkpoints and resume"
DESCRIPTION = """Train a float tagger on a jet dataset.

The model and training settings come from a YAML file (--config; keys of TrainConfig, with the model's keys
under 'model:') and/or the options below (options win). Without --val, the --data jets are split 80/20 into train
and validation with --seed. --n-jets keeps a class-balanced random subset (drawn with --seed) of each file, not
its first rows. Runs on CPU by default and on CUDA when available (--device auto).

--model vit trains the jet-image ViT baseline: its settings are ViTTrainConfig keys in --config; of the options
below it takes --epochs, --batch-size, --lr, --weight-decay, --seed and --num-threads (they win over --config) and
refuses the others (they describe the particle tagger).

Writes to --out: last.pt (every epoch; --resume continues from it), best.pt and best.json (config, feature
scaling, validation metrics), history.json, metrics.json and roc.png.

Example:
  l1tagger train --data data/hls4ml5.h5 --out runs/full16 --attention full --n-particles 16 --epochs 20
  l1tagger train --data toy:600 --out /tmp/t --epochs 2          # toy jets, smoke test
"""

# option name -> (ModelConfig field, type)
_MODEL_OPTS = {
    "n_particles": int, "features": str, "d_model": int, "n_heads": int, "n_blocks": int, "ffn_dim": int,
    "embed_dim": int, "head_dim": int, "attention": str, "pair_hidden": int, "linformer_k": int,
    "linformer_init": str, "topk_k": int, "ordering": str,
}
_TRAIN_OPTS = {"epochs": int, "batch_size": int, "lr": float, "weight_decay": float, "schedule": str, "seed": int,
               "device": str, "model_kind": str, "part_preset": str, "num_threads": int}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_data_argument(p, "training jets", required=True, positional="dataset")
    p.add_argument("--out", required=True, help="output directory for checkpoints and metrics")
    p.add_argument("--model", choices=("tagger", "vit"), default="tagger",
                   help="tagger: particle transformer (default); vit: jet-image Vision Transformer baseline "
                        "(--config then holds ViTTrainConfig keys, model keys under 'model:')")
    p.add_argument("--val", help="validation jets (default: 20%% of --data)")
    p.add_argument("--config", help="YAML with TrainConfig keys (model keys under 'model:')")
    add_n_jets_argument(p, "use at most N jets of each file: a random subset with every class in proportion "
                           "(drawn with --seed)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("model (ModelConfig)")
    from l1tagger.models.config import ATTENTIONS, LINFORMER_INITS, ORDERINGS
    from l1tagger.training.config import MODEL_KINDS, SCHEDULES

    choices = {"attention": ATTENTIONS, "ordering": ORDERINGS, "linformer_init": LINFORMER_INITS,
               "schedule": SCHEDULES, "model_kind": MODEL_KINDS, "device": ("auto", "cpu", "cuda"),
               "features": ("full", "kin", "l1"), "part_preset": ("", "part", "part_lite")}
    for name, typ in _MODEL_OPTS.items():
        g.add_argument("--" + name.replace("_", "-"), type=typ, dest=name, choices=choices.get(name))
    g.add_argument("--pair-bias", dest="pair_bias", action=argparse.BooleanOptionalAction, default=None,
                   help="interaction bias U on/off")
    g.add_argument("--linformer-fixed", dest="linformer_fixed", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the Linformer projections at their initial value")
    t = p.add_argument_group("training (TrainConfig)")
    for name, typ in _TRAIN_OPTS.items():
        t.add_argument("--" + name.replace("_", "-"), type=typ, dest=name, choices=choices.get(name))


def train_config_from_args(args) -> dict:
    """TrainConfig as a dict: YAML file, then command-line overrides."""
    data: dict = {}
    if args.config:
        path = Path(args.config)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        data = load_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
    model = dict(data.pop("model", None) or {})
    for name in list(_MODEL_OPTS) + ["pair_bias", "linformer_fixed"]:
        if getattr(args, name, None) is not None:
            model[name] = getattr(args, name)
    for name in _TRAIN_OPTS:
        if getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    data["model"] = model
    return data


#: the TrainConfig options that are ViTTrainConfig fields too: --model vit takes them
_VIT_OPTS = ("epochs", "batch_size", "lr", "weight_decay", "seed", "num_threads")


def run_vit(args) -> int:
    from l1tagger.data.dataset import load_dataset, split
    from l1tagger.vit.train import ViTTrainConfig, train_vit

    ignored = [name for name in list(_MODEL_OPTS) + ["pair_bias", "linformer_fixed"] + list(_TRAIN_OPTS)
               if name not in _VIT_OPTS and getattr(args, name, None) is not None]
    if ignored:
        flags = ", ".join("--" + n.replace("_", "-") for n in ignored)
        raise ConfigError(f"--model vit does not use {flags} (options of the particle tagger); set the ViT's model "
                          f"in --config (ViTTrainConfig keys, model keys under 'model:')")
    data = {}
    if args.config:
        data = load_yaml(args.config) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{args.config}: top level must be a mapping of ViTTrainConfig keys")
    data.update({name: getattr(args, name) for name in _VIT_OPTS if getattr(args, name, None) is not None})
    cfg = ViTTrainConfig.from_dict(data)
    jets = load_dataset(args.data, args.n_jets, cfg.seed)
    if args.val:
        tr, va = jets, load_dataset(args.val, args.n_jets, cfg.seed)
    else:
        tr, va = split(jets, (0.8, 0.2), cfg.seed)
    print(f"training the ViT baseline on {len(tr)} jets, validating on {len(va)}")
    res = train_vit(cfg, tr, va, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"best checkpoint: {Path(args.out) / 'best.pt'}")
    return 0 if res is not None else 1


def run(args) -> int:
    if getattr(args, "model", "tagger") == "vit":
        return run_vit(args)
    from l1tagger.data.dataset import load_dataset, split
    from l1tagger.training import train
    from l1tagger.training.config import TrainConfig

    data = train_config_from_args(args)
    jets = load_dataset(args.data)
    data["model"].setdefault("n_classes", len(jets.class_names))
    tc = TrainConfig.from_dict(data)
    jets = jets.sample(args.n_jets, tc.seed)
    if args.val:
        tr, va = jets, load_dataset(args.val, args.n_jets, tc.seed)
    else:
        tr, va = split(jets, (0.8, 0.2), tc.seed)
    print(f"training {tc.model_kind}/{tc.model.attention} on {len(tr)} jets, validating on {len(va)} "
          f"({', '.join(jets.class_names)})")
    best = train(tc, tr, va, args.out, resume=args.resume, progress=not args.no_progress)
    info = json.loads((Path(args.out) / "best.json").read_text())
    m = info["metrics"]
    print(f"best checkpoint: {best} (epoch {info['epoch']}): accuracy {m['accuracy']:.4f}, macro AUC "
          f"{m['auc_macro']:.4f}")
    return 0
