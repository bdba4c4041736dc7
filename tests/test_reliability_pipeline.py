"""Reliability of `l1tagger run` (issue 12): run names that are paths, guarded removal, locks against concurrent
runs, verified artifacts and a --force that repairs, the whole config checked before step 1, presets found from
any working directory and from an installed package, and Ctrl-C that says where to resume."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import l1tagger
from l1tagger import resources
from l1tagger.cli import main
from l1tagger.errors import ConfigError, L1TaggerError
from l1tagger.pipeline.config import RunConfig, load_run_config, preflight
from l1tagger.pipeline.steps import Step, StepContext, StepInterrupted, run_steps
from l1tagger.qat.recipe import load_recipe
from l1tagger.report.budgets import load_budget
from l1tagger.utils.fs import UnsafeRemovalError, remove_inside
from l1tagger.utils.lock import (DatasetLockedError, LockedError, RunLockedError, exclusive_lock, lock_path_for,
                                 read_holder)
from l1tagger.utils.yamlio import DuplicateKeyError, load_yaml

REPO = Path(__file__).resolve().parents[1]
QUIET = dict(log=lambda m: None)


def tiny_cfg(root: Path, **kw) -> RunConfig:
    """A RunConfig whose directories all lie in ``root``, on toy jets (no Pythia), tiny model."""
    base = dict(name="r", runs_dir=str(root / "runs"), projects_dir=str(root / "hls"), data_dir=str(root / "data"),
                dataset="toy:150", n_particles=8, d_model=8, ffn_dim=16, epochs=1, qat_epochs=1, n_csim_jets=20)
    base.update(kw)
    return RunConfig(**base).validate()


# ------------------------------------------------------------------------------------- 1. the run name is a path
@pytest.mark.parametrize("name", ["..", ".", "", "/tmp/x", "a/b", "../x", ".hidden", "-x", "a b", "x" * 101])
def test_run_name_must_be_one_safe_path_component(name):
    with pytest.raises(ConfigError, match="name"):
        load_run_config(name=name)


def test_cli_refuses_a_path_as_run_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    assert main(["run", "--name", "..", "--print-config"]) == 1
    assert "name" in capsys.readouterr().err
    assert main(["run", "--name", "", "--print-config"]) == 1
    assert (tmp_path / "keep.txt").exists()


def test_remove_inside_refuses_everything_outside_its_root(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("x")
    for bad in (root, root / "..", root / "a" / ".." / "..", outside, Path("/")):
        with pytest.raises(UnsafeRemovalError, match="refusing"):
            remove_inside(bad, root)
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafeRemovalError, match="symlink"):
        remove_inside(root / "link", root)
    assert (outside / "f").exists()
    assert remove_inside(root / "a", root) and not (root / "a").exists()
    assert remove_inside(root / "a", root) is False  # already gone


def test_convert_clears_only_a_project_this_run_wrote(tmp_path):
    from l1tagger.pipeline.run import PROJECT_MARKER, claim_project

    cfg = tiny_cfg(tmp_path)
    ctx = StepContext(run_dir=cfg.run_dir, **QUIET)
    cfg.run_dir.mkdir(parents=True)
    project = cfg.project_dir
    project.mkdir(parents=True)
    (project / "precious.txt").write_text("not ours")
    with pytest.raises(UnsafeRemovalError, match="not written by run"):
        claim_project(cfg, ctx)
    assert (project / "precious.txt").exists()

    # a project converted by this run earlier (pre-marker runs: its manifest names this run's QAT checkpoint)
    (project / "manifest.json").write_text(json.dumps({"source": {"checkpoint": str(cfg.run_dir / "qat" / "qat.pt")}}))
    assert claim_project(cfg, ctx) == project and not project.exists()
    assert json.loads((cfg.run_dir / PROJECT_MARKER).read_text())["project"] == str(project.resolve())
    # an interrupted conversion (no manifest yet) of this run: the marker names it
    project.mkdir()
    (project / "half_written.cpp").write_text("")
    claim_project(cfg, ctx)
    assert not project.exists()

    # a symlink in place of the project is never followed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f").write_text("x")
    project.symlink_to(elsewhere)
    with pytest.raises(UnsafeRemovalError):
        claim_project(cfg, ctx)
    assert (elsewhere / "f").exists()


def test_rtl_off_never_removes_outside_the_runs_project(tmp_path):
    from l1tagger.pipeline.run import step_rtl

    cfg = tiny_cfg(tmp_path)
    foreign = tmp_path / "foreign"
    (foreign / "rtl").mkdir(parents=True)
    ctx = StepContext(run_dir=cfg.run_dir, artifacts={"convert": {"project": str(foreign)}}, **QUIET)
    with pytest.raises(UnsafeRemovalError):
        step_rtl(cfg, ctx)
    assert (foreign / "rtl").is_dir()
    (cfg.project_dir / "rtl").mkdir(parents=True)
    ctx.artifacts["convert"]["project"] = str(cfg.project_dir)
    assert step_rtl(cfg, ctx) == {} and not (cfg.project_dir / "rtl").exists()


@pytest.mark.parametrize("overlap", ["same_as_runs", "contains_cwd", "contains_data"])
def test_overlapping_directories_fail_before_any_step(tmp_path, monkeypatch, overlap):
    monkeypatch.chdir(tmp_path)
    kw = {"same_as_runs": dict(projects_dir=str(tmp_path / "runs")),
          "contains_cwd": dict(projects_dir=str(tmp_path.parent), name=tmp_path.name),
          "contains_data": dict(data_dir=str(tmp_path / "hls" / "r" / "data"), dataset="")}[overlap]
    with pytest.raises(ConfigError, match="projects_dir"):
        preflight(tiny_cfg(tmp_path, **kw))


# -------------------------------------------------------------------------------- 2. concurrent runs and locks
HOLDER = """
import sys
from l1tagger.utils.lock import exclusive_lock
with exclusive_lock(sys.argv[1], "test"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def lock_holder():
    procs = []

    def hold(lock_file: Path) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p

    yield hold
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def test_second_run_of_the_same_name_fails_at_once_naming_lock_and_holder(tmp_path, lock_holder):
    from l1tagger.pipeline.run import run_pipeline

    cfg = tiny_cfg(tmp_path)
    lock = cfg.run_dir / ".lock"
    holder = lock_holder(lock)
    t0 = time.monotonic()
    with pytest.raises(RunLockedError, match=rf"PID {holder.pid}\b.*lock file {lock}"):
        run_pipeline(cfg, **QUIET)
    assert time.monotonic() - t0 < 30
    assert not (cfg.run_dir / "steps").exists()  # no step ran, no record written

    # flock dies with its process: a killed holder's lock file blocks nobody
    holder.kill()
    holder.wait(timeout=30)
    with exclusive_lock(lock, "run", wait=False) as held:
        assert read_holder(held).startswith(f"PID {os.getpid()}")


def test_wait_lock_waits_for_the_holder(tmp_path):
    lock = tmp_path / "x.lock"
    messages = []
    with exclusive_lock(lock, "first"):
        with pytest.raises(LockedError, match="--wait-lock"):  # a second descriptor of this process is refused
            with exclusive_lock(lock, "second"):
                pass
    fd = os.open(lock, os.O_RDWR)  # another holder, released after 0.5 s
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.5, os.close, args=(fd,)).start()
    t0 = time.monotonic()
    with exclusive_lock(lock, "dataset d", wait=True, log=messages.append):
        waited = time.monotonic() - t0
    assert waited >= 0.4 and messages and messages[0].startswith("waiting for dataset d")


