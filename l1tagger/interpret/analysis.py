"""Attention analysis on plain arrays, so the same functions read PyTorch recordings and firmware C-sim traces.

Shapes (n jets, H heads, N query rows, K keys; K = N for full/top-k, k for Linformer's projected weights):
    weights   (n, H, N, K)  attention weights, rows sum to 1 over kept keys (0 elsewhere)
    qk, u     (n, H, N, K)  pre-softmax terms: q·kᵀ (the 1/sqrt(d) is inside W_q) and the interaction bias U
    mask      (n, N)        1 for real particles (query rows of padded particles are ignored)
    key_mask  (n, K)        1 for keys a row can attend to; default ``mask`` when K == N, all keys otherwise
                            (Linformer's projected keys are mixtures, none is padding)
A class-attention layer has one query row (N = 1) per jet; its ``mask`` (n, K) is then the key mask.

Definitions (also in docs/interpretation.md): entropies are normalised by ln(keys available to the row), so 1 =
uniform over the real particles and 0 = one-hot; the q·kᵀ-vs-U comparison uses each term's spread within a row
over its real keys, the only part of a logit row that softmax responds to.
"""

from __future__ import annotations

import numpy as np

from l1tagger.errors import DataError

#: what ``lepton_attention`` measures (the flag ``interpret.kinematics.hardest_lepton`` builds)
LEPTON_DEFINITION = ("hardest electron or muon (largest pT) among the jet's constituents, from the particle-type "
                     "flags; not truth-matched to the W decay")


def _check(weights: np.ndarray, mask: np.ndarray, key_mask: np.ndarray | None = None):
    """weights as float64, row mask (n, N) and key mask (n, K) as bool, with the shapes checked."""
    w = np.asarray(weights, np.float64)
    m = np.asarray(mask).astype(bool)
    if w.ndim != 4:
        raise DataError(f"attention weights must be (n_jets, heads, rows, keys), got shape {w.shape}")
    n, _, N, K = w.shape
    single = N == 1 and m.shape == (n, K)  # class attention: one query row per jet, mask over the keys
    if m.shape != (n, N) and not single:
        raise DataError(f"mask shape {m.shape} does not match weights {w.shape}")
    rows = np.ones((n, 1), bool) if single else m
    if key_mask is None:
        keys = m if m.shape == (n, K) else np.ones((n, K), bool)
    else:
        keys = np.asarray(key_mask).astype(bool)
        if keys.shape != (n, K):
            raise DataError(f"key_mask shape {keys.shape} does not match weights {w.shape} (want (n_jets, keys))")
    return w, rows, keys


def _rows(w: np.ndarray, rows: np.ndarray):
    """Real query rows as (R, H, K) and the jet index of each."""
    jj, ii = np.nonzero(rows)
    return w[jj, :, ii, :], jj


