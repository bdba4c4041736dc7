"""Tiny example quantized taggers and inputs, for tests and for the converter/RTL teammates to get a real graph.

    python -m l1tagger.export.examples OUT_DIR [--recipe quantize/int8.yaml] [--n-jets 1000]

writes ``OUT_DIR/<attention>.onnx`` (full+U, linformer+U, topk+U, random-init tiny models, calibrated on toy jets)
plus ``OUT_DIR/<attention>_inputs.npz`` and ``<attention>_outputs.npz`` (the QONNX reference outputs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from l1tagger.models import ModelConfig, build_model
from l1tagger.qat.ops import QuantOps, calibrate, load_float_state_dict

ATTENTIONS = ("full", "linformer", "topk")


def tiny_config(attention: str, n_particles: int = 8, n_classes: int = 3) -> ModelConfig:
    return ModelConfig(n_particles=n_particles, features="l1", n_classes=n_classes, d_model=8, n_heads=2,
                       n_blocks=1, ffn_dim=8, embed_dim=8, head_dim=8, attention=attention, pair_bias=True,
                       pair_hidden=4, linformer_k=4, topk_k=3)


def toy_inputs(cfg: ModelConfig, n_jets: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Standardised, clipped model inputs from l1tagger's toy jets ({'x', 'mask', 'pair', 'labels'})."""
    from l1tagger.data.synthetic import toy_jets
    from l1tagger.features.inputs import build_inputs

    jets = toy_jets(n_jets=n_jets, max_particles=2 * cfg.n_particles, n_classes=cfg.n_classes, seed=seed)
    inp, _ = build_inputs(jets, cfg)
    out = {"x": inp.x, "mask": inp.mask, "labels": inp.labels}
    if inp.pair is not None:
        out["pair"] = inp.pair
    return out


def example_model(attention: str, recipe, inputs: dict | None = None, seed: int = 0):
    """(float model, calibrated quantized twin with the float weights, config)."""
    torch.manual_seed(seed)
    cfg = tiny_config(attention)
    fmodel = build_model(cfg)
    ops = QuantOps(recipe)
    qmodel = build_model(cfg, ops=ops)
    ops.check_overrides_used()
    load_float_state_dict(qmodel, fmodel.state_dict())
    inputs = inputs or toy_inputs(cfg, 256, seed)
    args = tuple(torch.as_tensor(inputs[k][:256]) for k in ("x", "mask", "pair") if k in inputs)
    calibrate(qmodel, [args] * 2)
    return fmodel.eval(), qmodel, cfg


def verify_example(attention: str, recipe, n_jets: int = 1000, seed: int = 0, path=None):
    """Export a tiny calibrated twin with batch n_jets and cross-check Brevitas / QONNX / integer emulation.

    Returns (CrossCheck, ModelWrapper).
    """
    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.export import export_qonnx_model

    cfg = tiny_config(attention)
    inputs = toy_inputs(cfg, n_jets, seed)
    _, qmodel, _ = example_model(attention, recipe, inputs, seed)
    feed = {k: inputs[k] for k in ("x", "mask", "pair") if k in inputs}
    example = tuple(torch.as_tensor(feed[k][:1]) for k in ("x", "mask", "pair") if k in feed)
    w = export_qonnx_model(qmodel, example, path)  # batch 1, as the firmware sees it
    return crosscheck(qmodel, w, feed), w


def main(argv=None) -> int:
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.export.reference import run_reference

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--recipe", default="quantize/int8.yaml")
    p.add_argument("--n-jets", type=int, default=16)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for att in ATTENTIONS:
        cfg = tiny_config(att)
        inputs = toy_inputs(cfg, max(a.n_jets, 256))
        _, qmodel, _ = example_model(att, a.recipe, inputs)
        feed = {k: inputs[k][: a.n_jets] for k in ("x", "mask", "pair")}
        w = export_qonnx_model(qmodel, tuple(torch.as_tensor(feed[k]) for k in ("x", "mask", "pair")),
                               out / f"{att}.onnx")
        ref = run_reference(w, feed)
        np.savez(out / f"{att}_inputs.npz", **feed)
        np.savez(out / f"{att}_outputs.npz", **ref)
        print(f"wrote {out / f'{att}.onnx'} ({len(w.graph.node)} nodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
