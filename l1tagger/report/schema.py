"""What ``l1tagger report`` reads from a run directory. Every file is optional: a missing one shows as "not run".

    RUN_DIR/
      model.json               {"name", "attention", "recipe", "dataset", "n_particles"}   (description of the model)
      project.json             {"project": path} the HLS project of the run (written by `l1tagger run`); the report
                                 takes the project's files from there unless --project names one
      metrics/float.json       physics metrics of the float model   (l1tagger.training.metrics format:
      metrics/qat.json           accuracy, auc_macro, auc_per_class, rejection{class: {rej50, rej99}},
      metrics/firmware.json      roc_curves{class: {signal_efficiency, background_efficiency}})
      model.onnx               the cleaned QONNX graph (or any single *.onnx): input of the estimate
      synthesis/<source>.json  parsed synthesis numbers (SynthesisReport.to_dict()), source in
                                 vitis_hls | vivado | yosys (also PROJECT/reports/<source>.json from `l1tagger build`)
      rtl/rtl_summary.json     the open RTL route (`l1tagger rtl`, da4ml Verilog): pipeline latency and II, da4ml's
                                 LUT estimate, Verilator co-simulation verdict, Yosys counts (also looked for in
                                 PROJECT/rtl/rtl_summary.json). A second implementation of the same graph, shown
                                 beside the hls4ml numbers, never mixed into them.
    PROJECT/
      csim/result.json         the C-simulation result (l1tagger.verify.csim_result, written by `l1tagger csim` and
                                 the pipeline's csim step): the bit-exactness verdict, read only from there

A directory whose sub-directories contain ``metrics/`` is a collection: each such sub-directory is one model in
the Pareto plot (its project found through its own project.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from l1tagger.errors import ConfigError
from l1tagger.verify import csim_result

#: in a run directory: {"project": the resolved HLS project path of the run}
PROJECT_MARKER = "project.json"

METRIC_STAGES = ("float", "qat", "firmware")
SYNTH_SOURCES = ("vivado", "vitis_hls", "yosys")  # priority order for resources


@dataclass
class ModelInputs:
    """Everything found for one model; None = not run."""

    name: str
    path: str
    info: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # stage -> metrics dict
    csim: csim_result.CsimRecord | None = None  # PROJECT/csim/result.json
    project: str | None = None  # the HLS project the csim / reports / rtl numbers came from
    onnx_path: str | None = None
    synthesis: dict = field(default_factory=dict)  # source -> SynthesisReport dict
    rtl: dict | None = None  # rtl_summary.json of the open RTL route (l1tagger.rtl.flow)
    l1_words: dict | None = None  # QAT manifest's l1_words (model on L1 words): spec, what the conversion saturated


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def project_of(run_dir: Path) -> Path | None:
    """The HLS project a run directory names in its project.json, None without one."""
    marker = _read_json(Path(run_dir) / PROJECT_MARKER)
    if marker is None:
        return None
    if not isinstance(marker.get("project"), str):
        raise ConfigError(f"{Path(run_dir) / PROJECT_MARKER}: expected {{\"project\": path}}")
    return Path(marker["project"])


def read_model_dir(d: Path, project_dir: Path | None = None) -> ModelInputs:
    d = Path(d)
    info = _read_json(d / "model.json") or {}
    m = ModelInputs(name=str(info.get("name") or d.name), path=str(d), info=info)
    for stage in METRIC_STAGES:
        data = _read_json(d / "metrics" / f"{stage}.json")
        if data is not None:
            m.metrics[stage] = data
    project = Path(project_dir) if project_dir else project_of(d)
    if project_dir and not project.is_dir():
        raise ConfigError(f"--project {project}: no such HLS project directory")
    if project is not None and project.is_dir():  # a run's project removed since shows as "not run"
        m.project = str(project)
        m.csim = csim_result.read(project)
    for p in [d] + ([Path(m.project)] if m.project else []):
        m.rtl = m.rtl or _read_json(p / "rtl" / "rtl_summary.json")
        for src in SYNTH_SOURCES:
            for sub in ("synthesis", "reports"):
                data = _read_json(p / sub / f"{src}.json")
                if data is not None and src not in m.synthesis:
                    m.synthesis[src] = data
    m.l1_words = (_read_json(d / "qat" / "manifest.json") or {}).get("l1_words")
    if (d / "model.onnx").is_file():
        m.onnx_path = str(d / "model.onnx")
    else:
        found = sorted(d.glob("*.onnx"))
        if len(found) == 1:
            m.onnx_path = str(found[0])
    return m


def collect(run_dir, project_dir=None) -> list[ModelInputs]:
    """The run directory's own model (first) and every sub-directory holding a model (for the Pareto view)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist")
    models = []
    top = read_model_dir(run_dir, project_dir)
    if top.metrics or top.onnx_path or top.csim or top.synthesis or top.rtl:
        models.append(top)
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        if (sub / "metrics").is_dir() or (sub / "model.json").is_file():
            models.append(read_model_dir(sub))
    return models
