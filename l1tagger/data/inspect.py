"""Look at a jet file: class counts and the per-class soft-drop mass and tau21 distributions (PNG + JSON).

Jets whose file carries no ``sdmass`` / ``tau1`` / ``tau2`` (the top-tagging and some hls4ml files) get them
computed from the stored constituents with ``l1tagger.physics.substructure`` (recorded as ``computed`` in the
JSON: with truncated constituent lists the values are approximate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import OutputError
from l1tagger.physics.substructure import substructure, tau_ratio
from l1tagger.utils.atomic import atomic_path, atomic_write_json


@dataclass(frozen=True)
class InspectConfig:
    """Histogram ranges and binning of ``l1tagger inspect``."""

    mass_range: tuple[float, float] = (0.0, 300.0)
    mass_bins: int = 60
    tau21_range: tuple[float, float] = (0.0, 1.0)
    tau21_bins: int = 40


def jet_observables(js: JetSet) -> tuple[dict[str, np.ndarray], bool]:
    """(sdmass, tau21) per jet, and whether they had to be computed from the constituents."""
    have = all(k in js.jet for k in ("sdmass", "tau1", "tau2"))
    jet = js.jet if have else substructure(js.p4, js.n_particles)
    return {"sdmass": np.asarray(jet["sdmass"], np.float64),
            "tau21": tau_ratio(jet["tau2"], jet["tau1"])}, not have


def summarize(js: JetSet, cfg: InspectConfig = InspectConfig()) -> dict:
    """Counts, histograms and summary statistics per class (plain JSON-able dict)."""
    obs, computed = jet_observables(js)
    m_edges = np.linspace(*cfg.mass_range, cfg.mass_bins + 1)
    t_edges = np.linspace(*cfg.tau21_range, cfg.tau21_bins + 1)
    classes = {}
    for k, name in enumerate(js.class_names):
        sel = js.labels == k
        m, t = obs["sdmass"][sel], obs["tau21"][sel]
        hm, _ = np.histogram(m, m_edges)
        ht, _ = np.histogram(t, t_edges)
        classes[name] = {
            "count": int(sel.sum()),
            "sdmass_hist": hm.tolist(),
            "tau21_hist": ht.tolist(),
            "sdmass_peak": float(0.5 * (m_edges[hm.argmax()] + m_edges[hm.argmax() + 1])) if sel.any() else None,
            "sdmass_median": float(np.median(m)) if sel.any() else None,
            "tau21_mean": float(t.mean()) if sel.any() else None,
            "n_particles_mean": float(js.n_particles[sel].mean()) if sel.any() else None,
        }
    return {
        "n_jets": len(js),
        "max_particles": js.max_particles,
        "class_counts": js.class_counts(),
        "substructure_computed_from_constituents": computed,
        "sdmass_edges": m_edges.tolist(),
        "tau21_edges": t_edges.tolist(),
        "config": asdict(cfg),
        "classes": classes,
    }


def plot_summary(summary: dict, png_path: str | Path, title: str = "") -> Path:
    """Draw the per-class soft-drop mass and tau21 distributions (unit area) to ``png_path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, edges, xlabel in (
        (axes[0], "sdmass_hist", np.asarray(summary["sdmass_edges"]), "soft-drop mass [GeV]"),
        (axes[1], "tau21_hist", np.asarray(summary["tau21_edges"]), r"$\tau_{21}$"),
    ):
        for name, c in summary["classes"].items():
            h = np.asarray(c[key], dtype=np.float64)
            if h.sum() == 0:
                continue
            ax.stairs(h / h.sum() / np.diff(edges), edges, label=f"{name} ({c['count']})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    png_path = Path(png_path)
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return png_path


def inspect_file(path: str | Path, png_path: str | Path, cfg: InspectConfig = InspectConfig(),
                 max_jets: int | None = None, seed: int = 0, **load_kw) -> dict:
    """Load any supported jet file, write ``png_path`` and ``png_path`` with .json, return the summary.

    max_jets: look at a class-balanced random subset of this many jets (``JetSet.sample`` with ``seed``)
    load_kw:  passed to ``l1tagger.data.io.load_jets`` (format, max_particles)
    """
    from l1tagger.data.io import load_jets, output_problem

    js = load_jets(path, **load_kw).sample(max_jets, seed)
    summary = summarize(js, cfg)
    summary["file"] = str(path)
    summary["source_format"] = js.meta.get("source_format")
    summary["sampled"] = None if max_jets is None else {"max_jets": int(max_jets), "seed": int(seed)}
    try:
        plot_summary(summary, png_path, title=Path(path).name)
        atomic_write_json(Path(png_path).with_suffix(".json"), summary)
    except OSError as exc:
        raise OutputError(f"{png_path}: cannot write the plot: {output_problem(exc)}") from exc
    return summary
