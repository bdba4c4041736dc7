"""Drive Vitis HLS and Vivado on an hls4ml project with the scripts in ``tcl/`` (argument lists, no shell).

Each step is one tool invocation; its parameters travel as environment variables (``L1T_*``, read by the tcl
scripts), its output goes to ``PROJECT/logs/<step>.log``, and its exit code is checked. After the steps, the
reports found in the project are parsed and written to ``PROJECT/reports/<source>.json`` (read by
``l1tagger report``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from l1tagger.errors import ConfigError, L1TaggerError, ReportParseError, ToolNotFoundError
from l1tagger.report import parsers
from l1tagger.resources import tcl_dir  # the vendor scripts shipped in the package ($L1TAGGER_TCL_DIR overrides)
from l1tagger.utils.atomic import atomic_write_json


@dataclass(frozen=True)
class VendorStep:
    name: str
    tool: str  # "hls" or "vivado"
    script: str
    doc: str


#: in execution order
STEPS = {
    "csim": VendorStep("csim", "hls", "hls_csim.tcl", "Vitis HLS C simulation"),
    "synth": VendorStep("synth", "hls", "hls_csynth.tcl", "Vitis HLS C synthesis"),
    "cosim": VendorStep("cosim", "hls", "hls_cosim.tcl", "Vitis HLS C/RTL co-simulation"),
    "export": VendorStep("export", "hls", "hls_export.tcl", "Vitis HLS IP export"),
    "vsynth": VendorStep("vsynth", "vivado", "vivado_ooc_synth.tcl", "Vivado out-of-context synthesis"),
}


#: what a step must leave behind, relative to the project ("{top}": the project name), each as a tuple of
#: alternatives of which one must exist, and the parsed report (reports/<source>.json) the files feed
STEP_REPORTS = {
    "synth": ("vitis_hls", [("{top}_prj/solution1/syn/report/{top}_csynth.xml",
                             "{top}_prj/solution1/syn/report/{top}_csynth.rpt")]),
    "vsynth": ("vivado", [("vivado/utilization.rpt",), ("vivado/timing_summary.rpt",)]),
}


def step_reports(project: Path, top: str, step: str) -> list[tuple[Path, ...]]:
    """The report files ``step`` must write (groups of alternatives), empty for steps without one."""
    if step not in STEP_REPORTS:
        return []
    return [tuple(project / a.format(top=top) for a in group) for group in STEP_REPORTS[step][1]]


def clear_step_reports(project: Path, top: str, step: str) -> None:
    """Remove the reports a step is about to rewrite (raw and parsed): a run that writes none must not leave the
    previous run's numbers looking current."""
    if step not in STEP_REPORTS:
        return
    for group in step_reports(project, top, step):
        for f in group:
            f.unlink(missing_ok=True)
    (project / "reports" / f"{STEP_REPORTS[step][0]}.json").unlink(missing_ok=True)


def check_step_reports(project: Path, top: str, step: str, logf: Path) -> None:
    """ReportParseError naming the first report file a step that exited 0 did not write."""
    for group in step_reports(project, top, step):
        if not any(f.is_file() for f in group):
            raise ReportParseError(f"{group[0]}: no such report: {STEPS[step].doc} exited with code 0 but did not "
                                   f"write it (see {logf})")


def hls_command(script: Path) -> list[str]:
    """vitis_hls (2020.2-2024.1) or vitis-run (2024.2+); ToolNotFoundError when neither is on the PATH."""
    if shutil.which("vitis_hls"):
        return ["vitis_hls", "-f", str(script)]
    if shutil.which("vitis-run"):
        return ["vitis-run", "--mode", "hls", "--tcl", str(script)]
    raise ToolNotFoundError("neither vitis_hls nor vitis-run is on the PATH: install AMD Vitis HLS and source its "
                            "settings64.sh (C simulation without it: `l1tagger csim`; estimates: `l1tagger report`)")


