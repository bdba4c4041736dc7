"""Attention analysis on plain arrays, and the interpret command end to end."""

import json

import numpy as np
import pytest
import torch

from l1tagger.errors import DataError
from l1tagger.interpret import attention_received, binarity, lepton_attention, logit_spread, subjet_attention

torch.set_num_threads(1)


def test_binarity_extremes():
    n, H, N = 3, 2, 5
    mask = np.ones((n, N))
    mask[0, 3:] = 0
    onehot = np.zeros((n, H, N, N))
    onehot[..., 0] = 1.0
    b = binarity(onehot, mask)
    assert b["frac_top1_above"] == 1.0 and b["entropy_norm_mean"] == pytest.approx(0.0, abs=1e-9)
    assert b["n_rows"] == H * (3 + 5 + 5)  # padded query rows ignored
    uni = np.broadcast_to((mask / mask.sum(1, keepdims=True))[:, None, None, :], (n, H, N, N))  # over real keys
    b = binarity(uni, mask)
    assert b["frac_top1_above"] == 0.0
    assert b["top1_mean"] == pytest.approx((H * 3 * (1 / 3) + 2 * H * 5 * (1 / 5)) / b["n_rows"])
    assert b["entropy_norm_mean"] == pytest.approx(1.0)
    assert sum(b["top1_hist"]["counts"]) == b["n_rows"] == sum(b["entropy_norm_hist"]["counts"])
    with pytest.raises(DataError):
        binarity(np.zeros((2, 5, 5)), mask)


def test_logit_spread_dominance_and_masking():
    rng = np.random.default_rng(0)
    mask = np.ones((4, 6))
    mask[:, 4:] = 0
    qk = rng.normal(size=(4, 2, 6, 6)) * 10
    u = rng.normal(size=(4, 2, 6, 6)) * 0.1
    qk[:, :, :, 4:] = 0.0  # padded keys would flip the verdict if they were counted
    u[:, :, :, 4:] = rng.normal(size=(4, 2, 6, 2)) * 1e3
    r = logit_spread(qk, u, mask)
    assert r["larger_row_spread"] == "qk" and r["frac_rows_u_spread_exceeds_qk"] < 0.05
    assert r["n_rows"] == 4 * 2 * 4  # real (jet, head, query row)
    assert logit_spread(u, qk, mask)["larger_row_spread"] == "u"


def test_lepton_and_subjet_attention():
    n, N = 2, 4
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    w = np.zeros((n, 1, N, N))
    w[..., 2] = 1.0  # everyone attends to particle 2
    w[1, :, :, 3] = 0.0
    lep = np.zeros((n, N), bool)
    lep[:, 2] = True
    recv = attention_received(w, mask)
    np.testing.assert_allclose(recv[0], [0, 0, 1, 0])
    out = lepton_attention(w, mask, lep, np.array([0, 1]), ["a", "b"])
    assert out["per_class"]["a"]["attention_to_hardest_lepton"] == pytest.approx(1.0)
    assert out["per_class"]["a"]["enhancement"] == pytest.approx(4.0)
    assert out["per_class"]["b"]["enhancement"] == pytest.approx(3.0)
    sj = np.array([[0, 0, 1, 1], [1, 1, 0, -1]])
    s = subjet_attention(w, mask, sj, np.array([0, 1]), ["a", "b"], 2)
    assert s["per_class"]["a"]["attention_mass"] == pytest.approx([0.0, 1.0])
    assert s["per_class"]["b"]["attention_mass"] == pytest.approx([1.0, 0.0])


def test_topk_model_is_binary_at_k1(toy_jets, tmp_path):
    """A top-1 model's recorded particle attention is exactly one-hot: the analysis must say so."""
    from l1tagger.interpret.run import record
    from l1tagger.models import ModelConfig
    from l1tagger.training import TrainConfig, load_tagger, train

    tc = TrainConfig(model=ModelConfig(n_particles=12, n_classes=3, d_model=8, n_heads=2, attention="topk", topk_k=1),
                     epochs=1, batch_size=64)
    best = train(tc, toy_jets.subset(np.arange(128)), toy_jets.subset(np.arange(128, 192)), tmp_path / "m",
                 progress=False)
    tagger = load_tagger(best)
    jets = toy_jets.subset(np.arange(192, 230))
    layers = record(tagger, jets)
    mask = tagger.inputs(jets).mask
    b = binarity(layers[0]["weights"], mask)
    assert b["frac_top1_above"] == 1.0


def test_interpret_command_writes_png_json_pairs(tmp_path):
    from l1tagger.cli import main

    run = tmp_path / "run"
    assert main(["train", "toy:200", "--out", str(run), "--epochs", "1", "--n-particles", "12", "--d-model", "8",
                 "--attention", "linformer", "--linformer-k", "4", "--features", "kin", "--no-progress"]) == 0
    out = tmp_path / "interp"
    assert main(["interpret", str(run / "best.pt"), "toy:40", "--out", str(out), "--map-jets", "1"]) == 0
    pngs = sorted(out.rglob("*.png"))
    assert pngs and all(p.with_suffix(".json").exists() for p in pngs)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["layers"]) == {"blocks.0", "cls"}
    assert "qk_vs_u" in summary["layers"]["blocks.0"]
    assert "u_row_spread_mean" in summary["layers"]["blocks.0"]["qk_vs_u"]
    assert "entropy_norm_mean" in summary["layers"]["cls"]["binarity"]
    assert (out / "blocks.0_qk_vs_u_row_spread.png").exists() and list((out / "maps").glob("*.png"))
    assert main(["interpret", str(run / "best.pt"), "toy:40:4", "--out", str(out)]) == 1  # class mismatch
