"""Figures of the attention analysis. Every figure is a PNG with a JSON of the same numbers beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1tagger.utils.atomic import atomic_path, atomic_write_json

#: marker per particle type (PID_FLAGS order), "." for unknown type
TYPE_MARKERS = {0: ("o", "charged hadron"), 1: ("s", "neutral hadron"), 2: ("^", "photon"), 3: ("P", "electron"),
                4: ("X", "muon"), -1: (".", "unknown")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, png: Path, numbers: dict) -> dict:
    plt = _plt()
    png = Path(png)
    fig.tight_layout()
    with atomic_path(png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    atomic_write_json(png.with_suffix(".json"), numbers)
    return {"png": str(png), "json": str(png.with_suffix(".json"))}


def attention_map(png, deta, dphi, pt, pid, mask, weights, title: str = "", line_threshold: float = 0.05) -> dict:
    """One jet, one head: particles on the eta-phi plane (marker by type, alpha by pT), pair lines whose
    intensity is the attention weight (query -> key); weights (N, N) per particle or (1, N) class attention."""
    plt = _plt()
    m = np.asarray(mask).astype(bool)
    idx = np.flatnonzero(m)
    pt = np.asarray(pt, np.float64)
    lpt = np.log(np.clip(pt[idx], 1e-3, None))
    alpha = np.clip(np.nan_to_num(0.2 + 0.8 * (lpt - lpt.min()) / max(np.ptp(lpt), 1e-9), nan=1.0), 0.0, 1.0)
    kind = np.where(np.asarray(pid)[idx].any(-1), np.asarray(pid)[idx].argmax(-1), -1)
    w = np.asarray(weights, np.float64)
    fig, ax = plt.subplots(figsize=(5, 5))
    lines = []
    if w.shape[0] > 1:
        for a in idx:
            for b in idx:
                if a != b and w[a, b] > line_threshold:
                    ax.plot([deta[a], deta[b]], [dphi[a], dphi[b]], color="tab:red", lw=0.5 + 2.5 * w[a, b],
                            alpha=float(min(1.0, w[a, b])), zorder=1)
                    lines.append([int(a), int(b), float(w[a, b])])
        received = w[idx][:, idx].sum(0)
    else:
        received = w[0, idx]
    for t, (marker, label) in TYPE_MARKERS.items():
        s = kind == t
        if s.any():
            size = 20 + 300 * np.clip(received[s], 0, None) / max(np.abs(received).max(), 1e-9)
            ax.scatter(deta[idx][s], dphi[idx][s], marker=marker, s=size,
                       c=[(0.1, 0.2, 0.7, a) for a in alpha[s]], label=label, zorder=2)
    ax.set_xlabel("$\\Delta\\eta$ to jet axis")
    ax.set_ylabel("$\\Delta\\phi$ to jet axis")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_aspect("equal", adjustable="datalim")
    numbers = {"title": title, "particles": {"deta": np.asarray(deta)[idx], "dphi": np.asarray(dphi)[idx],
                                             "pt": pt[idx], "type": kind, "attention_received": received},
               "lines_query_key_weight": lines, "line_threshold": line_threshold}
    return save_figure(fig, png, numbers)


def hist_panel(png, series: dict[str, dict], xlabel: str, title: str, extra: dict | None = None) -> dict:
    """Overlaid step histograms; series: label -> {"edges", "counts"}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, h in series.items():
        c = np.asarray(h["counts"], np.float64)
        ax.stairs(c / max(c.sum(), 1), h["edges"], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of rows")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, png, {"series": series, **(extra or {})})


def bar_panel(png, groups: dict[str, dict[str, float]], ylabel: str, title: str, extra: dict | None = None) -> dict:
    """Grouped bars: groups: group -> {bar label -> value}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(groups)
    bars = sorted({b for g in groups.values() for b in g})
    width = 0.8 / max(len(bars), 1)
    for i, b in enumerate(bars):
        ax.bar(np.arange(len(names)) + i * width, [groups[g].get(b, 0.0) for g in names], width, label=b)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, png, {"groups": groups, **(extra or {})})
