"""`l1tagger run` end to end on a tiny config: real Pythia jets -> train -> QAT -> QONNX -> hls4ml -> g++ C-sim.

This is the product's main path, so it runs in the default suite at a tiny size (about a minute)."""

import json

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
            "n_particles: 8",
            "d_model: 8",
            "ffn_dim: 16",
            "epochs: 1",
            "qat_epochs: 1",
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
    csim = json.loads((run / "csim" / "result.json").read_text())
    assert csim["bit_exact"] is True and csim["n_mismatch"] == 0 and csim["n_jets"] == 40
    qat = json.loads((run / "metrics" / "qat.json").read_text())
    fw = json.loads((run / "metrics" / "firmware.json").read_text())
    assert 0.0 <= fw["accuracy"] <= 1.0 and 0.0 <= qat["accuracy"] <= 1.0
    assert csim["firmware_metrics_equal_quantized_model"] is True
    assert csim["firmware_accuracy"] == csim["quantized_model_accuracy_same_jets"] == fw["accuracy"]
    # the test-bench jets are a shuffled sample of the test split, so every class is in the firmware metrics
    assert len(fw["auc_per_class"]) == 5 and None not in fw["auc_per_class"].values()
    manifest = json.loads((root / "hls_projects" / "tiny" / "manifest.json").read_text())
    assert "softmax" in json.dumps(manifest)
    report = (run / "report.md").read_text()
    assert "bit-exact" in report


def test_rerun_resumes_without_redoing_steps(tiny_run, capsys):
    root, cfg = tiny_run
    before = {p.name: p.stat().st_mtime_ns for p in (root / "runs" / "tiny" / "steps").iterdir()}
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.count("up to date") == 6
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
    assert main(["interpret", ckpt, data, "--from-project", str(root / "hls_projects" / "tiny"), "--out", str(out),
                 "--n-jets", "30", "--map-jets", "1", "--subjets", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"].startswith("firmware")
    layer = next(iter(summary["layers"].values()))
    assert 0.0 <= layer["binarity"]["frac_top1_above"] <= 1.0
