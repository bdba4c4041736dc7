"""``l1tagger run``: the whole chain on one config file, resumable."""

from __future__ import annotations

import argparse

HELP = "generate/read jets -> train -> QAT -> export -> hls4ml project -> C-sim proof -> report (resumable)"
DESCRIPTION = """\
Run the whole chain with one config file (YAML; without one, the small built-in default: N=16 particles, 2 heads,
5-class Pythia jets, the resource-aware hgq_budget recipe trained to the default budget). The file holds the keys
of l1tagger.pipeline.config.RunConfig, with the model, the float training and the QAT fine-tuning in sections
(every field of ModelConfig, TrainConfig, QATConfig):

  name: lin16
  n_per_class: 2000
  model: {attention: linformer, linformer_k: 4, linformer_init: log_blocks, pair_hidden: 8}
  train: {epochs: 30, schedule: onecycle}
  recipe: quantize/int8_floor.yaml
  qat: {epochs: 4, lr: 5.0e-4}
  clock_ns: null          # the budget's clock

`--print-config` shows every key with its value. Unknown keys fail naming the dotted path (model.pair_hiden).
The flat keys of older files (attention: ..., epochs: ..., qat_epochs: ...) are still read.

Every step saves its artifact under runs/<name>/ (the HLS project under hls_projects/<name>/); a rerun skips the
steps whose inputs are unchanged and resumes at the first one that changed (or whose artifacts no longer match
their recorded sha256). The whole config, the recipe and the budget are checked before the first step. The run
directory is locked while the run writes it: a second run of the same name fails at once (--wait-lock: waits).
Ctrl-C stops the run (exit status 130); rerunning the same command resumes at the interrupted step. A bit-exactness
check that fails (export cross-check, C simulation, RTL) stops the run with exit status 3.
"""


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("config", nargs="?", help="YAML run config (default: the built-in small default)")
    p.add_argument("--name", help="run name (overrides the config): runs/<name>/, hls_projects/<name>/")
    p.add_argument("--attention", choices=("full", "linformer", "topk"),
                   help="model.attention (overrides the config)")
    p.add_argument("--recipe", help="quantization recipe YAML (overrides the config)")
    p.add_argument("--n-per-class", type=int, help="generated jets per class (overrides the config)")
    p.add_argument("--epochs", type=int, help="train.epochs: float training epochs (overrides the config)")
    p.add_argument("--qat-epochs", type=int, help="qat.epochs: QAT epochs (overrides the config)")
    p.add_argument("--force", action="store_true",
                   help="rerun every step even if up to date, reusing no cached work (repairs damaged artifacts)")
    p.add_argument("--wait-lock", action="store_true",
                   help="if another process is writing this run (or generating its dataset), wait for it instead "
                        "of failing")
    p.add_argument("--print-config", action="store_true", help="print the resolved config (nested YAML) and exit")


def run(args) -> int:
    import sys
    import time

    from l1tagger.pipeline.config import dump_run_config, load_run_config
    from l1tagger.pipeline.run import run_pipeline

    cfg = load_run_config(args.config, name=args.name, attention=args.attention, recipe=args.recipe,
                          n_per_class=args.n_per_class, epochs=args.epochs, qat_epochs=args.qat_epochs)
    if args.print_config:
        print(dump_run_config(cfg), end="")
        return 0
    t0 = time.time()
    try:
        ctx = run_pipeline(cfg, force=args.force, wait_lock=args.wait_lock)
    except KeyboardInterrupt as exc:
        step = getattr(exc, "step", None)
        where = f"during step '{step}'" if step else "before the first step"
        print(f"l1tagger run: interrupted {where}; rerun the same command to resume"
              f"{' from it' if step else ''} (run directory {cfg.run_dir})", file=sys.stderr)
        return 130
    report = ctx.artifacts["report"]["report"]
    print(f"\nrun {cfg.name} finished in {time.time() - t0:.0f} s")
    print(open(report).read())
    print(f"report: {report}\nHLS project: {ctx.artifacts['convert']['project']}")
    return 0
