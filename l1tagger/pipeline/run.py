"""``l1tagger run``: generate (or read) -> train float -> QAT -> export -> convert -> C-sim -> report.

Each step is a thin adapter from the RunConfig and the artifacts of the steps before it to the stage's own code (the
same functions the single-stage commands call); ``steps.run_steps`` skips a step whose inputs are unchanged, so a
rerun resumes at the first step whose inputs changed. Artifacts (all under ``runs/<name>/`` except the HLS project
under ``hls_projects/<name>/``):

    data      dataset .h5 (generated) + split.npz (train/val/test indices)
    train     train/best.pt (+ config JSON), metrics/float.json
    qat       qat/ (l1tagger.qat.artifact, the same routine as `l1tagger quantize --export`: qat.pt, metrics.json,
              recipe.yaml, model.onnx, manifest.json with the provenance and the bit-exact export cross-check),
              model.onnx (copy), metrics/qat.json (test split); with an HGQ recipe qat/target.json (the EBOPs
              target and its source: qat.target_ebops, the recipe, or the budget, ``RunConfig.hgq_target``)
    convert   hls_projects/<name>/ (firmware, tb_data, manifest.json)
    csim      hls_projects/<name>/csim/result.json (l1tagger.verify.csim_result, the same file `l1tagger csim`
              writes), metrics/firmware.json (metrics of the C-simulation outputs) and csim/firmware_check.json
              (firmware metrics == quantized-model metrics on the same jets)
    rtl       hls_projects/<name>/rtl/ (da4ml Verilog checked on the test-bench jets: da4ml's C++ interpreter
              always, Verilator co-simulation unless ``rtl: verilog``; Yosys counts with ``rtl: yosys``);
              hls_projects/<name>/da4ml_cost.json (da4ml's cost of the graph, also with ``rtl: off``: lowered,
              no Verilog written; the report reads it, l1tagger.report.da4ml_cost)
    report    report.md + report.json; a budget-driven run (HGQ recipe) whose model does not fit the budget then
              fails with BudgetNotReachedError naming the smallest cost reached (every artifact kept)

Safety: the run name is one path component (``RunConfig.validate``) and the whole config, recipe and budget are
checked before step 1 (``config.preflight``). The run directory is locked (``runs/<name>/.lock``) for the whole
run and a generated dataset (``<dataset>.lock``) while it is generated, so a second run of the same name fails at
once (or waits with ``wait_lock``). The pipeline deletes only inside its own directories, through
``utils.fs.remove_inside``: the HLS project ``projects_dir/<name>`` (when this run wrote it), its ``rtl/``, the
training work directory ``runs/<name>/train/<fingerprint>`` and, with ``--force``, the generated dataset.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from l1tagger.errors import L1TaggerError, NotBitExactError
from l1tagger.pipeline.config import RunConfig, preflight
from l1tagger.pipeline.steps import Step, StepContext, run_steps
# PROJECT_MARKER: in the run directory, the resolved HLS project path this run created (the run may clear only that
# one; `l1tagger report` takes the project's C-sim result, reports and RTL from there)
from l1tagger.report.schema import PROJECT_MARKER
from l1tagger.utils.atomic import atomic_path, atomic_write_json
from l1tagger.utils.fs import UnsafeRemovalError, is_strictly_inside, remove_inside
from l1tagger.utils.lock import DatasetLockedError, RunLockedError, exclusive_lock, lock_path_for

SPLIT = (0.6, 0.2, 0.2)

#: validation jets of the export cross-check (Brevitas = QONNX reference = integer emulation)
QAT_CHECK_JETS = 200


def _jets(cfg: RunConfig, ctx: StepContext):
    from l1tagger.data.dataset import load_dataset

    # a file dataset is an artifact of the data step; a generated spec (``toy:N``) is its own description
    jets = load_dataset(str(ctx.artifacts["data"].get("dataset", cfg.dataset)))
    idx = np.load(ctx.artifact("data", "split"))
    return jets, {k: jets.subset(idx[k]) for k in ("train", "val", "test")}


def step_data(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.data.dataset import load_dataset, split_indices

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
            generate(cfg.class_set, cfg.n_per_class, path, seed=cfg.seed,
                     max_particles=max(64, cfg.model.n_particles))
        jets = load_dataset(str(path))
    rng = np.random.default_rng(cfg.seed)
    # shuffled within each part: files are ordered by class, and the C-sim test bench takes the first test jets
    tr, va, te = (rng.permutation(p) for p in split_indices(len(jets), SPLIT, cfg.seed))
    out = ctx.run_dir / "split.npz"
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=tr, val=va, test=te)
    ctx.log(f"  {len(jets)} jets {jets.class_counts()} -> train {len(tr)}, val {len(va)}, test {len(te)}")
    # a spec that is no file (``toy:N``) is determined by its text, which the fingerprint holds: no artifact
    return {"dataset": path, "split": out} if path.is_file() else {"split": out}


def step_train(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.training import evaluate, load_tagger, train, write_metrics

    jets, parts = _jets(cfg, ctx)
    tc = cfg.train_config(len(jets.class_names))
    # keyed by the step's fingerprint: an interrupted training resumes, a changed config starts afresh; with
    # --force or damaged artifacts it starts afresh too (a corrupt last.pt/best.pt must not be resumed from)
    work = ctx.run_dir / "train" / ctx.fingerprint
    if ctx.fresh and remove_inside(work, ctx.run_dir):
        ctx.log(f"  cleared {work} (no resume: --force or damaged artifacts)")
    ckpt = train(tc, parts["train"], parts["val"], work, resume=True)
    metrics = evaluate(load_tagger(ckpt), parts["test"], with_curves=True)
    write_metrics(metrics, ctx.run_dir / "metrics" / "float.json", ctx.run_dir / "metrics" / "float_roc.png", "float")
    ctx.log(f"  float: accuracy {metrics['accuracy']:.4f}, macro AUC {metrics['auc_macro']:.4f}")
    m = cfg.model
    atomic_write_json(ctx.run_dir / "model.json", {
        "name": cfg.name, "attention": m.attention, "recipe": Path(cfg.recipe).stem,
        "dataset": f"Pythia {cfg.class_set}" if not cfg.dataset else str(cfg.dataset),
        "n_particles": m.n_particles, "pair_bias": m.pair_bias, "d_model": m.d_model, "n_heads": m.n_heads,
    })
    return {"checkpoint": ckpt, "metrics": ctx.run_dir / "metrics" / "float.json"}


def step_qat(cfg: RunConfig, ctx: StepContext) -> dict:
    """QAT fine-tune, then the QAT artifact with export and cross-check (``save_qat_artifacts``, as ``l1tagger
    quantize --export``); a cross-check that is not bit-exact raises NotBitExactError."""
    from l1tagger.qat.artifact import save_qat_artifacts
    from l1tagger.qat.finetune import qat_finetune
    from l1tagger.qat.recipe import load_recipe
    from l1tagger.report.make import TARGET_FILE
    from l1tagger.training import evaluate, write_metrics

    _, parts = _jets(cfg, ctx)
    qcfg = cfg.qat_config()
    recipe, target = load_recipe(cfg.recipe), cfg.hgq_target
    if target is not None:  # the resolved target travels in the recipe the QAT artifact records
        recipe = dataclasses.replace(recipe, hgq=dataclasses.replace(recipe.hgq, target_ebops=target["target_ebops"]))
        ctx.log(f"  HGQ target: {target['target_ebops']:,.0f} EBOPs from {target['source']} ({target['detail']})")
    res = qat_finetune(ctx.artifact("train", "checkpoint"), recipe, parts["train"], parts["val"], qcfg)
    out = ctx.run_dir / "qat"
    if target is not None:
        atomic_write_json(ctx.run_dir / TARGET_FILE, target)
    manifest = save_qat_artifacts(res, out, qcfg, parts["val"], export=True, check_jets=QAT_CHECK_JETS,
                                  word_jets={"train": parts["train"], "test": parts["test"]})
    metrics = evaluate(res.tagger, parts["test"], with_curves=True)
    write_metrics(metrics, ctx.run_dir / "metrics" / "qat.json", ctx.run_dir / "metrics" / "qat_roc.png", "qat")
    ctx.log(f"  QAT ({res.recipe.name}): accuracy {metrics['accuracy']:.4f}, macro AUC {metrics['auc_macro']:.4f}")
    onnx = ctx.run_dir / "model.onnx"  # where `l1tagger report` looks for the graph of the estimate
    with atomic_path(onnx, suffix=".onnx") as tmp:
        shutil.copyfile(out / "model.onnx", tmp)
    ctx.log(f"  exported {onnx}: {manifest['n_nodes']} nodes, Brevitas == QONNX == integer emulation on "
            f"{manifest['crosscheck']['n_jets']} jets")
    return {"qat": out / "qat.pt", "metrics": ctx.run_dir / "metrics" / "qat.json", "onnx": onnx,
            "manifest": out / "manifest.json", **({"target": ctx.run_dir / TARGET_FILE} if target else {})}


def _test_jets(cfg: RunConfig, ctx: StepContext):
    """The test-bench jets: the first ``n_csim_jets`` of the (shuffled) test split."""
    _, parts = _jets(cfg, ctx)
    return parts["test"].subset(np.arange(min(cfg.n_csim_jets, len(parts["test"]))))


def _test_inputs(cfg: RunConfig, ctx: StepContext) -> dict:
    from l1tagger.qat.artifact import load_qat_tagger, testbench_feed

    return testbench_feed(load_qat_tagger(ctx.artifact("qat", "qat")), _test_jets(cfg, ctx))


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
    from l1tagger.qat.artifact import read_provenance

    feed = _test_inputs(cfg, ctx)
    source = {"checkpoint": str(ctx.artifact("qat", "qat")), "onnx": str(ctx.artifact("qat", "onnx")),
              **read_provenance(ctx.artifact("qat", "manifest"))}
    project = claim_project(cfg, ctx)
    clock = cfg.clock_period_ns
    convert(ctx.artifact("qat", "onnx"), project, backend=cfg.backend, part=cfg.part, clock=clock,
            tb_inputs=feed, n_tb=cfg.n_csim_jets, source=source)
    ctx.log(f"  HLS project: {project}/ ({cfg.backend}, {cfg.part}, {clock:.4g} ns)")
    return {"project": project, "manifest": project / "manifest.json"}


def step_csim(cfg: RunConfig, ctx: StepContext) -> dict:
    """``run_csim`` + ``csim_result.write`` (as ``l1tagger csim``), then the firmware's physics metrics."""
    from l1tagger.training import metrics_from_logits, write_metrics
    from l1tagger.verify import csim_result
    from l1tagger.verify.csim import load_tb, run_csim

    test = _test_jets(cfg, ctx)  # labels only: the jets' inputs are already in the project's tb_data
    labels, names = test.labels, list(test.class_names)
    project = ctx.artifact("convert", "project")
    res = run_csim(project, write=False)
    record = csim_result.CsimRecord.from_csim(res)
    result = csim_result.write(record, project)
    logits = res.outputs[:, : len(names)]
    labels = labels[: len(logits)]
    metrics = metrics_from_logits(logits, labels, names, None, True)
    # the same jets through the QONNX reference of the quantized model: identical predictions => identical metrics
    _, ref = load_tb(project, len(logits))
    ref_logits = np.asarray(next(iter(ref.values())), np.float64).reshape(len(logits), -1)[:, : len(names)]
    ref_metrics = metrics_from_logits(ref_logits, labels, names, None, False)
    same = all(ref_metrics[k] == metrics[k] for k in ("accuracy", "auc_macro", "auc_per_class"))
    check = ctx.run_dir / "csim" / "firmware_check.json"
    atomic_write_json(check, {
        "csim_result": str(result), "n_jets": record.n_jets, "bit_exact": record.bit_exact,
        "firmware_metrics_equal_quantized_model": same,
        "quantized_model_accuracy_same_jets": ref_metrics["accuracy"], "firmware_accuracy": metrics["accuracy"],
    })
    write_metrics(metrics, ctx.run_dir / "metrics" / "firmware.json", ctx.run_dir / "metrics" / "firmware_roc.png",
                  "firmware")
    ctx.log(f"  C simulation: {record.summary()}; firmware accuracy {metrics['accuracy']:.4f} (quantized model on "
            f"the same jets {ref_metrics['accuracy']:.4f})")
    if not record.bit_exact:
        raise NotBitExactError(f"{result}: C simulation {record.summary()}")
    if not same:
        raise NotBitExactError(f"{check}: the firmware's metrics differ from the quantized model's on the same jets")
    return {"result": result, "check": check, "metrics": ctx.run_dir / "metrics" / "firmware.json"}