def test_dataset_generation_is_locked(tmp_path, lock_holder, capsys):
    from l1tagger.pipeline.run import step_data

    cfg = tiny_cfg(tmp_path, dataset="", n_per_class=1)
    h5 = Path(cfg.data_dir) / "hls4ml5_1_s1.h5"
    lock_holder(lock_path_for(h5))
    ctx = StepContext(run_dir=cfg.run_dir, **QUIET)
    with pytest.raises(DatasetLockedError, match=r"dataset .*hls4ml5_1_s1\.h5 is locked by PID"):
        step_data(cfg, ctx)
    out = tmp_path / "g.h5"
    lock_holder(lock_path_for(out))
    assert main(["generate", "--n-per-class", "1", "--workers", "1", "--no-progress", "--out", str(out)]) == 1
    assert "g.h5.lock" in capsys.readouterr().err and not out.exists()


# ------------------------------------------------------------------------------ 3. artifacts verified before reuse
@dataclass
class Cfg:
    a: int = 1


def file_steps(calls, fresh):
    def first(cfg, ctx):
        calls.append("first")
        fresh.append(ctx.fresh)
        p = ctx.run_dir / "first.bin"
        p.write_bytes(b"0123456789" * 100)
        d = ctx.run_dir / "proj"
        d.mkdir(exist_ok=True)
        (d / "manifest.json").write_text('{"v": 1}')
        (d / "build.log").write_text("compiler output")
        return {"out": p, "proj": d}

    return [Step("first", first, reads=("a",))]


