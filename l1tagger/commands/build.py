"""``l1tagger build``: run Vitis HLS / Vivado on an HLS project with the scripts in tcl/."""

from __future__ import annotations

import argparse

from l1tagger.cli import add_clock_ns_argument

HELP = "run Vitis HLS (csim, C synthesis, co-simulation, export) and Vivado OOC synthesis on an HLS project"
DESCRIPTION = """\
Run the vendor tools on PROJECT (an hls4ml project written by `l1tagger convert`, e.g. hls_projects/default)
with the scripts in tcl/: --csim (hls_csim.tcl), --synth (hls_csynth.tcl), --cosim (hls_cosim.tcl),
--export (hls_export.tcl), --vsynth (vivado_ooc_synth.tcl: out-of-context synthesis with utilization and
timing reports). Steps run in that order; each step's output goes to PROJECT/logs/<step>.log and a
non-zero exit code stops the build with an error, as does a --synth or --vsynth step that exits 0 without
writing its report (named in the message; the previous run's report of that step is removed first, so it can
never pass for the new one). Parsed reports are written to PROJECT/reports/ (vitis_hls.json, vivado.json)
for `l1tagger report` (l1tagger.build.vendor).

Needs vitis_hls (or vitis-run) and/or vivado on the PATH; without them the command says which tool is
missing and exits with code 1. No vendor tool? `l1tagger csim` proves bit-exactness with g++,
`l1tagger rtl` gives open-source synthesis counts, and `l1tagger report` shows graph estimates.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("project", metavar="PROJECT", help="HLS project directory (contains project.tcl)")
    for step, doc in (("csim", "C simulation"), ("synth", "C synthesis (csynth report)"),
                      ("cosim", "C/RTL co-simulation (needs --synth first or earlier)"),
                      ("export", "export the IP (ip_catalog)"),
                      ("vsynth", "Vivado out-of-context synthesis (needs synthesized RTL)")):
        parser.add_argument(f"--{step}", action="store_true", help=doc)
    add_clock_ns_argument(parser, "the project's clock period (its project.tcl)")
    parser.add_argument("--part", default=None, help="override the project's FPGA part")


def run(args: argparse.Namespace) -> int:
    from l1tagger.build.vendor import STEPS, build

    steps = [s for s in STEPS if getattr(args, s)]
    reports = build(args.project, steps, clock_ns=args.clock_ns, part=args.part)
    for src, rep in reports.items():
        res = rep.get("resources", {})
        print(f"{src}: latency {rep.get('latency_worst_cycles')} cycles, II {rep.get('ii_max')}, "
              f"clock {rep.get('achieved_clock_MHz')} MHz, " +
              ", ".join(f"{k.upper()} {v['used']:g}" for k, v in res.items()))
    return 0
