"""Jet images, the ViT, attention rollout, attention fraction, training and interpretation (issue 8)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from l1tagger.data.jetset import JetSet
from l1tagger.data.synthetic import toy_jets as make_toy
from l1tagger.errors import ConfigError, DataError, L1TaggerError
from l1tagger.vit.fraction import (area_fraction, attention_fraction, recluster_subjets, region_masks,
                                   subjet_image_coords)
from l1tagger.vit.images import JetImageConfig, jet_frames, jet_images, pixel_centres
from l1tagger.vit.model import JetViT, ViTConfig, freeze_all_but_last, vit_macs
from l1tagger.vit.rollout import attention_rollout, class_token_maps, upsample_maps
from l1tagger.vit.tasks import select_task
from l1tagger.vit.train import ViTTrainConfig, load_pretrained, load_vit, train_vit

torch.set_num_threads(1)


def jets_from_points(points, labels=None, class_names=("a", "b")) -> JetSet:
    """Jets from lists of (pt, eta, phi) massless constituents."""
    P = max(len(p) for p in points)
    p4 = np.zeros((len(points), P, 4))
    for j, parts in enumerate(points):
        for i, (pt, eta, phi) in enumerate(sorted(parts, key=lambda t: -t[0])):
            p4[j, i] = (pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta))
    n = [len(p) for p in points]
    return JetSet(p4=p4, n_particles=n, charge=np.zeros((len(points), P)), pid=np.zeros((len(points), P, 5)),
                  labels=labels if labels is not None else np.zeros(len(points)), class_names=list(class_names))


# ------------------------------------------------------------------------------------------------------- images
def test_image_shape_and_normalisation(toy_jets):
    imgs = jet_images(toy_jets, JetImageConfig(size=20))
    assert imgs.shape == (len(toy_jets), 20, 20) and imgs.dtype == np.float32
    assert np.all(imgs >= 0)
    np.testing.assert_allclose(imgs.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    raw = jet_images(toy_jets, JetImageConfig(size=20, half_width=5.0, normalise="none"))
    pt = np.hypot(toy_jets.p4[..., 0], toy_jets.p4[..., 1]).sum(1)  # a wide window holds every constituent
    np.testing.assert_allclose(raw.sum(axis=(1, 2)), pt, rtol=1e-4)


def test_axis_centring_puts_particles_in_the_expected_pixels():
    # equal pT at eta = 1 +- 0.27, same phi: the pT-weighted centroid is at eta = 1 exactly
    jets = jets_from_points([[(50.0, 1.27, 0.5), (50.0, 0.73, 0.5)]])
    cfg = JetImageConfig(size=16, half_width=0.8, centre="centroid")
    img = jet_images(jets, cfg)[0]
    ys, xs = np.nonzero(img)
    c = pixel_centres(cfg)
    np.testing.assert_allclose(sorted(c[xs]), [-0.25, 0.25], atol=cfg.pixel_width / 2 + 1e-9)
    assert set(c[ys]) <= {-0.05, 0.05} or np.allclose(np.abs(c[ys]), 0.05)
    np.testing.assert_allclose(img[img > 0], 0.5, rtol=1e-6)


def test_centroid_rotation_and_flip(toy_jets):
    cfg = JetImageConfig(centre="centroid", rotate=True, flip=True)
    frame = jet_frames(toy_jets, cfg)
    from l1tagger.physics import kinematics as kin

    p4, m = toy_jets.p4.astype(np.float64), toy_jets.mask
    pt = np.where(m, kin.pt(p4[..., 0], p4[..., 1]), 0)
    x, y = frame.transform(kin.eta(p4[..., 0], p4[..., 1], p4[..., 2]), kin.phi(p4[..., 0], p4[..., 1]))
    w = pt / pt.sum(1, keepdims=True)
    np.testing.assert_allclose((w * x).sum(1), 0, atol=1e-9)  # centred
    np.testing.assert_allclose((w * y).sum(1), 0, atol=1e-9)
    np.testing.assert_allclose((w * x * y).sum(1), 0, atol=1e-9)  # principal axes = image axes
    assert np.all((w * x * x).sum(1) >= (w * y * y).sum(1) - 1e-12)  # major axis horizontal
    assert np.all((pt * (x > 0)).sum(1) >= (pt * (x < 0)).sum(1))  # heavier half on the right
    assert np.all((pt * (y > 0)).sum(1) >= (pt * (y < 0)).sum(1))
    wide = JetImageConfig(size=32, half_width=3.0, centre="centroid")  # wide enough to hold every constituent
    img = jet_images(toy_jets, wide)
    c = pixel_centres(wide)
    for centroid in ((img.sum(1) * c).sum(1), (img.sum(2) * c).sum(1)):  # x, y centroid of the pixelised image
        assert np.all(np.abs(centroid) <= wide.pixel_width / 2)


def test_bad_image_config():
    with pytest.raises(ConfigError, match="centre"):
        JetImageConfig(centre="middle").validate()
    with pytest.raises(ConfigError, match="unknown key"):
        JetImageConfig.from_dict({"size": 8, "sise": 9})


def test_vit_config_loaders_are_strict_and_name_the_dotted_field(tmp_path):
    """Issue 13.4: the ViT configs go through the one strict loader (dataclass_io.from_dict; vit/images.py's private
    ``_strict_from_dict`` checked keys only, so a string size or a misspelt nested key failed late or not at all)."""
    from l1tagger.vit.interpret import InterpretConfig

    cfg = ViTTrainConfig.from_dict({"epochs": 2, "lr": 1, "model": {"dim": 8, "image": {"size": 8, "half_width": 1}}})
    assert cfg.lr == 1.0 and cfg.model.image == JetImageConfig(size=8, half_width=1.0) and cfg.model.dim == 8
    assert ViTTrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for data, message in (
            ({"model": {"image": {"sise": 9}}}, r"^model\.image\.sise: unknown key \(known keys of model\.image: "),
            ({"model": {"image": {"size": "8"}}}, r"^model\.image\.size: expected int, got str"),
            ({"model": {"image": {"size": 0}}}, r"^model\.image\.size: must be a positive integer, got 0$"),
            ({"model": {"image": {"centre": "middle"}}}, r"^model\.image\.centre: 'middle' is not one of"),
            ({"model": {"class_names": ["a", 2]}}, r"^model\.class_names\[1\]: expected str, got int"),
            ({"model": {"heads": 2.0}}, r"^model\.heads: expected int, got float"),
            ({"epoch": 2}, r"^epoch: unknown key \(known keys: \["),
    ):
        with pytest.raises(ConfigError, match=message):
            ViTTrainConfig.from_dict(data)
    with pytest.raises(ConfigError, match=r"^image\.centre: 'middle' is not one of"):
        ViTConfig(image=JetImageConfig(centre="middle"), class_names=["a", "b"]).validate()
    with pytest.raises(ConfigError, match=r"^model\.patch_size: image size 10 is not a multiple of 4$"):
        train_vit(ViTTrainConfig(model=ViTConfig(image=JetImageConfig(size=10), patch_size=4)),
                  make_toy(20, 8, 2, seed=1), make_toy(20, 8, 2, seed=2), tmp_path / "v", progress=False)
    assert not (tmp_path / "v").exists()
    ic = InterpretConfig.from_dict({"n_subjets": [2], "radii": [1, 0.5]})
    assert ic.n_subjets == (2,) and ic.radii == (1.0, 0.5) and all(isinstance(r, float) for r in ic.radii)
    with pytest.raises(ConfigError, match=r"^radii\[0\]: expected float, got str"):
        InterpretConfig.from_dict({"radii": ["0.1"]})
    with pytest.raises(ConfigError, match=r"^head_fusion: 'median' is not one of"):
        InterpretConfig.from_dict({"head_fusion": "median"})


# -------------------------------------------------------------------------------------------------------- model
def test_vit_shapes_attention_and_macs():
    from torch.utils.flop_counter import FlopCounterMode

    cfg = ViTConfig(image=JetImageConfig(size=16), patch_size=4, dim=16, depth=2, heads=2, mlp_dim=24,
                    class_names=["a", "b", "c"])
    model = JetViT(cfg).eval()
    logits, att = model(torch.rand(5, 16, 16), return_attention=True)
    assert logits.shape == (5, 3) and len(att) == 2 and att[0].shape == (5, 2, 17, 17)
    torch.testing.assert_close(att[1].sum(-1), torch.ones(5, 2, 17))
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 16, 16))
    assert vit_macs(cfg)["total"] * 2 == counter.get_total_flops()
    with pytest.raises(ConfigError, match="patch_size"):
        ViTConfig(image=JetImageConfig(size=10), patch_size=4, class_names=["a", "b"]).validate()
    with pytest.raises(ConfigError, match="shape"):
        model(torch.rand(2, 8, 8))


# ------------------------------------------------------------------------------------------------------ rollout
def test_rollout_matches_hand_computation():
    a1 = torch.tensor([[[0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]],
                       [[0.1, 0.3, 0.6], [0.0, 1.0, 0.0], [0.4, 0.4, 0.2]]], dtype=torch.float64)[None]
    a2 = torch.tensor([[[0.0, 0.0, 1.0], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]],
                       [[0.2, 0.6, 0.2], [0.5, 0.5, 0.0], [0.1, 0.1, 0.8]]], dtype=torch.float64)[None]
    # by hand: mean over heads, + I, divide each row by its sum (= 2), multiply upper layer on the left
    m1 = np.array([[0.3, 0.4, 0.3], [0.1, 0.6, 0.3], [0.7, 0.2, 0.1]])
    m2 = np.array([[0.1, 0.3, 0.6], [0.4, 0.4, 0.2], [0.3, 0.175, 0.525]])
    h1, h2 = (m1 + np.eye(3)) / 2, (m2 + np.eye(3)) / 2
    expected = h2 @ h1
    r = attention_rollout([a1, a2])
    np.testing.assert_allclose(r[0].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(r.sum(-1).numpy(), 1.0, atol=1e-12)
    with pytest.raises(ConfigError, match="patch tokens"):
        class_token_maps(r, grid=2)  # 2 patch tokens are not a 2x2 grid


def test_rollout_rows_sum_to_one_and_maps_upsample():
    torch.manual_seed(0)
    att = [torch.softmax(torch.randn(3, 4, 17, 17), -1) for _ in range(3)]
    r = attention_rollout(att)
    np.testing.assert_allclose(r.sum(-1).numpy(), 1.0, atol=1e-12)
    maps = upsample_maps(class_token_maps(r, grid=4), patch_size=4)
    assert maps.shape == (3, 16, 16)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-12)
    with pytest.raises(ConfigError, match="head_fusion"):
        attention_rollout(att, head_fusion="median")


# ----------------------------------------------------------------------------------------------------- fraction
def test_subjets_and_attention_fraction():
    # two tight clusters at (eta, phi) offsets (+0.3, 0) and (-0.3, 0) around (0, 1); a jet with one particle
    pts = [(40.0, 0.31, 1.0), (20.0, 0.28, 1.02), (30.0, -0.3, 1.0), (10.0, -0.32, 0.99)]
    jets = jets_from_points([pts, [(25.0, 0.2, -1.0)]], labels=np.array([0, 1]))
    sub = recluster_subjets(jets, 2)
    assert sub.valid.tolist() == [[True, True], [True, False]]
    np.testing.assert_allclose(sub.pt[0], [60.0, 40.0], rtol=1e-3)
    np.testing.assert_allclose(sorted(sub.eta[0]), [-0.305, 0.3], atol=0.01)
    cfg = JetImageConfig(size=16, half_width=0.8)
    images, frame = jet_images(jets, cfg, return_frame=True)
    x, y, v = subjet_image_coords(sub, frame)
    regions = region_masks(x, y, v, 0.15, cfg)
    f = attention_fraction(images, regions)
    assert np.all((f >= 0) & (f <= 1))
    np.testing.assert_allclose(f, 1.0)  # every constituent lies within 0.15 of its subjet axis
    uniform = np.ones((2, 16, 16))
    np.testing.assert_allclose(attention_fraction(uniform, regions), area_fraction(regions))
    assert np.all(area_fraction(regions) < 0.2)
    big = region_masks(x, y, v, 10.0, cfg)
    np.testing.assert_allclose(attention_fraction(np.random.default_rng(0).random((2, 16, 16)), big), 1.0)
    with pytest.raises(DataError, match="zero total"):
        attention_fraction(np.zeros((2, 16, 16)), big)
    with pytest.raises(ConfigError, match="radius"):
        region_masks(x, y, v, -1.0, cfg)


def test_fraction_in_unit_interval_on_toy_jets(toy_jets):
    cfg = JetImageConfig(size=16, centre="centroid", rotate=True, flip=True)
    images, frame = jet_images(toy_jets, cfg, return_frame=True)
    x, y, v = subjet_image_coords(recluster_subjets(toy_jets, 3), frame)
    maps = np.random.default_rng(1).random((len(toy_jets), 16, 16))
    f = attention_fraction(maps, region_masks(x, y, v, 0.2, cfg))
    assert np.all((f >= 0) & (f <= 1)) and 0 < f.mean() < 1


# ----------------------------------------------------------------------------------------------------- training
def _tiny(epochs=2, **kw) -> ViTTrainConfig:
    model = ViTConfig(image=JetImageConfig(size=8, centre="centroid", rotate=True), patch_size=4, dim=8, depth=2,
                      heads=2, mlp_dim=16, dropout=0.1)
    return ViTTrainConfig(model=model, epochs=epochs, batch_size=32, lr=3e-3, **kw)


def test_short_training_run_is_deterministic_and_resumable(tmp_path):
    train, val = make_toy(96, 16, 3, seed=3), make_toy(48, 16, 3, seed=4)
    res = train_vit(_tiny(3), train, val, tmp_path / "a", progress=False)
    for name in ("best.pt", "last.pt", "config.json", "metrics.json"):
        assert (tmp_path / "a" / name).is_file()
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["finished"] and len(metrics["history"]) == 3
    assert set(metrics["val"]) >= {"accuracy", "auc_macro", "auc_per_class", "rejection"}
    assert 0 <= metrics["val"]["accuracy"] <= 1
    # same seed -> identical weights; interrupted after 1 epoch and resumed -> identical too
    again = train_vit(_tiny(3), train, val, tmp_path / "b", progress=False)
    train_vit(_tiny(3), train, val, tmp_path / "c", stop_after=1, progress=False)
    assert len(json.loads((tmp_path / "c" / "metrics.json").read_text())["history"]) == 1
    resumed = train_vit(_tiny(3), train, val, tmp_path / "c", progress=False)
    for k, t in res.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[k], t, rtol=0, atol=0)
        torch.testing.assert_close(resumed.model.state_dict()[k], t, rtol=0, atol=0)
    saved = ViTTrainConfig.from_dict(json.loads((tmp_path / "a" / "config.json").read_text()))
    assert saved.model.image == _tiny(3).model.image and saved.model.class_names == train.class_names
    loaded = load_vit(tmp_path / "a" / "best.pt")
    assert loaded.config.class_names == train.class_names
    with pytest.raises(ConfigError, match="different config"):
        train_vit(_tiny(3, seed=2), train, val, tmp_path / "a", progress=False)


def test_training_learns_an_easy_task(tmp_path):
    # one prong against three prongs: a few epochs of a tiny ViT separate them well above chance
    train, val = make_toy(240, 16, 3, seed=9), make_toy(90, 16, 3, seed=10)
    cfg = _tiny(6, task={"one": ["toy0"], "three": ["toy2"]})
    cfg.model.dim, cfg.model.dropout, cfg.batch_size = 16, 0.0, 16
    res = train_vit(cfg, train, val, tmp_path / "easy", progress=False)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.val_metrics["auc_per_class"]["three"] > 0.8, res.val_metrics


def test_finetune_last_block_from_local_checkpoint(tmp_path):
    train, val = make_toy(96, 16, 3, seed=5), make_toy(48, 16, 3, seed=6)
    train_vit(_tiny(1), train, val, tmp_path / "pre", progress=False)
    ckpt = tmp_path / "pre" / "best.pt"
    base = torch.load(ckpt, weights_only=True)["model"]
    cfg = _tiny(2, init_checkpoint=str(ckpt), finetune_blocks=1, task={"one": ["toy0"], "many": ["toy1", "toy2"]})
    res = train_vit(cfg, train, val, tmp_path / "ft", progress=False)
    state = res.model.state_dict()
    assert res.model.config.class_names == ["one", "many"]
    for k in ("patch_embed.weight", "pos_embed", "cls_token", "blocks.0.attn.qkv.weight"):
        torch.testing.assert_close(state[k], base[k], rtol=0, atol=0)  # frozen
    assert not torch.equal(state["blocks.1.mlp.0.weight"], base["blocks.1.mlp.0.weight"])  # fine-tuned
    info = json.loads((tmp_path / "ft" / "metrics.json").read_text())["init_checkpoint"]
    assert info["reinitialised"] == ["head.weight", "head.bias"]
    # a checkpoint of another architecture is refused with the tensor named
    other = JetViT(ViTConfig(image=JetImageConfig(size=8), patch_size=4, dim=12, depth=2, heads=2,
                             class_names=["a", "b"]))
    with pytest.raises(ConfigError, match="'cls_token' has shape"):
        load_pretrained(other, ckpt)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="weights_only"):
        load_pretrained(other, tmp_path / "junk.pt")


def test_freeze_and_task_errors(toy_jets):
    model = JetViT(ViTConfig(image=JetImageConfig(size=8), patch_size=4, dim=8, depth=3, heads=2,
                             class_names=["a", "b"]))
    names = freeze_all_but_last(model, 1)
    assert all(n.startswith(("blocks.2.", "norm.", "head.")) for n in names)
    with pytest.raises(ConfigError, match="finetune_blocks"):
        freeze_all_but_last(model, 4)
    with pytest.raises(DataError, match="top"):
        select_task(toy_jets, {"QCD": ["toy0"], "top": ["t"]})
    with pytest.raises(ConfigError, match="unknown key"):
        ViTTrainConfig.from_dict({"epochs": 1, "epoch": 2})
    with pytest.raises(L1TaggerError, match="task"):
        ViTTrainConfig(task="h_vs_z").validate()


# --------------------------------------------------------------------------------------------------- interpret
def test_interpret_writes_png_and_json(tmp_path):
    from l1tagger.vit.interpret import InterpretConfig, interpret_vit

    train, val = make_toy(96, 16, 3, seed=7), make_toy(60, 16, 3, seed=8)
    res = train_vit(_tiny(1), train, val, tmp_path / "run", progress=False)
    cfg = InterpretConfig(radii=(0.2, 5.0), n_examples=1, tasks={"far": {"A": ["toy0"], "B": ["toy2"]},
                                                                 "w_vs_z": {"W": ["W"], "Z": ["Z"]}})
    summary = interpret_vit(res.model, val, tmp_path / "int", cfg)
    for stem in ("mean_maps", "examples", "attention_fraction"):
        assert (tmp_path / "int" / f"{stem}.png").stat().st_size > 1000
        assert (tmp_path / "int" / f"{stem}.json").is_file()
    fr = json.loads((tmp_path / "int" / "attention_fraction.json").read_text())
    per_jet = np.array(fr["per_jet"]["n2_r0.2"]["attention"])
    assert per_jet.shape == (60,) and np.all((per_jet >= 0) & (per_jet <= 1))
    np.testing.assert_allclose(fr["per_jet"]["n3_r5"]["attention"], 1.0)  # radius covering the whole image
    assert summary["tasks"]["far"]["available"] and not summary["tasks"]["w_vs_z"]["available"]
    assert 0 <= summary["tasks"]["far"]["by_region"]["n2_r0.2"]["auc"] <= 1
    assert InterpretConfig.from_dict({"radii": [0.1], "n_subjets": [3]}).radii == (0.1,)
    with pytest.raises(ConfigError, match="radius"):
        InterpretConfig.from_dict({"radius": 0.1})


def test_image_mass_proxy_equals_pair_sum():
    from l1tagger.vit.images import image_mass_proxy

    cfg = JetImageConfig(size=6, half_width=0.6)
    imgs = np.random.default_rng(2).random((3, 6, 6))
    c = pixel_centres(cfg)
    X, Y = np.meshgrid(c, c)
    pts = np.stack([X.ravel(), Y.ravel()], 1)
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    flat = imgs.reshape(3, -1)
    np.testing.assert_allclose(image_mass_proxy(imgs, cfg), np.einsum("ni,ij,nj->n", flat, d2, flat), rtol=1e-12)
