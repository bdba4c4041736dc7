"""The headline figures of a finished run, flat, from what the run wrote: ``report.json`` and ``qat/metrics.json``.

    run_figures(run_dir) -> dict           figures(report, qat_metrics) -> dict (the same, from parsed files)

A pure reader (no recomputation): the benchmarks that run ``l1tagger run`` per point (``benchmarks/bench_hgq.py``,
``bench_interaction.py``) build their rows from it, so every row names the same figures the same way:

    accuracy_{float,qat,firmware_tb}    accuracy of each stage on the test split (firmware: the C-simulation test
                                        bench's jets), with ``jets`` {accuracy_float, accuracy_qat,
                                        accuracy_firmware}: how many jets each was measured on
    ebops, ebops_source                 the HGQ kept epoch's exact EBOPs, else the estimate's
    target_ebops, target_source         the HGQ target and where it came from (None for uniform recipes)
    da4ml_lut, da4ml_status, da4ml_reason   da4ml's cost of the same graph (report ``da4ml_cost``)
    est_lut, est_dsp, est_bram18, est_cost, latency_ns, latency_cycles   l1tagger's estimate of the HLS project
    blocks                              per-block costs (``l1tagger.report.blocks``) or None
    da4ml_blocks                        da4ml's LUT per block and its share (``da4ml_cost.blocks``) or None
    csim_bit_exact, csim_jets           the C simulation's verdict and jets
    rtl_bit_exact, rtl_jets             the RTL route's (da4ml interpreter) verdict and jets
    budget_verdict, fits_budget         the budget verdict of the report

A missing ``report.json`` is an L1TaggerError naming it (a run that stopped before its report has no figures), a
damaged one a ConfigError (``report.schema``); a section the report left out ("not run") gives None for its figures.
"""

from __future__ import annotations

from pathlib import Path

from l1tagger.errors import L1TaggerError
from l1tagger.report.schema import _read_json

STAGES = ("float", "qat", "firmware")


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def run_figures(run_dir) -> dict:
    """The figures of the run in ``run_dir`` (see the module docstring)."""
    run_dir = Path(run_dir)
    rep = _read_json(run_dir / "report.json")
    if rep is None:
        raise L1TaggerError(f"{run_dir / 'report.json'}: no report.json (did the run finish its report step?)")
    return figures(rep, _read_json(run_dir / "qat" / "metrics.json") or {})


def figures(report: dict, qat_metrics: dict) -> dict:
    """The figures from a parsed ``report.json`` and ``qat/metrics.json`` (either may be ``{}``: its figures are
    then None, e.g. for a point that failed before its report)."""
    rep, hq = report, _dict(qat_metrics.get("hgq"))
    phys = _dict(rep.get("physics"))
    acc = {s: _dict(phys.get(s)).get("accuracy") for s in STAGES}
    jets = {f"accuracy_{s}": _dict(phys.get(s)).get("n_jets") for s in STAGES}
    est = _dict(_dict(rep.get("estimate")).get("total"))
    da = _dict(rep.get("da4ml_cost"))
    interp = _dict(_dict(rep.get("rtl_route")).get("interp"))
    be = _dict(rep.get("bit_exact"))
    blocks = rep.get("blocks") if isinstance(rep.get("blocks"), dict) else None
    return {
        "accuracy_float": acc["float"], "accuracy_qat": acc["qat"], "accuracy_firmware_tb": acc["firmware"],
        "jets": jets,
        "ebops": hq.get("ebops_final") if hq else est.get("ebops"),
        "ebops_source": "hgq exact (kept epoch)" if hq else "estimate" if est.get("ebops") is not None else None,
        "target_ebops": hq.get("target_ebops"), "target_source": _dict(rep.get("hgq")).get("target_source"),
        "da4ml_lut": da.get("lut"), "da4ml_status": da.get("status"), "da4ml_reason": da.get("reason"),
        "est_lut": est.get("lut"), "est_dsp": est.get("dsp"), "est_bram18": est.get("bram18"),
        "est_cost": est.get("cost"), "latency_ns": est.get("latency_ns"), "latency_cycles": est.get("latency_cycles"),
        "blocks": blocks, "da4ml_blocks": da.get("blocks") if isinstance(da.get("blocks"), dict) else None,
        "csim_bit_exact": be.get("bit_exact"), "csim_jets": be.get("n_jets"),
        "rtl_bit_exact": interp.get("bit_exact"), "rtl_jets": interp.get("n_jets"),
        "budget_verdict": rep.get("budget_verdict"), "fits_budget": rep.get("budget_verdict") == "pass",
    }


__all__ = ["run_figures", "figures", "STAGES"]
