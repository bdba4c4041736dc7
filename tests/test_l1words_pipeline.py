"""Issue 15: a tagger on L1 particle words (``model.inputs: l1words``) through the whole chain with the normal
commands: ``l1tagger run`` trains it on the words, fine-tunes and exports it with the one graph input ``words``
(Brevitas == QONNX == integer reference), converts it (x, mask and pair computed on chip), C-simulates it and lowers
it to Verilog (da4ml's interpreter), bit for bit on the same test-bench words, and reports it. Tiny: toy jets,
N = 8, one epoch each (about a minute)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from l1tagger.cli import main
from l1tagger.contract.l1features import MASK_OP, PAIR_OP, PARTICLE_OP, L1FeatureSpec
from l1tagger.data.words import check_words, load_word_format

N_CSIM = 50


@pytest.fixture(scope="module")
def words_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("words_run")
    recipe = Path(__file__).resolve().parents[1] / "quantize" / "int8_floor.yaml"
    cfg = root / "words.yaml"
    cfg.write_text("\n".join([
        "name: words",
        f"runs_dir: {root / 'runs'}",
        f"projects_dir: {root / 'hls_projects'}",
        f"data_dir: {root / 'data'}",
        "dataset: 'toy:300:3'",
        "model: {inputs: l1words, n_particles: 8, d_model: 8, n_heads: 2, ffn_dim: 8, embed_dim: 8, head_dim: 8,"
        " pair_hidden: 4}",
        "train: {epochs: 1, batch_size: 64}",
        "qat: {epochs: 1, batch_size: 64}",
        f"recipe: {recipe}",
        "rtl: verilog",
        f"n_csim_jets: {N_CSIM}",
        "",
    ]))
    assert main(["run", str(cfg)]) == 0
    return root


def test_l1words_run_is_bit_exact_from_training_to_rtl(words_run):
    root = words_run
    run, project = root / "runs" / "words", root / "hls_projects" / "words"
    spec = L1FeatureSpec()
    # export: the graph's only input is the words; Brevitas == QONNX reference == integer emulation
    man = json.loads((run / "qat" / "manifest.json").read_text())
    assert list(man["inputs"]) == ["words"] and man["inputs"]["words"]["shape"][1:] == [8, 5]
    assert man["crosscheck"]["bit_exact"] and man["crosscheck"]["n_jets"] > 0
    assert {PARTICLE_OP, MASK_OP, PAIR_OP} <= set(man["ops"])
    assert man["input_grid"]["bits"] == spec.format.word_bits and man["input_grid"]["frac"] == 0
    # the conversion's clip counts travel in the QAT artifact (for the report)
    words = man["l1_words"]
    assert words["table_digest"] == spec.table_digest() and words["spec"]["format"]["name"] == "l1ct"
    val = words["conversion"]["validation"]
    assert val["format"] == "l1ct" and val["n_particles"] > 0 and set(val["clipped"]) == {"pt", "eta", "phi"}
    # the HLS project: test-bench words are valid words, features on chip with the spec's tables
    tb = np.load(project / "tb_data" / "inputs.npz")
    assert list(tb.files) == ["words"] and tb["words"].shape == (N_CSIM, 8, 5)
    check_words(tb["words"], load_word_format("l1ct"))
    hls = json.loads((project / "manifest.json").read_text())
    assert {f["op"] for f in hls["l1features"]} == {PARTICLE_OP, MASK_OP, PAIR_OP}
    assert {f["table_digest"] for f in hls["l1features"]} == {spec.table_digest()}
    assert hls["pair_features"] is None  # no pair graph input: computed on chip
    # C simulation == QONNX reference, bit for bit
    from l1tagger.verify import csim_result

    csim = csim_result.read(project)
    assert csim.bit_exact is True and csim.mismatching_values == 0 and csim.n_jets == N_CSIM
    check = json.loads((run / "csim" / "firmware_check.json").read_text())
    assert check["firmware_metrics_equal_quantized_model"] is True
    # the RTL route on the same words: da4ml's interpreter == QONNX reference, and its manifest names the tables
    rtl = json.loads((project / "rtl" / "rtl_summary.json").read_text())
    assert rtl["interp"]["bit_exact"] is True and rtl["interp"]["n_mismatches"] == 0
    assert rtl["interp"]["n_jets"] == N_CSIM
    assert {f["table_digest"] for f in rtl["l1_features"]} == {spec.table_digest()}
    rtl_man = json.loads((project / "rtl" / "rtl_manifest.json").read_text())
    assert {f["op"] for f in rtl_man["l1_features"]} == {PARTICLE_OP, MASK_OP, PAIR_OP}
    # the report exists and shows the C-sim check
    assert (run / "report.md").is_file()
    rep = json.loads((run / "report.json").read_text())
    assert rep["bit_exact"]["bit_exact"] is True
    # the report: the on-chip pair features and U are blocks of the totals; the words' saturation per jet set
    assert rep["pair_features"].startswith("on chip")
    assert rep["blocks"]["pair features"]["lut"] > 0 and rep["blocks"]["interaction U"]["lut"] > 0
    assert set(rep["l1_words"]["jet_sets"]) == {"validation", "train", "test"} and rep["l1_words"]["format"] == "l1ct"
    page = (run / "report.md").read_text()
    assert "Estimate per block" in page and "what the float -> word conversion saturated" in page


def test_the_run_trained_on_words_with_no_standardisation(words_run):
    """The float checkpoint holds the identity scaler (words are never standardised), the loaded taggers feed
    their graphs words (``testbench_feed``) exactly as the HLS test bench holds them, and the QAT manifest's record
    of the words takes any named jet set (``save_qat_artifacts(word_jets=...)``)."""
    from l1tagger.data.dataset import load_dataset
    from l1tagger.qat.artifact import l1_words_record, load_qat_tagger, testbench_feed
    from l1tagger.training import load_tagger

    run = words_run / "runs" / "words"
    ckpt = json.loads((run / "steps" / "train.json").read_text())["artifacts"]["checkpoint"]
    ft = load_tagger(ckpt)
    assert ft.scaler.is_identity and ft.model_config.inputs == "l1words"
    qt = load_qat_tagger(run / "qat" / "qat.pt")
    assert qt.scaler.is_identity
    jets = load_dataset("toy:300:3")
    split = np.load(run / "split.npz")
    feed = testbench_feed(qt, jets.subset(split["test"]), N_CSIM)
    tb = np.load(words_run / "hls_projects" / "words" / "tb_data" / "inputs.npz")
    assert np.array_equal(feed["words"], tb["words"])
    rec = l1_words_record(qt, {"train": jets.subset(split["train"]), "test": jets.subset(split["test"])})
    assert set(rec["conversion"]) == {"train", "test"}
    assert rec["conversion"]["test"]["n_jets"] == len(split["test"])
    manifest = json.loads((run / "qat" / "manifest.json").read_text())
    assert rec["spec"] == manifest["l1_words"]["spec"] and rec["table_digest"] == manifest["l1_words"]["table_digest"]
