"""Interpretation numbers that mean what they say (issue 13.7): within-row logit spreads, entropy normalised by
the real keys, the hardest lepton of the jet."""

import numpy as np
import pytest

from l1tagger.errors import DataError
from l1tagger.interpret import LEPTON_DEFINITION, binarity, lepton_attention, logit_spread
from l1tagger.interpret.kinematics import hardest_lepton

SPREAD_KEYS = ("qk_row_spread_mean", "u_row_spread_mean", "median_log10_qk_over_u_row_spread",
               "frac_rows_u_spread_exceeds_qk", "centred_correlation", "u_over_qk_row_spread_ratio")


def _logits(seed=0, n=5, H=2, N=7):
    rng = np.random.default_rng(seed)
    mask = np.ones((n, N))
    mask[:, 5:] = 0
    mask[1, 3:] = 0
    qk = rng.normal(size=(n, H, N, N))
    u = 0.8 * qk + rng.normal(size=(n, H, N, N)) * 0.9  # correlated with qk, comparable spread
    return qk, u, mask


def test_spread_ignores_constants_softmax_ignores():
    """A constant per row (or one global constant) added to U changes no attention weight, so it must change no
    number; the old |qk| vs |U| measure called U dominant as soon as the constant was large."""
    qk, u, mask = _logits()
    ref = logit_spread(qk, u, mask)
    rng = np.random.default_rng(1)
    per_row = rng.normal(size=u.shape[:3] + (1,)) * 50.0
    for shifted in (u + per_row, u + 100.0, u - 7.5):
        got = logit_spread(qk, shifted, mask)
        for k in SPREAD_KEYS:
            assert got[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k
        per_head = "frac_rows_u_spread_exceeds_qk_per_head"
        assert got[per_head] == pytest.approx(ref[per_head])
        assert got["log10_qk_over_u_row_spread_hist"] == ref["log10_qk_over_u_row_spread_hist"]
    # padded keys never count, whatever they hold
    junk = u.copy()
    junk[..., 5:] = 1e6 * rng.normal(size=junk[..., 5:].shape)
    junk[1, :, :, 3:] = -1e6
    assert logit_spread(qk, junk, mask)["u_row_spread_mean"] == pytest.approx(ref["u_row_spread_mean"])
    # a large constant does not make U the larger term
    assert logit_spread(qk, 0.01 * u + 1e3, mask)["larger_row_spread"] == "qk"


def test_spread_scales_and_correlation():
    qk, u, mask = _logits()
    ref = logit_spread(qk, u, mask)
    twice = logit_spread(qk, 2.0 * u, mask)
    assert twice["u_row_spread_mean"] == pytest.approx(2.0 * ref["u_row_spread_mean"])
    assert twice["qk_row_spread_mean"] == pytest.approx(ref["qk_row_spread_mean"])
    assert twice["median_log10_qk_over_u_row_spread"] == pytest.approx(ref["median_log10_qk_over_u_row_spread"]
                                                                      - np.log10(2.0))
    assert twice["centred_correlation"] == pytest.approx(ref["centred_correlation"])  # scale-free
    assert 0.4 < ref["centred_correlation"] < 0.95
    assert logit_spread(qk, qk + 3.0, mask)["centred_correlation"] == pytest.approx(1.0)
    assert logit_spread(qk, -qk, mask)["centred_correlation"] == pytest.approx(-1.0)
    # hand-computed spread of one row: real keys 0..4 of jet 0, head 0, row 0
    row = logit_spread(qk[:1, :1, :1], u[:1, :1, :1], mask[:1, :1], key_mask=mask[:1])
    assert row["n_rows"] == 1
    assert row["u_row_spread_mean"] == pytest.approx(np.std(u[0, 0, 0, :5]))
    assert row["qk_row_spread_mean"] == pytest.approx(np.std(qk[0, 0, 0, :5]))


def test_spread_linformer_keys_and_errors():
    """Linformer rows (K = k projected keys != N) have no padded keys: all k count."""
    rng = np.random.default_rng(2)
    mask = np.ones((3, 6))
    mask[:, 4:] = 0
    qk, u = rng.normal(size=(3, 2, 6, 4)), rng.normal(size=(3, 2, 6, 4))
    r = logit_spread(qk, u, mask)
    assert r["n_rows"] == 3 * 2 * 4
    assert r["u_row_spread_mean"] == pytest.approx(np.std(u[:, :, :4], axis=-1).mean())
    with pytest.raises(DataError, match="key_mask"):
        logit_spread(qk, u, mask, key_mask=np.ones((3, 6)))
    single = np.zeros((2, 4))
    single[:, 0] = 1
    with pytest.raises(DataError, match="at least 2 real keys"):
        logit_spread(rng.normal(size=(2, 1, 4, 4)), rng.normal(size=(2, 1, 4, 4)), single)


def test_entropy_normalised_by_real_keys():
    n, H, N = 2, 3, 8
    mask = np.zeros((n, N))
    mask[:, :3] = 1  # 3 real particles, 5 padded
    uni = np.zeros((n, H, N, N))
    uni[..., :3] = 1.0 / 3
    b = binarity(uni, mask)
    assert b["entropy_norm_mean"] == pytest.approx(1.0)  # uniform over the real particles, not ln3/ln8
    assert b["entropy_norm_per_head"] == pytest.approx([1.0] * H)
    assert b["entropy_norm_hist"]["edges"][0] == 0.0 and b["entropy_norm_hist"]["edges"][-1] == 1.0
    assert b["entropy_norm_hist"]["counts"][-1] == b["n_rows_entropy"] == n * 3 * H
    onehot = np.zeros((n, H, N, N))
    onehot[..., 1] = 1.0
    b = binarity(onehot, mask)
    assert b["entropy_norm_mean"] == pytest.approx(0.0, abs=1e-12)
    assert b["entropy_norm_hist"]["counts"][0] == n * 3 * H
    # half on two of four real keys: ln2 / ln4
    mask4 = np.zeros((1, N))
    mask4[0, :4] = 1
    half = np.zeros((1, 1, N, N))
    half[..., :2] = 0.5
    assert binarity(half, mask4)["entropy_norm_mean"] == pytest.approx(0.5)


def test_entropy_topk_linformer_cls_and_single_key_rows():
    N = 6
    mask = np.zeros((2, N))
    mask[0, :5] = 1
    mask[1, :1] = 1  # a jet with one real particle: its row has no choice
    w = np.zeros((2, 1, N, N))
    w[0, ..., :2] = 0.5  # top-2 row, flat over what it kept
    w[1, ..., 0] = 1.0
    b = binarity(w, mask, topk=2)
    assert b["entropy_norm_mean"] == pytest.approx(1.0)
    assert b["n_rows_single_key"] == 1 and b["n_rows_entropy"] == 5 and b["n_rows"] == 6
    assert b["entropy_normalisation"].startswith("ln(min(top-k")
    assert binarity(w, mask)["entropy_norm_mean"] == pytest.approx(np.log(2) / np.log(5))
    only = binarity(w[1:], mask[1:])
    assert only["entropy_norm_mean"] is None and only["n_rows_single_key"] == 1
    # Linformer: k = 4 projected keys, all real even in a jet with 2 particles
    lw = np.full((1, 1, N, 4), 0.25)
    lmask = np.zeros((1, N))
    lmask[0, :2] = 1
    assert binarity(lw, lmask)["entropy_norm_mean"] == pytest.approx(1.0)
    # class attention: one query row, the mask is over the keys
    cw = np.zeros((2, 2, 1, N))
    cw[0, :, 0, :5] = 0.2
    cw[1, :, 0, 0] = 1.0
    cb = binarity(cw, mask)
    assert cb["n_rows"] == 4 and cb["entropy_norm_mean"] == pytest.approx(1.0) and cb["n_rows_single_key"] == 2


def test_hardest_lepton_is_the_one_counted():
    is_lep = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    pt = np.array([[50.0, 3.0, 1.0, 20.0], [9.0, 8.0, 7.0, 6.0], [2.0, 4.0, 1.0, 0.0]])
    hard = hardest_lepton(is_lep, pt)
    np.testing.assert_array_equal(hard, [[0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]])
    w = np.zeros((3, 1, 4, 4))
    w[..., 1] = 1.0  # all attention on the soft lepton of jet 0, none on its hardest lepton
    out = lepton_attention(w, mask, hard, np.array([0, 0, 1]), ["a", "b"])
    assert out["lepton_definition"] == LEPTON_DEFINITION and "hardest" in LEPTON_DEFINITION
    assert out["n_jets_with_lepton"] == 2
    assert out["per_class"]["a"]["attention_to_hardest_lepton"] == pytest.approx(0.0)
    assert out["per_class"]["b"]["uniform_expectation"] == pytest.approx(1 / 3)
    with pytest.raises(DataError, match="jet 0 has 2 flagged"):
        lepton_attention(w, mask, is_lep, np.array([0, 0, 1]), ["a", "b"])