def test_truncated_or_modified_artifact_reruns_the_step(tmp_path):
    calls, fresh, logs = [], [], []
    steps = file_steps(calls, fresh)
    run_steps(steps, Cfg(), tmp_path, **QUIET)
    record = json.loads((tmp_path / "steps" / "first.json").read_text())
    assert record["digests"]["out"]["size"] == 1000 and len(record["digests"]["out"]["sha256"]) == 64
    out = tmp_path / "first.bin"
    st = out.stat()
    with open(out, "r+b") as fh:  # truncated, mtime restored: existence and mtime look fine
        fh.truncate(500)
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    run_steps(steps, Cfg(), tmp_path, log=logs.append)
    assert calls == ["first", "first"] and fresh == [False, True]
    assert any("does not match its record" in m and "truncated" in m for m in logs)
    out.write_bytes(b"X" * 1000)  # same size, other bytes
    run_steps(steps, Cfg(), tmp_path, **QUIET)
    assert len(calls) == 3
    (tmp_path / "proj" / "build.log").write_text("other files of a directory artifact may change")
    run_steps(steps, Cfg(), tmp_path, **QUIET)
    assert len(calls) == 3
    (tmp_path / "proj" / "manifest.json").write_text('{"v": 2}')  # its manifest may not
    run_steps(steps, Cfg(), tmp_path, **QUIET)
    assert len(calls) == 4
    run_steps(steps, Cfg(), tmp_path, force=True, **QUIET)
    assert len(calls) == 5 and fresh[-1] is True


def test_force_and_damaged_checkpoints_retrain_instead_of_resuming(tmp_path):
    """A truncated best.pt reruns training from scratch; a corrupt last.pt is repaired by --force (it used to
    crash every rerun: the training resumed from it)."""
    from l1tagger.pipeline.run import STEPS
    from l1tagger.training import load_tagger

    cfg = tiny_cfg(tmp_path)
    steps = STEPS[:2]  # data (toy jets), train
    ctx = run_steps(steps, cfg, cfg.run_dir, **QUIET)
    best = ctx.artifact("train", "checkpoint")
    last = best.with_name("last.pt")
    assert last.is_file()
    last.write_bytes(last.read_bytes()[:100])
    best.write_bytes(best.read_bytes()[:100])
    logs = []
    ctx = run_steps(steps, cfg, cfg.run_dir, log=logs.append)
    assert any("train: rerunning, artifact 'checkpoint'" in m for m in logs)
    assert any("cleared" in m for m in logs)
    load_tagger(ctx.artifact("train", "checkpoint"))  # readable again

    # an interrupted training (no record) whose resume file is corrupt: a plain rerun resumes from it and fails,
    # --force starts the training afresh
    (cfg.run_dir / "steps" / "train.json").unlink()
    last.write_bytes(b"garbage")
    with pytest.raises(L1TaggerError, match=r"last\.pt"):
        run_steps(steps, cfg, cfg.run_dir, **QUIET)
    ctx = run_steps(steps, cfg, cfg.run_dir, force=True, **QUIET)
    load_tagger(ctx.artifact("train", "checkpoint"))
    assert (cfg.run_dir / "steps" / "train.json").is_file()


# ---------------------------------------------------------------------------- 4. config checked before step 1
@pytest.mark.parametrize("text, field", [
    ("seed: -1\n", "seed"),
    ("clock_ns: .nan\n", "clock_ns"),
    ("clock_ns: .inf\n", "clock_ns"),
    ("clock_ns: 0\n", "clock_ns"),
    ("clock_ns: -2.5\n", "clock_ns"),
    ("lr: .nan\n", "lr"),
    ("rtl_latency_cutoff: .nan\n", "rtl_latency_cutoff"),
    ("attention: topk\ntopk_k: 17\n", "topk_k"),
    ("attention: linformer\nlinformer_k: 32\n", "linformer_k"),
    ("linformer_k: 0\n", "linformer_k"),
    ("class_set: hls4ml6\n", "class_set"),
])
def test_bad_values_are_named_config_errors(tmp_path, text, field):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_run_config(p)


