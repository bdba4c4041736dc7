"""Glue: read a run directory (schema.py), estimate, plot, build_report, write report.json + report.md/html."""

from __future__ import annotations

import os
from pathlib import Path

from l1tagger.report import plots, schema
from l1tagger.report.budgets import load_budget
from l1tagger.report.budgets import DEFAULT_BUDGET
from l1tagger.report.estimates import estimate_graph
from l1tagger.report.page import ReportInputs, build_report, render_html, render_markdown
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text

RENDERERS = {"md": ("report.md", render_markdown), "html": ("report.html", render_html)}


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
    estimates = {}
    for m in progress(models, desc="estimates", disable=len(models) < 2):
        if m.onnx_path:
            estimates[m.name] = estimate_graph(m.onnx_path, clock_mhz=b.clock_mhz)
            atomic_write_json(Path(m.path) / "estimates.json", estimates[m.name])
    figures = {}
    if models:
        curves = {s: (models[0].metrics.get(s) or {}).get("roc_curves") for s in schema.METRIC_STAGES}
        figures["ROC curves"] = plots.roc_plot({k: v for k, v in curves.items() if v}, out / "report_roc.png")
    inputs = ReportInputs(budget=b, models=models, estimates=estimates)
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
