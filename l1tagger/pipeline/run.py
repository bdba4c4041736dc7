"""``l1tagger run``: generate (or read) -> train float -> QAT -> export -> convert -> C-sim -> report.

Each step is a function of the RunConfig and the artifacts of the steps before it; ``steps.run_steps`` skips a step
whose inputs are unchanged, so a rerun resumes at the first step whose inputs changed. Artifacts (all under
``runs/<name>/`` except the HLS project under ``hls_projects/<name>/``):

    data      dataset .h5 (generated) + split.npz (train/val/test indices)
    train     train/best.pt (+ config JSON), metrics/float.json
    qat       qat/qat.pt, qat/metrics.json, metrics/qat.json
    export    model.onnx + qat/manifest.json (cross-checked bit for bit against the Brevitas model)
    convert   hls_projects/<name>/ (firmware, tb_data, manifest.json)
    csim      csim/result.json, metrics/firmware.json (metrics of the C-simulation outputs)
    rtl       hls_projects/<name>/rtl/ (da4ml Verilog checked on the test-bench jets: da4ml's C++ interpreter
              always, Verilator co-simulation unless ``rtl: verilog``; Yosys counts with ``rtl: yosys``)
    report    report.md + report.json

Safety: the run name is one path component (``RunConfig.validate``) and the whole config, recipe and budget are
checked before step 1 (``config.preflight``). The run directory is locked (``runs/<name>/.lock``) for the whole
run and a generated dataset (``<dataset>.lock``) while it is generated, so a second run of the same name fails at
once (or waits with ``wait_lock``). The pipeline deletes only inside its own directories, through
``utils.fs.remove_inside``: the HLS project ``projects_dir/<name>`` (when this run wrote it), its ``rtl/``, the
training work directory ``runs/<name>/train/<fingerprint>`` and, with ``--force``, the generated dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from l1tagger.errors import VerificationError
from l1tagger.pipeline.config import RunConfig, preflight
from l1tagger.pipeline.steps import Step, StepContext, run_steps
from l1tagger.resources import resolve_recipe
from l1tagger.utils.atomic import atomic_path, atomic_write_json
from l1tagger.utils.fs import UnsafeRemovalError, is_strictly_inside, remove_inside
from l1tagger.utils.lock import DatasetLockedError, RunLockedError, exclusive_lock, lock_path_for

#: in the run directory: the resolved HLS project path this run created (it may clear only that one)
PROJECT_MARKER = "project.json"

SPLIT = (0.6, 0.2, 0.2)


def _jets(cfg: RunConfig, ctx: StepContext):
    from l1tagger.training.data import load_dataset

    jets = load_dataset(str(ctx.artifact("data", "dataset")))
    idx = np.load(ctx.artifact("data", "split"))
    return jets, {k: jets.subset(idx[k]) for k in ("train", "val", "test")}


def step_data(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.training.data import load_dataset, split_indices

    if cfg.dataset:
        path = Path(cfg.dataset)
        jets = load_dataset(str(path))
    else:
        from l1tagger.data.generate import generate

        path = Path(cfg.data_dir) / f"{cfg.class_set}_{cfg.n_per_class}_s{cfg.seed}.h5"
        # one generator per dataset at a time; other runs reading a finished file need no lock (it is replaced
        # atomically)
        with exclusive_lock(lock_path_for(path), f"dataset {path}", wait=ctx.wait_lock, error=DatasetLockedError,
                            log=ctx.log):
            if ctx.force:  # repair: regenerate the cached dataset and its interrupted chunks from scratch
                for p in (path, path.with_name(path.name + ".parts")):
                    if remove_inside(p, cfg.data_dir):
                        ctx.log(f"  --force: removed {p}")
            generate(cfg.class_set, cfg.n_per_class, path, seed=cfg.seed, max_particles=max(64, cfg.n_particles))
        jets = load_dataset(str(path))
    rng = np.random.default_rng(cfg.seed)
    # shuffled within each part: files are ordered by class, and the C-sim test bench takes the first test jets
    tr, va, te = (rng.permutation(p) for p in split_indices(len(jets), SPLIT, cfg.seed))
    out = ctx.run_dir / "split.npz"
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=tr, val=va, test=te)
    ctx.log(f"  {len(jets)} jets {jets.class_counts()} -> train {len(tr)}, val {len(va)}, test {len(te)}")
    return {"dataset": path, "split": out}


def step_train(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.training import evaluate, load_checkpoint, train, write_metrics
    from l1tagger.training.config import train_config_from_run

    jets, parts = _jets(cfg, ctx)
    tc = train_config_from_run(cfg, len(jets.class_names))
    # keyed by the step's fingerprint: an interrupted training resumes, a changed config starts afresh; with
    # --force or damaged artifacts it starts afresh too (a corrupt last.pt/best.pt must not be resumed from)
    work = ctx.run_dir / "train" / ctx.fingerprint
    if ctx.fresh and remove_inside(work, ctx.run_dir):
        ctx.log(f"  cleared {work} (no resume: --force or damaged artifacts)")
    ckpt = train(tc, parts["train"], parts["val"], work, resume=True)
    metrics = evaluate(load_checkpoint(ckpt), parts["test"], with_curves=True)
    write_metrics(metrics, ctx.run_dir / "metrics" / "float.json", ctx.run_dir / "metrics" / "float_roc.png", "float")
    ctx.log(f"  float: accuracy {metrics['accuracy']:.4f}, macro AUC {metrics['auc_macro']:.4f}")
    atomic_write_json(ctx.run_dir / "model.json", {
        "name": cfg.name, "attention": cfg.attention, "recipe": Path(cfg.recipe).stem,
        "dataset": f"Pythia {cfg.class_set}" if not cfg.dataset else str(cfg.dataset),
        "n_particles": cfg.n_particles, "pair_bias": cfg.pair_bias, "d_model": cfg.d_model, "n_heads": cfg.n_heads,
    })
    return {"checkpoint": ckpt, "metrics": ctx.run_dir / "metrics" / "float.json"}


def _qat(cfg: RunConfig, ctx: StepContext):
    from l1tagger.qat.finetune import QATConfig, qat_finetune
    from l1tagger.qat.recipe import load_recipe

    _, parts = _jets(cfg, ctx)
    recipe = load_recipe(cfg.recipe)
    qcfg = QATConfig(epochs=cfg.qat_epochs, batch_size=cfg.batch_size, lr=cfg.qat_lr, seed=cfg.seed).validate()
    res = qat_finetune(ctx.artifact("train", "checkpoint"), recipe, parts["train"], parts["val"], qcfg)
    res.source_checkpoint = ctx.artifact("train", "checkpoint")
    return res, qcfg, parts


def step_qat(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.commands.quantize import export_run
    from l1tagger.qat.finetune import qat_checkpoint
    from l1tagger.training import evaluate, write_metrics
    from l1tagger.utils.atomic import atomic_torch_save

    res, qcfg, parts = _qat(cfg, ctx)
    out = ctx.run_dir / "qat"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "recipe.yaml") as tmp:
        shutil.copyfile(resolve_recipe(cfg.recipe), tmp)
    atomic_torch_save(out / "qat.pt", qat_checkpoint(res, qcfg))
    summary = res.summary()
    atomic_write_json(out / "metrics.json", summary)
    metrics = evaluate(res.model.eval(), parts["test"], with_curves=True)
    write_metrics(metrics, ctx.run_dir / "metrics" / "qat.json", ctx.run_dir / "metrics" / "qat_roc.png", "qat")
    ctx.log(f"  QAT ({Path(cfg.recipe).stem}): accuracy {metrics['accuracy']:.4f}, macro AUC {metrics['auc_macro']:.4f}")
    manifest = export_run(res, out, parts["val"], check_jets=200)
    if not manifest["crosscheck"]["bit_exact"]:
        raise VerificationError(f"exported QONNX differs from the Brevitas model: {manifest['crosscheck']}")
    onnx = ctx.run_dir / "model.onnx"
    with atomic_path(onnx, suffix=".onnx") as tmp:
        shutil.copyfile(out / "model.onnx", tmp)
    ctx.log(f"  exported {onnx}: {manifest['n_nodes']} nodes, Brevitas == QONNX == integer emulation on "
            f"{manifest['crosscheck']['n_jets']} jets")
    return {"qat": out / "qat.pt", "metrics": ctx.run_dir / "metrics" / "qat.json", "onnx": onnx,
            "manifest": out / "manifest.json"}


def _test_jets(cfg: RunConfig, ctx: StepContext):
    """The test-bench jets: the first ``n_csim_jets`` of the (shuffled) test split."""
    _, parts = _jets(cfg, ctx)
    return parts["test"].subset(np.arange(min(cfg.n_csim_jets, len(parts["test"]))))


def _test_inputs(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.qat.finetune import load_qat_checkpoint
    from l1tagger.training import build_inputs

    model = load_qat_checkpoint(ctx.artifact("qat", "qat"))
    inp, _ = build_inputs(_test_jets(cfg, ctx), model.train_config.model, model.feature_scaler)
    return inp.graph_feed()


def _owns_project(project: Path, run_dir: Path) -> bool:
    """Whether ``project`` may be cleared by the run in ``run_dir``: empty, recorded in its marker, or (projects of
    runs from before the marker) converted from this run's own QAT checkpoint."""
    if not any(project.iterdir()):
        return True
    marker = run_dir / PROJECT_MARKER
    try:
        if json.loads(marker.read_text()).get("project") == str(project.resolve()):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    try:
        source = json.loads((project / "manifest.json").read_text())["source"]["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return is_strictly_inside(source, run_dir)


def claim_project(cfg: RunConfig, ctx: StepContext) -> Path:
    """The run's own HLS project directory ``projects_dir/<name>``, cleared for a new conversion.

    Refuses (UnsafeRemovalError, nothing removed) when the path is not a direct child of ``projects_dir`` named
    after the run, is a symlink, or exists with files this run did not write.
    """
    projects, project = Path(cfg.projects_dir), cfg.project_dir
    if project.name != cfg.name or project.parent.resolve() != projects.resolve():
        raise UnsafeRemovalError(f"HLS project {project} is not {projects}/{cfg.name}")
    if project.is_symlink() or (project.exists() and not project.is_dir()):
        raise UnsafeRemovalError(f"HLS project {project} exists and is not a directory this run wrote; remove it "
                                 f"or choose another run name")
    if project.exists() and not _owns_project(project, ctx.run_dir):
        raise UnsafeRemovalError(f"HLS project {project} exists and was not written by run {cfg.name!r} (no "
                                 f"{ctx.run_dir / PROJECT_MARKER} naming it); remove it or choose another run name")
    atomic_write_json(ctx.run_dir / PROJECT_MARKER, {"project": str(project.resolve())})
    remove_inside(project, projects)
    return project


def step_convert(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.convert import convert

    feed = _test_inputs(cfg, ctx)
    em = json.loads(Path(ctx.artifact("qat", "manifest")).read_text())
    source = {"checkpoint": str(ctx.artifact("qat", "qat")), "recipe": em.get("recipe"),
              "source_checkpoint": em.get("source_checkpoint"), "onnx": str(ctx.artifact("qat", "onnx"))}
    project = claim_project(cfg, ctx)
    convert(ctx.artifact("qat", "onnx"), project, backend=cfg.backend, part=cfg.part, clock=cfg.clock_ns,
            tb_inputs=feed, n_tb=cfg.n_csim_jets, source=source)
    ctx.log(f"  HLS project: {project}/ ({cfg.backend}, {cfg.part}, {cfg.clock_ns} ns)")
    return {"project": project, "manifest": project / "manifest.json"}


def step_csim(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.training import metrics_from_logits, write_metrics
    from l1tagger.verify.csim import load_tb, run_csim

    test = _test_jets(cfg, ctx)  # labels only: the jets' inputs are already in the project's tb_data
    labels, names = test.labels, list(test.class_names)
    project = ctx.artifact("convert", "project")
    res = run_csim(project)
    logits = res.outputs[:, : len(names)]
    labels = labels[: len(logits)]
    metrics = metrics_from_logits(logits, labels, names, None, True)
    # the same jets through the QONNX reference of the quantized model: identical predictions => identical metrics
    _, ref = load_tb(project, len(logits))
    ref_logits = np.asarray(next(iter(ref.values())), np.float64).reshape(len(logits), -1)[:, : len(names)]
    ref_metrics = metrics_from_logits(ref_logits, labels, names, None, False)
    same = all(ref_metrics[k] == metrics[k] for k in ("accuracy", "auc_macro", "auc_per_class"))
    out = ctx.run_dir / "csim" / "result.json"
    atomic_write_json(out, {
        "n_jets": res.n_jets, "n_mismatch": res.mismatching_values, "bit_exact": res.bit_exact,
        "first_mismatch_layer": (res.first_mismatch or {}).get("layer"), "layers_compared": res.layers_compared,
        "prediction_agreement": res.prediction_agreement, "compile_seconds": res.compile_seconds,
        "jets_per_second": res.jets_per_second, "project": res.project,
        "firmware_metrics_equal_quantized_model": same,
        "quantized_model_accuracy_same_jets": ref_metrics["accuracy"], "firmware_accuracy": metrics["accuracy"],
    })
    write_metrics(metrics, ctx.run_dir / "metrics" / "firmware.json", ctx.run_dir / "metrics" / "firmware_roc.png",
                  "firmware")
    ctx.log(f"  C simulation: {res.n_jets} jets, {res.mismatching_values} mismatching values, "
            f"{res.layers_compared} layers traced -> bit-exact: {res.bit_exact}; firmware accuracy "
            f"{metrics['accuracy']:.4f} (quantized model on the same jets {ref_metrics['accuracy']:.4f})")
    if not res.bit_exact or not same:
        raise VerificationError(f"C simulation is not bit-exact: first mismatch {res.first_mismatch}")
    return {"result": out, "metrics": ctx.run_dir / "metrics" / "firmware.json"}


def step_rtl(cfg: RunConfig, ctx: StepContext) -> dict:
    """The open RTL route on the same graph and the same test-bench jets as the C simulation."""
    from l1tagger.rtl.flow import run_rtl_flow
    from l1tagger.rtl.project import RtlConfig

    out = Path(ctx.artifact("convert", "project")) / "rtl"
    if cfg.rtl == "off":
        # generated by an earlier run with rtl on: the report must not show it as current
        remove_inside(out, cfg.project_dir)
        ctx.log("  open RTL route: off (set rtl: verilog, cosim or yosys)")
        return {}
    s = run_rtl_flow(ctx.artifact("qat", "onnx"), out, cosim=cfg.rtl != "verilog", interp=True,
                     yosys=cfg.rtl == "yosys",
                     n_jets=cfg.n_csim_jets, inputs=_test_inputs(cfg, ctx),
                     cfg=RtlConfig(latency_cutoff=cfg.rtl_latency_cutoff, clock_ns=cfg.clock_ns),
                     stimulus="the C-simulation test-bench jets (test split)")
    checks = [s[k] for k in ("interp", "cosim") if k in s]
    for c in checks:
        ctx.log(f"  RTL: {s['latency_cycles']} cycles, II {s['ii']}; {c['source']}: {c['n_jets']} jets, "
                f"{c['n_mismatches']} mismatching values -> bit-exact: {c['bit_exact']}")
    if "yosys" in s:
        y = s["yosys"]
        ctx.log(f"  Yosys {y['tool_version']}: LUT {y['LUT']}, FF {y['FF']}, CARRY {y['CARRY']}, DSP {y['DSP']}")
    for c in checks:
        if not c["bit_exact"]:
            raise VerificationError(f"RTL check ({c['source']}) is not bit-exact: first mismatch {c['first_mismatch']}")
    return {"summary": out / "rtl_summary.json"}


def step_report(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.report.make import write_report

    write_report(ctx.run_dir, cfg.budget, "md", project_dir=ctx.artifact("convert", "project"))
    return {"report": ctx.run_dir / "report.md", "json": ctx.run_dir / "report.json"}


STEPS = [
    Step("data", step_data, reads=("dataset", "data_dir", "class_set", "n_per_class", "seed", "n_particles"),
         doc="generate jets with Pythia 8 + FastJet (or read a dataset) and split"),
    Step("train", step_train, reads=("n_particles", "features", "attention", "pair_bias", "d_model", "n_heads",
                                     "n_blocks", "ffn_dim", "linformer_k", "topk_k", "ordering", "epochs",
                                     "batch_size", "lr", "seed"), after=("data",), doc="train the float tagger"),
    Step("qat", step_qat, reads=("recipe", "qat_epochs", "qat_lr", "batch_size", "seed"), after=("data", "train"),
         doc="QAT fine-tune with Brevitas, export QONNX, cross-check bit for bit"),
    Step("convert", step_convert, reads=("backend", "part", "clock_ns", "n_csim_jets", "name", "projects_dir"),
         after=("data", "qat"), doc="QONNX -> hls4ml HLS project with test bench"),
    Step("csim", step_csim, reads=("n_csim_jets",), after=("data", "qat", "convert"),
         doc="g++ C simulation, bit-exact comparison with the QONNX reference"),
    Step("rtl", step_rtl, reads=("rtl", "rtl_latency_cutoff", "n_csim_jets", "clock_ns"),
         after=("data", "qat", "convert"), doc="open RTL route: da4ml Verilog, Verilator co-simulation, Yosys"),
    Step("report", step_report, reads=("budget",), after=("train", "qat", "convert", "csim", "rtl"),
         doc="one-page report against the L1 budget"),
]


def run_pipeline(cfg: RunConfig, force: bool = False, log=print, wait_lock: bool = False) -> StepContext:
    """Check the whole config (``preflight``), lock ``runs/<name>/``, then run the steps that are not up to date.

    force:     rerun every step without reusing cached work (training restarts, the generated dataset is rebuilt)
    wait_lock: wait for another process holding the run's (or the dataset's) lock instead of failing at once
    Ctrl-C raises ``steps.StepInterrupted`` naming the step; rerunning resumes there.
    """
    import torch

    from l1tagger.pipeline.config import dump_run_config
    from l1tagger.utils.atomic import atomic_write_text

    preflight(cfg)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cfg.run_dir / ".lock", f"run directory {cfg.run_dir}", wait=wait_lock, error=RunLockedError,
                        log=log):
        atomic_write_text(cfg.run_dir / "config.yaml", dump_run_config(cfg))
        return run_steps(STEPS, cfg, cfg.run_dir, force=force, log=log, wait_lock=wait_lock)
