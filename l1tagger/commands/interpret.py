"""``l1tagger interpret``: attention analysis figures (PNG + JSON) of a trained checkpoint."""

from __future__ import annotations

import argparse

from l1tagger.cli import add_checkpoint_argument, add_data_argument, add_n_jets_argument

HELP = "attention maps, binarity, q.k vs U row spreads, lepton and subjet attention of a checkpoint (PNG + JSON)"
DESCRIPTION = """Record the attention of a trained L1 tagger (--checkpoint) on the --data jets and write, per attention
layer (blocks.i and the class-attention pooling 'cls'):

  maps/<layer>_<class>_jet<j>_h<h>.png   attention maps on the eta-phi plane (marker = particle type,
                                         transparency = pT, red lines = attention weights above 0.05)
  <layer>_top1.png, <layer>_entropy.png  how binary the attention is (largest weight per row per class, row
                                         entropy / ln(real keys): 1 = uniform, 0 = one-hot; fraction of rows
                                         with top-1 > 0.9 in the JSON)
  <layer>_qk_vs_u_row_spread.png         spread of q.k and of U within each row over its real keys (softmax
                                         ignores a per-row constant), their ratio and centred correlation
  <layer>_lepton.png                     attention received by the hardest electron/muon of the jet vs the
                                         uniform expectation (meaningful for models trained on the 'kin'
                                         features: no type input; not truth-matched to the W decay)
  <layer>_subjets.png                    attention mass per exclusive-kT subjet
  summary.json                           all numbers

The --n-jets jets are a random subset of --data with every class in proportion (drawn with --seed), not its
first rows (generated files are stored class by class). Every PNG has a JSON of the same numbers beside it.
For Linformer the per-particle weights are w @ F (the projected attention mapped back to particles).
Definitions of every number: docs/interpretation.md.

Example:
  l1tagger interpret --checkpoint runs/full16/best.pt --data data/jetclass10_test.h5 --out runs/full16/interpret \\
                     --n-jets 1000
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_checkpoint_argument(p, "best.pt from l1tagger train (an L1 tagger, not the ParT reference)", required=True,
                            positional="checkpoint_")
    add_data_argument(p, "jets", required=True, positional="dataset")
    p.add_argument("--out", required=True, help="output directory for the figures")
    p.add_argument("--from-project", metavar="HLS_PROJECT",
                   help="take the attention weights from the C-simulation trace of this HLS project (the firmware; "
                        "--checkpoint gives the model config and feature scaling) instead of the PyTorch model")
    p.add_argument("--model", choices=("tagger", "vit"), default="tagger",
                   help="tagger (default): attention maps/statistics of a particle tagger; vit: attention rollout "
                        "and attention fraction of a ViT checkpoint from `l1tagger train --model vit`")
    add_n_jets_argument(p, "jets to analyse: a random subset with every class in proportion", default=500,
                        old_spellings=())
    p.add_argument("--seed", type=int, default=0, help="seed of the --n-jets subset (default 0)")
    p.add_argument("--map-jets", type=int, default=2, help="attention maps drawn per class (default 2)")
    p.add_argument("--subjets", type=int, default=3, help="exclusive kT subjets for the attention mass (default 3)")


def run(args) -> int:
    from l1tagger.errors import ConfigError, DataError

    if getattr(args, "model", "tagger") == "vit":
        from l1tagger.data.dataset import load_dataset
        from l1tagger.vit.interpret import InterpretConfig, interpret_vit
        from l1tagger.vit.train import load_vit

        jets = load_dataset(args.data, args.n_jets, args.seed)
        summary = interpret_vit(load_vit(args.checkpoint), jets, args.out,
                                InterpretConfig(n_subjets=(args.subjets,)) if args.subjets else None)
        print(f"wrote rollout maps and attention fractions (PNG + JSON, summary.json) to {args.out}")
        return 0 if summary is not None else 1
    from l1tagger.data.dataset import load_dataset
    from l1tagger.interpret.run import interpret
    from l1tagger.models.tagger import L1Tagger
    from l1tagger.training import load_tagger

    if args.n_jets <= 0 or args.map_jets < 0 or args.subjets <= 0:
        raise ConfigError("--n-jets and --subjets must be positive, --map-jets >= 0")
    tagger = load_tagger(args.checkpoint)
    if not isinstance(tagger.model, L1Tagger):
        raise ConfigError(f"{args.checkpoint} holds a ParT reference model; interpret analyses L1 taggers")
    jets = load_dataset(args.data, args.n_jets, args.seed)
    if list(jets.class_names) != tagger.class_names:
        raise DataError(f"dataset classes {jets.class_names} differ from the model's {tagger.class_names}")
    layers, source = None, "pytorch"
    if args.from_project:
        from l1tagger.interpret.run import firmware_layers

        layers = firmware_layers(tagger, jets, args.from_project)
        source = f"firmware C simulation ({args.from_project})"
    summary = interpret(tagger, jets, args.out, map_jets=args.map_jets, n_subjets=args.subjets, layers=layers,
                        source=source)
    for layer, s in summary["layers"].items():
        line = f"{layer}: frac rows top-1 > 0.9 = {s['binarity']['frac_top1_above']:.3f}"
        if "qk_vs_u" in s:
            line += (f", larger within-row logit spread {s['qk_vs_u']['larger_row_spread']} "
                     f"(U in {s['qk_vs_u']['frac_rows_u_spread_exceeds_qk']:.2f} of rows)")
        print(line)
    print(f"wrote {len(summary['figures'])} figures (PNG + JSON) and summary.json to {args.out}")
    return 0
