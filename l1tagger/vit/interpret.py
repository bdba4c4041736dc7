"""``interpret_vit(model, jets, out_dir)``: attention-rollout maps and attention fractions, as PNG + JSON.

Files (each PNG has a JSON of the same numbers next to it):

    mean_maps.png / .json            mean jet image and mean rollout map per class (image frame of the model)
    examples.png / .json             a few jets per class: image, rollout map, subjet axes and their circles
    attention_fraction.png / .json   per class and per (n_subjets, radius): distribution of the attention fraction,
                                     with the pT fraction and the area fraction (uniform-map baseline) of the same
                                     regions; per-jet values included
    summary.json                     metrics of the model on these jets, per-class means, and per task (QCD vs
                                     top, W vs Z, when the model's classes cover them) the difference of the
                                     fraction between the two sides and its AUC as a discriminant
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError
from l1tagger.training.metrics import auc, compute_metrics
from l1tagger.utils import dataclass_io
from l1tagger.utils.atomic import atomic_path, atomic_write_json
from l1tagger.vit.fraction import (SUBJET_ALGORITHMS, area_fraction, attention_fraction, recluster_subjets,
                                   region_masks, subjet_image_coords)
from l1tagger.vit.images import image_extent
from l1tagger.vit.inputs import model_inputs
from l1tagger.vit.rollout import HEAD_FUSIONS, rollout_maps
from l1tagger.vit.tasks import TASKS, resolve_groups, task_members


@dataclass
class InterpretConfig:
    """Settings of the attention-fraction analysis.

    n_subjets:   exclusive subjet counts to recluster into (each gives its own regions of interest)
    radii:       radii (ΔR in the image's η'–φ' frame) of the circles around the subjet axes
    algorithm:   subjet reclustering algorithm ("kt" or "cambridge"), exclusive mode
    head_fusion: how heads are fused in the rollout ("mean" as published, "max", "min")
    n_examples:  example jets drawn per class
    max_jets:    analyse at most this many jets (stratified by class, drawn with ``seed``; 0 = all)
    seed:        seed of the jet sample (``max_jets``)
    bins:        histogram bins over [0, 1]
    tasks:       {task name: {class: [dataset classes]}}; empty = ``l1tagger.vit.tasks.TASKS``
    """

    n_subjets: tuple[int, ...] = (2, 3)
    radii: tuple[float, ...] = (0.1, 0.2, 0.3)
    algorithm: str = "kt"
    head_fusion: str = "mean"
    n_examples: int = 3
    max_jets: int = 2000
    seed: int = 0
    bins: int = 20
    tasks: dict = field(default_factory=dict)

    def validate(self) -> "InterpretConfig":
        if not self.n_subjets or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.n_subjets):
            raise ConfigError(f"n_subjets: expected positive integers, got {self.n_subjets!r}")
        if not self.radii or any(not (float(r) > 0) for r in self.radii):
            raise ConfigError(f"radii: expected positive numbers, got {self.radii!r}")
        if self.algorithm not in SUBJET_ALGORITHMS:
            raise ConfigError(f"algorithm: {self.algorithm!r} is not one of {sorted(SUBJET_ALGORITHMS)}")
        if self.head_fusion not in HEAD_FUSIONS:
            raise ConfigError(f"head_fusion: {self.head_fusion!r} is not one of {sorted(HEAD_FUSIONS)}")
        if self.n_examples < 0 or self.max_jets < 0 or self.bins < 1:
            raise ConfigError("n_examples and max_jets must be >= 0, bins >= 1")
        for groups in self.tasks.values():
            resolve_groups(groups)
        return self

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "InterpretConfig":
        """Strict construction from a YAML mapping (``l1tagger.utils.dataclass_io.from_dict``: unknown keys and
        wrong types fail with the dotted field named), validated."""
        return dataclass_io.validated(dataclass_io.from_dict(cls, data, path), path)


def _key(n_sub: int, radius: float) -> str:
    return f"n{n_sub}_r{radius:g}"


def _save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _stats(values: np.ndarray, bins: int) -> dict:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0}
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    q16, q50, q84 = np.quantile(values, [0.16, 0.5, 0.84])
    return {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std()), "median": float(q50),
            "q16": float(q16), "q84": float(q84), "hist_counts": counts.tolist(), "hist_edges": edges.tolist()}


def _safe_fraction(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Like attention_fraction, NaN for an all-zero map (a jet with no pT inside the window)."""
    total = maps.sum(axis=(1, 2))
    inside = (maps * regions).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.full(len(maps), np.nan), where=total > 0)