def binarity(weights: np.ndarray, mask: np.ndarray, *, key_mask: np.ndarray | None = None, topk: int = 0,
             threshold: float = 0.9, bins: int = 20) -> dict:
    """How binary the attention is: top-1 weight per row, normalised row entropy, fraction of rows with top-1 >
    threshold. Returns summary numbers per head and overall, plus histograms (for plotting).

    Normalised entropy of a row = -sum_j w_j ln w_j / ln(n_avail): 1 = uniform over the keys the row could use,
    0 = one-hot. n_avail = the row's real keys (``key_mask``; Linformer: the k projected keys, all real); for a
    top-k layer (``topk`` > 0) n_avail = min(topk, real keys), the keys the softmax keeps: a top-k row cannot
    spread wider, so 1 means "flat over what it kept" and the cut itself shows in the top-1 weight instead.
    Rows with n_avail = 1 have no choice (0/0) and are excluded from the entropy numbers (counted in
    ``n_rows_single_key``); the top-1 numbers keep every real row.
    """
    w, rows_m, keys = _check(weights, mask, key_mask)
    rows, jj = _rows(w, rows_m)  # (R, H, K)
    if rows.shape[0] == 0:
        raise DataError("no real query rows to analyse")
    top1 = rows.max(-1)
    n_avail = keys.sum(1)[jj]
    if topk:
        n_avail = np.minimum(n_avail, int(topk))
    ent = -(np.where(rows > 0, rows * np.log(np.clip(rows, 1e-300, 1.0)), 0.0)).sum(-1)  # (R, H) nats
    ok = n_avail >= 2
    ent_norm = ent[ok] / np.log(n_avail[ok])[:, None]  # (R_ok, H)
    edges_t = np.linspace(0, 1, bins + 1)
    has = ent_norm.size > 0
    return {
        "n_rows": int(rows.shape[0] * rows.shape[1]),  # (query row, head) pairs
        "threshold": threshold,
        "frac_top1_above": float((top1 > threshold).mean()),
        "frac_top1_above_per_head": (top1 > threshold).mean(0).tolist(),
        "top1_mean": float(top1.mean()),
        "top1_median": float(np.median(top1)),
        "entropy_normalisation": "ln(min(top-k, real keys))" if topk else "ln(real keys of the row)",
        "keys_available_mean": float(n_avail.mean()),
        "n_rows_entropy": int(ent_norm.size),
        "n_rows_single_key": int((~ok).sum() * rows.shape[1]),
        "entropy_norm_mean": float(ent_norm.mean()) if has else None,
        "entropy_norm_median": float(np.median(ent_norm)) if has else None,
        "entropy_norm_per_head": ent_norm.mean(0).tolist() if has else None,
        "top1_hist": {"edges": edges_t.tolist(), "counts": np.histogram(top1, edges_t)[0].tolist()},
        # rounding can put a uniform row a few ulp above 1: keep it in the last bin
        "entropy_norm_hist": {"edges": edges_t.tolist(),
                              "counts": np.histogram(np.clip(ent_norm, 0.0, 1.0), edges_t)[0].tolist()},
    }


def logit_spread(qk: np.ndarray, u: np.ndarray, mask: np.ndarray, key_mask: np.ndarray | None = None,
                 bins: int = 30) -> dict:
    """Which pre-softmax term shapes the attention: the spread of q·kᵀ and of U within each (jet, head, row).

    Softmax ignores a constant added to a row, so absolute values say nothing (a large constant U would look
    "dominant" while changing no weight). Per real query row, over its real keys (``key_mask``), this takes the
    standard deviation of each term (``qk_row_spread``, ``u_row_spread``), and reports the mean spreads, the
    median of log10(qk spread / U spread), the fraction of rows where U's spread exceeds q·kᵀ's (overall and per
    head) and the correlation of the row-centred terms pooled over all real pairs (+1: U reinforces q·kᵀ's
    ordering of the keys, -1: it counteracts it). Rows with fewer than 2 real keys have no spread and are skipped.
    All numbers are unchanged by any constant added per row to either term.
    """
    qk = np.asarray(qk, np.float64)
    u = np.asarray(u, np.float64)
    if qk.shape != u.shape:
        raise DataError(f"qk {qk.shape} and u {u.shape} differ in shape")
    _, rows_m, keys = _check(qk, mask, key_mask)
    sel = rows_m[:, None, :, None] & keys[:, None, None, :]
    sel = np.broadcast_to(sel, qk.shape)
    count = sel.sum(-1)  # (n, H, N)
    valid = count >= 2
    if not valid.any():
        raise DataError("no query row with at least 2 real keys: the within-row spread is undefined")
    cnt = np.clip(count, 1, None)[..., None]

    def centred(x):
        return np.where(sel, x - (np.where(sel, x, 0.0).sum(-1, keepdims=True) / cnt), 0.0)

    cq, cu = centred(qk), centred(u)
    sq = np.sqrt((cq ** 2).sum(-1) / cnt[..., 0])  # (n, H, N)
    su = np.sqrt((cu ** 2).sum(-1) / cnt[..., 0])
    a, b = sq[valid], su[valid]
    r = np.log10(np.clip(a, 1e-12, None) / np.clip(b, 1e-12, None))
    denom = np.sqrt((cq ** 2).sum() * (cu ** 2).sum())
    u_wins = b > a
    edges = np.linspace(-3, 3, bins + 1)
    return {
        "n_rows": int(a.size),  # (jet, head, query row) with >= 2 real keys
        "spread": "standard deviation over the row's real keys",
        "qk_row_spread_mean": float(a.mean()),
        "u_row_spread_mean": float(b.mean()),
        "u_over_qk_row_spread_ratio": float(b.mean() / a.mean()) if a.mean() > 0 else None,
        "median_log10_qk_over_u_row_spread": float(np.median(r)),
        "frac_rows_u_spread_exceeds_qk": float(u_wins.mean()),
        "frac_rows_u_spread_exceeds_qk_per_head": [float((su[:, h] > sq[:, h])[valid[:, h]].mean())
                                                   if valid[:, h].any() else None for h in range(qk.shape[1])],
        "centred_correlation": float((cq * cu).sum() / denom) if denom > 0 else None,
        "larger_row_spread": "u" if u_wins.mean() > 0.5 else "qk",
        "log10_qk_over_u_row_spread_hist": {"edges": edges.tolist(),
                                            "counts": np.histogram(np.clip(r, -3, 3), edges)[0].tolist()},
    }