def test_duplicate_keys_and_bad_syntax_name_file_and_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("epochs: 3\nname: x\nepochs: 30\n")
    with pytest.raises(DuplicateKeyError, match=rf"{p}:3: duplicate key 'epochs' \(first given on line 1\)"):
        load_run_config(p)
    p.write_text("epochs: [3\n")
    with pytest.raises(ConfigError, match=rf"{p}:2: invalid YAML"):
        load_run_config(p)
    recipe = tmp_path / "r.yaml"
    recipe.write_text((REPO / "quantize" / "int8.yaml").read_text() + "rounding: floor\n")
    with pytest.raises(DuplicateKeyError, match=r"r\.yaml:\d+: duplicate key 'rounding'"):
        load_recipe(recipe)
    budget = tmp_path / "b.yaml"
    text = (resources.budgets_dir() / "cms_phase2_tmux6_360mhz.yaml").read_text()
    budget.write_text(text.replace("tmux:", "device:\n  name: X\ntmux:", 1))
    with pytest.raises(DuplicateKeyError, match=r"b\.yaml:\d+: duplicate key 'device'"):
        load_budget(budget)
    nested = tmp_path / "n.yaml"
    nested.write_text("a:\n  b: 1\n  b: 2\n")
    with pytest.raises(DuplicateKeyError, match=r"n\.yaml:3: duplicate key 'b'"):
        load_yaml(nested)
    nested.write_text("base: &b {x: 1}\nd:\n  <<: *b\n  x: 2\n")  # a merge key may be overridden
    assert load_yaml(nested) == {"base": {"x": 1}, "d": {"x": 2}}


@pytest.mark.parametrize("value", [".nan", ".inf", "0", "-360"])
def test_budget_clock_must_be_finite_and_positive(tmp_path, value):
    raw = yaml.safe_load((resources.budgets_dir() / "cms_phase2_tmux6_360mhz.yaml").read_text())
    p = tmp_path / "b.yaml"
    p.write_text(yaml.safe_dump(raw).replace("value: 360", f"value: {value}", 1))
    assert f"value: {value}" in p.read_text()
    with pytest.raises(ConfigError, match="clock"):
        load_budget(p)


def test_preflight_checks_recipe_budget_and_clock_before_any_step(tmp_path):
    from l1tagger.pipeline.run import run_pipeline

    with pytest.raises(ConfigError, match="budget.*cms_phase2_tmux6_360mhzz.*not found"):
        run_pipeline(tiny_cfg(tmp_path, budget="cms_phase2_tmux6_360mhzz"), **QUIET)
    with pytest.raises(ConfigError, match="recipe.*int7.*not found"):
        run_pipeline(tiny_cfg(tmp_path, recipe="quantize/int7.yaml"), **QUIET)
    with pytest.raises(ConfigError, match="clock_ns: 5.0 ns .* slower than the clock of budget"):
        run_pipeline(tiny_cfg(tmp_path, clock_ns=5.0), **QUIET)
    with pytest.raises(ConfigError, match="rtl: 'cosim' needs a floor-rounding recipe"):
        run_pipeline(tiny_cfg(tmp_path, rtl="cosim", recipe="quantize/int8.yaml"), **QUIET)
    with pytest.raises(ConfigError, match="dataset"):
        run_pipeline(tiny_cfg(tmp_path, dataset=str(tmp_path / "missing.h5")), **QUIET)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="clock_ns"):  # 200 MHz does not meet a 240 MHz slot
        preflight(tiny_cfg(tmp_path, clock_ns=5.0, budget="cms_phase2_tmux6_240mhz"))
    checked = preflight(tiny_cfg(tmp_path, clock_ns=4.0, budget="cms_phase2_tmux6_240mhz", rtl="cosim",
                                 recipe="quantize/int8_floor.yaml"))  # 250 MHz meets it
    assert checked["budget"].clock_mhz == 240 and checked["recipe"].rounding == "floor"


def test_presets_resolve_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec in ("quantize/int8.yaml", "int8_floor", "int6.yaml"):
        assert load_recipe(spec).source.startswith(str(resources.recipes_dir()))
    assert load_recipe("quantize/int8_floor.yaml").rounding == "floor"
    assert load_budget("cms_phase2_tmux6_240mhz").clock_mhz == 240
    assert load_budget("budgets/cms_phase2_tmux6_360mhz.yaml").clock_mhz == 360
    assert (resources.tcl_dir() / "hls_csynth.tcl").is_file()
    cfg = RunConfig(recipe="quantize/int8_floor.yaml", rtl="cosim")
    assert preflight(cfg)["recipe"].name == "int8_floor"
    assert cfg.input_file("recipe") == resources.recipes_dir() / "int8_floor.yaml"
    # a path that exists wins over the preset of the same spelling
    (tmp_path / "quantize").mkdir()
    raw = yaml.safe_load((resources.recipes_dir() / "int8.yaml").read_text())
    raw["name"] = "my_int8"
    (tmp_path / "quantize" / "int8.yaml").write_text(yaml.safe_dump(raw))
    assert load_recipe("quantize/int8.yaml").name == "my_int8"
    with pytest.raises(ConfigError, match="not found"):
        load_recipe("quantize/../quantize/nope.yaml")


