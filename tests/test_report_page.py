"""The report page on hand-written run directories: build_report, renderers, and `l1tagger report`."""

import json
import shutil
from pathlib import Path

import onnx
import pytest

from l1tagger.cli import main
from l1tagger.report import schema
from l1tagger.report.budgets import load_budget
from l1tagger.report.page import ReportInputs, build_report, render_html, render_markdown
from l1tagger.report.parsers import parse_csynth_rpt
from test_report_estimates import attention_graph, fix_int64

REPORTS = Path(__file__).parent / "data" / "reports"


def metrics(acc, dataset="Pythia hls4ml5"):
    return {"accuracy": acc, "auc_macro": 0.9, "dataset": dataset, "n_jets": 500,
            "rejection": {"t": {"rej50": 40.0, "rej99": 2.0}, "w": {"rej50": 20.0}},
            "roc_curves": {"t": {"signal_efficiency": [0.0, 0.5, 1.0], "background_efficiency": [0.0, 0.025, 1.0]}}}


def write(p: Path, obj):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj))


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    write(d / "model.json", {"name": "full_int8", "attention": "full", "recipe": "int8", "dataset": "Pythia hls4ml5"})
    write(d / "metrics" / "float.json", metrics(0.71))
    write(d / "metrics" / "qat.json", metrics(0.70))
    write(d / "csim" / "result.json", {"n_jets": 1000, "n_mismatch": 0, "bit_exact": True, "first_mismatch_layer": None})
    onnx.save(fix_int64(attention_graph()), str(d / "model.onnx"))
    for name, attn, acc, bits in (("lin_int6", "linformer", 0.66, 6), ("topk_int8", "topk", 0.69, 8)):
        s = d / name
        write(s / "model.json", {"name": name, "attention": attn, "recipe": f"int{bits}"})
        write(s / "metrics" / "qat.json", metrics(acc))
        onnx.save(fix_int64(attention_graph(a_bits=bits, topk=2 if attn == "topk" else 0)), str(s / "model.onnx"))
    return d


def test_missing_inputs_show_as_not_run(tmp_path):
    (tmp_path / "empty").mkdir()
    rep = build_report(ReportInputs(budget=load_budget("cms_phase2_tmux6_360mhz"),
                                    models=schema.collect(tmp_path / "empty")))
    assert rep["bit_exact"] == "not run" and rep["verdict"] == "not run"
    assert all(v == "not run" for v in rep["physics"].values())
    assert "not run" in render_markdown(rep) and "not run" in render_html(rep)


def test_estimate_vs_budget_table(run_dir):
    from l1tagger.report.estimates import estimate_graph

    b = load_budget("cms_phase2_tmux6_360mhz")
    models = schema.collect(run_dir)
    assert [m.name for m in models] == ["full_int8", "lin_int6", "topk_int8"]
    est = {m.name: estimate_graph(m.onnx_path, b.clock_mhz) for m in models}
    rep = build_report(ReportInputs(budget=b, models=models, estimates=est))
    rows = {r["quantity"]: r for r in rep["budget_table"]}
    assert rows["LUT"]["source"] == "estimate" and rows["LUT"]["status"] == "pass"
    assert rows["LUT"]["margin"] == pytest.approx(b.allowed("lut") - est["full_int8"]["total"]["lut"])
    assert rows["II"]["value"] == pytest.approx(1e3 / 360) and rows["II"]["status"] == "pass"
    assert rows["clock"]["status"].startswith("not estimated") and rows["FF"]["status"].startswith("not estimated")
    assert rep["physics"]["firmware"] == "not run" and rep["physics"]["qat"]["accuracy"] == 0.70
    assert rep["bit_exact"]["bit_exact"] is True
    assert rep["verdict"] == "pass"
    # the comparison marks datasets: ours vs published, never unlabelled
    assert all("(published)" in a["dataset"] for a in rep["comparison"]["published"])
    assert all("(ours)" in a["dataset"] for a in rep["comparison"]["ours"])
    assert len(rep["pareto"]) == 3 and all(p["cost"] > 0 and p["verdict"] == "pass" for p in rep["pareto"])


def test_synthesis_report_replaces_estimate_and_can_fail(run_dir):
    from l1tagger.report.estimates import estimate_graph

    synth = parse_csynth_rpt((REPORTS / "myproject_csynth.rpt").read_text()).to_dict()
    synth["resources"]["lut"]["used"] = 500000.0  # over one SLR of a VU13P (432k)
    write(run_dir / "synthesis" / "vitis_hls.json", synth)
    b = load_budget("cms_phase2_tmux6_360mhz")
    models = schema.collect(run_dir)
    rep = build_report(ReportInputs(budget=b, models=models,
                                    estimates={m.name: estimate_graph(m.onnx_path, b.clock_mhz) for m in models}))
    rows = {r["quantity"]: r for r in rep["budget_table"]}
    assert rows["LUT"]["source"] == "vitis_hls" and rows["LUT"]["status"] == "fail"
    assert rows["LUT"]["margin"] == pytest.approx(432000 - 500000)
    assert rows["latency"]["source"] == "vitis_hls" and rows["latency"]["value"] == pytest.approx(102.86)
    assert rows["clock"]["source"] == "vitis_hls" and rows["clock"]["status"] == "pass"  # 411 MHz >= 360
    assert rep["verdict"] == "fail"


def test_cli_writes_page_json_and_plots(run_dir, capsys):
    assert main(["report", str(run_dir), "--budget", "cms_phase2_tmux6_240mhz", "--format", "html"]) == 0
    rep = json.loads((run_dir / "report.json").read_text())
    assert rep["budget"]["ii_cycles"] == 36
    page = (run_dir / "report.html").read_text()
    assert "estimate" in page and "hls4ml LHC jets (published)" in page and "Pythia hls4ml5 (ours)" in page
    for png in ("report_roc.png", "report_pareto.png"):
        assert (run_dir / png).stat().st_size > 1000 and (run_dir / png).with_suffix(".json").is_file()
    pareto = json.loads((run_dir / "report_pareto.json").read_text())
    assert pareto["front"]
    assert (run_dir / "estimates.json").is_file()
    assert main(["report", str(run_dir)]) == 0 and (run_dir / "report.md").is_file()


def test_cli_bad_budget_is_an_error(run_dir, capsys):
    assert main(["report", str(run_dir), "--budget", "nope"]) == 1
    assert "no such preset" in capsys.readouterr().err
