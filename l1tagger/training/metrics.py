"""Physics metrics on plain arrays (scores, labels): usable for float, QAT and firmware (C-simulation) outputs.

ROC/AUC are implemented here in numpy (no sklearn). Conventions follow the ParT paper (arXiv:2202.03772):

- accuracy: argmax of the class scores;
- per-class one-vs-rest AUC and their unweighted mean (macro AUC);
- background rejection 1/eps_B at signal efficiency eps_S for each signal class against the background
  (QCD/light) class(es), with the discriminant D = p_s / (p_s + sum_b p_b); eps_B is linearly interpolated on the
  ROC curve at eps_S. Working points: 50 % for every signal class, plus 99 % and 99.5 % where the paper quotes
  them (H->lvqq' at 99 %, t->blv at 99.5 %) and 99 % for all (reported under ``rej99``).
  If no background jet passes, the rejection is reported as null with ``rej..._lower_bound`` = number of
  background jets.
"""

from __future__ import annotations

import numpy as np

from l1tagger.errors import DataError

#: class names treated as background (case-insensitive) when the caller does not name them
BACKGROUND_NAMES = ("qcd", "g", "q", "gluon", "light", "quark", "uds")
#: extra working points quoted by the ParT paper, keyed by lower-cased class-name fragments
PAPER_WORKING_POINTS = {"hqql": 0.99, "hlvqq": 0.99, "tbl": 0.995, "tblv": 0.995}


def softmax_np(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def roc_curve(scores: np.ndarray, is_signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with thresholds decreasing; tied scores form one point. Starts at (0, 0)."""
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(is_signal).astype(bool).ravel()
    if s.shape != y.shape:
        raise DataError(f"scores ({s.shape}) and labels ({y.shape}) differ in length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"ROC needs both classes, got {n_pos} signal and {n_neg} background entries")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos], np.r_[np.inf, s[last]]


def auc(scores: np.ndarray, is_signal: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(is_signal).astype(bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"AUC needs both classes, got {n_pos} signal and {n_neg} background entries")
    order = np.argsort(s, kind="stable")
    ranks = np.empty(s.size, np.float64)
    sorted_s = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s) != 0) + 1]
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def background_classes(class_names: list[str], background: list[str] | None = None) -> list[int]:
    """Indices of the background classes: ``background`` by name, else BACKGROUND_NAMES, else class 0."""
    names = [c.lower() for c in class_names]
    if background:
        missing = [b for b in background if b.lower() not in names]
        if missing:
            raise DataError(f"background class(es) {missing} not in {class_names}")
        return [names.index(b.lower()) for b in background]
    idx = [i for i, c in enumerate(names) if c in BACKGROUND_NAMES]
    return idx or [0]


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def rejection(disc: np.ndarray, is_signal: np.ndarray, eff: float) -> dict:
    fpr, tpr, _ = roc_curve(disc, is_signal)
    # for each distinct tpr the smallest fpr reaching it (tpr repeats while only background passes)
    first = np.r_[True, np.diff(tpr) > 0]
    eps_b = float(np.interp(eff, tpr[first], fpr[first]))
    n_bkg = int((~np.asarray(is_signal, bool)).sum())
    if eps_b <= 0:
        return {"rejection": None, "lower_bound": n_bkg}
    return {"rejection": 1.0 / eps_b, "lower_bound": None}


def compute_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    background: list[str] | None = None,
    with_curves: bool = False,
) -> dict:
    """Metrics of class probabilities ``probs`` (n, C) against integer ``labels`` (n,). See module docstring."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    C = len(class_names)
    if probs.ndim != 2 or probs.shape[1] != C:
        raise DataError(f"scores must have shape (n_jets, {C}) for classes {class_names}, got {probs.shape}")
    if labels.shape != (probs.shape[0],):
        raise DataError(f"labels must have shape ({probs.shape[0]},), got {labels.shape}")
    if not np.isfinite(probs).all():
        raise DataError("scores contain NaN/inf")
    if labels.size and (labels.min() < 0 or labels.max() >= C):
        raise DataError(f"labels outside [0, {C})")
    out: dict = {"n_jets": int(labels.size), "class_names": list(class_names),
                 "accuracy": float((probs.argmax(1) == labels).mean())}
    per_auc = {}
    for c, name in enumerate(class_names):
        y = labels == c
        per_auc[name] = auc(probs[:, c], y) if 0 < y.sum() < y.size else None
    valid = [v for v in per_auc.values() if v is not None]
    out["auc_macro"] = float(np.mean(valid)) if valid else None
    out["auc_per_class"] = per_auc
    bkg = background_classes(class_names, background)
    out["background_classes"] = [class_names[b] for b in bkg]
    pb = probs[:, bkg].sum(1)
    is_bkg = np.isin(labels, bkg)
    rej, curves = {}, {}
    for c, name in enumerate(class_names):
        if c in bkg:
            continue
        sel = (labels == c) | is_bkg
        y = labels[sel] == c
        if y.sum() == 0 or (~y).sum() == 0:
            rej[name] = None
            continue
        disc = probs[sel, c] / np.clip(probs[sel, c] + pb[sel], 1e-30, None)
        entry = {}
        wps = {"rej50": 0.5, "rej99": 0.99}
        paper = PAPER_WORKING_POINTS.get(_norm(name))
        if paper and paper not in wps.values():
            wps[f"rej{paper * 100:g}".replace(".", "p")] = paper
        for key, eff in wps.items():
            r = rejection(disc, y, eff)
            entry[key] = r["rejection"]
            if r["lower_bound"] is not None:
                entry[f"{key}_lower_bound"] = r["lower_bound"]
        entry["paper_working_point"] = paper or 0.5
        rej[name] = entry
        if with_curves:
            fpr, tpr, _ = roc_curve(disc, y)
            curves[name] = {"tpr": tpr, "fpr": fpr}
    out["rejection"] = rej
    if with_curves:
        out["_curves"] = curves
    return out


def metrics_from_logits(logits, labels, class_names, background=None, with_curves=False) -> dict:
    """``compute_metrics`` of logits (the QAT and firmware steps produce logits)."""
    return compute_metrics(softmax_np(logits), labels, class_names, background, with_curves)


def _downsample(tpr: np.ndarray, fpr: np.ndarray, n: int = 200):
    if tpr.size <= n:
        return tpr, fpr
    idx = np.unique(np.r_[np.linspace(0, tpr.size - 1, n).astype(int), tpr.size - 1])
    return tpr[idx], fpr[idx]


def write_metrics(metrics: dict, json_path, png_path=None, title: str = "") -> dict:
    """Write metrics JSON (atomic) and, if curves were computed, the ROC PNG with its numbers in the JSON."""
    from l1tagger.utils.atomic import atomic_path, atomic_write_json

    curves = metrics.pop("_curves", None)
    if curves is not None and png_path is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        roc_json = {}
        for name, cv in curves.items():
            tpr, fpr = _downsample(cv["tpr"], cv["fpr"])
            keep = fpr > 0
            ax.plot(tpr[keep], 1.0 / fpr[keep], label=f"{name} vs {'+'.join(metrics['background_classes'])}")
            roc_json[name] = {"signal_efficiency": tpr, "background_efficiency": fpr}
        ax.set_yscale("log")
        ax.set_xlabel("signal efficiency $\\epsilon_S$")
        ax.set_ylabel("background rejection $1/\\epsilon_B$")
        ax.set_title(title or f"ROC (accuracy {metrics['accuracy']:.3f})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(png_path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        metrics["roc_png"] = str(png_path)
        metrics["roc_curves"] = roc_json
    atomic_write_json(json_path, metrics)
    return metrics
