"""The report page on hand-written run directories: build_report, renderers, and `l1tagger report`."""

import json
from pathlib import Path

import onnx
import pytest

from l1tagger.cli import main
from l1tagger.errors import ConfigError
from l1tagger.report import schema
from l1tagger.report.budgets import load_budget
from l1tagger.report.page import ReportInputs, build_report, render_html, render_markdown
from l1tagger.report.parsers import parse_csynth_rpt
from l1tagger.verify import csim_result
from test_report_estimates import attention_graph, fix_int64

REPORTS = Path(__file__).parent / "data" / "reports"
CSIM_OK = csim_result.CsimRecord(project="hls_project", bit_exact=True, n_jets=1000, n_output_values=5000,
                                 mismatching_values=0, mismatching_jets=0, first_mismatch=None, layers_compared=12)


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
    project = tmp_path / "hls_project"  # the run's HLS project, named by project.json as `l1tagger run` writes it
    csim_result.write(CSIM_OK, project)
    write(d / "project.json", {"project": str(project)})
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


def _report(run_dir, **kw):
    from l1tagger.report.estimates import estimate_graph

    b = load_budget("cms_phase2_tmux6_360mhz")
    models = schema.collect(run_dir, **kw)
    return build_report(ReportInputs(budget=b, models=models,
                                     estimates={m.name: estimate_graph(m.onnx_path, b.clock_mhz) for m in models}))


def test_csim_verdict_decides_the_report_verdict(run_dir, tmp_path):
    """The C-sim verdict is part of the report's verdict: a budget that passes with firmware that is not bit-exact
    fails, and a budget that passes without any C simulation is not a pass."""
    import dataclasses

    rep = _report(run_dir)
    assert rep["budget_verdict"] == "pass" and rep["verdict"] == "pass"
    assert rep["bit_exact"]["summary"] == "bit-exact on 1000 jets (12 layers traced)"
    bad = dataclasses.replace(CSIM_OK, bit_exact=False, mismatching_values=3, mismatching_jets=2,
                              first_mismatch={"layer": "softmax_1", "onnx_tensor": "t7"})
    csim_result.write(bad, tmp_path / "hls_project")
    rep = _report(run_dir)
    assert rep["budget_verdict"] == "pass" and rep["verdict"] == "fail"
    assert rep["verdict_reasons"] == ["C simulation NOT bit-exact: 3 of 5000 output values differ in 2 of 1000 jets; "
                                      "first differing layer softmax_1 (t7)"]
    md = render_markdown(rep)
    assert "verdict **fail** (C simulation NOT bit-exact" in md and "| NOT bit-exact: 3 of 5000" in md
    (run_dir / "project.json").unlink()  # no project: the C simulation did not run as far as the report knows
    rep = _report(run_dir)
    assert rep["bit_exact"] == "not run" and rep["verdict"] == "not run"
    assert rep["verdict_reasons"] == ["C simulation not run"]
    rep = _report(run_dir, project_dir=tmp_path / "hls_project")  # --project names it
    assert rep["verdict"] == "fail"


def test_csim_result_is_read_strictly(run_dir, tmp_path, capsys):
    result = tmp_path / "hls_project" / "csim" / "result.json"
    data = json.loads(result.read_text())
    result.write_text(json.dumps({**data, "format": "l1tagger-csim-result-0"}))
    with pytest.raises(ConfigError, match=r"csim/result\.json: C-simulation result format 'l1tagger-csim-result-0'"):
        schema.collect(run_dir)
    result.write_text(json.dumps({k: v for k, v in data.items() if k != "n_jets"}))
    with pytest.raises(ConfigError, match=r"csim/result\.json: n_jets: missing"):
        schema.collect(run_dir)
    result.write_text(json.dumps({**data, "bit_exact": "yes"}))
    assert main(["report", str(run_dir)]) == 1
    assert "csim/result.json: bit_exact: expected bool, got str ('yes')" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--project", str(tmp_path / "nope")]) == 1
    assert "--project" in capsys.readouterr().err
