"""Issue 12 (reliability): fresh convert targets, synthesis without a report, one-line CLI errors, Ctrl-C, checkpoint
mismatches, one input-feed check (shapes, NaN, 0/1 masks, float32) for convert / csim / RTL / reference / model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from l1tagger.cli import main
from l1tagger.errors import ConfigError, DataError

N, C = 6, 4  # attention_block() defaults: x (1, 6, 4), mask (1, 6)


def _one_error_line(err: str, cmd: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith(f"l1tagger {cmd}: error: "), err
    return lines[-1]


@pytest.fixture()
def block(tmp_path):
    from l1tagger.verify.graphs import attention_block, random_inputs, save

    save(attention_block(), tmp_path / "m.onnx")
    feed = random_inputs(8, N, C)
    np.savez(tmp_path / "tb.npz", **feed)
    return tmp_path, feed


def _convert(d: Path, out: Path, *extra: str) -> int:
    return main(["convert", str(d / "m.onnx"), "--out", str(out), "--tb-inputs", str(d / "tb.npz"), "--n-tb", "4",
                 *extra])


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# ------------------------------------------------------------------ item 3: no stale reports in a new project
def test_convert_refuses_a_used_target_and_force_replaces_only_a_project(block, capsys):
    d, _ = block
    prj = d / "prj"
    assert _convert(d, prj) == 0
    stale = prj / "reports" / "vitis_hls.json"
    stale.parent.mkdir()
    stale.write_text('{"resources": {"lut": {"used": 1}}}')  # another model's synthesis numbers
    capsys.readouterr()

    assert _convert(d, prj) == 1
    line = _one_error_line(capsys.readouterr().err, "convert")
    assert str(prj) in line and "--force" in line and stale.is_file()

    assert _convert(d, prj, "--force") == 0
    assert not stale.exists() and not (prj / "reports").exists()
    man = json.loads((prj / "manifest.json").read_text())
    assert man["tb_data"]["n_jets"] == 4 and "hls4ml_config.yml" in man["files"]
    import yaml

    assert yaml.safe_load((prj / "hls4ml_config.yml").read_text())["OutputDir"] == str(prj)  # not the temp dir
    assert _siblings(prj) == []

    other = d / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    capsys.readouterr()
    assert _convert(d, other, "--force") == 1
    line = _one_error_line(capsys.readouterr().err, "convert")
    assert str(other) in line and "not an l1tagger HLS project" in line
    assert (other / "thesis.tex").read_text() == "keep me"


def test_force_never_clears_the_working_directory(block, monkeypatch, capsys):
    d, _ = block
    assert _convert(d, d / "prj") == 0
    monkeypatch.chdir(d / "prj")  # a real project, but it is "."
    capsys.readouterr()
    assert main(["convert", str(d / "m.onnx"), "--out", ".", "--force"]) == 1
    assert "refusing to replace" in _one_error_line(capsys.readouterr().err, "convert")
    assert (d / "prj" / "manifest.json").is_file()


def test_failed_writing_keeps_the_previous_project_and_leaves_no_temp_dir(tmp_path):
    from l1tagger.convert.project import staged_dir

    out = tmp_path / "prj"
    with pytest.raises(RuntimeError):
        with staged_dir(out) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("disk full halfway")
    assert not out.exists() and _siblings(out) == []
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"config": {"io_type": "io_parallel"}, "files": {}}))
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(out, force=True) as tmp:
            raise KeyboardInterrupt
    assert (out / "manifest.json").is_file() and _siblings(out) == []
    with staged_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"] and _siblings(out) == []


def _fake_vitis(bin_dir: Path, body: str) -> None:
    """A `vitis_hls` first on PATH that runs ``body`` and exits 0: tests our handling of the tool's exit, nothing
    stands in for its results."""
    bin_dir.mkdir()
    exe = bin_dir / "vitis_hls"
    exe.write_text("#!/bin/sh\n" + body + "\nexit 0\n")
    exe.chmod(0o755)


def _hls_project(path: Path) -> Path:
    path.mkdir()
    (path / "project.tcl").write_text('set project_name "myproject"\nset part "xcvu13p-flga2577-2-e"\n'
                                      'set clock_period 5\n')
    return path


def test_build_synth_that_writes_no_report_is_an_error(tmp_path, monkeypatch, capsys):
    prj = _hls_project(tmp_path / "prj")
    old = prj / "myproject_prj" / "solution1" / "syn" / "report" / "myproject_csynth.xml"
    old.parent.mkdir(parents=True)
    old.write_text("<profile/>")  # an earlier synthesis: must not pass for this one
    (prj / "reports").mkdir()
    (prj / "reports" / "vitis_hls.json").write_text("{}")
    _fake_vitis(tmp_path / "bin", "echo csynth done")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert main(["build", str(prj), "--synth"]) == 1
    line = _one_error_line(capsys.readouterr().err, "build")
    assert "myproject_csynth.xml" in line and "exited with code 0" in line
    assert not old.exists() and not (prj / "reports" / "vitis_hls.json").exists()
    assert "csynth done" in (prj / "logs" / "synth.log").read_text()


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    prj = _hls_project(tmp_path / "prj")
    started = tmp_path / "started"
    _fake_vitis(tmp_path / "bin", f"touch {started}\nsleep 60")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "-m", "l1tagger.cli", "build", str(prj), "--synth"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        t0 = time.time()
        while not started.exists():
            assert proc.poll() is None and time.time() - t0 < 60, proc.stderr.read() if proc.poll() else "timeout"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "l1tagger build: interrupted"


# ------------------------------------------------------------------ item 8: one line instead of a traceback
def test_impossible_output_directory_is_one_line(block, capsys):
    d, _ = block
    (d / "afile").write_text("")
    assert _convert(d, d / "afile" / "prj") == 1
    line = _one_error_line(capsys.readouterr().err, "convert")
    assert str(d / "afile") in line and "not a directory" in line.lower()
    (d / "run").mkdir()
    assert main(["report", str(d / "run"), "--out", str(d / "afile" / "rep")]) == 1  # an OSError deep inside
    line = _one_error_line(capsys.readouterr().err, "report")
    assert str(d / "afile") in line and "not a directory" in line.lower()


def test_invalid_yaml_is_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nepochs: [1, 2\n")
    assert main(["run", str(bad), "--print-config"]) == 1
    assert str(bad) in _one_error_line(capsys.readouterr().err, "run")
    assert main(["train", "toy:30", "--out", str(tmp_path / "t"), "--config", str(bad)]) == 1
    assert str(bad) in _one_error_line(capsys.readouterr().err, "train")


def test_yaml_error_message_names_the_command_line_file():
    import yaml

    from l1tagger.cli import yaml_error_message

    with pytest.raises(yaml.YAMLError) as exc:
        yaml.safe_load("a: [1, 2\n")
    msg = yaml_error_message(exc.value, ["cfg.yaml"])
    assert msg.startswith("cfg.yaml: line ") and "invalid YAML" in msg and "\n" not in msg


def _checkpoint(path: Path, toy_jets, d_config: int, d_weights: int, fmt: str = "l1tagger-checkpoint-1") -> Path:
    from l1tagger.models import ModelConfig
    from l1tagger.training import TrainConfig, build_inputs
    from l1tagger.training.loop import build_network

    def tc(d):
        return TrainConfig(model=ModelConfig(n_particles=8, n_classes=3, d_model=d, n_heads=2, ffn_dim=8,
                                             embed_dim=8, head_dim=8, pair_hidden=4))

    _, scaler = build_inputs(toy_jets, tc(d_config).model)
    torch.save({"format": fmt, "train_config": json.dumps(tc(d_config).to_dict()),
                "scaler": json.dumps(scaler.to_dict()), "class_names": json.dumps(["a", "b", "c"]),
                "model": build_network(tc(d_weights)).state_dict()}, path)
    return path


def test_checkpoint_of_another_model_shape_names_file_and_parameter(tmp_path, toy_jets, capsys):
    from l1tagger.training import load_tagger

    assert load_tagger(_checkpoint(tmp_path / "ok.pt", toy_jets, 8, 8)).model.cfg.d_model == 8
    ck = _checkpoint(tmp_path / "other.pt", toy_jets, 16, 8)
    with pytest.raises(ConfigError, match=r"other\.pt: weights do not fit the model: parameter 'embed_fc2\.weight' "
                                          r"has shape \(8, 8\) in the checkpoint, \(16, 8\)"):
        load_tagger(ck)
    assert main(["evaluate", str(ck), "toy:30", "--out", str(tmp_path / "ev")]) == 1
    assert "embed_fc2.weight" in _one_error_line(capsys.readouterr().err, "evaluate")


def test_qat_checkpoint_of_another_model_shape_is_named(tmp_path, toy_jets):
    from l1tagger.qat.artifact import load_qat_tagger
    from l1tagger.qat.recipe import load_recipe

    ck = _checkpoint(tmp_path / "q.pt", toy_jets, 16, 8, fmt="l1tagger-qat-1")
    data = torch.load(ck, weights_only=True)
    data["recipe"] = json.dumps(load_recipe("quantize/int8.yaml").to_dict())
    torch.save(data, ck)
    with pytest.raises(ConfigError, match=r"q\.pt: weights do not fit the model: parameter 'embed_fc2\.weight"):
        load_qat_tagger(ck)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_truncated_or_foreign_pt_file_is_named(tmp_path, toy_jets, content):
    from l1tagger.qat.artifact import load_qat_tagger
    from l1tagger.training import load_tagger

    path = tmp_path / "bad.pt"
    if content is None:  # a real checkpoint cut short
        data = _checkpoint(tmp_path / "full.pt", toy_jets, 8, 8).read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    for load in (load_tagger, load_qat_tagger):
        with pytest.raises(ConfigError, match=r"bad\.pt: cannot read") as exc:
            load(path)
        assert "\n" not in str(exc.value)


# ------------------------------------------------------------------ items 10, 11: one feed check everywhere
def test_validate_feed_messages():
    from l1tagger.verify.feed import validate_feed
    from l1tagger.verify.graphs import attention_block, random_inputs

    m = attention_block()
    feed = random_inputs(5, N, C)
    out = validate_feed(m, {**feed, "labels": np.zeros(5)}, "tb.npz")
    assert list(out) == ["x", "mask"] and all(a.dtype == np.float32 for a in out.values())
    for n in (N + 1, 2 * N):
        with pytest.raises(DataError, match=rf"^tb\.npz: input 'x' has {n} particles, the model takes {N}$"):
            validate_feed(m, random_inputs(5, n, C), "tb.npz")
    with pytest.raises(DataError, match=rf"input 'x' has 5 features per particle, the model takes {C}"):
        validate_feed(m, random_inputs(5, N, 5))
    with pytest.raises(DataError, match="input 'x' has shape"):
        validate_feed(m, {**feed, "x": feed["x"][0]})
    x = feed["x"].copy()
    x[3, 2, 1] = np.nan
    with pytest.raises(DataError, match=r"^input 'x' jet 3 particle 2: NaN$"):
        validate_feed(m, {**feed, "x": x})
    x = feed["x"].astype(np.float64)
    x[1, 0, 0] = 1e39  # finite in float64, inf in float32
    with pytest.raises(DataError, match=r"input 'x' jet 1 particle 0: 1e\+39 \(beyond the float32 range\)"):
        validate_feed(m, {**feed, "x": x})
    mask = feed["mask"].copy()
    mask[4, 1] = 0.5
    with pytest.raises(DataError, match=r"input 'mask' jet 4 particle 1: 0\.5, a mask takes only 0 or 1"):
        validate_feed(m, {**feed, "mask": mask})
    with pytest.raises(DataError, match=r"graph input\(s\) \['mask'\] not given"):
        validate_feed(m, {"x": feed["x"]})
    with pytest.raises(DataError, match="different numbers of jets"):
        validate_feed(m, {**feed, "mask": feed["mask"][:3]})
    assert len(validate_feed(m, feed, max_jets=2)["x"]) == 2


def test_reference_refuses_nan_naming_the_input_not_the_softmax():
    from l1tagger.export.reference import run_reference
    from l1tagger.verify.graphs import attention_block, random_inputs

    feed = random_inputs(4, N, C)
    feed["x"][2, 1, 0] = np.nan
    with pytest.raises(DataError, match=r"input 'x' jet 2 particle 1: NaN"):
        run_reference(attention_block(), feed)


def test_convert_with_too_many_particles_or_nan_is_one_line_and_writes_nothing(block, capsys):
    from l1tagger.verify.graphs import random_inputs

    d, feed = block
    np.savez(d / "tb7.npz", **random_inputs(8, N + 1, C))
    x = feed["x"].copy()
    x[3, 2, 0] = np.nan
    np.savez(d / "tbnan.npz", x=x, mask=feed["mask"])
    for name, want in (("tb7.npz", f"input 'x' has {N + 1} particles, the model takes {N}"),
                       ("tbnan.npz", "input 'x' jet 3 particle 2: NaN")):
        out = d / f"prj_{name}"
        assert main(["convert", str(d / "m.onnx"), "--out", str(out), "--tb-inputs", str(d / name)]) == 1
        line = _one_error_line(capsys.readouterr().err, "convert")
        assert line.endswith(f"{d / name}: {want}"), line
        assert not out.exists() and _siblings(out) == []


def test_csim_checks_the_projects_test_bench_before_compiling(block, capsys):
    d, feed = block
    assert _convert(d, d / "prj") == 0
    mask = feed["mask"][:4].copy()
    mask[1, 3] = 2.0
    np.savez(d / "prj" / "tb_data" / "inputs.npz", x=feed["x"][:4], mask=mask)
    capsys.readouterr()
    assert main(["csim", str(d / "prj")]) == 1
    line = _one_error_line(capsys.readouterr().err, "csim")
    assert "tb_data/inputs.npz: input 'mask' jet 1 particle 3: 2.0, a mask takes only 0 or 1" in line
    assert not (d / "prj" / "csim").exists()  # no C-simulation record (PROJECT/csim/result.json) written


def test_rtl_float64_inputs_are_cast_once_and_bit_exact(tmp_path, capsys):
    from l1tagger.rtl.examples import random_feed, tiny_attention

    tiny_attention(n=4).save(str(tmp_path / "model.onnx"))
    feed = random_feed(20, n=4, seed=5)
    # just below each grid point in float64, exactly on it in float32: the ports used to FLOOR the float64 value
    x64 = np.nextafter(feed["x"].astype(np.float64), -np.inf)
    assert np.array_equal(x64.astype(np.float32), feed["x"])
    np.savez(tmp_path / "x64.npz", x=x64, mask=feed["mask"].astype(np.float64))
    assert main(["rtl", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "rtl"), "--interp",
                 "--inputs", str(tmp_path / "x64.npz"), "--latency-cutoff", "6"]) == 0
    s = json.loads((tmp_path / "rtl" / "rtl_summary.json").read_text())
    assert s["interp"]["bit_exact"] and s["interp"]["n_jets"] == 20 and s["interp"]["n_mismatches"] == 0

    np.savez(tmp_path / "x8.npz", **random_feed(3, n=8))
    capsys.readouterr()
    assert main(["rtl", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "rtl8"), "--interp",
                 "--inputs", str(tmp_path / "x8.npz")]) == 1
    line = _one_error_line(capsys.readouterr().err, "rtl")
    assert line.endswith(f"{tmp_path / 'x8.npz'}: input 'x' has 8 particles, the model takes 4")
    assert not (tmp_path / "rtl8").exists()  # refused before lowering


def test_model_forward_refuses_mask_values_but_not_while_tracing():
    from l1tagger.models import ModelConfig, build_model

    model = build_model(ModelConfig(n_particles=4, n_classes=3, d_model=8, n_heads=2, ffn_dim=8, embed_dim=8,
                                    head_dim=8, pair_hidden=4)).eval()
    x, pair = torch.randn(3, 4, 7), torch.randn(3, 4, 4, 4)
    mask = torch.ones(3, 4)
    model(x, mask, pair)
    mask[2, 1] = 0.5
    with pytest.raises(DataError, match=r"mask jet 2 particle 1: 0\.5, a mask takes only 0 or 1"):
        model(x, mask, pair)
    import inspect
    import warnings

    from l1tagger.models.tagger import check_mask

    lines, first = inspect.getsourcelines(check_mask)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(model, (x, torch.ones(3, 4), pair), check_trace=False)
    # a data-dependent check run while tracing would warn (tensor -> Python bool) from inside check_mask
    assert not [w for w in caught if w.filename == inspect.getsourcefile(check_mask)
                and first <= w.lineno < first + len(lines)]
    assert traced(x, mask, pair).shape == (3, 3)  # and is not baked into the graph


def test_failed_rtl_run_leaves_no_previous_results_looking_current(tmp_path, capsys):
    from l1tagger.rtl.examples import tiny_attention

    m = tiny_attention(n=4)
    next(n for n in m.graph.node if n.op_type == "Relu").op_type = "Tanh"  # fails while lowering
    m.save(str(tmp_path / "bad.onnx"))
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    for name in ("rtl_summary.json", "yosys.json", "cosim.json"):  # an earlier model's numbers
        (rtl / name).write_text('{"LUT": 1, "bit_exact": true}')
    assert main(["rtl", str(tmp_path / "bad.onnx"), "--out", str(rtl)]) == 1
    assert "Tanh" in _one_error_line(capsys.readouterr().err, "rtl")
    assert sorted(p.name for p in rtl.iterdir()) == []


def test_unreadable_npz_inputs_are_named(block, capsys):
    d, feed = block
    np.save(d / "one.npy", feed["x"])
    (d / "one.npy").rename(d / "one.npz")
    (d / "cut.npz").write_bytes((d / "tb.npz").read_bytes()[:100])
    np.savez(d / "obj.npz", x=np.array([{"x": 1}], dtype=object), mask=feed["mask"])
    for name, want in (("one.npz", "holds one array"), ("cut.npz", "not a readable .npz"),
                       ("obj.npz", "not a readable .npz")):
        assert main(["convert", str(d / "m.onnx"), "--out", str(d / "p"), "--tb-inputs", str(d / name)]) == 1
        assert f"{d / name}: {want}" in _one_error_line(capsys.readouterr().err, "convert")
        assert main(["rtl", str(d / "m.onnx"), "--out", str(d / "r"), "--interp", "--inputs", str(d / name)]) == 1
        assert f"{d / name}: {want}" in _one_error_line(capsys.readouterr().err, "rtl")
