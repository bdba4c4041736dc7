"""The one-page report: ``build_report(inputs) -> dict`` (pure) plus Markdown/HTML renderers.

Sources of every hardware number are explicit: ``estimate`` (l1tagger.report.estimates, rules listed on the page),
``vitis_hls``, ``vivado`` or ``yosys`` (parsed reports). A report, where present, replaces the estimate.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from l1tagger.report.budgets import RESOURCES, Budget

#: published anchors of ../shared/REFERENCE.md: each row carries the dataset it was measured on
ANCHORS = [
    {"system": "HGQ2+da4ml Linformer 64x3", "dataset": "hls4ml LHC jets (published)", "accuracy": 0.798,
     "latency_ns": 78, "ii": 1, "lut": 202000, "dsp": 0, "part": "XCU250", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "HGQ2+da4ml Linformer 32x3", "dataset": "hls4ml LHC jets (published)", "accuracy": 0.784,
     "latency_ns": 140, "ii": 1, "lut": 267000, "dsp": 0, "part": "XCU250", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "HGQ2+da4ml Linformer 16x3", "dataset": "hls4ml LHC jets (published)", "accuracy": 0.728,
     "latency_ns": 103, "ii": 1, "lut": 246000, "dsp": 0, "part": "XCU250", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "HGQ2+da4ml MHA 32x3", "dataset": "hls4ml LHC jets (published)", "accuracy": 0.770,
     "latency_ns": 83, "ii": 1, "lut": 180000, "dsp": None, "part": "XCU250", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "JEDI-linear 32x16", "dataset": "hls4ml LHC jets (published)", "accuracy": 0.809,
     "latency_ns": 60, "ii": 1, "lut": 61900, "dsp": 0, "part": "VU13P", "source": "calad0i/JEDI-linear post-route reports"},
    {"system": "JEDI-linear perm. inv. 64x16", "dataset": "hls4ml LHC jets (published)", "accuracy": 0.824,
     "latency_ns": 93, "ii": 1, "lut": 192000, "dsp": 0, "part": "VU13P", "source": "calad0i/JEDI-linear post-route reports"},
]

RESOURCE_LABEL = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM18", "uram": "URAM"}
RESOURCE_PRIORITY = ("vivado", "vitis_hls", "yosys", "estimate")
TIMING_PRIORITY = ("vitis_hls", "yosys", "estimate")
CLOCK_PRIORITY = ("vivado", "vitis_hls", "yosys")


@dataclass
class ReportInputs:
    """What build_report needs: the budget, the models found (schema.ModelInputs) and per-model estimates."""

    budget: Budget
    models: list  # list[schema.ModelInputs], the first is the run's own model
    estimates: dict = field(default_factory=dict)  # model name -> estimate dict (estimates.estimate_graph)
    figures: dict = field(default_factory=dict)  # figure name -> {"png", "json"}
    da4ml: dict = field(default_factory=dict)  # model name -> da4ml cost record (da4ml_cost.cached_da4ml_cost)
    hgq: dict = field(default_factory=dict)  # model name -> HGQ trade-off (make.hgq_tradeoff); absent: uniform


def _hardware_numbers(model, estimate: dict | None) -> dict:
    """{quantity: (value, source)} choosing the best available source for each quantity."""
    by_src = dict(model.synthesis)
    out: dict = {}
    for r in RESOURCES:
        for src in RESOURCE_PRIORITY:
            if src == "estimate":
                if estimate and estimate["total"].get("bram18" if r == "bram" else r) is not None:
                    out[r] = (float(estimate["total"]["bram18" if r == "bram" else r]), "estimate")
                    break
            elif src in by_src and (by_src[src].get("resources") or {}).get(r) is not None:
                out[r] = (float(by_src[src]["resources"][r]["used"]), src)
                break
    for src in TIMING_PRIORITY:
        if src == "estimate":
            if estimate:
                t = estimate["total"]
                out["latency_cycles"] = (t["latency_cycles"], "estimate")
                out["latency_ns"] = (t["latency_ns"], "estimate")
                out["ii_cycles"] = (t["ii_cycles"], "estimate")
            break
        s = by_src.get(src)
        if s and s.get("latency_worst_cycles") is not None:
            out["latency_cycles"] = (s["latency_worst_cycles"], src)
            out["latency_ns"] = (s["latency_worst_ns"], src)
            out["ii_cycles"] = (s.get("ii_max"), src)
            out["design_clock_ns"] = (s.get("target_clock_ns"), src)
            break
    for src in CLOCK_PRIORITY:
        s = by_src.get(src)
        if s and s.get("estimated_clock_ns"):
            out["achieved_clock_MHz"] = (1e3 / s["estimated_clock_ns"], src)
            break
    return out


def _line(quantity, value, unit, budget_value, source, higher_is_better=False):
    if value is None:
        return {"quantity": quantity, "value": None, "unit": unit, "budget": budget_value, "source": "not run",
                "margin": None, "margin_pct": None, "status": "not run"}
    margin = (value - budget_value) if higher_is_better else (budget_value - value)
    return {"quantity": quantity, "value": value, "unit": unit, "budget": budget_value, "source": source,
            "margin": margin, "margin_pct": (100.0 * margin / budget_value) if budget_value else None,
            "status": "pass" if margin >= 0 else "fail"}


def budget_table(hw: dict, budget: Budget) -> list[dict]:
    """One line per budgeted quantity: value, source, budget, margin (budget - value) and pass/fail."""
    rows = []
    lat = hw.get("latency_ns")
    rows.append(_line("latency", lat[0] if lat else None, "ns", budget.latency_ns, lat[1] if lat else None))
    ii = hw.get("ii_cycles")
    ii_ns = None
    if ii and ii[0] is not None:
        period = (hw.get("design_clock_ns") or (budget.clock_period_ns, None))[0] or budget.clock_period_ns
        ii_ns = ii[0] * period
    rows.append(_line("II", ii_ns, "ns", budget.ii_ns, ii[1] if ii else None))
    if ii and ii[0] is not None:
        rows[-1]["detail"] = f"{ii[0]} cycles (budget {budget.ii_cycles} cycles at {budget.clock_mhz:g} MHz)"
    clk = hw.get("achieved_clock_MHz")
    rows.append(_line("clock", clk[0] if clk else None, "MHz", budget.clock_mhz, clk[1] if clk else None,
                      higher_is_better=True))
    if not clk:
        rows[-1]["source"] = rows[-1]["status"] = "not estimated (needs a synthesis report)"
    for r in RESOURCES:
        v = hw.get(r)
        rows.append(_line(RESOURCE_LABEL[r], v[0] if v else None, RESOURCE_LABEL[r], budget.allowed(r),
                          v[1] if v else None))
        if r == "ff" and not v:
            rows[-1]["source"] = rows[-1]["status"] = "not estimated (needs a synthesis report)"
    return rows


def rtl_route(rtl: dict | None, budget: Budget) -> dict | str:
    """The open RTL route's numbers (``rtl_summary.json`` of :mod:`l1tagger.rtl.flow`), each labelled by source.

    Latency and II are da4ml's pipeline (cycles at the clock the RTL was written for); resources are Yosys
    ``synth_xilinx`` counts where synthesis ran, else da4ml's own LUT estimate. Checked against the same budget.
    """
    if not rtl:
        return "not run"
    clock = float(rtl.get("config", {}).get("clock_ns") or budget.clock_period_ns)
    hw: dict = {
        "latency_cycles": (rtl["latency_cycles"], "da4ml pipeline"),
        "latency_ns": (rtl["latency_cycles"] * clock, "da4ml pipeline"),
        "ii_cycles": (rtl["ii"], "da4ml pipeline"),
        "design_clock_ns": (clock, "da4ml pipeline"),
    }
    y = rtl.get("yosys")
    ysrc = f"yosys {y.get('tool_version', '')} synth_xilinx (pre-place-and-route)".replace("  ", " ") if y else None
    if y:
        hw.update({"lut": (float(y["LUT"]), ysrc), "ff": (float(y["FF"]), ysrc), "dsp": (float(y["DSP"]), ysrc),
                   "bram": (float(y.get("BRAM", 0)), ysrc)})
    else:
        if rtl.get("da4ml_cost_estimate_lut") is not None:
            hw["lut"] = (float(rtl["da4ml_cost_estimate_lut"]), "da4ml estimate")
        if rtl.get("register_bits") is not None:  # every pipeline register bit is one flip-flop
            hw["ff"] = (float(rtl["register_bits"]), "da4ml pipeline register bits")
    table = budget_table(hw, budget)
    st = [r["status"] for r in table if r["status"] in ("pass", "fail")]
    c = rtl.get("cosim")
    it = rtl.get("interp")
    return {
        "rtl_dir": rtl.get("rtl_dir"), "top": rtl.get("top"),
        "latency_cycles": rtl["latency_cycles"], "latency_ns": rtl["latency_cycles"] * clock, "ii": rtl["ii"],
        "clock_ns": clock, "da4ml_lut_estimate": rtl.get("da4ml_cost_estimate_lut"),
        "yosys": ({k: y.get(k) for k in ("LUT", "FF", "CARRY", "DSP", "BRAM", "tool", "tool_version", "family")}
                  if y else "not run"),
        "cosim": ({k: c.get(k) for k in ("bit_exact", "n_jets", "n_values", "n_mismatches", "verilator", "stimulus")}
                  if c else "not run"),
        "interp": ({k: it.get(k) for k in ("bit_exact", "n_jets", "n_values", "n_mismatches", "stimulus", "source")}
                   if it else "not run"),
        "budget_table": table, "verdict": "fail" if "fail" in st else ("pass" if st else "not run"),
    }


def cost_comparison(estimate: dict | None, da4ml: dict | None, rtl: dict | None) -> dict:
    """The cost of one graph three ways: l1tagger's estimate (of the HLS project), da4ml's cost model (of the same
    graph lowered to shift-and-add logic) and, where Yosys has run on the da4ml Verilog, Yosys' cell counts, with
    the ratio of each estimate to Yosys."""
    y = (rtl or {}).get("yosys")
    yosys = {"lut": float(y["LUT"]), "dsp": float(y["DSP"]), "source": f"yosys {y.get('tool_version', '')} "
             f"synth_xilinx of the da4ml Verilog"} if y else None
    rows = []
    if estimate:
        t = estimate["total"]
        rows.append({"source": "estimate", "lut": t["lut"], "dsp": t["dsp"], "ebops": t["ebops"], "cost": t["cost"],
                     "what": "l1tagger.report.estimates (the HLS project; rules below)"})
    if isinstance(da4ml, dict) and da4ml.get("status") == "ok":
        rows.append({"source": "da4ml", "lut": da4ml["lut"], "dsp": 0.0, "ebops": None, "cost": da4ml["lut"],
                     "latency_cycles": da4ml.get("latency_cycles"), "what": da4ml.get("source")})
    for r in rows:
        r["ratio_to_yosys_lut"] = (r["lut"] / yosys["lut"]) if yosys and yosys["lut"] else None
    if yosys:
        rows.append({"source": "yosys", "lut": yosys["lut"], "dsp": yosys["dsp"], "ebops": None,
                     "cost": yosys["lut"] + 55.0 * yosys["dsp"], "ratio_to_yosys_lut": 1.0, "what": yosys["source"]})
    skipped = da4ml.get("reason") if isinstance(da4ml, dict) and da4ml.get("status") == "skipped" else None
    return {"rows": rows, "da4ml_skipped": skipped, "yosys": "run" if yosys else "not run"}


def _da4ml_lut(record) -> float | None:
    return float(record["lut"]) if isinstance(record, dict) and record.get("status") == "ok" else None


def overall_verdict(report: dict) -> tuple[str, list[str]]:
    """(verdict, reasons): "fail" when the budget table fails or any bit-exactness check (C simulation, RTL
    interpreter, Verilator co-simulation) found a difference; "pass" when the budget table passes and the C
    simulation is bit-exact; "not run" otherwise (a missing check is never taken as passed)."""
    reasons = []
    for r in report["budget_table"]:
        if r["status"] == "fail":
            reasons.append(f"{r['quantity']} {_fmt(r['value'])} {r['unit']} over the budget {_fmt(r['budget'])} "
                           f"({r['source']})")
    be = report["bit_exact"]
    if isinstance(be, dict) and not be["bit_exact"]:
        reasons.append(f"C simulation {be['summary']}")
    rr = report.get("rtl_route")
    for key, label in (("interp", "RTL (da4ml interpreter)"), ("cosim", "RTL (Verilator co-simulation)")):
        c = rr.get(key) if isinstance(rr, dict) else None
        if isinstance(c, dict) and not c.get("bit_exact"):
            reasons.append(f"{label} not bit-exact: {c.get('n_mismatches')} of {c.get('n_values')} values differ")
    if reasons:
        return "fail", reasons
    if report["budget_verdict"] == "pass" and isinstance(be, dict):
        return "pass", []
    missing = ([] if isinstance(be, dict) else ["C simulation not run"]) + \
        ([] if report["budget_verdict"] == "pass" else ["budget not evaluated"])
    return "not run", missing


def _best_accuracy(model) -> tuple[float | None, str | None]:
    for stage in ("firmware", "qat", "float"):
        acc = (model.metrics.get(stage) or {}).get("accuracy")
        if acc is not None:
            return float(acc), stage
    return None, None


def _dataset_label(model) -> str:
    ds = model.info.get("dataset") or next((m.get("dataset") for m in model.metrics.values() if m.get("dataset")),
                                           None)
    return f"l1tagger {ds or 'generated jets'} (ours)"


def _word_conversion(l1_words: dict | None) -> dict | str:
    """What the float -> L1 word conversion saturated, per jet set (a model on L1 words), from the QAT manifest."""
    if not l1_words:
        return "not used (model on float features)"
    conv = l1_words.get("conversion") or {}
    fmt = (l1_words.get("spec") or {}).get("format")
    return {"format": fmt.get("name") if isinstance(fmt, dict) else fmt, "table_digest": l1_words.get("table_digest"),
            "jet_sets": {name: {"n_jets": c.get("n_jets"), "n_particles": c.get("n_particles"),
                                "clipped": c.get("clipped") or {}, "clipped_fraction": c.get("clipped_fraction") or {}}
                         for name, c in conv.items() if isinstance(c, dict)}}


def build_report(inputs: ReportInputs) -> dict:
    """All numbers of the page as one JSON-able dict (pure: no file access)."""
    budget = inputs.budget
    if not inputs.models:
        main = None
    else:
        main = inputs.models[0]
    report: dict = {"budget": budget.summary(), "figures": dict(inputs.figures)}
    if main is None:
        report["model"] = None
        report["physics"] = {s: "not run" for s in ("float", "qat", "firmware")}
        report["bit_exact"] = "not run"
        report["rtl_route"] = "not run"
        report["budget_table"] = budget_table({}, budget)
        report["budget_verdict"] = report["verdict"] = "not run"
        report["verdict_reasons"] = ["no model found"]
        report["comparison"] = {"published": ANCHORS, "ours": []}
        report["pareto"] = []
        report["da4ml_cost"] = report["hgq"] = report["blocks"] = "not run"
        report["pair_features"] = None
        report["l1_words"] = "not run"
        report["cost_comparison"] = cost_comparison(None, None, None)
        return report
    est = inputs.estimates.get(main.name)
    report["model"] = {"name": main.name, "path": main.path, **main.info}
    report["physics"] = {}
    for stage in ("float", "qat", "firmware"):
        m = main.metrics.get(stage)
        if m is None:
            report["physics"][stage] = "not run"
            continue
        report["physics"][stage] = {
            "accuracy": m.get("accuracy"),
            "auc_macro": m.get("auc_macro"),
            "rejection50": {c: (v or {}).get("rej50") for c, v in (m.get("rejection") or {}).items()},
            "n_jets": m.get("n_jets"),
        }
    if main.csim is None:
        report["bit_exact"] = "not run"
    else:
        c = main.csim
        report["bit_exact"] = {
            "bit_exact": c.bit_exact, "n_jets": c.n_jets, "mismatching_values": c.mismatching_values,
            "mismatching_jets": c.mismatching_jets, "n_output_values": c.n_output_values,
            "first_mismatch_layer": c.first_mismatch_layer or (c.first_mismatch or {}).get("layer"),
            "layers_compared": c.layers_compared, "firmware": c.firmware,
            "summary": c.summary(), "project": main.project,
        }
    report["rtl_route"] = rtl_route(main.rtl, budget)
    hw = _hardware_numbers(main, est)
    report["hardware"] = {k: {"value": v[0], "source": v[1]} for k, v in hw.items()}
    report["budget_table"] = budget_table(hw, budget)
    statuses = [r["status"] for r in report["budget_table"] if r["status"] in ("pass", "fail")]
    report["budget_verdict"] = "fail" if "fail" in statuses else ("pass" if statuses else "not run")
    report["verdict"], report["verdict_reasons"] = overall_verdict(report)
    report["estimate"] = ({"rules": est["rules"], "mapping": est["mapping"], "total": est["total"],
                           "layers": est["layers"], "clock_MHz": est["clock_MHz"]} if est else "not run")
    report["blocks"] = (est.get("blocks") or "not run") if est else "not run"
    report["pair_features"] = est.get("pair_features") if est else None
    report["l1_words"] = _word_conversion(main.l1_words)
    report["da4ml_cost"] = inputs.da4ml.get(main.name) or "not run"
    report["cost_comparison"] = cost_comparison(est, inputs.da4ml.get(main.name), main.rtl)
    report["hgq"] = inputs.hgq.get(main.name) or "not run (uniform recipe)"
    ours = []
    for m in inputs.models:
        acc, stage = _best_accuracy(m)
        h = _hardware_numbers(m, inputs.estimates.get(m.name))
        ours.append({
            "system": m.name, "dataset": _dataset_label(m), "accuracy": acc, "accuracy_stage": stage,
            "latency_ns": h.get("latency_ns", (None, None))[0], "ii": h.get("ii_cycles", (None, None))[0],
            "lut": h.get("lut", (None, None))[0], "dsp": h.get("dsp", (None, None))[0],
            "hardware_source": h.get("lut", (None, "not run"))[1], "part": budget.device.name,
            "da4ml_lut": _da4ml_lut(inputs.da4ml.get(m.name)),
        })
        r = rtl_route(m.rtl, budget)
        if isinstance(r, dict):
            lut = r["yosys"]["LUT"] if isinstance(r["yosys"], dict) else r["da4ml_lut_estimate"]
            ours.append({
                "system": f"{m.name} (da4ml RTL)", "dataset": _dataset_label(m), "accuracy": acc,
                "accuracy_stage": stage, "latency_ns": r["latency_ns"], "ii": r["ii"], "lut": lut,
                "dsp": r["yosys"]["DSP"] if isinstance(r["yosys"], dict) else None,
                "hardware_source": "yosys" if isinstance(r["yosys"], dict) else "da4ml estimate",
                "part": "UltraScale+ (yosys xcup)" if isinstance(r["yosys"], dict) else budget.device.name,
            })
    report["comparison"] = {
        "note": "Published anchors were measured on the hls4ml LHC jet dataset; ours on the dataset named in each "
                "row. Different jets, different particle counts and features: not a like-for-like comparison.",
        "published": ANCHORS, "ours": ours,
    }
    pareto = []
    for m in inputs.models:
        acc, stage = _best_accuracy(m)
        h = _hardware_numbers(m, inputs.estimates.get(m.name))
        cost = None
        if "lut" in h and "dsp" in h:
            cost = h["lut"][0] + 55.0 * h["dsp"][0]
        st = [r["status"] for r in budget_table(h, budget) if r["status"] in ("pass", "fail")]
        pareto.append({"name": m.name, "accuracy": acc, "accuracy_stage": stage, "cost": cost,
                       "cost_source": h.get("lut", (None, None))[1], "attention": m.info.get("attention"),
                       "da4ml_lut": _da4ml_lut(inputs.da4ml.get(m.name)),
                       "recipe": m.info.get("recipe"),
                       "verdict": "fail" if "fail" in st else ("pass" if st else "not run")})
    report["pareto"] = pareto
    return report


# ------------------------------------------------------------------------------------------------ renderers
def _fmt(v, digits=4):
    if v is None:
        return "—"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def _sections(report: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) tables shared by both renderers."""
    out = []
    b = report["budget"]
    out.append(("Budget", ["field", "value"], [
        ["preset", b["name"]], ["clock", f"{b['clock_MHz']:g} MHz"], ["TMUX", str(b["tmux"])],
        ["II budget", f"{b['ii_cycles']} cycles = {b['ii_ns']:g} ns"], ["latency allowance", f"{b['latency_ns']:g} ns"],
        ["device share", f"{b['share']:.3g} of {b['device']} ({b['part']})"]],
        "Rationale: " + b["rationale"] + " Sources: " + "; ".join(b["sources"])))
    rows = []
    for stage, m in report["physics"].items():
        if m == "not run":
            rows.append([stage, "not run", "", ""])
        else:
            rej = ", ".join(f"{c}: {_fmt(v)}" for c, v in (m.get("rejection50") or {}).items())
            rows.append([stage, _fmt(m.get("accuracy")), _fmt(m.get("auc_macro")), rej])
    out.append(("Physics metrics", ["stage", "accuracy", "macro AUC", "rejection 1/eps_B at eps_S = 50 %"], rows, ""))
    be = report["bit_exact"]
    if be == "not run":
        rows = [["C simulation vs QONNX reference", "not run"]]
    else:
        rows = [["C simulation vs QONNX reference", be["summary"]]]
    rr = report.get("rtl_route", "not run")
    checks = (("cosim", "RTL (da4ml Verilog) Verilator co-simulation vs QONNX reference", "verilator {verilator}"),
              ("interp", "RTL logic in da4ml's C++ interpreter vs QONNX reference", "not a simulation of the Verilog"))
    for key, label, detail in checks:
        c = rr[key] if isinstance(rr, dict) else "not run"
        if not isinstance(c, dict):
            if key == "cosim":
                rows.append([label, "not run"])
            continue
        verdict = "bit-exact" if c.get("bit_exact") else "MISMATCH"
        rows.append([label, f"{verdict}: {c.get('n_mismatches')} of {c.get('n_values')} values differ over "
                            f"{c.get('n_jets')} jets ({c.get('stimulus')}; {detail.format(verilator=c.get('verilator'))})"])
    out.append(("Bit-exactness", ["check", "result"], rows, ""))
    rows = []
    for r in report["budget_table"]:
        val = _fmt(r["value"]) + (f" ({r['detail']})" if r.get("detail") else "")
        margin = "—" if r["margin"] is None else f"{_fmt(r['margin'])} ({r['margin_pct']:+.1f} %)" \
            if r["margin_pct"] is not None else _fmt(r["margin"])
        rows.append([r["quantity"], val, r["unit"], _fmt(r["budget"]), margin, r["status"], r["source"]])
    out.append((f"Latency, II and resources vs budget — verdict: {report['budget_verdict'].upper()}",
                ["quantity", "value", "unit", "budget", "margin", "status", "source"], rows,
                "source 'estimate' = l1tagger.report.estimates rules (listed below); 'vitis_hls'/'vivado'/'yosys' = "
                "parsed synthesis report, which replaces the estimate where present."))
    cc = report.get("cost_comparison")
    if isinstance(cc, dict):
        rows = [[r["source"], _fmt(r["lut"]), _fmt(r["dsp"]), _fmt(r["ebops"]), _fmt(r["cost"]),
                 "—" if r.get("ratio_to_yosys_lut") is None else f"{r['ratio_to_yosys_lut']:.2f}", r["what"] or ""]
                for r in cc["rows"]]
        if cc.get("da4ml_skipped"):
            rows.append(["da4ml", "—", "—", "—", "—", "—", f"skipped: {cc['da4ml_skipped']}"])
        elif not any(r["source"] == "da4ml" for r in cc["rows"]):
            rows.append(["da4ml", "—", "—", "—", "—", "—", "not run (no graph)"])
        out.append(("Cost of the same graph: estimate, da4ml, Yosys",
                    ["source", "LUT", "DSP", "EBOPs", "cost (LUT + 55 DSP)", "LUT / Yosys LUT", "what"], rows,
                    "The estimate describes the HLS project (constant products as shift-and-add, counted from the "
                    "constants the graph holds); da4ml's number is its own cost model of the same graph lowered to "
                    "its logic (no Verilog written unless the RTL step ran); Yosys counts cells of the da4ml Verilog "
                    f"where `rtl: yosys` ran ({cc['yosys']}). The budget verdict uses the estimate. docs/cost.md"))
    blocks = report.get("blocks")
    if isinstance(blocks, dict):
        from l1tagger.report.blocks import da4ml_interaction_share, interaction_share

        da = report.get("da4ml_cost")
        da_blocks = da.get("blocks") if isinstance(da, dict) and isinstance(da.get("blocks"), dict) else None
        rows = [[name, _fmt(b["lut"]), _fmt(b["dsp"]), _fmt(b["ebops"]), f"{100 * b['share_cost']:.1f} %"]
                + ([_fmt(da_blocks[name]["lut"]), f"{100 * da_blocks[name]['share']:.1f} %"] if da_blocks else [])
                for name, b in blocks.items()]
        pf = report.get("pair_features")
        da_note = (f" da4ml: its own cost model of the same graph, charged to the nodes that built each piece of logic "
                   f"(l1tagger.rtl.attribution); interaction {100 * da4ml_interaction_share(da_blocks):.1f} % of "
                   f"da4ml's LUT." if da_blocks else "")
        out.append(("Estimate per block", ["block", "LUT", "DSP", "EBOPs", "share of cost (LUT + 55 DSP)"]
                    + (["da4ml LUT", "share of da4ml LUT"] if da_blocks else []), rows,
                    f"Interaction (on-chip pair features + U): {100 * interaction_share(blocks):.1f} % of the cost. "
                    f"Pair features: {pf or 'none (no interaction bias)'}. Blocks: l1tagger.report.blocks.{da_note}"))
    lw = report.get("l1_words")
    if isinstance(lw, dict):
        rows = []
        for name, c in lw["jet_sets"].items():
            clipped = ", ".join(f"{k} {v:,} ({100 * c['clipped_fraction'].get(k, 0):.3f} %)"
                                for k, v in c["clipped"].items()) or "none"
            rows.append([name, _fmt(c["n_jets"]), _fmt(c["n_particles"]), clipped])
        out.append((f"L1 particle words in ({lw['format']}): what the float -> word conversion saturated",
                    ["jets", "jets", "particles", "saturated per field (count, fraction of particles)"], rows,
                    "The firmware's inputs are these words; saturation and rounding are the upstream firmware's "
                    "(docs/l1_inputs.md)."))
    hq = report.get("hgq")
    if isinstance(hq, dict):
        rows = [[str(r["epoch"]), _fmt(float(r["ebops"])), _fmt(r["val_accuracy"]), _fmt(r["beta"]), _fmt(r["pruned"]),
                 _fmt(r["mean_bits"]), "kept" if r["epoch"] == hq["selected_epoch"] else ""] for r in hq["history"]]
        reached = "reached" if hq["reached_target"] else "NOT reached"
        detail = f"Target: {hq['target_detail']}. " if hq.get("target_detail") else ""
        out.append((f"HGQ trade-off: EBOPs vs accuracy per QAT epoch (target {_fmt(hq['target_ebops'])} EBOPs from "
                    f"{hq['target_source']}, {reached})",
                    ["epoch", "EBOPs", "val accuracy", "beta", "pruned weights", "mean bits (kept weights)", ""],
                    rows, f"{detail}Kept: the most accurate epoch (validation) within the target, else the "
                          f"cheapest. " + (hq["warning"] or "")))
    if isinstance(rr, dict):
        rows = []
        for r in rr["budget_table"]:
            val = _fmt(r["value"]) + (f" ({r['detail']})" if r.get("detail") else "")
            rows.append([r["quantity"], val, r["unit"], _fmt(r["budget"]), r["status"], r["source"]])
        y = rr["yosys"]
        extra = (f"Yosys cells: LUT {y['LUT']}, FF {y['FF']}, CARRY {y['CARRY']}, DSP {y['DSP']} "
                 f"({y['tool']} {y['tool_version']}, family {y['family']})" if isinstance(y, dict) else
                 "Yosys not run: LUT is da4ml's own estimate")
        out.append((f"Open RTL route (da4ml Verilog, {rr['top']}) vs budget — verdict: {rr['verdict'].upper()}",
                    ["quantity", "value", "unit", "budget", "status", "source"], rows,
                    f"A second implementation of the same quantized graph, beside the hls4ml numbers above, not mixed "
                    f"into them. Latency = {rr['latency_cycles']} pipeline stages at {rr['clock_ns']:g} ns (no timing "
                    f"closure without Vivado). {extra}. Project: {rr['rtl_dir']}"))
    cmp_rows = []
    for a in report["comparison"]["ours"] + report["comparison"]["published"]:
        cmp_rows.append([a["system"], a["dataset"], _fmt(a["accuracy"]), _fmt(a["latency_ns"]), _fmt(a["ii"]),
                         _fmt(a["lut"]), _fmt(a["dsp"]), _fmt(a.get("da4ml_lut")), a.get("part") or "",
                         a.get("source") or a.get("hardware_source") or ""])
    out.append(("Our numbers beside published anchors",
                ["system", "dataset", "accuracy", "latency ns", "II", "LUT", "DSP", "da4ml LUT", "part", "source"],
                cmp_rows,
                report["comparison"].get("note", "")))
    if report.get("pareto"):
        out.append(("Pareto view (accuracy vs cost = LUT + 55 DSP)", ["model", "attention", "recipe", "accuracy",
                    "cost", "cost source", "da4ml LUT", "budget verdict"],
                    [[p["name"], p["attention"] or "", p["recipe"] or "", _fmt(p["accuracy"]), _fmt(p["cost"]),
                      p["cost_source"] or "not run", _fmt(p.get("da4ml_lut")), p["verdict"]]
                     for p in report["pareto"]],
                    "The first model is the one the tables above describe; every model is checked against the budget."))
    est = report.get("estimate")
    if isinstance(est, dict):
        rows = [[l["name"], l["op"], l["widths"], str(l["products"]), _fmt(l["ebops"]), _fmt(l["lut"]), _fmt(l["dsp"]),
                 _fmt(l["bram18"]), str(l["cycles"]), l["rule"]] for l in est["layers"]]
        out.append((f"Estimate per layer (source: estimate, {est['clock_MHz']:g} MHz)",
                    ["layer", "op", "widths", "products", "EBOPs", "LUT", "DSP", "BRAM18", "cycles", "rule"], rows,
                    "Rules: " + " | ".join(est["rules"])))
    return out


