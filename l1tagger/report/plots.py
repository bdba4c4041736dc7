"""Report figures: PNG (matplotlib, Agg) plus a JSON of the same numbers beside it."""

from __future__ import annotations

from pathlib import Path

from l1tagger.utils.atomic import atomic_path, atomic_write_json


def _save(fig, png: Path, numbers: dict) -> dict:
    import matplotlib.pyplot as plt

    with atomic_path(png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    atomic_write_json(png.with_suffix(".json"), numbers)
    return {"png": str(png), "json": str(png.with_suffix(".json"))}


def roc_plot(curves_by_stage: dict, png: Path) -> dict | None:
    """curves_by_stage: stage -> {class: {signal_efficiency, background_efficiency}}; rejection vs efficiency."""
    if not any(curves_by_stage.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4.5))
    styles = {"float": "-", "qat": "--", "firmware": ":"}
    for stage, curves in curves_by_stage.items():
        for i, (cls, c) in enumerate(sorted((curves or {}).items())):
            s, b = np.asarray(c["signal_efficiency"], float), np.asarray(c["background_efficiency"], float)
            keep = b > 0
            ax.plot(s[keep], 1.0 / b[keep], styles.get(stage, "-"), color=f"C{i}", label=f"{cls} ({stage})")
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency $\\epsilon_S$")
    ax.set_ylabel("background rejection $1/\\epsilon_B$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _save(fig, png, {"roc_curves": curves_by_stage})


def pareto_plot(points: list[dict], png: Path) -> dict | None:
    """points: {name, accuracy, cost, cost_source, attention, recipe}; marks the Pareto front (max acc, min cost)."""
    pts = [p for p in points if p.get("accuracy") is not None and p.get("cost") is not None]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(pts)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    kinds = sorted({p.get("attention") or "?" for p in pts})
    for i, k in enumerate(kinds):
        sel = [p for p in pts if (p.get("attention") or "?") == k]
        ax.scatter([p["cost"] for p in sel], [p["accuracy"] for p in sel], color=f"C{i}", label=k)
        for p in sel:
            ax.annotate(p["name"], (p["cost"], p["accuracy"]), fontsize=6)
    fr = sorted(front, key=lambda p: p["cost"])
    ax.step([p["cost"] for p in fr], [p["accuracy"] for p in fr], where="post", color="k", lw=0.8, label="Pareto front")
    ax.scatter([p["cost"] for p in fr], [p["accuracy"] for p in fr], s=90, facecolors="none", edgecolors="k")
    ax.set_xscale("log")
    ax.set_xlabel("cost = LUT + 55 DSP (estimate unless a synthesis report exists)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, png, {"points": pts, "front": [p["name"] for p in fr]})


def pareto_front(points: list[dict]) -> list[dict]:
    """Points not dominated by another (higher-or-equal accuracy at lower-or-equal cost, one strictly)."""
    out = []
    for p in points:
        dominated = any(q is not p and q["accuracy"] >= p["accuracy"] and q["cost"] <= p["cost"]
                        and (q["accuracy"] > p["accuracy"] or q["cost"] < p["cost"]) for q in points)
        if not dominated:
            out.append(p)
    return out
