"""Training loop, checkpoints/resume, inputs, metrics (numpy ROC/AUC) and the train/evaluate commands."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from l1tagger.errors import ConfigError, DataError, L1TaggerError
from l1tagger.features import FeatureScaler, build_inputs
from l1tagger.models import ModelConfig
from l1tagger.training import (LoadedTagger, TrainConfig, compute_metrics, evaluate, load_tagger,
                               metrics_from_logits, train)
from l1tagger.training.metrics import auc, background_classes, rejection, roc_curve

torch.set_num_threads(1)


# ------------------------------------------------------------------ metrics
def brute_auc(s, y):
    pos, neg = s[y], s[~y]
    d = pos[:, None] - neg[None, :]
    return ((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=300), 1)  # many ties
    y = rng.random(300) < 0.3 + 0.4 * (s > 0)
    assert auc(s, y) == pytest.approx(brute_auc(s, y), abs=1e-12)
    assert auc(np.ones(10), np.arange(10) < 5) == 0.5
    assert auc(np.arange(10.0), np.arange(10) >= 5) == 1.0


def test_roc_and_rejection():
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    y = np.array([1, 1, 0, 1, 0, 1, 0, 0], bool)
    fpr, tpr, thr = roc_curve(s, y)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # eps_S = 50 %: the two highest scores (both signal) -> no background passes -> lower bound
    r = rejection(s, y, 0.5)
    assert r["rejection"] is None and r["lower_bound"] == 4
    # eps_S = 75 %: interpolated between (0.25, 0.5) and (0.25, 0.75) -> eps_B = 0.25
    assert rejection(s, y, 0.75)["rejection"] == pytest.approx(4.0)
    with pytest.raises(DataError):
        roc_curve(s, np.ones(8, bool))


def test_compute_metrics_physics_conventions():
    rng = np.random.default_rng(1)
    names = ["QCD", "Hbb", "Hqql", "Tbl"]
    labels = rng.integers(0, 4, 2000)
    logits = rng.normal(size=(2000, 4)) + 2.0 * np.eye(4)[labels]
    m = metrics_from_logits(logits, labels, names)
    assert m["background_classes"] == ["QCD"]
    assert set(m["rejection"]) == {"Hbb", "Hqql", "Tbl"}
    assert m["rejection"]["Hqql"]["paper_working_point"] == 0.99
    assert "rej99p5" in m["rejection"]["Tbl"] and m["rejection"]["Hbb"]["paper_working_point"] == 0.5
    assert m["accuracy"] == pytest.approx((logits.argmax(1) == labels).mean())
    assert m["auc_macro"] == pytest.approx(np.mean(list(m["auc_per_class"].values())))
    assert m["rejection"]["Hbb"]["rej50"] > m["rejection"]["Hbb"]["rej99"] > 1
    assert background_classes(["g", "q", "W", "Z", "t"]) == [0, 1]
    with pytest.raises(DataError, match="shape"):
        compute_metrics(np.zeros((5, 3)), np.zeros(5, int), names)
    with pytest.raises(DataError, match="NaN"):
        compute_metrics(np.full((5, 4), np.nan), np.zeros(5, int), names)


# ------------------------------------------------------------------ inputs
def test_build_inputs_standardised_and_masked(toy_jets):
    cfg = ModelConfig(n_particles=16, n_classes=3, features="kin")
    inp, scaler = build_inputs(toy_jets, cfg)
    assert inp.x.shape == (256, 16, 7) and inp.pair.shape == (256, 16, 16, 4)
    real = inp.mask.astype(bool)
    assert np.abs(inp.x).max() <= 8 and np.abs(inp.pair).max() <= 8
    assert (inp.x[~real] == 0).all()
    assert abs(inp.x[real].mean(0)).max() < 0.2  # standardised (with clipping)
    again = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(build_inputs(toy_jets, cfg, again)[0].x, inp.x)
    nopair, _ = build_inputs(toy_jets, ModelConfig(n_particles=16, n_classes=3, pair_bias=False))
    assert nopair.pair is None


# ------------------------------------------------------------------ training
def tiny(**kw):
    mc = ModelConfig(n_particles=12, n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8, head_dim=8,
                     pair_hidden=4, **kw.pop("model", {}))
    return TrainConfig(model=mc, epochs=kw.pop("epochs", 2), batch_size=64, lr=5e-3, **kw)


def test_train_checkpoints_and_exact_resume(toy_jets, tmp_path):
    tr, va = toy_jets.subset(np.arange(192)), toy_jets.subset(np.arange(192, 256))
    tc = tiny(epochs=3)
    best = train(tc, tr, va, tmp_path / "a", progress=False)
    for f in ("best.pt", "best.json", "last.pt", "history.json", "metrics.json", "roc.png"):
        assert (tmp_path / "a" / f).exists(), f
    info = json.loads((tmp_path / "a" / "best.json").read_text())
    assert info["train_config"]["model"]["n_particles"] == 12 and "accuracy" in info["metrics"]
    assert len(json.loads((tmp_path / "a" / "history.json").read_text())) == 3
    # interrupted after 1 epoch, resumed: same final weights as the uninterrupted run
    train(tc, tr, va, tmp_path / "b", progress=False, epochs_now=1)
    assert len(json.loads((tmp_path / "b" / "history.json").read_text())) == 1
    train(tc, tr, va, tmp_path / "b", progress=False, resume=True)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    tagger = load_tagger(best)
    m = evaluate(tagger, va)
    assert m["accuracy"] == pytest.approx(info["metrics"]["accuracy"])
    with pytest.raises(L1TaggerError, match="different config"):
        train(tiny(epochs=4), tr, va, tmp_path / "b", progress=False, resume=True)


def test_training_learns_toy_classes(toy_jets, tmp_path):
    from l1tagger.data.synthetic import toy_jets as make

    jets = make(n_jets=600, max_particles=24, n_classes=3, seed=3)
    tc = tiny(epochs=6, model={"attention": "topk", "topk_k": 4})
    best = train(tc, jets.subset(np.arange(450)), jets.subset(np.arange(450, 600)), tmp_path, progress=False)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["auc_macro"] > 0.75  # chance is 0.5
    assert load_tagger(best).model_config.attention == "topk"


def test_part_reference_trains(toy_jets, tmp_path):
    tc = tiny(epochs=1, model_kind="part")
    best = train(tc, toy_jets.subset(np.arange(128)), toy_jets.subset(np.arange(128, 192)), tmp_path, progress=False)
    from l1tagger.models.part import ParT

    tagger = load_tagger(best)
    assert isinstance(tagger.model, ParT) and tagger.train_config.model_kind == "part" and not tagger.quantized


def test_bad_inputs(toy_jets, tmp_path):
    with pytest.raises(ConfigError, match=r"^lerning_rate: unknown key \(known keys: \["):
        TrainConfig.from_dict({"epochs": 2, "lerning_rate": 1})
    with pytest.raises(ConfigError, match="schedule"):
        tiny(schedule="linear").validate()
    with pytest.raises(DataError, match="n_classes"):
        train(TrainConfig(model=ModelConfig(n_classes=5)), toy_jets, toy_jets, tmp_path, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(L1TaggerError, match="checkpoint"):
        load_tagger(tmp_path / "junk.pt")



def test_config_loaders_are_strict_and_name_the_dotted_field():
    """Issue 13.4: TrainConfig / ModelConfig go through the one strict loader (dataclass_io.from_dict): unknown keys,
    wrong types and values out of range name the dotted field (they used to say "unknown train config key(s)", and
    a string epoch count or a model-level error passed without its section)."""
    tc = TrainConfig.from_dict({"epochs": 3, "lr": 1, "background": ["q"],
                                "model": {"d_model": 8, "attention": "topk"}})
    assert tc.lr == 1.0 and isinstance(tc.lr, float) and tc.model.d_model == 8 and tc.model.attention == "topk"
    assert TrainConfig.from_dict(json.loads(json.dumps(tc.to_dict()))) == tc  # what checkpoints store reads back
    for data, message in (
            ({"model": {"pair_hiden": 4}}, r"^model\.pair_hiden: unknown key \(known keys of model: \["),
            ({"epochs": "3"}, r"^epochs: expected int, got str \('3'\)$"),
            ({"model": {"pair_bias": "yes"}}, r"^model\.pair_bias: expected bool, got str"),
            ({"background": "QCD"}, r"^background: expected a list, got str"),
            ({"model": {"attention": "sparse"}}, r"^model\.attention: 'sparse' is not one of"),
            ({"model": {"d_model": 10, "n_heads": 4}}, r"^model\.d_model: 10 is not divisible by n_heads=4$"),
            ({"model": {"features": "nope"}}, r"^model\.features: "),
            ({"schedule": "linear"}, r"^schedule: 'linear' is not one of"),
    ):
        with pytest.raises(ConfigError, match=message):
            TrainConfig.from_dict(data)
    with pytest.raises(ConfigError, match=r"^run\.model\.n_heads: expected int, got float"):
        ModelConfig.from_dict({"n_heads": 2.0}, "run.model")


def test_load_tagger_returns_the_declared_artifact(toy_jets, tmp_path):
    """Issue 13.4: ``load_tagger`` returns a LoadedTagger (model, train config, scaler, class names; recipe and softmax
    specs only for quantized models) instead of attributes stuck on the module."""
    tr, va = toy_jets.subset(np.arange(128)), toy_jets.subset(np.arange(128, 192))
    best = train(tiny(epochs=1), tr, va, tmp_path / "m", progress=False)
    tagger = load_tagger(best)
    assert isinstance(tagger, LoadedTagger) and isinstance(tagger.scaler, FeatureScaler)
    assert tagger.class_names == list(toy_jets.class_names) and tagger.train_config == tiny(epochs=1).validate()
    assert tagger.recipe is None and tagger.softmax_specs == {} and not tagger.quantized
    assert not tagger.model.training
    assert not any(hasattr(tagger.model, a) for a in ("train_config", "feature_scaler", "class_names"))
    np.testing.assert_array_equal(tagger.inputs(va).x, build_inputs(va, tagger.model_config, tagger.scaler)[0].x)
    with pytest.raises(DataError, match=r"evaluation jets have classes \['x', 'y', 'z'\], the model \["):
        evaluate(tagger, dataclasses.replace(va, class_names=["x", "y", "z"]))


def test_checkpoint_with_a_bad_config_names_the_file_and_field(toy_jets, tmp_path):
    tr, va = toy_jets.subset(np.arange(128)), toy_jets.subset(np.arange(128, 192))
    best = train(tiny(epochs=1), tr, va, tmp_path / "m", progress=False)
    ck = torch.load(best, weights_only=True)
    cfg = json.loads(ck["train_config"])
    cfg["model"]["d_modle"] = cfg["model"].pop("d_model")
    ck["train_config"] = json.dumps(cfg)
    torch.save(ck, tmp_path / "edited.pt")
    with pytest.raises(ConfigError, match=r"edited\.pt: train_config\.model\.d_modle: unknown key"):
        load_tagger(tmp_path / "edited.pt")
    ck["train_config"], ck["class_names"] = json.dumps(tiny(epochs=1).to_dict()), json.dumps("abc")
    torch.save(ck, tmp_path / "names.pt")
    with pytest.raises(ConfigError, match=r"names\.pt: checkpoint entry 'class_names' is not a list of class names"):
        load_tagger(tmp_path / "names.pt")


def test_evaluate_epoch_is_public(toy_jets, tmp_path):
    from l1tagger.training import loop

    tr, va = toy_jets.subset(np.arange(128)), toy_jets.subset(np.arange(128, 192))
    tagger = load_tagger(train(tiny(epochs=1), tr, va, tmp_path / "m", progress=False))
    loss, acc, logits = loop.evaluate_epoch(tagger.model, tagger.inputs(va), torch.device("cpu"))
    assert logits.shape == (len(va), 3) and 0 <= acc <= 1 and loss > 0
    assert acc == pytest.approx(evaluate(tagger, va)["accuracy"])

def test_train_evaluate_commands(tmp_path):
    from l1tagger.cli import main

    out = tmp_path / "run"
    assert main(["train", "toy:240", "--out", str(out), "--epochs", "1", "--n-particles", "12", "--d-model", "8",
                 "--attention", "linformer", "--linformer-k", "4", "--ordering", "dr", "--no-progress"]) == 0
    assert main(["evaluate", str(out / "best.pt"), "toy:120", "--out", str(tmp_path / "ev")]) == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["n_jets"] == 120 and (tmp_path / "ev" / "roc.png").exists()
    assert main(["evaluate", str(out / "best.pt"), "toy:120:4", "--out", str(tmp_path / "ev2")]) == 1  # classes
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\nmodel:\n  n_particles: 8\n  atention: full\n")
    assert main(["train", "toy:120", "--out", str(tmp_path / "r2"), "--config", str(cfg)]) == 1