def interpret_vit(model, jets: JetSet, out_dir: str | Path, config: InterpretConfig | None = None) -> dict:
    """Rollout maps and attention fractions of a trained JetViT on ``jets``; writes PNG + JSON into ``out_dir``
    and returns the summary dict (also written as ``summary.json``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = (config or InterpretConfig()).validate()
    out_dir = Path(out_dir)
    mcfg = model.config
    jets, images, frame = model_inputs(mcfg, jets)
    if cfg.max_jets and len(jets) > cfg.max_jets:
        keep = jets.sample_indices(cfg.max_jets, cfg.seed)  # every class, not the first rows of one
        jets, images = jets.subset(keep), images[keep]
        frame = dataclasses.replace(frame, **{f.name: getattr(frame, f.name)[keep] for f in dataclasses.fields(frame)})
    maps, probs = rollout_maps(model, images, head_fusion=cfg.head_fusion)
    names, labels = mcfg.class_names, jets.labels
    extent = image_extent(mcfg.image)

    # ---------------------------------------------------------------- fractions for every (n_subjets, radius)
    per_jet: dict[str, dict] = {}
    subjet_xy = {}
    for n_sub in cfg.n_subjets:
        x, y, valid = subjet_image_coords(recluster_subjets(jets, n_sub, cfg.algorithm), frame)
        subjet_xy[n_sub] = (x, y, valid)
        for r in cfg.radii:
            regions = region_masks(x, y, valid, float(r), mcfg.image)
            per_jet[_key(n_sub, r)] = {"n_subjets": n_sub, "radius": float(r),
                                       "attention": attention_fraction(maps, regions),
                                       "pt": _safe_fraction(images.astype(np.float64), regions),
                                       "area": area_fraction(regions)}

    fractions = {}
    for key, d in per_jet.items():
        fractions[key] = {"n_subjets": d["n_subjets"], "radius": d["radius"], "per_class": {}}
        for c, name in enumerate(names):
            sel = labels == c
            fractions[key]["per_class"][name] = {
                "attention": _stats(d["attention"][sel], cfg.bins),
                "pt_fraction_mean": float(np.nanmean(d["pt"][sel])) if sel.any() else None,
                "area_fraction_mean": float(d["area"][sel].mean()) if sel.any() else None,
            }
    atomic_write_json(out_dir / "attention_fraction.json", {
        "definition": "share of the rollout map inside circles of the given radius around the exclusive subjet axes",
        "algorithm": cfg.algorithm, "class_names": names, "labels": labels, "fractions": fractions,
        "per_jet": {k: {"attention": d["attention"], "pt": d["pt"], "area": d["area"]} for k, d in per_jet.items()},
    })
    fig, axes = plt.subplots(len(cfg.n_subjets), len(cfg.radii), squeeze=False,
                             figsize=(3.6 * len(cfg.radii), 2.8 * len(cfg.n_subjets)))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, n_sub in enumerate(cfg.n_subjets):
        for k, r in enumerate(cfg.radii):
            ax, d = axes[i, k], per_jet[_key(n_sub, r)]
            for c, name in enumerate(names):
                sel = labels == c
                if sel.any():
                    col = colours[c % len(colours)]
                    ax.hist(d["attention"][sel], bins=cfg.bins, range=(0, 1), histtype="step", density=True,
                            color=col, label=name)
                    ax.axvline(d["area"][sel].mean(), color=col, ls=":", lw=1)
            ax.set_title(f"{n_sub} subjets, R = {r:g}", fontsize=9)
            ax.set_xlabel("attention fraction")
    axes[0, 0].legend(fontsize=7, title="dotted: area", title_fontsize=7)
    _save_png(fig, out_dir / "attention_fraction.png")

    # --------------------------------------------------------------------------------------- mean maps per class
    mean_img = {n: images[labels == c].mean(0) for c, n in enumerate(names) if (labels == c).any()}
    mean_map = {n: maps[labels == c].mean(0) for c, n in enumerate(names) if (labels == c).any()}
    atomic_write_json(out_dir / "mean_maps.json", {"extent": extent, "orientation": "rows = phi', columns = eta'",
                                                   "mean_image": mean_img, "mean_rollout": mean_map})
    present = list(mean_img)
    fig, axes = plt.subplots(2, len(present), squeeze=False, figsize=(2.6 * len(present), 5.0))
    for k, name in enumerate(present):
        axes[0, k].imshow(np.log10(mean_img[name] + 1e-5), origin="lower", extent=extent, cmap="viridis")
        axes[0, k].set_title(f"{name}: mean image (log10)", fontsize=8)
        axes[1, k].imshow(mean_map[name], origin="lower", extent=extent, cmap="magma")
        axes[1, k].set_title(f"{name}: mean rollout", fontsize=8)
        axes[1, k].set_xlabel("η'")
    axes[0, 0].set_ylabel("φ'")
    axes[1, 0].set_ylabel("φ'")
    _save_png(fig, out_dir / "mean_maps.png")

    # ------------------------------------------------------------------------------------------------- examples
    n_sub_ex, r_ex = max(cfg.n_subjets), sorted(cfg.radii)[len(cfg.radii) // 2]
    ex_key = _key(n_sub_ex, r_ex)
    examples = []
    for c, name in enumerate(names):
        for j in np.flatnonzero(labels == c)[:cfg.n_examples]:
            x, y, v = (a[j] for a in subjet_xy[n_sub_ex])
            examples.append({"jet": int(j), "class": name, "probabilities": probs[j], "n_subjets": n_sub_ex,
                             "radius": r_ex, "subjet_x": x[v], "subjet_y": y[v],
                             "attention_fraction": float(per_jet[ex_key]["attention"][j]),
                             "pt_fraction": float(per_jet[ex_key]["pt"][j]), "image": images[j], "rollout": maps[j]})
    atomic_write_json(out_dir / "examples.json", {"extent": extent, "examples": examples})
    if examples:
        ncol = 2 * max(1, cfg.n_examples)
        rows = [e for e in examples]
        nrow = len({e["class"] for e in rows})
        fig, axes = plt.subplots(nrow, ncol, squeeze=False, figsize=(2.1 * ncol, 2.2 * nrow))
        for ax in axes.flat:
            ax.axis("off")
        row_of = {n: i for i, n in enumerate(dict.fromkeys(e["class"] for e in rows))}
        col_next = {n: 0 for n in row_of}
        for e in rows:
            i, k = row_of[e["class"]], col_next[e["class"]]
            col_next[e["class"]] += 2
            for ax, arr, cmap, title in ((axes[i, k], np.log10(e["image"] + 1e-4), "viridis", f"{e['class']} image"),
                                         (axes[i, k + 1], e["rollout"], "magma",
                                          f"rollout, AF={e['attention_fraction']:.2f}")):
                ax.axis("on")
                ax.imshow(arr, origin="lower", extent=extent, cmap=cmap)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(title, fontsize=7)
                for sx, sy in zip(e["subjet_x"], e["subjet_y"]):
                    ax.add_patch(plt.Circle((sx, sy), r_ex, fill=False, color="cyan", lw=1))
                    ax.plot(sx, sy, "c+", ms=5)
                ax.set_xlim(extent[:2])
                ax.set_ylim(extent[2:])
        _save_png(fig, out_dir / "examples.png")

    # -------------------------------------------------------------------------------------------------- summary
    tasks = cfg.tasks or TASKS
    task_results = {}
    for tname, groups in tasks.items():
        members = task_members(resolve_groups(groups), names)
        sides = list(members)
        if len(sides) != 2 or not all(members[s] for s in sides) or not all(np.isin(labels, members[s]).any()
                                                                             for s in sides):
            task_results[tname] = {"available": False, "reason": f"model classes {names} or jets do not cover "
                                                                 f"{dict(members)}"}
            continue
        a, b = (np.isin(labels, members[s]) for s in sides)
        res = {"available": True, "sides": {s: [names[i] for i in members[s]] for s in sides}, "by_region": {}}
        for key, d in per_jet.items():
            fa, fb = d["attention"][a], d["attention"][b]
            both = a | b
            res["by_region"][key] = {
                f"mean_{sides[0]}": float(fa.mean()), f"mean_{sides[1]}": float(fb.mean()),
                "difference": float(fb.mean() - fa.mean()),
                "auc": auc(d["attention"][both], b[both]),
                f"pt_fraction_mean_{sides[0]}": float(np.nanmean(d["pt"][a])),
                f"pt_fraction_mean_{sides[1]}": float(np.nanmean(d["pt"][b])),
            }
        task_results[tname] = res
    summary = {
        "n_jets": len(jets), "class_counts": jets.class_counts(), "model": mcfg.to_dict(),
        "interpret_config": dataclasses.asdict(cfg),
        "metrics": compute_metrics(probs, labels, names),
        "mean_attention_fraction": {k: {n: v["attention"].get("mean") for n, v in f["per_class"].items()}
                                    for k, f in fractions.items()},
        "mean_area_fraction": {k: {n: v["area_fraction_mean"] for n, v in f["per_class"].items()}
                               for k, f in fractions.items()},
        "mean_pt_fraction": {k: {n: v["pt_fraction_mean"] for n, v in f["per_class"].items()}
                             for k, f in fractions.items()},
        "tasks": task_results,
        "files": ["mean_maps.png", "mean_maps.json", "examples.png", "examples.json", "attention_fraction.png",
                  "attention_fraction.json"],
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