def _reasons(report: dict) -> str:
    reasons = report.get("verdict_reasons") or []
    return f" ({'; '.join(reasons)})" if reasons else ""


def render_markdown(report: dict) -> str:
    m = report.get("model") or {}
    lines = [f"# l1tagger report: {m.get('name', 'no model found')}", "",
             f"Budget `{report['budget']['name']}`; verdict **{report['verdict']}**{_reasons(report)}.", ""]
    for title, head, rows, note in _sections(report):
        lines += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
        if note:
            lines += ["", note]
        lines.append("")
    for name, fig in report.get("figures", {}).items():
        if fig:
            lines += [f"![{name}]({fig['png_rel']})", f"numbers: `{fig['json_rel']}`", ""]
    return "\n".join(lines)


def render_html(report: dict) -> str:
    e = html.escape
    m = report.get("model") or {}
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>l1tagger report</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}.pass{background:#dfd}.fail{background:#fdd}</style></head><body>",
             f"<h1>l1tagger report: {e(str(m.get('name', 'no model found')))}</h1>",
             f"<p>Budget <code>{e(report['budget']['name'])}</code>; verdict <b>{e(report['verdict'])}</b>"
             f"{e(_reasons(report))}.</p>"]
    for title, head, rows, note in _sections(report):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        for r in rows:
            cls = next((c for c in ("pass", "fail") if c in r), "")
            parts.append(f"<tr class='{cls}'>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>")
        parts.append("</table>")
        if note:
            parts.append(f"<p><small>{e(note)}</small></p>")
    for name, fig in report.get("figures", {}).items():
        if fig:
            parts.append(f"<h2>{e(name)}</h2><img src='{e(fig['png_rel'])}' alt='{e(name)}'>"
                         f"<p><small>numbers: {e(fig['json_rel'])}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