def step_rtl(cfg: RunConfig, ctx: StepContext) -> dict:
    """The open RTL route on the same graph and the same test-bench jets as the C simulation."""
    from l1tagger.report import da4ml_cost

    project = Path(ctx.artifact("convert", "project"))
    out = project / "rtl"
    if cfg.rtl == "off":
        # generated by an earlier run with rtl on: the report must not show it as current
        remove_inside(out, cfg.project_dir)
        ctx.log("  open RTL route: off (set rtl: verilog, cosim or yosys)")
        if "onnx" in ctx.artifacts.get("qat", {}):
            # da4ml's cost of the same graph, for the report, without writing Verilog (cached in the project)
            c = da4ml_cost.cached_da4ml_cost(ctx.artifact("qat", "onnx"), project, cfg.rtl_latency_cutoff)
            ctx.log("  da4ml cost of the graph: " + (f"{c['lut']:,.0f} LUT, {c['latency_cycles']} pipeline stages"
                                                      if c["status"] == "ok" else c["reason"]))
        return {}
    from l1tagger.rtl.flow import run_rtl_flow
    from l1tagger.rtl.project import RtlConfig

    onnx = ctx.artifact("qat", "onnx")
    s = run_rtl_flow(onnx, out, cosim=cfg.rtl != "verilog", interp=True,
                     yosys=cfg.rtl == "yosys",
                     n_jets=cfg.n_csim_jets, inputs=_test_inputs(cfg, ctx),
                     cfg=RtlConfig(latency_cutoff=cfg.rtl_latency_cutoff, clock_ns=cfg.clock_period_ns),
                     stimulus="the C-simulation test-bench jets (test split)")
    # the report's da4ml cost of this graph: the route's own numbers (no second lowering)
    da4ml_cost.write_cached(onnx, project, {
        "status": "ok", "lut": float(s["da4ml_cost_estimate_lut"]), "latency_cycles": s["latency_cycles"],
        "register_bits": s["register_bits"], "n_ops": None, "seconds": s["lower_s"], "source": da4ml_cost.SOURCE,
        "blocks": da4ml_cost.blocks_of(onnx, s["node_cost"]),
    }, cfg.rtl_latency_cutoff)
    checks = [s[k] for k in ("interp", "cosim") if k in s]
    for c in checks:
        ctx.log(f"  RTL: {s['latency_cycles']} cycles, II {s['ii']}; {c['source']}: {c['n_jets']} jets, "
                f"{c['n_mismatches']} mismatching values -> bit-exact: {c['bit_exact']}")
    if "yosys" in s:
        y = s["yosys"]
        ctx.log(f"  Yosys {y['tool_version']}: LUT {y['LUT']}, FF {y['FF']}, CARRY {y['CARRY']}, DSP {y['DSP']}")
    for c in checks:
        if not c["bit_exact"]:
            raise NotBitExactError(f"RTL check ({c['source']}) is not bit-exact: first mismatch {c['first_mismatch']}")
    return {"summary": out / "rtl_summary.json"}