def vivado_command(script: Path) -> list[str]:
    if not shutil.which("vivado"):
        raise ToolNotFoundError("vivado is not on the PATH: install AMD Vivado and source its settings64.sh "
                                "(open synthesis without it: `l1tagger rtl`)")
    return ["vivado", "-mode", "batch", "-nojournal", "-source", str(script)]


def project_settings(project: Path) -> dict[str, str]:
    """project_name, part, clock_period from hls4ml's project.tcl (``set key "value"`` lines)."""
    f = project / "project.tcl"
    if not f.is_file():
        raise ConfigError(f"{project} is not an hls4ml project: no project.tcl (run `l1tagger convert` first)")
    out = {}
    for m in re.finditer(r'^\s*set\s+(\w+)\s+"?([^"\n]*)"?\s*$', f.read_text(), re.M):
        out[m.group(1)] = m.group(2).strip()
    for key in ("project_name", "part", "clock_period"):
        if key not in out:
            raise ConfigError(f"{f}: no 'set {key}' line")
    return out


def run_logged(cmd: list[str], log: Path, cwd: Path, env: dict | None = None) -> int:
    """Run ``cmd`` (argument list) with stdout+stderr to ``log``; returns the exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    return proc.returncode


def build(project, steps: list[str], clock_ns: float | None = None, part: str | None = None,
          log=print) -> dict:
    """Run the requested vendor steps in order; raise on the first non-zero exit. Returns parsed reports."""
    project = Path(project).resolve()
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ConfigError(f"unknown build step(s) {unknown}; known: {list(STEPS)}")
    if not steps:
        raise ConfigError("no build step requested: give --csim, --synth, --cosim, --export and/or --vsynth")
    settings = project_settings(project)
    ordered = [s for s in STEPS if s in steps]
    commands = {}
    for s in ordered:  # resolve every tool before running anything
        st = STEPS[s]
        script = tcl_dir() / st.script
        if not script.is_file():
            raise ConfigError(f"tcl script {script} missing (set L1TAGGER_TCL_DIR?)")
        commands[s] = hls_command(script) if st.tool == "hls" else vivado_command(script)
    env = dict(os.environ)
    env.update({
        "L1T_PROJECT_DIR": str(project),
        "L1T_PROJECT_NAME": settings["project_name"],
        "L1T_PART": part or settings["part"],
        "L1T_CLOCK_NS": str(clock_ns if clock_ns else settings["clock_period"]),
        "L1T_VIVADO_DIR": str(project / "vivado"),
    })
    from l1tagger.utils.progress import progress

    top = settings["project_name"]
    for s in progress(ordered, desc="vendor steps", unit="step"):
        logf = project / "logs" / f"{s}.log"
        log(f"{STEPS[s].doc}: {' '.join(commands[s])} (log: {logf})")
        clear_step_reports(project, top, s)
        rc = run_logged(commands[s], logf, cwd=project, env=env)
        if rc != 0:
            raise L1TaggerError(f"{STEPS[s].doc} failed with exit code {rc}; see {logf}")
        check_step_reports(project, top, s, logf)
    return collect_reports(project, top)


def collect_reports(project: Path, top: str) -> dict:
    """Parse whatever reports exist in the project and write PROJECT/reports/<source>.json."""
    found = {}
    [(xml, rpt)] = step_reports(project, top, "synth")
    if xml.is_file():
        found["vitis_hls"] = parsers.parse_csynth_xml(xml.read_text())
    elif rpt.is_file():
        found["vitis_hls"] = parsers.parse_csynth_rpt(rpt.read_text())
    [(util,), (timing,)] = step_reports(project, top, "vsynth")
    if util.is_file() and timing.is_file():
        found["vivado"] = parsers.merge(parsers.parse_vivado_utilization(util.read_text()),
                                        parsers.parse_vivado_timing_summary(timing.read_text()))
    for src, rep in found.items():
        atomic_write_json(project / "reports" / f"{src}.json", rep.to_dict())
    return {k: v.to_dict() for k, v in found.items()}