def attention_received(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, N): attention each particle receives, averaged over heads and real query rows (sums to 1 per jet)."""
    w, rows, _ = _check(weights, mask)
    if w.shape[-1] != np.shape(mask)[1]:
        raise DataError("attention_received needs per-particle weights (use particle_weights for Linformer)")
    rowm = rows[:, None, :, None]
    tot = (w * rowm).sum(axis=(1, 2))
    nrows = rowm.sum(axis=(1, 2)) * w.shape[1]
    return tot / np.clip(nrows, 1, None)


def lepton_attention(weights: np.ndarray, mask: np.ndarray, lepton: np.ndarray, labels: np.ndarray,
                     class_names: list[str]) -> dict:
    """Attention received by *the* lepton of each jet that has one (``lepton`` (n, N): at most one True per
    jet, the particle ``LEPTON_DEFINITION`` names, see ``interpret.kinematics.hardest_lepton``), against the
    uniform expectation 1/n_real.

    ``enhancement`` > 1 means the lepton receives more attention than an average particle, although the model
    saw no particle-type input (the "kin" feature set).
    """
    recv = attention_received(weights, mask)
    m = np.asarray(mask).astype(bool)
    lep = np.asarray(lepton).astype(bool)
    if lep.shape != m.shape:
        raise DataError(f"lepton flags shape {lep.shape} does not match mask {m.shape}")
    lep = lep & m
    per_jet = lep.sum(1)
    if (per_jet > 1).any():
        j = int(np.flatnonzero(per_jet > 1)[0])
        raise DataError(f"lepton flags: jet {j} has {int(per_jet[j])} flagged particles; pass one per jet "
                        "(the hardest electron/muon, interpret.kinematics.hardest_lepton)")
    has = per_jet == 1
    out = {"lepton_definition": LEPTON_DEFINITION, "n_jets_with_lepton": int(has.sum()), "per_class": {}}
    for c, name in enumerate(class_names):
        sel = has & (np.asarray(labels) == c)
        if not sel.any():
            continue
        got = (recv[sel] * lep[sel]).sum(1)
        uniform = 1.0 / m[sel].sum(1)
        out["per_class"][name] = {"n_jets": int(sel.sum()), "attention_to_hardest_lepton": float(got.mean()),
                                  "uniform_expectation": float(uniform.mean()),
                                  "enhancement": float(got.mean() / max(uniform.mean(), 1e-12))}
    return out


def subjet_attention(weights: np.ndarray, mask: np.ndarray, subjet: np.ndarray, labels: np.ndarray,
                     class_names: list[str], n_subjets: int) -> dict:
    """Attention mass received per subjet (subjet index per particle, 0 = hardest, -1 = none), per class,
    with the subjets' share of particles for comparison."""
    recv = attention_received(weights, mask)
    sj = np.asarray(subjet)
    m = np.asarray(mask).astype(bool)
    out = {"n_subjets": n_subjets, "per_class": {}}
    for c, name in enumerate(class_names):
        sel = np.asarray(labels) == c
        if not sel.any():
            continue
        mass = [float((recv[sel] * (sj[sel] == s)).sum(1).mean()) for s in range(n_subjets)]
        share = [float(((sj[sel] == s) & m[sel]).sum(1).mean() / m[sel].sum(1).mean()) for s in range(n_subjets)]
        out["per_class"][name] = {"attention_mass": mass, "particle_share": share}
    return out
