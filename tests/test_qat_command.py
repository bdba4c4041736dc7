"""``l1tagger quantize``: argument errors (fast) and a full QAT + export run on toy jets (slow)."""

import json

import numpy as np
import pytest
import torch

from l1tagger.cli import main


def test_help_and_bad_recipe(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["quantize", "--help"])
    assert exc.value.code == 0
    assert "--export" in capsys.readouterr().out
    ck = tmp_path / "best.pt"
    ck.write_bytes(b"x")
    bad = tmp_path / "r.yaml"
    bad.write_text("name: r\nrounding: half_up\n")
    assert main(["quantize", "--checkpoint", str(ck), "--recipe", str(bad), "--data", "toy:10"]) == 1
    assert "rounding" in capsys.readouterr().err


@pytest.mark.slow
def test_quantize_end_to_end(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "float"
    assert main(["train", "toy:400", "--out", str(out), "--epochs", "1", "--n-particles", "8", "--d-model", "8",
                 "--ffn-dim", "8", "--embed-dim", "8", "--head-dim", "8", "--pair-hidden", "4", "--features", "l1",
                 "--attention", "topk", "--no-progress"]) == 0
    rc = main(["quantize", "--checkpoint", str(out / "best.pt"), "--data", "toy:400", "--recipe", "quantize/int8_floor.yaml",
               "--epochs", "1", "--export", "--check-jets", "80", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    d = out / "qat" / "int8_floor"
    for name in ("qat.pt", "metrics.json", "recipe.yaml", "model.onnx", "manifest.json"):
        assert (d / name).is_file(), name
    man = json.loads((d / "manifest.json").read_text())
    assert man["crosscheck"]["bit_exact"] and man["crosscheck"]["n_jets"] == 80
    assert all(len(v["table_digest"]) == 64 for v in man["softmax"].values())
    met = json.loads((d / "metrics.json").read_text())
    assert {"float", "ptq", "qat", "accuracy_change"} <= set(met)

    from l1tagger.export.examples import toy_inputs
    from l1tagger.export.export import load_model
    from l1tagger.export.reference import run_reference
    from l1tagger.qat.artifact import load_qat_tagger

    # the reloaded QAT checkpoint computes exactly what the exported graph computes
    tagger = load_qat_tagger(d / "qat.pt")
    q = tagger.model
    inp = toy_inputs(tagger.model_config, 32, seed=5)
    feed = {k: inp[k] for k in ("x", "mask", "pair")}
    ref = run_reference(load_model(d / "model.onnx"), feed)["logits"]
    with torch.no_grad():
        y = q(*[torch.as_tensor(feed[k]) for k in ("x", "mask", "pair")]).numpy()
    assert np.array_equal(ref, y)


def test_quantize_hgq_budget_takes_its_target_from_the_budget_as_run_does(tmp_path, capsys):
    """`l1tagger quantize` resolves an HGQ recipe's target with the run's function: `target_ebops: budget` follows
    --budget (default: the run's default budget), --target-ebops overrides it."""
    from l1tagger.pipeline.config import RunConfig

    torch.set_num_threads(1)
    out = tmp_path / "float"
    assert main(["train", "toy:200", "--out", str(out), "--epochs", "1", "--n-particles", "8", "--d-model", "8",
                 "--ffn-dim", "8", "--embed-dim", "8", "--head-dim", "8", "--pair-hidden", "4", "--features", "l1",
                 "--no-progress"]) == 0
    budget = "cms_phase2_tmux6_360mhz_vu9p"
    want = RunConfig(recipe="hgq_budget", budget=budget).hgq_target["target_ebops"]
    for extra, target in ((["--budget", budget], want), (["--target-ebops", "12345"], 12345.0)):
        rc = main(["quantize", "--checkpoint", str(out / "best.pt"), "--data", "toy:200", "--recipe", "hgq_budget",
                   "--epochs", "1", "--no-progress", "--out", str(tmp_path / "q"), *extra])
        assert rc == 0, capsys.readouterr().err
        met = json.loads((tmp_path / "q" / "hgq_budget" / "metrics.json").read_text())
        assert met["hgq"]["target_ebops"] == target
