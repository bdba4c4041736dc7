"""``l1tagger generate`` / ``l1tagger inspect`` through the real CLI."""

import json

import numpy as np
import pytest

from l1tagger.cli import main
from l1tagger.data.io import write_jets


def test_inspect_cli_on_file_without_substructure(tmp_path, toy_jets, capsys):
    path = write_jets(toy_jets, tmp_path / "toy.h5")
    assert main(["inspect", str(path), "--out", str(tmp_path / "plots" / "toy.png")]) == 0
    out = capsys.readouterr().out
    for name, n in toy_jets.class_counts().items():
        assert name in out and str(n) in out
    summary = json.loads((tmp_path / "plots" / "toy.json").read_text())
    assert (tmp_path / "plots" / "toy.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["class_counts"] == toy_jets.class_counts()
    assert summary["substructure_computed_from_constituents"] is True
    for c in summary["classes"].values():
        assert sum(c["sdmass_hist"]) <= c["count"] and len(c["tau21_hist"]) == 40


def test_generate_cli_then_inspect(tmp_path, capsys):
    out = tmp_path / "g.h5"
    rc = main(["generate", "--classes", "hls4ml5", "--n-per-class", "4", "--seed", "2", "--out", str(out),
               "--workers", "1", "--no-progress", "--max-particles", "32"])
    assert rc == 0 and out.is_file() and not (tmp_path / "g.h5.parts").exists()
    assert "jets/s/core" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    s = json.loads(out.with_suffix(".json").read_text())
    assert s["class_counts"] == {"g": 4, "q": 4, "W": 4, "Z": 4, "t": 4}
    assert s["substructure_computed_from_constituents"] is False
    assert np.isfinite(s["classes"]["W"]["sdmass_median"])


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["generate", "--classes", "bogus", "--n-per-class", "2", "--out", str(tmp_path / "x.h5")]) == 1
    assert "unknown class set 'bogus'" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", ["generate", "inspect"])
def test_help_is_useful(cmd, capsys):
    with pytest.raises(SystemExit):
        main([cmd, "--help"])
    text = capsys.readouterr().out
    assert "example:" in text and ("--out" in text)
