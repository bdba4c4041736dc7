"""`l1tagger train --model vit` and `l1tagger interpret --model vit` drive the ViT baseline end to end."""

import json

from l1tagger.cli import main


def test_vit_train_and_interpret_cli(tmp_path):
    cfg = tmp_path / "vit.yaml"
    cfg.write_text("epochs: 1\n")
    assert main(["train", "toy:120:2", "--model", "vit", "--out", str(tmp_path / "vit"), "--config", str(cfg)]) == 0
    assert (tmp_path / "vit" / "best.pt").is_file()
    out = tmp_path / "interp"
    assert main(["interpret", str(tmp_path / "vit" / "best.pt"), "toy:60:2", "--model", "vit", "--out", str(out),
                 "--n-jets", "60", "--subjets", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary
    assert (out / "attention_fraction.png").is_file()


def test_vit_config_typo_is_named(tmp_path, capsys):
    cfg = tmp_path / "vit.yaml"
    cfg.write_text("epochz: 1\n")
    assert main(["train", "toy:40:2", "--model", "vit", "--out", str(tmp_path / "v"), "--config", str(cfg)]) == 1
    assert "epochz" in capsys.readouterr().err