class BudgetNotReachedError(L1TaggerError):
    """A budget-driven run (HGQ recipe) whose trained model does not fit its budget; raised by the report step
    after report.md / report.json are written, so every completed step's artifacts and the report are kept."""


def budget_shortfall(cfg: RunConfig, report: dict) -> str | None:
    """The error message of a budget-driven run whose model does not fit (None when it fits or the recipe is
    uniform): the budget lines over their allowance and the smallest cost the QAT reached."""
    if cfg.hgq_target is None or report.get("budget_verdict") != "fail":
        return None
    over = [f"{r['quantity']} {r['value']:,.0f} > {r['budget']:,.0f} {r['unit']} ({r['source']})"
            for r in report["budget_table"] if r["status"] == "fail"]
    hq = report.get("hgq") if isinstance(report.get("hgq"), dict) else {}
    low = hq.get("smallest_ebops") or {}
    reached = (f"the smallest cost QAT reached is {low['ebops']:,} EBOPs (epoch {low['epoch']}, validation accuracy "
               f"{low['val_accuracy']:.4f}) against the target {hq.get('target_ebops'):,.0f} from "
               f"{hq.get('target_source')}" if low else "no QAT history")
    est = report.get("estimate")
    kept = f"; the kept model: {est['total']['lut']:,.0f} LUT, {est['total']['dsp']:,.0f} DSP estimated" \
        if isinstance(est, dict) else ""
    da = report.get("da4ml_cost")
    kept += f", {da['lut']:,.0f} LUT by da4ml" if isinstance(da, dict) and da.get("status") == "ok" else ""
    return (f"budget {cfg.budget} not reached: {'; '.join(over)}; {reached}{kept}. Every step's artifacts and "
            f"{cfg.run_dir / 'report.md'} are kept; give a smaller model, more QAT epochs (qat.epochs) or a larger "
            f"budget")


