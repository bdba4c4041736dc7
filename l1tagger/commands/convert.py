"""``l1tagger convert``: cleaned QONNX graph -> self-contained hls4ml HLS project (firmware, tcl, tb_data, manifest)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from l1tagger.cli import add_clock_ns_argument, add_inputs_argument, add_n_jets_argument
from l1tagger.errors import ConfigError
from l1tagger.report.budgets import DEFAULT_BUDGET, check_clock_ns, load_budget

HELP = "convert a QONNX model (l1tagger quantize --export) into an hls4ml HLS project with test-bench data"
DESCRIPTION = """Convert the cleaned QONNX graph written by `l1tagger quantize --export` into an hls4ml project
(io_parallel; attention via l1tagger's hls4ml extension layers; exact fixed-point widths everywhere; firmware
softmax tables from the graph's SoftmaxSpec) and write it to OUT:

  firmware/ build_prj.tcl ...     hls4ml project (synthesise with vitis_hls -f build_prj.tcl)
  model.onnx                      the converted graph (batch 1)
  tb_data/inputs.npz, reference.npz, tb_*.dat   test-bench jets and their QONNX-reference outputs
  manifest.json                   source checkpoint/recipe, softmax specs, package versions, sha256 of every file

Test-bench jets come from --inputs (an .npz of graph inputs, e.g. x, mask, pair) or from --data (jets file
or toy:N[:C]; a class-balanced sample of --n-jets jets) turned into model inputs with the QAT checkpoint's feature
scaler (--checkpoint, default qat.pt next to the model). Then run `l1tagger csim OUT` for the bit-exact
C-simulation proof.

The clock period (--clock-ns) defaults to the clock of --budget (default cms_phase2_tmux6_360mhz: 2.7778 ns);
with --budget given, a --clock-ns slower than the budget's clock is refused.

A graph with an op the converter cannot map fails with the op and node named; test-bench inputs that do not fit
the graph (particles, features, NaN, mask values other than 0/1) fail naming the input, jet and particle.

OUT must be absent or empty: a project of another model would keep its synthesis reports. --force replaces an
existing l1tagger project there (a folder without its manifest.json is never deleted). The project is written
beside OUT and renamed into place at the end, so a failed convert leaves no half-written project.

Examples:
  l1tagger convert runs/full16/qat/int8/model.onnx --out hls_projects/full16_int8 --data toy:1000
  l1tagger convert model.onnx --out hls_projects/x --inputs inputs.npz --backend Vivado --clock-ns 4
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("onnx", help="cleaned QONNX model (model.onnx from `l1tagger quantize --export`)")
    p.add_argument("--out", required=True, help="project directory, e.g. hls_projects/<run>")
    p.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado"], help="hls4ml backend (default Vitis)")
    p.add_argument("--part", default=None, help="FPGA part (default xcvu13p-flga2577-2-e)")
    add_clock_ns_argument(p, "the clock of --budget", old_spellings=("--clock",))
    p.add_argument("--budget", default=None,
                   help=f"Level-1 budget (preset name or YAML path) whose clock is the default clock (default "
                        f"{DEFAULT_BUDGET})")
    g = p.add_mutually_exclusive_group()
    add_inputs_argument(g, "test-bench jets: .npz with one array per graph input (batch first)",
                        old_spellings=("--tb-inputs",))
    g.add_argument("--data", help="test-bench jets: a jets file any l1tagger reader loads, or toy:N[:C] (needs the "
                                  "QAT checkpoint)")
    p.add_argument("--checkpoint", help="QAT checkpoint for --data (default: qat.pt next to the model)")
    add_n_jets_argument(p, "test-bench jets", default=1000, old_spellings=("--n-tb",))
    p.add_argument("--force", action="store_true", help="replace the l1tagger project already in OUT")


def _tb_from_data(args, onnx_path: Path) -> tuple[dict, dict]:
    from l1tagger.data.dataset import load_dataset
    from l1tagger.qat.artifact import load_qat_tagger, testbench_feed

    ckpt = Path(args.checkpoint) if args.checkpoint else onnx_path.with_name("qat.pt")
    if not ckpt.is_file():
        raise ConfigError(f"--data needs the QAT checkpoint; {ckpt} does not exist (give --checkpoint)")
    feed = testbench_feed(load_qat_tagger(ckpt), load_dataset(args.data, args.n_jets))
    return feed, {"checkpoint": str(ckpt), "data": args.data}


def resolve_clock_ns(args) -> float:
    """--clock-ns, else the clock of --budget (checked against it when both are given)."""
    budget = load_budget(args.budget or DEFAULT_BUDGET)
    if args.clock_ns is None:
        return budget.clock_period_ns
    if not (math.isfinite(args.clock_ns) and args.clock_ns > 0):
        raise ConfigError(f"--clock-ns must be a finite number > 0, got {args.clock_ns}")
    if args.budget:
        check_clock_ns(args.clock_ns, budget, "--clock-ns")
    return args.clock_ns


def run(args) -> int:
    from l1tagger.convert import DEFAULT_PART, convert
    from l1tagger.verify.feed import load_npz

    onnx_path = Path(args.onnx)
    if args.n_jets < 1:
        raise ConfigError(f"--n-jets must be >= 1, got {args.n_jets}")
    clock = resolve_clock_ns(args)
    source: dict = {}
    tb, tb_source = None, None
    if args.inputs:
        if not Path(args.inputs).is_file():
            raise ConfigError(f"--inputs file {args.inputs} does not exist")
        tb, tb_source = load_npz(args.inputs), args.inputs
        source["tb_inputs"] = args.inputs
    elif args.data:
        tb, source = _tb_from_data(args, onnx_path)
        tb_source = args.data
    export_manifest = onnx_path.with_name("manifest.json")
    if export_manifest.is_file():  # written beside model.onnx by `l1tagger quantize --export`
        from l1tagger.qat.artifact import read_provenance

        source.update(read_provenance(export_manifest))
    convert(onnx_path, args.out, backend=args.backend, part=args.part or DEFAULT_PART, clock=clock, tb_inputs=tb,
            n_tb=args.n_jets, source=source, force=args.force, tb_source=tb_source)
    n_jets = "no test bench" if tb is None else f"{min(args.n_jets, len(next(iter(tb.values()))))} tb jets"
    print(f"wrote HLS project {args.out} ({n_jets}, clock {clock:.4g} ns)")
    return 0
