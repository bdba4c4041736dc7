"""``interpret(tagger, jets, out_dir)``: record attention on a dataset and write every figure (PNG + JSON); the
tagger is a ``LoadedTagger`` (``l1tagger.training.load_tagger``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from l1tagger.data.jetset import JetSet
from l1tagger.interpret import analysis as A
from l1tagger.interpret import plots
from l1tagger.interpret.kinematics import exclusive_subjets, ordered_kinematics
from l1tagger.models.tagger import recording
from l1tagger.training.artifact import LoadedTagger
from l1tagger.utils.atomic import atomic_write_json


def record(tagger: LoadedTagger, jets: JetSet, batch_size: int = 256) -> list[dict]:
    """Per layer dict of concatenated numpy recordings (weights, particle_weights, qk, u) of ``tagger``'s model over
    ``jets``."""
    inputs = tagger.inputs(jets)
    model = tagger.model
    device = next(model.parameters()).device
    model.eval()
    chunks: list[list[dict]] = []
    with torch.no_grad(), recording(model):
        for i in range(0, len(inputs), batch_size):
            x, m, p = inputs.tensors(slice(i, i + batch_size), device)
            model(x, m, p)
            chunks.append(model.attention_records())
    layers = []
    for li, rec in enumerate(chunks[0]):
        out = {"layer": rec["layer"]}
        for key in ("weights", "particle_weights", "qk", "u"):
            out[key] = None if rec[key] is None else np.concatenate([c[li][key] for c in chunks])
        layers.append(out)
    return layers


def interpret(tagger: LoadedTagger, jets: JetSet, out_dir, map_jets: int = 2, n_subjets: int = 3,
              layers: list[dict] | None = None, source: str = "pytorch") -> dict:
    """Write attention maps, binarity, q·kᵀ vs U row spreads, lepton and subjet attention for ``tagger`` on ``jets``
    (the numbers are defined in docs/interpretation.md).

    ``layers``: attention recorded elsewhere (e.g. the firmware's C-simulation trace, see
    ``firmware_layers``), same layout as ``record``; default: record the PyTorch model on ``jets``.
    """
    cfg = tagger.model_config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if layers is None:
        layers = record(tagger, jets)
    kin = ordered_kinematics(jets, cfg.n_particles, cfg.ordering)
    mask, labels, names = kin["mask"], jets.labels, list(jets.class_names)
    summary: dict = {"source": source, "attention": cfg.attention, "ordering": cfg.ordering, "features": cfg.features,
                     "n_jets": len(jets), "class_counts": jets.class_counts(), "layers": {}, "figures": {}}
    subjet = exclusive_subjets(kin["p4"], mask, n_subjets)
    topk = cfg.topk_k if cfg.attention == "topk" else 0
    for L in layers:
        name = L["layer"]
        s: dict = {}
        # keys of a row: real particles, or all k projected rows of a Linformer block (even when k == N);
        # the class-attention pooling (one query row) is a plain softmax over the real particles
        pooling = L["weights"].shape[2] == 1
        key_mask = (np.ones((len(mask), L["weights"].shape[-1]), bool)
                    if cfg.attention == "linformer" and not pooling else None)
        layer_topk = 0 if pooling else topk
        # 2. binarity, overall and per class
        series = {}
        per_class = {}
        for c, cname in enumerate(names):
            sel = labels == c
            if sel.any():
                b = A.binarity(L["weights"][sel], mask[sel], topk=layer_topk,
                               key_mask=None if key_mask is None else key_mask[sel])
                series[cname] = b["top1_hist"]
                per_class[cname] = {k: b[k] for k in ("frac_top1_above", "top1_mean", "entropy_norm_mean")}
        b_all = A.binarity(L["weights"], mask, key_mask=key_mask, topk=layer_topk)
        s["binarity"] = {k: v for k, v in b_all.items() if not k.endswith("hist")} | {"per_class": per_class}
        summary["figures"][f"{name}.top1"] = plots.hist_panel(
            out / f"{name}_top1.png", series, "largest weight in the row",
            f"{name}: top-1 weight ({cfg.attention}); frac>0.9 = {b_all['frac_top1_above']:.2f}",
            {"summary": s["binarity"]})
        ent = b_all["entropy_norm_mean"]
        summary["figures"][f"{name}.entropy"] = plots.hist_panel(
            out / f"{name}_entropy.png", {"all": b_all["entropy_norm_hist"]},
            f"row entropy / {b_all['entropy_normalisation']} (1 = uniform, 0 = one-hot)",
            f"{name}: normalised row entropy, mean " + ("n/a (single-key rows)" if ent is None else f"{ent:.2f}"),
            {"summary": s["binarity"]})
        # 3. q·kᵀ vs U: spread within a row over its real keys (softmax ignores a per-row constant)
        if L["u"] is not None:
            r = A.logit_spread(L["qk"], L["u"], mask, key_mask=key_mask)
            s["qk_vs_u"] = {k: v for k, v in r.items() if not k.endswith("hist")}
            summary["figures"][f"{name}.qk_vs_u"] = plots.hist_panel(
                out / f"{name}_qk_vs_u_row_spread.png",
                {"log10 spread(qk)/spread(U)": r["log10_qk_over_u_row_spread_hist"]},
                "log10 [std(q·k) / std(U)] within a row, over real keys",
                f"{name}: larger row spread {r['larger_row_spread']} "
                f"(frac rows spread(U) > spread(qk) = {r['frac_rows_u_spread_exceeds_qk']:.2f})",
                {"summary": s["qk_vs_u"]})
        # 4. leptons and subjets (per-particle weights)
        pw = L["particle_weights"]
        lep = A.lepton_attention(pw, mask, kin["hardest_lepton"], labels, names)
        s["lepton"] = lep
        if lep["per_class"]:
            summary["figures"][f"{name}.lepton"] = plots.bar_panel(
                out / f"{name}_lepton.png",
                {c: {"attention to hardest e/mu": v["attention_to_hardest_lepton"],
                     "uniform": v["uniform_expectation"]} for c, v in lep["per_class"].items()},
                "mean attention received", f"{name}: hardest electron/muon in the jet (features: {cfg.features})",
                lep)
        sj = A.subjet_attention(pw, mask, subjet, labels, names, n_subjets)
        s["subjets"] = sj
        summary["figures"][f"{name}.subjets"] = plots.bar_panel(
            out / f"{name}_subjets.png",
            {c: {f"subjet {i + 1}": v["attention_mass"][i] for i in range(n_subjets)} for c, v in sj["per_class"].items()},
            "attention mass", f"{name}: attention per exclusive-kT subjet", sj)
        # 1. maps for the first jets of each class
        for c, cname in enumerate(names):
            for j in np.flatnonzero(labels == c)[:map_jets]:
                for h in range(pw.shape[1]):
                    key = f"{name}.map.{cname}.jet{j}.h{h}"
                    summary["figures"][key] = plots.attention_map(
                        out / "maps" / f"{name}_{cname}_jet{j}_h{h}.png", kin["deta"][j], kin["dphi"][j],
                        kin["pt"][j], kin["pid"][j], mask[j], pw[j, h], title=f"{cname} jet {j}, {name} head {h}")
        summary["layers"][name] = s
    atomic_write_json(out / "summary.json", summary)
    return summary


def firmware_layers(tagger: LoadedTagger, jets: JetSet, project_dir) -> list[dict]:
    """Attention weights of the firmware: run ``jets`` (made graph inputs with ``tagger``'s config and feature
    scaler, :func:`l1tagger.qat.artifact.testbench_feed`) through the HLS project's C simulation with per-layer
    tracing and regroup its softmax outputs into ``record``'s layout (no q·kᵀ / U split: the firmware only has
    their sum). Linformer weights act on projected rows, not particles, so they cannot be drawn per particle."""
    from l1tagger.errors import ConfigError
    from l1tagger.qat.artifact import testbench_feed
    from l1tagger.verify.attention import attention_from_project

    cfg = tagger.model_config
    if cfg.attention == "linformer":
        raise ConfigError("firmware attention maps need per-particle weights; a Linformer's softmax acts on the "
                          f"{cfg.linformer_k} projected rows, not on particles")
    groups = attention_from_project(project_dir, cfg.n_heads, inputs=testbench_feed(tagger, jets))
    layers = []
    for i, g in enumerate(groups):
        w = g["weights"]
        if w.shape[-2] != w.shape[-1]:  # class-attention pooling (one query row): not a particle x particle map
            continue
        layers.append({"layer": f"firmware_{i}", "weights": w, "particle_weights": w, "qk": None, "u": None})
    if not layers:
        raise ConfigError(f"{project_dir}: no particle x particle attention layer found in the C-simulation trace")
    return layers
