"""`l1tagger sweep` (issue 16 item 1) and the provenance record of results (item 5).

Bad sweep files fail before anything runs, naming the key; the grid expands deterministically; a sweep of tiny
`l1tagger run` points on two local Dask workers completes, is killed, and resumes without redoing complete points.
The default run uses 3 points (about a minute and a half on 2 cores); the 6-point sweep on generated Pythia jets
is marked slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from l1tagger.cli import main
from l1tagger.data.io import write_jets
from l1tagger.errors import ConfigError
from l1tagger.sweep.engine import pending_reason
from l1tagger.sweep.spec import load_sweep
from l1tagger.utils.provenance import add_rows, config_key, git_state, provenance

TINY = {"model": {"n_particles": 8, "d_model": 8, "ffn_dim": 16}, "train": {"epochs": 1}, "qat": {"epochs": 1},
        "n_csim_jets": 20}


def write_sweep(path: Path, **fields) -> Path:
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------ bad sweep files
BAD = [
    ("unknown top-level key", "grid: {seed: [1]}\nworker: 2\n", "worker: unknown key"),
    ("empty grid", "grid: {}\n", "grid: the sweep has no point"),
    ("no grid", "workers: 1\n", "grid: the sweep has no point"),
    ("empty value list", "grid: {seed: []}\n", "grid.seed: empty list"),
    ("values not a list", "grid: {seed: 3}\n", "grid.seed: expected a list"),
    ("unknown grid key", "grid: {model.pair_hiden: [4, 8]}\n", "grid.model.pair_hiden: unknown key"),
    ("unknown key in a section", "grid: {model: [{attention: topk}, {atention: full}]}\n", "grid.model.atention"),
    ("derived key", "grid: {train.seed: [1, 2]}\n", "grid.train.seed: may not be set"),
    ("key set by the sweep", "grid: {name: [a, b]}\n", "grid.name: may not be set"),
    ("unknown key in a point", "points: [{seed: 1}, {model.d_modle: 8}]\n", "points[1].model.d_modle: unknown key"),
    ("invalid point", "grid: {model.attention: [full, linformer], model.linformer_k: [4, 64]}\n",
     "model.linformer_k"),
    ("invalid value type", "grid: {seed: [1, one]}\n", "seed: expected int"),
    ("unknown recipe", "grid: {recipe: [int8, int9]}\n", "recipe: recipe 'int9' not found"),
    ("duplicate key", "grid: {seed: [1]}\ngrid: {seed: [2]}\n", "duplicate key 'grid'"),
    ("duplicate point", "grid: {seed: [1, 2]}\npoints: [{seed: 2}]\n", "points[0]: the same point as grid"),
    ("bad signal efficiency", "grid: {seed: [1]}\nsignal_efficiency: 1.5\n", "signal_efficiency"),
    ("bad cluster kind", "grid: {seed: [1]}\ncluster: kubernetes\n", "cluster.kind: 'kubernetes'"),
    ("cluster option the sweep sets", "grid: {seed: [1]}\ncluster: {kind: local, n_workers: 4}\n",
     "cluster.n_workers"),
    ("unknown base key", "base: {epoch: 3}\ngrid: {seed: [1]}\n", "base: epoch: unknown key"),
    ("peers not a list", "grid: {seed: [1]}\npeers: p.json\n", "peers: expected a list"),
    ("missing peers file", "grid: {seed: [1]}\npeers: [nope/peers.json]\n", "peers[0]: "),
]


@pytest.mark.parametrize("text,needle", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_sweep_file_fails_before_anything_runs(tmp_path, capsys, text, needle):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(text + f"out: {tmp_path / 'out'}\n")
    assert main(["sweep", str(sweep)]) == 1
    err = capsys.readouterr().err.strip()
    assert needle in err and err.startswith(f"l1tagger sweep: error: {sweep}") and "\n" not in err
    assert not (tmp_path / "out").exists()  # nothing written, nothing run


def test_invalid_point_is_named_with_its_overrides(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", base=TINY, grid={"model.attention": ["full", "linformer"],
                                                              "model.linformer_k": [4, 9]}, out=str(tmp_path / "o"))
    with pytest.raises(ConfigError) as exc:
        load_sweep(sweep)
    msg = str(exc.value)
    assert "point s-" in msg and "model.attention=linformer, model.linformer_k=9" in msg
    assert "model.linformer_k: " in msg.split("):", 1)[1]


def test_jobqueue_cluster_needs_dask_jobqueue(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("dask_jobqueue") is not None:
        pytest.skip("dask-jobqueue is installed")
    sweep = write_sweep(tmp_path / "s.yaml", grid={"seed": [1]}, cluster={"kind": "slurm", "cores": 2})
    assert main(["sweep", str(sweep), "--dry-run"]) == 1
    assert "cluster.kind: slurm needs dask-jobqueue" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ expansion
def test_grid_expansion_is_deterministic(tmp_path, capsys):
    out = tmp_path / "o"
    a = write_sweep(tmp_path / "a.yaml", name="p", base=TINY, out=str(out),
                    grid={"model.attention": ["full", "topk"], "seed": [1, 2, 3]},
                    points=[{"attention": "linformer", "model.linformer_k": 2}])
    s1, s2 = load_sweep(a), load_sweep(a)
    assert [p.name for p in s1.points] == [p.name for p in s2.points]
    assert len(s1.points) == 7 and len({p.name for p in s1.points}) == 7
    assert [(p.overrides["model.attention"], p.overrides.get("seed")) for p in s1.points[:3]] == \
        [("full", 1), ("full", 2), ("full", 3)]  # file order, last key fastest
    last = s1.points[-1]
    assert last.origin == "points[0]" and last.overrides == {"model.attention": "linformer", "model.linformer_k": 2}
    assert last.config.model.attention == "linformer" and last.config.model.linformer_k == 2
    # the name depends only on the point's own overrides: a flat shorthand, another key order, another grid or base
    # name the same run
    b = write_sweep(tmp_path / "b.yaml", name="p", base={**TINY, "seed": 7}, out=str(out), grid={"seed": [9]},
                    points=[{"model.linformer_k": 2, "model.attention": "linformer"}])
    assert load_sweep(b).points[-1].name == last.name
    for p in s1.points:  # every point: its own run and project under the sweep folder, base values kept
        assert p.name.startswith("p-") and p.config.name == p.name
        assert p.config.run_dir == out / "runs" / p.name and p.config.project_dir == out / "hls_projects" / p.name
        assert p.config.model.d_model == 8 and p.config.n_csim_jets == 20
    # --dry-run checks and lists, writes nothing
    assert main(["sweep", str(a), "--dry-run"]) == 0
    assert f"point {last.name} (model.attention=linformer, model.linformer_k=2): to run" in capsys.readouterr().out
    assert not out.exists()


def test_base_as_a_run_file_and_command_line_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("name: ignored\nattention: topk\nn_particles: 8\nd_model: 8\nrtl: off\n")
    sweep = write_sweep(tmp_path / "s.yaml", base=str(base), grid={"model.topk_k": [1, 3]}, workers=4)
    spec = load_sweep(sweep, out=tmp_path / "elsewhere", workers=2, cluster="none")
    assert spec.workers == 2 and spec.cluster.kind == "none" and spec.out == (tmp_path / "elsewhere").absolute()
    assert [p.config.model.topk_k for p in spec.points] == [1, 3]
    assert all(p.config.model.attention == "topk" and p.config.rtl == "off" for p in spec.points)


# ------------------------------------------------------------------------------------------------ provenance
def test_provenance_record_and_rows_keyed_by_config(tmp_path):
    p = provenance(["benchmarks/bench_x.py", "--epochs", "3"])
    assert p["command"] == "python benchmarks/bench_x.py --epochs 3"
    assert set(p["versions"]) >= {"torch", "brevitas", "qonnx", "hls4ml", "da4ml", "l1tagger"}
    assert p["versions"]["torch"].startswith("2.") and p["timestamp"].endswith("+00:00")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    assert p["commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert git_state(tmp_path) == {"commit": None, "dirty": None}  # not a git checkout
    import socket

    assert socket.gethostname() not in json.dumps(p)

    path = tmp_path / "r.json"
    row = lambda epochs, acc: {"config": {"epochs": epochs, "seed": 1}, "config_key": config_key(
        {"epochs": epochs, "seed": 1}), "accuracy": acc}
    rows = add_rows(path, [row(3, 0.5)])
    path.write_text(json.dumps({"rows": rows + [{"name": "legacy row without a key"}]}))
    rows = add_rows(path, [row(5, 0.6)], log=lambda m: None)  # other settings: a new row
    assert [r.get("accuracy") for r in rows] == [0.5, None, 0.6]
    path.write_text(json.dumps({"rows": rows}))
    said = []
    rows = add_rows(path, [row(3, 0.55)], log=said.append)  # the same settings: replaced, and said so
    assert [r.get("accuracy") for r in rows] == [None, 0.6, 0.55] and "same config" in said[0]
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="r.json: not a valid results JSON"):
        add_rows(path, [row(3, 0.5)])


# ------------------------------------------------------------------------------------------------ the table
def test_rejection_at_a_working_point_and_the_pareto_front():
    from l1tagger.sweep.collect import pareto_front, rejection_at

    metrics = {"rejection": {"W": {"rej50": 8.0, "rej99": 1.5}, "Z": {"rej50": None, "rej50_lower_bound": 40}},
               "roc_curves": {"W": {"signal_efficiency": [0.0, 0.25, 0.5, 0.75, 1.0],
                                    "background_efficiency": [0.0, 0.05, 0.125, 0.25, 1.0]},
                              "Z": {"signal_efficiency": [0.0, 0.5, 1.0], "background_efficiency": [0.0, 0.0, 1.0]}}}
    r = rejection_at(metrics, 0.5)  # a stored working point: taken as stored, bounds kept
    assert r["per_class"] == {"W": 8.0, "Z": None} and r["lower_bounds"] == {"Z": 40}
    assert r["geomean"] == pytest.approx(8.0)
    r = rejection_at(metrics, 0.6)  # no stored working point: read off the stored ROC curve
    assert r["per_class"]["W"] == pytest.approx(1 / (0.125 + 0.1 * 0.125 / 0.25))
    assert r["per_class"]["Z"] == pytest.approx(1 / 0.2) and "ROC curve" in r["source"]
    assert r["geomean"] == pytest.approx((r["per_class"]["W"] * r["per_class"]["Z"]) ** 0.5)

    rows = [{"name": "a", "acc": 0.7, "cost": 100.0}, {"name": "b", "acc": 0.6, "cost": 50.0},
            {"name": "c", "acc": 0.6, "cost": 80.0}, {"name": "d", "acc": 0.75, "cost": 100.0},
            {"name": "e", "acc": None, "cost": 1.0}]
    assert pareto_front(rows, "acc", "cost") == ["b", "d"]  # c is dominated by b, a by d; e has no accuracy


# ------------------------------------------------------------------------------------------------ running
def test_failing_point_is_reported_and_the_sweep_goes_on(tmp_path, capsys):
    """cluster: none (no Dask): a point whose run fails (an unreadable dataset) is a failed row with its log."""
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an HDF5 file")
    sweep = write_sweep(tmp_path / "s.yaml", name="f", base={**TINY, "dataset": str(bad)}, grid={"seed": [1]},
                        cluster="none", out=str(tmp_path / "o"))
    assert main(["sweep", str(sweep)]) == 1
    assert "FAILED (exit 1: error)" in capsys.readouterr().out
    doc = json.loads((tmp_path / "o" / "pareto.json").read_text())
    (r,) = doc["rows"]
    assert r["state"] == "failed (exit 1)" and r["bit_exact"]["verdict"] == "not checked"
    assert "l1tagger run: error:" in Path(r["log"]).read_text()
    assert "failed (exit 1)" in (tmp_path / "o" / "pareto.md").read_text()


def _peer_row(eff=0.5, acc=0.61, lut=143_000.0):
    """A row shaped as ``python -m l1tagger.peers`` writes it (l1tagger/peers/hgq2.py), for the table only."""
    return {"name": "peer-hgq2-linformer-n8x3-0123abcd", "origin": "same-jets peer (hgq2)", "overrides": [],
            "state": "finished", "accuracy": acc, "accuracy_n_jets": 1000, "auc_macro": 0.86, "firmware_accuracy": acc,
            "rejection": {"signal_efficiency": eff, "geomean": 40.0}, "rejection_geomean": 40.0, "da4ml_lut": lut,
            "ebops": 150_000, "lut": None, "lut_source": None, "dsp": 0, "latency_ns": 30.6, "latency_source": "da4ml",
            "bit_exact": {"verdict": "bit-exact", "n_jets": 1000}, "budget_verdict": None}


def test_same_jets_peers_join_the_table_and_the_front(tmp_path, capsys):
    """peers: [peers.json]: the peer rows are in pareto.json / .md, marked as peers, on the fronts with the points; a
    peers file taken at another signal efficiency, or not a peers file, is refused naming it."""
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an HDF5 file")
    peers = tmp_path / "peers.json"
    peers.write_text(json.dumps({"rows": [_peer_row()]}))
    sweep = write_sweep(tmp_path / "s.yaml", name="p", base={**TINY, "dataset": str(bad)}, grid={"seed": [1]},
                        cluster="none", out=str(tmp_path / "o"), peers=["peers.json"])
    assert main(["sweep", str(sweep)]) == 1  # the point fails (unreadable data); the table is still written
    doc = json.loads((tmp_path / "o" / "pareto.json").read_text())
    peer = next(r for r in doc["rows"] if r.get("peer"))
    assert peer["origin"] == "same-jets peer (hgq2)" and peer["source_file"] == str(peers)
    assert peer["name"] in doc["fronts"]["accuracy"]["da4ml_lut"]  # the only point with numbers
    assert "same-jets peer: hgq2" in (tmp_path / "o" / "pareto.md").read_text()
    capsys.readouterr()
    for text, needle in ((json.dumps({"rows": [_peer_row(eff=0.3)]}), "rejection at signal efficiency 0.3"),
                         (json.dumps({"points": []}), "not a peers.json")):
        peers.write_text(text)
        with pytest.raises(ConfigError, match=needle):  # refused while the sweep file is read, before any run
            load_sweep(sweep)


def test_second_sweep_on_a_locked_folder_fails_at_once(tmp_path, capsys):
    from l1tagger.utils.lock import exclusive_lock

    out = tmp_path / "o"
    sweep = write_sweep(tmp_path / "s.yaml", base=TINY, grid={"seed": [1]}, cluster="none", out=str(out))
    with exclusive_lock(out / ".lock", "a sweep folder"):  # as another sweep holds it
        assert main(["sweep", str(sweep)]) == 1
    err = capsys.readouterr().err
    assert f"sweep folder {out} is locked by PID {os.getpid()}" in err
    assert not (out / "points").exists() and not (out / "runs").exists()


def _step_times(run_dir: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (run_dir / "steps").glob("*.json")}


def _is_point_process(p: psutil.Process) -> bool:
    try:
        cmd = p.cmdline()
    except psutil.Error:  # ended meanwhile
        return False
    return cmd[1:4] == ["-m", "l1tagger.cli", "run"]


def _sigint_default():  # in the sweep process: Ctrl-C raises KeyboardInterrupt even if the test runner ignores it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_and_resume(tmp_path: Path, sweep: Path, kill_after_complete: int, ctrl_c: bool, timeout_s: float = 900):
    """Start the sweep in a subprocess (its own process group, as on a terminal), interrupt it once
    ``kill_after_complete`` points are complete (``ctrl_c``: SIGINT to the whole process group, as Ctrl-C on a
    terminal; else SIGTERM to the sweep process alone, as a batch system or `kill`), check that it and every process
    it started are gone, then rerun it to the end. Returns (spec, complete at the kill, output of the rerun)."""
    spec = load_sweep(sweep)
    env = {**os.environ, "L1TAGGER_PROGRESS_INTERVAL": "600"}
    proc = subprocess.Popen([sys.executable, "-m", "l1tagger.cli", "sweep", str(sweep)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=_sigint_default)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            complete = [p for p in spec.points if (p.config.run_dir / "steps" / "report.json").is_file()]
            if len(complete) >= kill_after_complete:
                break
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.5)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any(_is_point_process(c) for c in children)  # a point was running when killed
        if ctrl_c:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted; complete points are kept" in out and "Traceback" not in out
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "processes of the sweep survived it"
    done = {p.name: _step_times(p.config.run_dir) for p in spec.points if pending_reason(p.config) is None}
    assert 1 <= len(done) < len(spec.points)
    proc = subprocess.run([sys.executable, "-m", "l1tagger.cli", "sweep", str(sweep)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for p in spec.points:
        if p.name in done:
            assert f"point {p.name} ({p.describe()}): complete, not rerun" in proc.stdout
            assert _step_times(p.config.run_dir) == done[p.name]  # not a single step redone
        else:
            assert f"point {p.name} ({p.describe()}): finished" in proc.stdout
        assert pending_reason(p.config) is None
    return spec, done, proc.stdout


@pytest.fixture(scope="module")
def resumed_sweep(tmp_path_factory, toy_jets):
    """3 tiny points (one from points:) on 2 local Dask workers, stopped with Ctrl-C when one is complete, then
    resumed."""
    root = tmp_path_factory.mktemp("sweep")
    data = write_jets(toy_jets, root / "toy.h5")
    sweep = write_sweep(root / "s3.yaml", name="s3", base={**TINY, "dataset": str(data)}, workers=2,
                        grid={"model.attention": ["full", "topk"]},
                        points=[{"model.attention": "linformer", "model.linformer_k": 2}], out=str(root / "out"))
    spec, done, log = kill_and_resume(root, sweep, kill_after_complete=1, ctrl_c=True)
    return root, sweep, spec, log


def test_sweep_with_two_workers_resumes_after_kill(resumed_sweep):
    root, _, spec, log = resumed_sweep
    assert "Dask: LocalCluster with 2 worker(s)" in log
    doc = json.loads((spec.out / "pareto.json").read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert set(rows) == {p.name for p in spec.points}
    for r in rows.values():
        assert r["state"] in ("finished", "finished earlier")
        assert r["bit_exact"]["verdict"] == "bit-exact" and r["bit_exact"]["n_jets"] == 20
        assert 0 <= r["accuracy"] <= 1 and r["accuracy_n_jets"] > 0
        assert r["ebops"] > 0 and r["lut"] > 0 and r["latency_ns"] > 0
        assert r["config"]["name"] == r["name"] and r["config"]["model"]["d_model"] == 8
        assert r["rejection"]["signal_efficiency"] == 0.5
    assert doc["provenance"]["command"].startswith("l1tagger sweep")
    assert doc["fronts"]["accuracy"]["ebops"]  # someone is on the front
    md = (spec.out / "pareto.md").read_text()
    assert all(name in md for name in rows) and "bit-exact (20)" in md
    assert (spec.out / "pareto.png").stat().st_size > 0
    for p in spec.points:  # each point is an ordinary run: its config file reruns it with plain `l1tagger run`
        assert (spec.out / "points" / f"{p.name}.yaml").is_file() and (spec.out / "logs" / f"{p.name}.log").is_file()


def test_complete_sweep_reruns_nothing(resumed_sweep, capsys):
    root, sweep, spec, _ = resumed_sweep
    before = {p.name: _step_times(p.config.run_dir) for p in spec.points}
    assert main(["sweep", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.count("complete, not rerun") == 3 and f"{len(spec.points)} complete, 0 to run" in out
    assert {p.name: _step_times(p.config.run_dir) for p in spec.points} == before


@pytest.mark.slow
def test_six_point_sweep_on_generated_jets_resumes_after_kill(tmp_path):
    """6 points (attention x seed) on 2 workers; the points of one seed share one generated Pythia dataset (the
    second waits for the first one's generation through --wait-lock)."""
    sweep = write_sweep(tmp_path / "s6.yaml", name="s6", base={**TINY, "n_per_class": 40}, workers=2,
                        grid={"model.attention": ["full", "topk", "linformer"], "model.linformer_k": [2],
                              "seed": [1, 2]}, out=str(tmp_path / "out"))
    spec, done, _ = kill_and_resume(tmp_path, sweep, kill_after_complete=2, ctrl_c=False, timeout_s=1800)
    assert len(spec.points) == 6
    assert sorted(p.name for p in (tmp_path / "out" / "data").glob("*.h5")) == ["hls4ml5_40_s1.h5",
                                                                                 "hls4ml5_40_s2.h5"]
    rows = json.loads((spec.out / "pareto.json").read_text())["rows"]
    assert len(rows) == 6 and all(r["bit_exact"]["verdict"] == "bit-exact" for r in rows)


# ------------------------------------------------------------------------------------------------ benchmark rows
def _benchmark(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_rows_of_other_settings_are_added_not_replaced(tmp_path, capsys):
    """bench_rtl merged rows by attention/N/k alone: a rerun at another latency cutoff replaced the first row. Rows
    are keyed by their full config now, carry their provenance, and go to --out, not into the checkout."""
    bench = _benchmark("bench_rtl")
    checkout_results = Path(bench.RESULTS) / "rtl.json"
    before = checkout_results.stat().st_mtime_ns if checkout_results.exists() else None

    def row(cutoff):
        config = {"attention": "full", "n_particles": 8, "k": None, "pair_bias": True, "latency_cutoff": cutoff}
        return {"key": "full/N=8/k=-/U", "attention": "full", "n_particles": 8, "k": None, "pair_bias": True,
                "latency_cutoff": cutoff, "latency_cycles": 10, "da4ml_lut_estimate": 100, "register_bits": 10,
                "config": config, "config_key": config_key(config), "provenance": provenance()}

    bench.write_results([row(8.0)], tmp_path)
    bench.write_results([row(4.0)], tmp_path)
    rows = json.loads((tmp_path / "rtl.json").read_text())["rows"]
    assert sorted(r["latency_cutoff"] for r in rows) == [4.0, 8.0]
    bench.write_results([row(4.0)], tmp_path)  # the same settings again: replaced, and said so
    assert len(json.loads((tmp_path / "rtl.json").read_text())["rows"]) == 2
    assert "same config" in capsys.readouterr().out
    md = (tmp_path / "rtl.md").read_text()
    assert md.count("| full/N=8/k=-/U | ") == 2 and (provenance()["commit"] or "")[:10] in md
    assert (checkout_results.stat().st_mtime_ns if checkout_results.exists() else None) == before


def test_rtl_trained_rows_say_how_many_jets_each_figure_rests_on():
    bench = _benchmark("bench_rtl_trained")
    legacy = {"name": "old", "pair_bias": True, "n_per_class": 10000, "epochs": 40, "accuracy_qat": 0.68,
              "rtl_check": "da4ml C++ interpreter", "rtl_bit_exact": True, "rtl_check_jets": 1000,
              "latency_cycles": 24, "latency_ns": 66.7, "ii": 1, "lut": 1500000, "lut_source": "da4ml estimate",
              "ff": None, "dsp": None, "delta_accuracy_vs_anchor": -0.05, "lut_ratio_vs_anchor": 6.1,
              "latency_ratio_vs_anchor": 0.65}
    new = {**legacy, "name": "new", "seed": 2, "accuracy_test_jets": 10000, "rtl_check_jets": 1000,
           "bit_exact_jets_which": "the first 1000 of the 10000 test-split jets (shuffled with seed 2)",
           "provenance": {"commit": "0123456789abcdef"}}
    md = bench.markdown([legacy, new])
    assert "| new | yes | 10000 | 40 | 2 | 0.6800 (10000) | True (1000 jets, da4ml C++ interpreter) |" in md
    assert "new: the first 1000 of the 10000 test-split jets (shuffled with seed 2)" in md
    assert "| old | yes | 10000 | 40 | — | 0.6800 (—) |" in md and "| 0123456789 |" in md


def test_the_pareto_sweep_of_the_race_is_valid(tmp_path):
    """sweeps/pareto.yaml (issue 16's Pareto sweep, run by hand on a bigger machine) expands into its 29 valid points:
    the int8 baseline and >= 3 HGQ targets of every (N, kind), on >= 50k jets per class, the RTL route on."""
    from collections import Counter

    spec = load_sweep(Path(__file__).resolve().parents[1] / "sweeps" / "pareto.yaml", out=tmp_path / "o")
    assert len(spec.points) == 29 and not (tmp_path / "o").exists()
    cfgs = [p.config for p in spec.points]
    assert all(c.n_per_class >= 50000 and c.rtl == "verilog" and c.n_csim_jets >= 1000 for c in cfgs)
    kinds = Counter((c.model.n_particles, c.model.attention, Path(str(c.recipe)).stem) for c in cfgs)
    for n in (16, 32):
        for kind in ("full", "linformer", "topk"):
            assert kinds[(n, kind, "int8_floor")] == 1 and kinds[(n, kind, "hgq_budget")] >= 3, (n, kind)
    assert kinds[(16, "linformer", "hgq_lean")] == 2 and kinds[(32, "linformer", "hgq_lean")] == 2