def step_report(cfg: RunConfig, ctx: StepContext) -> dict:
    """The one-page report; for a budget-driven run (HGQ recipe) whose model does not fit the budget, then
    BudgetNotReachedError naming the smallest cost reached (after the report is written)."""
    from l1tagger.report.make import write_report

    res = write_report(ctx.run_dir, cfg.budget, "md", project_dir=ctx.artifact("convert", "project"))
    message = budget_shortfall(cfg, res["report"])
    if message:
        raise BudgetNotReachedError(message)
    return {"report": ctx.run_dir / "report.md", "json": ctx.run_dir / "report.json"}


STEPS = [
    Step("data", step_data, reads=("dataset", "data_dir", "class_set", "n_per_class", "seed", "model.n_particles"),
         doc="generate jets with Pythia 8 + FastJet (or read a dataset) and split"),
    Step("train", step_train, reads=("model", "train", "seed"), after=("data",),
         doc="train the float tagger"),
    Step("qat", step_qat, reads=("recipe", "qat", "seed", "hgq_target"), after=("data", "train"),
         doc="QAT fine-tune with Brevitas, export QONNX, cross-check bit for bit"),
    Step("convert", step_convert, reads=("backend", "part", "clock_period_ns", "n_csim_jets", "name", "projects_dir"),
         after=("data", "qat"), doc="QONNX -> hls4ml HLS project with test bench"),
    Step("csim", step_csim, reads=("n_csim_jets",), after=("data", "qat", "convert"),
         doc="g++ C simulation, bit-exact comparison with the QONNX reference"),
    Step("rtl", step_rtl, reads=("rtl", "rtl_latency_cutoff", "n_csim_jets", "clock_period_ns"),
         after=("data", "qat", "convert"), doc="open RTL route: da4ml Verilog, Verilator co-simulation, Yosys"),
    Step("report", step_report, reads=("budget", "hgq_target"), after=("train", "qat", "convert", "csim", "rtl"),
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