def test_presets_live_inside_the_package_and_ship_in_the_wheel(tmp_path):
    pkg = Path(l1tagger.__file__).resolve().parent
    assert resources.presets_dir() == pkg / "presets"
    for folder, pattern, n in ((resources.recipes_dir(), "*.yaml", 5), (resources.budgets_dir(), "*.yaml", 3),
                               (resources.tcl_dir(), "*.tcl", 6)):
        files = sorted(folder.glob(pattern))
        assert len(files) >= n and all(f.is_file() and pkg in f.resolve().parents for f in files), folder
    # the checkout's top-level folders are symlinks into the package (docs spell quantize/int8.yaml)
    for name in ("quantize", "budgets", "tcl"):
        assert (REPO / name).is_symlink() and (REPO / name).resolve() == pkg / "presets" / name

    # a non-editable install: build the wheel from a copy, unpack it elsewhere, resolve from a third directory
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(pkg, src / "l1tagger", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(tmp_path / "whl")], check=True, cwd=tmp_path, timeout=300)
    site = tmp_path / "site"
    zipfile.ZipFile(next((tmp_path / "whl").glob("l1tagger-*.whl"))).extractall(site)
    probe = ("import l1tagger.resources as r, l1tagger.report.budgets as b, l1tagger.utils.yamlio as y; "
             "print(r.resolve_recipe('quantize/int8_floor.yaml')); print(b.load_budget('cms_phase2_tmux6_360mhz').path);"
             " print(r.tcl_dir() / 'hls_csim.tcl'); print(y.load_yaml(r.resolve_recipe('int4'))['name'])")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("L1TAGGER_")}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert all(line.startswith(str(site / "l1tagger" / "presets")) and Path(line).is_file() for line in lines[:3])
    assert lines[3] == "int4"


# ---------------------------------------------------------------------------------------------- 5. Ctrl-C
def test_interrupted_step_writes_no_record(tmp_path):
    def first(cfg, ctx):
        return {}

    def second(cfg, ctx):
        if cfg.a == 2:
            raise KeyboardInterrupt
        return {}

    steps = [Step("first", first, reads=()), Step("second", second, reads=("a",), after=("first",))]
    run_steps(steps, Cfg(a=1), tmp_path, **QUIET)
    assert (tmp_path / "steps" / "second.json").is_file()
    with pytest.raises(StepInterrupted) as info:
        run_steps(steps, Cfg(a=2), tmp_path, **QUIET)
    assert info.value.step == "second" and isinstance(info.value, KeyboardInterrupt)
    assert (tmp_path / "steps" / "first.json").is_file()
    assert not (tmp_path / "steps" / "second.json").exists()  # neither a new nor the stale old record


def test_ctrl_c_during_l1tagger_run_says_where_to_resume(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "r", "runs_dir": str(tmp_path / "runs"),
                                   "projects_dir": str(tmp_path / "hls"), "data_dir": str(tmp_path / "data"),
                                   "dataset": "toy:300", "n_particles": 8, "d_model": 8, "ffn_dim": 16,
                                   "epochs": 2000}))
    run = tmp_path / "runs" / "r"
    done, main_thread = threading.Event(), threading.main_thread().ident

    def interrupt_training():
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            if (run / "train").is_dir() and any((run / "train").iterdir()):
                time.sleep(0.3)
                if not done.is_set():
                    signal.pthread_kill(main_thread, signal.SIGINT)
                return
            time.sleep(0.05)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=interrupt_training, daemon=True)
    thread.start()
    try:
        rc = main(["run", str(cfg)])
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130
    assert err[-1].startswith("l1tagger run: interrupted during step 'train'; rerun the same command to resume "
                              "from it")
    assert (run / "steps" / "data.json").is_file() and not (run / "steps" / "train.json").exists()
    with exclusive_lock(run / ".lock", "run"):  # released on the way out
        pass


def test_a_generated_dataset_spec_keeps_the_data_step_up_to_date(tmp_path):
    """A ``toy:N`` dataset is no file: the data step must not record it as an artifact it cannot verify (which made
    the step, and every step after it, rerun on every call)."""
    from l1tagger.pipeline.run import STEPS, _jets

    cfg = tiny_cfg(tmp_path)
    logs: list[str] = []
    ctx = run_steps(STEPS[:1], cfg, cfg.run_dir, log=logs.append)
    assert "dataset" not in ctx.artifacts["data"] and len(_jets(cfg, ctx)[0]) == 150
    logs.clear()
    run_steps(STEPS[:1], cfg, cfg.run_dir, log=logs.append)
    assert any("data: up to date" in m for m in logs), logs
