"""``l1tagger report``: one page (Markdown or HTML) + report.json comparing a run against a Level-1 budget."""

from __future__ import annotations

import argparse

from l1tagger.report.budgets import DEFAULT_BUDGET

HELP = "write report.md/html + report.json: physics, bit-exactness, latency/II/resources vs an L1 budget"
DESCRIPTION = """\
Write one page (report.md or report.html) plus report.json with the same numbers, for RUN_DIR:
physics metrics float/QAT/firmware and ROC curves, the C-simulation bit-exactness result, a
latency/II/resources table against the chosen Level-1 budget (pass/fail with margin), a Pareto plot of
accuracy vs cost over all models in RUN_DIR, and our numbers beside the published anchors, each marked
with its dataset.

Hardware numbers come from parsed synthesis reports where they exist (vivado > vitis_hls > yosys; written
by `l1tagger build` / `l1tagger rtl`) and otherwise from the graph estimate (source "estimate", rules
listed on the page). Missing inputs show as "not run". Files read are listed in l1tagger/report/schema.py:
from RUN_DIR metrics/{float,qat,firmware}.json, model.onnx, synthesis/<source>.json, model.json; from the HLS
project (--project, else the one RUN_DIR/project.json names, as `l1tagger run` writes it) the C-simulation
result csim/result.json (`l1tagger csim`), reports/ (`l1tagger build`) and rtl/ (`l1tagger rtl`).

Verdict: "fail" when a budget line fails or any bit-exactness check (C simulation, RTL) found a difference;
"pass" when the budget table passes and the C simulation is bit-exact; otherwise "not run" (a check that did
not run is never counted as passed). The reasons are listed beside the verdict.

Budgets: a preset name in budgets/ (cms_phase2_tmux6_360mhz, cms_phase2_tmux6_240mhz,
cms_phase2_tmux6_360mhz_vu9p) or the path of your own YAML file (format: l1tagger/report/budgets.py).
Exit code 0 whatever the verdict; the verdict is in report.json ("verdict": pass | fail | not run).

Example:
  l1tagger convert model.onnx --out hls_projects/x --data toy:200 && l1tagger csim hls_projects/x
  l1tagger report runs/x --project hls_projects/x
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory (e.g. runs/default)")
    parser.add_argument("--budget", default=DEFAULT_BUDGET,
                        help="budget preset name or YAML path (default: %(default)s)")
    parser.add_argument("--format", choices=("md", "html"), default="md", help="page format (default: %(default)s)")
    parser.add_argument("--project", default=None,
                        help="HLS project directory to take csim/, reports/ and rtl/ from (default: the one "
                             "RUN_DIR/project.json names)")
    parser.add_argument("--out", default=None, help="output directory (default: RUN_DIR)")


def run(args: argparse.Namespace) -> int:
    from l1tagger.report.make import write_report

    res = write_report(args.run_dir, args.budget, args.format, args.project, args.out)
    rep = res["report"]
    be = rep["bit_exact"]
    print(f"C simulation: {be['summary'] if isinstance(be, dict) else be}")
    reasons = rep.get("verdict_reasons") or []
    print(f"verdict vs {rep['budget']['name']}: {rep['verdict']}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    for row in rep["budget_table"]:
        print(f"  {row['quantity']:8s} {row['status']:10s} value={row['value']} budget={row['budget']:.6g} "
              f"source={row['source']}")
    print(f"wrote {res['page']} and {res['json']}")
    return 0
