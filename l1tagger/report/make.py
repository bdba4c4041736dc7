"""Glue: read a run directory (schema.py), estimate, da4ml cost, plot, build_report, write report.json +
report.md/html.

Per model: the estimate (``estimates.json`` beside the graph), da4ml's cost of the same graph
(:mod:`l1tagger.report.da4ml_cost`, cached in the model's HLS project, or beside the graph without one; computed
also when the RTL step did not run) and, for an HGQ model, the trade-off its QAT found (``qat/metrics.json``
history: EBOPs and validation accuracy per epoch; ``qat/target.json``: the target and where it came from).
"""

from __future__ import annotations

import os
from pathlib import Path

from l1tagger.report import plots, schema
from l1tagger.report.budgets import DEFAULT_BUDGET, load_budget
from l1tagger.report.da4ml_cost import DEFAULT_LATENCY_CUTOFF, cached_da4ml_cost
from l1tagger.report.estimates import estimate_graph
from l1tagger.report.page import ReportInputs, build_report, render_html, render_markdown
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text

RENDERERS = {"md": ("report.md", render_markdown), "html": ("report.html", render_html)}

#: in a run directory: the resolved EBOPs target of an HGQ QAT and its source (written by the pipeline's qat step)
TARGET_FILE = Path("qat") / "target.json"

#: history fields the trade-off table keeps per epoch
TRADEOFF_FIELDS = ("epoch", "ebops", "val_accuracy", "beta", "pruned", "mean_bits")


def hgq_tradeoff(model_dir) -> dict | None:
    """The trade-off an HGQ QAT found, from ``<model_dir>/qat/metrics.json`` (None for a uniform recipe or without
    one): the target and its source, per epoch EBOPs / validation accuracy / beta, the kept epoch and the smallest
    cost reached."""
    d = Path(model_dir)
    data = schema._read_json(d / "qat" / "metrics.json")
    if not data or not isinstance(data.get("hgq"), dict):
        return None
    info, history = data["hgq"], data.get("history") or []
    rows = [{k: h.get(k) for k in TRADEOFF_FIELDS} for h in history if h.get("ebops") is not None]
    cheapest = min(rows, key=lambda r: r["ebops"]) if rows else None
    target = schema._read_json(d / TARGET_FILE) or {}
    return {"target_ebops": info.get("target_ebops"), "target_source": target.get("source", "recipe"),
            "target_detail": target.get("detail"), "selected_epoch": info.get("selected_epoch"),
            "reached_target": info.get("reached_target"), "ebops_start": info.get("ebops_start"),
            "ebops_final": info.get("ebops_final"), "warning": info.get("warning"), "history": rows,
            "smallest_ebops": cheapest}


def _cost_dir(m) -> Path:
    """Where a model's da4ml cost is cached: its HLS project, else beside its graph."""
    return Path(m.project) if m.project else Path(m.onnx_path).parent


def _latency_cutoff(m) -> float:
    """The da4ml latency cutoff of the model's RTL route (its rtl_summary), else the RTL route's default."""
    cfg = (m.rtl or {}).get("config") or {}
    return float(cfg.get("latency_cutoff") or DEFAULT_LATENCY_CUTOFF)


def write_report(run_dir, budget=DEFAULT_BUDGET, fmt="md", project_dir=None, out_dir=None) -> dict:
    """Write the page; returns {"json": path, "page": path, "report": dict}."""
    from l1tagger.utils.progress import progress

    from l1tagger.errors import ConfigError

    if fmt not in RENDERERS:
        raise ConfigError(f"format {fmt!r}: choose one of {sorted(RENDERERS)}")
    b = load_budget(budget)
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir
    models = schema.collect(run_dir, project_dir)
    estimates, da4ml, hgq = {}, {}, {}
    for m in progress(models, desc="estimates", disable=len(models) < 2):
        if m.onnx_path:
            estimates[m.name] = estimate_graph(m.onnx_path, clock_mhz=b.clock_mhz)
            atomic_write_json(Path(m.path) / "estimates.json", estimates[m.name])
            da4ml[m.name] = cached_da4ml_cost(m.onnx_path, _cost_dir(m), _latency_cutoff(m))
        hgq[m.name] = hgq_tradeoff(m.path)
    figures = {}
    if models:
        curves = {s: (models[0].metrics.get(s) or {}).get("roc_curves") for s in schema.METRIC_STAGES}
        figures["ROC curves"] = plots.roc_plot({k: v for k, v in curves.items() if v}, out / "report_roc.png")
    inputs = ReportInputs(budget=b, models=models, estimates=estimates, da4ml=da4ml,
                          hgq={k: v for k, v in hgq.items() if v})
    report = build_report(inputs)
    report["figures"] = {}
    pareto = plots.pareto_plot(report["pareto"], out / "report_pareto.png") if report.get("pareto") else None
    figures["Pareto: accuracy vs cost"] = pareto
    for name, fig in figures.items():
        if fig:
            report["figures"][name] = {**fig, "png_rel": os.path.relpath(fig["png"], out),
                                       "json_rel": os.path.relpath(fig["json"], out)}
    json_path = atomic_write_json(out / "report.json", report)
    page_name, renderer = RENDERERS[fmt]
    page_path = atomic_write_text(out / page_name, renderer(report))
    return {"json": str(json_path), "page": str(page_path), "report": report}
