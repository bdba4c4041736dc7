"""Attention analysis on plain arrays, so the same functions read PyTorch recordings and firmware C-sim traces.

Shapes (n jets, H heads, N query rows, K keys; K = N for full/top-k, k for Linformer's projected weights):
    weights   (n, H, N, K)  attention weights, rows sum to 1 over kept keys (0 elsewhere)
    qk, u     (n, H, N, K)  pre-softmax terms: q·kᵀ (the 1/sqrt(d) is inside W_q) and the interaction bias U
    mask      (n, N)        1 for real particles (query rows of padded particles are ignored)
"""

from __future__ import annotations

import numpy as np

from l1tagger.errors import DataError


def _check(weights: np.ndarray, mask: np.ndarray):
    w = np.asarray(weights, np.float64)
    m = np.asarray(mask).astype(bool)
    if w.ndim != 4:
        raise DataError(f"attention weights must be (n_jets, heads, rows, keys), got shape {w.shape}")
    if m.shape != (w.shape[0], w.shape[2]) and not (w.shape[2] == 1 and m.shape[0] == w.shape[0]):
        raise DataError(f"mask shape {m.shape} does not match weights {w.shape}")
    return w, m


def _rows(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Real query rows as (n_rows, H, K); a single-row layer (class attention) keeps all jets."""
    if w.shape[2] == 1:
        return w[:, :, 0, :]
    jj, ii = np.nonzero(m)
    return w[jj, :, ii, :]


def binarity(weights: np.ndarray, mask: np.ndarray, threshold: float = 0.9, bins: int = 20) -> dict:
    """How binary the attention is: top-1 weight per row, row entropy (nats), fraction of rows with top-1 > threshold.

    Returns summary numbers per head and overall, plus histograms (for plotting).
    """
    w, m = _check(weights, mask)
    rows = _rows(w, m)  # (R, H, K)
    if rows.shape[0] == 0:
        raise DataError("no real query rows to analyse")
    top1 = rows.max(-1)
    p = np.clip(rows, 1e-12, 1.0)
    ent = -(np.where(rows > 0, rows * np.log(p), 0.0)).sum(-1)
    edges_t = np.linspace(0, 1, bins + 1)
    edges_e = np.linspace(0, max(np.log(w.shape[-1]), 1e-6), bins + 1)
    return {
        "n_rows": int(rows.shape[0] * rows.shape[1]),  # (query row, head) pairs
        "threshold": threshold,
        "frac_top1_above": float((top1 > threshold).mean()),
        "frac_top1_above_per_head": (top1 > threshold).mean(0).tolist(),
        "top1_mean": float(top1.mean()),
        "top1_median": float(np.median(top1)),
        "entropy_mean": float(ent.mean()),
        "entropy_max_possible": float(np.log(w.shape[-1])),
        "top1_hist": {"edges": edges_t.tolist(), "counts": np.histogram(top1, edges_t)[0].tolist()},
        "entropy_hist": {"edges": edges_e.tolist(), "counts": np.histogram(ent, edges_e)[0].tolist()},
    }


def logit_ratio(qk: np.ndarray, u: np.ndarray, mask: np.ndarray, key_mask: np.ndarray | None = None,
                bins: int = 30) -> dict:
    """|q·kᵀ| against |U| over real (query, key) pairs: distribution of log10(|qk|/|U|) and which term dominates.

    key_mask (n, K): real keys (default: ``mask`` when K == N, all keys otherwise, e.g. Linformer rows).
    """
    qk = np.asarray(qk, np.float64)
    u = np.asarray(u, np.float64)
    if qk.shape != u.shape:
        raise DataError(f"qk {qk.shape} and u {u.shape} differ in shape")
    _, m = _check(qk, mask)
    if key_mask is None:
        key_mask = m if qk.shape[-1] == qk.shape[2] else np.ones((qk.shape[0], qk.shape[-1]), bool)
    sel = (m[:, None, :, None] & np.asarray(key_mask).astype(bool)[:, None, None, :])
    sel = np.broadcast_to(sel, qk.shape)
    a, b = np.abs(qk[sel]), np.abs(u[sel])
    r = np.log10(np.clip(a, 1e-12, None) / np.clip(b, 1e-12, None))
    edges = np.linspace(-3, 3, bins + 1)
    per_head = []
    for h in range(qk.shape[1]):
        s = sel[:, h]
        per_head.append(float((np.abs(qk[:, h][s]) > np.abs(u[:, h][s])).mean()))
    return {
        "n_pairs": int(a.size),
        "mean_abs_qk": float(a.mean()),
        "mean_abs_u": float(b.mean()),
        "median_log10_ratio": float(np.median(r)),
        "frac_qk_dominates": float((a > b).mean()),
        "frac_qk_dominates_per_head": per_head,
        "dominant": "qk" if a.mean() > b.mean() else "u",
        "log10_ratio_hist": {"edges": edges.tolist(), "counts": np.histogram(np.clip(r, -3, 3), edges)[0].tolist()},
    }


def attention_received(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, N): attention each particle receives, averaged over heads and real query rows (sums to 1 per jet)."""
    w, m = _check(weights, mask)
    if w.shape[-1] != m.shape[1]:
        raise DataError("attention_received needs per-particle weights (use particle_weights for Linformer)")
    rowm = m[:, None, :, None] if w.shape[2] > 1 else np.ones((w.shape[0], 1, 1, 1), bool)
    tot = (w * rowm).sum(axis=(1, 2))
    nrows = rowm.sum(axis=(1, 2)) * w.shape[1]
    return tot / np.clip(nrows, 1, None)


def lepton_attention(weights: np.ndarray, mask: np.ndarray, is_lepton: np.ndarray, labels: np.ndarray,
                     class_names: list[str]) -> dict:
    """Attention to the lepton(s) in jets that contain one, against the uniform expectation n_lep/n_real.

    ``enhancement`` > 1 means the lepton receives more attention than an average particle, although the model
    saw no particle-type input (the "kin" feature set).
    """
    recv = attention_received(weights, mask)
    lep = np.asarray(is_lepton).astype(bool) & np.asarray(mask).astype(bool)
    has = lep.any(1)
    out = {"n_jets_with_lepton": int(has.sum()), "per_class": {}}
    for c, name in enumerate(class_names):
        sel = has & (np.asarray(labels) == c)
        if not sel.any():
            continue
        got = (recv[sel] * lep[sel]).sum(1)
        uniform = lep[sel].sum(1) / np.asarray(mask)[sel].astype(bool).sum(1)
        out["per_class"][name] = {"n_jets": int(sel.sum()), "attention_to_lepton": float(got.mean()),
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
