"""The sweep's table: one row per point from its ``runs/<name>/report.json`` and metrics, the Pareto fronts, and
``pareto.json`` + ``pareto.md`` + ``pareto.png`` in the sweep folder.

Per point: accuracy and macro AUC of the quantized model on the whole test split (the QAT metrics: the firmware's
arithmetic, bit for bit where the C simulation says so) with the number of test jets; the firmware's own accuracy
on the C-simulation test bench; background rejection 1/eps_B at the sweep's signal efficiency per signal class and
their geometric mean; cost three ways, da4ml's LUT estimate of the open RTL route (points with ``rtl`` on), EBOPs
and the estimated LUT of the hls4ml route (from the report, with their source); latency; and the bit-exact verdict
with the number of jets behind it (C simulation, plus da4ml interpreter / Verilator co-simulation where they ran).

A point is on the Pareto front of (metric, cost) when no other point has a cost as low or lower and a metric as high
or higher, one of them strictly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from l1tagger.utils.atomic import atomic_path, atomic_write_json, atomic_write_text

#: cost axes: key -> label
COSTS = {"da4ml_lut": "da4ml LUT estimate (RTL route)", "ebops": "EBOPs", "lut": "estimated LUT (hls4ml route)"}
#: metrics (higher is better): key -> label (the rejection label gets the signal efficiency)
METRICS = {"accuracy": "accuracy (QAT, test split)", "rejection": "background rejection"}
#: which jets the C simulation checks (pipeline: the first n_csim_jets of the shuffled test split)
TESTBENCH_JETS = "the first n_csim_jets jets of the shuffled test split (the C-simulation test bench)"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _read(path: Path) -> dict | None:
    """A JSON object file, or None when it is missing or damaged (the row then shows "—")."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def rejection_at(metrics: dict, eff: float) -> dict:
    """Background rejection at signal efficiency ``eff`` per signal class from a metrics JSON
    (``l1tagger.training.metrics``): its stored working point when it has one (rej50, rej99, ...), else read off
    its stored ROC curve (linear interpolation of eps_B at eps_S, as ``metrics.rejection`` does on the full
    curve). {"per_class": {class: value or None}, "lower_bounds": {...}, "geomean": value or None, "source"}."""
    key = f"rej{eff * 100:g}".replace(".", "p")
    per_class, bounds, sources = {}, {}, set()
    curves = _dict(metrics.get("roc_curves"))
    for cls, entry in _dict(metrics.get("rejection")).items():
        entry = _dict(entry)
        if key in entry:
            per_class[cls] = entry[key]
            if entry.get(f"{key}_lower_bound") is not None:
                bounds[cls] = entry[f"{key}_lower_bound"]
            sources.add(f"stored working point {key}")
            continue
        curve = _dict(curves.get(cls))
        tpr = np.asarray(curve.get("signal_efficiency") or [], np.float64)
        fpr = np.asarray(curve.get("background_efficiency") or [], np.float64)
        if tpr.size < 2 or tpr.size != fpr.size:
            per_class[cls] = None
            continue
        first = np.r_[True, np.diff(tpr) > 0]  # the smallest eps_B reaching each eps_S
        eps_b = float(np.interp(eff, tpr[first], fpr[first]))
        per_class[cls] = 1.0 / eps_b if eps_b > 0 else None
        sources.add(f"stored ROC curve ({tpr.size} points) interpolated at eps_S = {eff:g}")
    finite = [v for v in per_class.values() if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    return {"signal_efficiency": eff, "per_class": per_class, "lower_bounds": bounds,
            "geomean": float(np.exp(np.mean(np.log(finite)))) if finite else None,
            "source": "; ".join(sorted(sources)) or "no metrics"}


def bit_exact_verdict(report: dict | None, csim) -> dict:
    """{"verdict": "bit-exact" | "NOT bit-exact" | "not checked", "n_jets", "checks": {check: {bit_exact, n_jets}}}
    from the report (or, for a run stopped before its report, the C-simulation result ``csim``)."""
    checks = {}
    be = _dict((report or {}).get("bit_exact"))
    if be:
        checks["csim"] = {"bit_exact": be.get("bit_exact"), "n_jets": be.get("n_jets")}
    elif csim is not None:
        checks["csim"] = {"bit_exact": csim.bit_exact, "n_jets": csim.n_jets}
    rr = _dict((report or {}).get("rtl_route"))
    for key in ("interp", "cosim"):
        c = _dict(rr.get(key))
        if c:
            checks[f"rtl_{key}"] = {"bit_exact": c.get("bit_exact"), "n_jets": c.get("n_jets")}
    if any(c["bit_exact"] is False for c in checks.values()):
        verdict = "NOT bit-exact"
    elif checks.get("csim", {}).get("bit_exact") is True:
        verdict = "bit-exact"
    else:
        verdict = "not checked"
    n = checks.get("csim", {}).get("n_jets")
    return {"verdict": verdict, "n_jets": n, "jets": TESTBENCH_JETS if n else None, "checks": checks}


def point_row(point, cfg, result: dict | None, signal_efficiency: float) -> dict:
    """The table row of one point (``result``: this invocation's run of it, None when it was finished before)."""
    from l1tagger.pipeline.config import DERIVED
    from l1tagger.errors import L1TaggerError
    from l1tagger.utils.dataclass_io import to_dict
    from l1tagger.verify import csim_result

    run_dir = cfg.run_dir
    report = _read(run_dir / "report.json")
    if result is None:
        state = "finished earlier" if report else "not run"
    elif result.get("returncode") == 0:
        state = "finished"
    else:
        state = f"failed (exit {result.get('returncode')})" if result.get("returncode") is not None else "failed"
    try:
        csim = csim_result.read(cfg.project_dir) if report is None and cfg.project_dir.is_dir() else None
    except L1TaggerError:  # a damaged result file: no verdict
        csim = None
    physics = _dict((report or {}).get("physics"))
    qat, fw, flt = (_dict(physics.get(s)) for s in ("qat", "firmware", "float"))
    hw = _dict((report or {}).get("hardware"))
    est = _dict(_dict((report or {}).get("estimate")).get("total"))
    rr = _dict((report or {}).get("rtl_route"))
    da = _dict((report or {}).get("da4ml_cost"))
    metrics = _read(run_dir / "metrics" / "qat.json") or {}
    row = {
        "name": point.name, "origin": point.origin, "overrides": point.overrides, "state": state,
        "returncode": (result or {}).get("returncode"), "seconds": (result or {}).get("seconds"),
        "error": (result or {}).get("error"), "log": (result or {}).get("log"),
        "run_dir": str(run_dir), "project_dir": str(cfg.project_dir),
        "accuracy": qat.get("accuracy"), "accuracy_n_jets": qat.get("n_jets"), "accuracy_jets": "test split",
        "auc_macro": qat.get("auc_macro"), "accuracy_float": flt.get("accuracy"),
        "firmware_accuracy": fw.get("accuracy"), "firmware_n_jets": fw.get("n_jets"),
        "rejection": rejection_at(metrics, signal_efficiency) if metrics else None,
        # da4ml's cost of the graph: the report's (every model, RTL step on or off), else the RTL route's
        "da4ml_lut": da.get("lut") if da.get("lut") is not None else rr.get("da4ml_lut_estimate"),
        "ebops": est.get("ebops"),
        "lut": _dict(hw.get("lut")).get("value"), "lut_source": _dict(hw.get("lut")).get("source"),
        "dsp": _dict(hw.get("dsp")).get("value"),
        "latency_ns": _dict(hw.get("latency_ns")).get("value"),
        "latency_source": _dict(hw.get("latency_ns")).get("source"),
        "ii_cycles": _dict(hw.get("ii_cycles")).get("value"),
        "rtl_latency_ns": rr.get("latency_ns"),
        "bit_exact": bit_exact_verdict(report, csim),
        "budget_verdict": (report or {}).get("verdict"),
        "config": to_dict(cfg, fixed=DERIVED),
    }
    row["rejection_geomean"] = (row["rejection"] or {}).get("geomean")
    return row


def pareto_front(rows: list[dict], metric: str, cost: str) -> list[str]:
    """Names of the rows on the front of ``metric`` (higher is better) against ``cost`` (lower is better); rows
    missing either value take no part."""
    pts = [(r["name"], float(r[cost]), float(r[metric])) for r in rows
           if isinstance(r.get(cost), (int, float)) and isinstance(r.get(metric), (int, float))]
    front = []
    for name, c, m in pts:
        dominated = any(c2 <= c and m2 >= m and (c2 < c or m2 > m) for _, c2, m2 in pts)
        if not dominated:
            front.append(name)
    return front


def _metric_key(metric: str) -> str:
    return "rejection_geomean" if metric == "rejection" else metric


def peer_rows(path: Path, signal_efficiency: float) -> list[dict]:
    """The rows of a same-jets peers file (``python -m l1tagger.peers``), marked ``peer: True``; ConfigError naming
    the file when it is not one, or when its rejection was taken at another signal efficiency."""
    from l1tagger.errors import ConfigError

    doc = _read(Path(path))
    rows = (doc or {}).get("rows")
    if not isinstance(rows, list):
        raise ConfigError(f"peers file {path}: not a peers.json (no rows list)")
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not str(r.get("origin", "")).startswith("same-jets peer"):
            raise ConfigError(f"peers file {path}: rows[{i}] is not a same-jets peer row")
        eff = _dict(r.get("rejection")).get("signal_efficiency")
        if eff is not None and not math.isclose(float(eff), signal_efficiency):
            raise ConfigError(f"peers file {path}: rows[{i}]: rejection at signal efficiency {eff}, the sweep uses "
                              f"{signal_efficiency}")
        out.append({**r, "peer": True, "overrides": {}, "source_file": str(path)})
    return out


def collect(spec, results: dict[str, dict], provenance: dict) -> dict:
    """Write ``pareto.json``, ``pareto.md`` and ``pareto.png`` into the sweep folder; returns the JSON document.
    Same-jets peer rows (``spec.peers``) join the table and the fronts, marked as peers."""
    rows = [point_row(p, p.config, results.get(p.name), spec.signal_efficiency) for p in spec.points]
    for f in spec.peers:
        rows += peer_rows(f, spec.signal_efficiency)
    fronts = {m: {c: pareto_front(rows, _metric_key(m), c) for c in COSTS} for m in METRICS}
    for r in rows:
        r["pareto_front"] = {m: [c for c in COSTS if r["name"] in fronts[m][c]] for m in METRICS}
    doc = {
        "sweep": {"file": str(spec.source), "name": spec.name, "out": str(spec.out), "n_points": len(rows),
                  "signal_efficiency": spec.signal_efficiency, "workers": spec.workers, "cluster": spec.cluster.kind},
        "provenance": provenance,
        "notes": {"accuracy": "QAT model on the whole test split (accuracy_n_jets jets)",
                  "rejection": f"1/eps_B at eps_S = {spec.signal_efficiency:g} per signal class vs the background "
                               f"classes (QAT model, test split); geomean over signal classes",
                  "bit_exact": f"C simulation vs QONNX reference on {TESTBENCH_JETS}; RTL checks on the same jets",
                  "pareto_front": "front of each metric against each cost axis (lower cost, higher metric)"},
        "fronts": fronts,
        "rows": rows,
    }
    out = spec.out
    doc["plot"] = plot(rows, fronts, spec.signal_efficiency, out / "pareto.png")
    atomic_write_json(out / "pareto.json", doc)
    atomic_write_text(out / "pareto.md", markdown(doc))
    return doc


def fmt_value(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(doc: dict) -> str:
    s, p = doc["sweep"], doc["provenance"]
    eff = s["signal_efficiency"]
    versions = ", ".join(f"{k} {v}" for k, v in (p.get("versions") or {}).items())
    lines = [f"# Sweep {s['name']}: {s['n_points']} points", "",
             f"Sweep file `{s['file']}`; command `{p.get('command')}`; commit {p.get('commit') or 'unknown'}"
             f"{' (uncommitted changes)' if p.get('dirty') else ''}; {versions}; Python {p.get('python')}; "
             f"{p.get('timestamp')}.", "",
             f"Accuracy: {doc['notes']['accuracy']}. Rejection: {doc['notes']['rejection']}. Bit-exact: "
             f"{doc['notes']['bit_exact']}. Front: the cost axes on which the point is on the accuracy Pareto front.",
             "",
             f"| point | overrides | state | accuracy (test jets) | rej. at {eff:g} (geo. mean) | da4ml LUT | EBOPs | "
             f"est. LUT (source) | latency ns (source) | bit-exact (jets) | budget | front |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        ov = ("same-jets peer: " + str(r.get("origin", "")).split("(")[-1].rstrip(")")) if r.get("peer") else \
            ", ".join(f"{k}={v}" for k, v in r["overrides"].items())
        acc = f"{fmt_value(r['accuracy'])} ({fmt_value(r['accuracy_n_jets'])})" if r["accuracy"] is not None else "—"
        be = r["bit_exact"]
        lut = f"{fmt_value(r['lut'])} ({r['lut_source'] or '—'})"
        latency = f"{fmt_value(r['latency_ns'])} ({r['latency_source'] or '—'})"
        front = ", ".join(r["pareto_front"]["accuracy"]) or "—"
        lines.append(
            f"| {r['name']} | {ov} | {r['state']} | {acc} | {fmt_value(r['rejection_geomean'])} | "
            f"{fmt_value(r['da4ml_lut'])} | {fmt_value(r['ebops'])} | {lut} | {latency} | {be['verdict']} "
            f"({fmt_value(be['n_jets'])}) | {r['budget_verdict'] or '—'} | {front} |")
    failed = [r for r in doc["rows"] if r["state"].startswith("failed")]
    if failed:
        lines += ["", "Failed points (their logs say why; rerun the sweep to retry them):", ""]
        lines += [f"- {r['name']}: {r['state']}{': ' + r['error'] if r.get('error') else ''}, log `{r['log']}`"
                  for r in failed]
    if doc.get("plot"):
        lines += ["", "![accuracy and rejection against cost](pareto.png)"]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], fronts: dict, eff: float, png: Path) -> str | None:
    """Accuracy (top) and rejection (bottom) against each cost axis with data; every point labelled with its
    bit-exact verdict, the front drawn as a line. None when no point has a metric and a cost."""
    panels = [(m, c) for m in METRICS for c in COSTS
              if any(isinstance(r.get(_metric_key(m)), (int, float)) and isinstance(r.get(c), (int, float))
                     for r in rows)]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if any(p[0] == m for p in panels)]
    costs = [c for c in COSTS if any(p[1] == c for p in panels)]
    fig, axes = plt.subplots(len(metrics), len(costs), figsize=(4.6 * len(costs), 3.8 * len(metrics)), squeeze=False)
    style = {"bit-exact": ("o", "tab:green"), "NOT bit-exact": ("X", "tab:red"), "not checked": ("s", "tab:gray")}
    for i, m in enumerate(metrics):
        for j, c in enumerate(costs):
            ax = axes[i][j]
            key = _metric_key(m)
            pts = [r for r in rows if isinstance(r.get(key), (int, float)) and isinstance(r.get(c), (int, float))]
            for verdict, (marker, color) in style.items():
                for peer in (False, True):
                    sel = [r for r in pts if r["bit_exact"]["verdict"] == verdict and bool(r.get("peer")) == peer]
                    if sel:
                        ax.scatter([r[c] for r in sel], [r[key] for r in sel], marker="D" if peer else marker,
                                   facecolors="none" if peer else color, edgecolors=color, zorder=3,
                                   label=f"{verdict} (same-jets peer)" if peer else verdict)
            for r in pts:
                ax.annotate(f"{r['name'].rsplit('-', 1)[-1]}\n{r['bit_exact']['verdict']}", (r[c], r[key]),
                            fontsize=6, xytext=(3, 3), textcoords="offset points")
            front = sorted((r for r in pts if r["name"] in fronts[m][c]), key=lambda r: r[c])
            if front:
                ax.step([r[c] for r in front], [r[key] for r in front], where="post", color="k", lw=0.8,
                        label="Pareto front", zorder=2)
            ax.set_xlabel(COSTS[c])
            ax.set_ylabel(METRICS[m] + (f" at eps_S = {eff:g} (geo. mean)" if m == "rejection" else ""))
            if m == "rejection":
                ax.set_yscale("log")
            ax.tick_params(axis="x", labelrotation=30)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return str(png)
