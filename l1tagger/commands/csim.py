"""``l1tagger csim``: g++ C simulation of an HLS project, bit-exact comparison with the QONNX reference."""

from __future__ import annotations

import argparse
import json

HELP = "compile an HLS project with g++ and prove its outputs equal the QONNX reference bit for bit"
DESCRIPTION = """Compile the project written by `l1tagger convert` with g++ (hls4ml compile(); no vendor tool),
run its test-bench jets with per-layer tracing, and compare every traced layer and every output with the QONNX
reference, bit for bit. Writes PROJECT/csim.json:

  bit_exact, mismatching_values / mismatching_jets of the outputs, first_mismatch (the first layer in graph
  order whose output differs: layer, ONNX tensor, jets, max |diff|), compile time, C-sim jets/s.

Exit code 0 when bit-exact, 3 when any value differs.

Example:
  l1tagger csim hls_projects/full16_int8 --n-jets 1000
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("project", help="HLS project directory from `l1tagger convert`")
    p.add_argument("--n-jets", type=int, default=None, help="use only the first N test-bench jets")


def run(args) -> int:
    from l1tagger.errors import ConfigError
    from l1tagger.verify.csim import run_csim

    if args.n_jets is not None and args.n_jets < 1:
        raise ConfigError(f"--n-jets must be >= 1, got {args.n_jets}")
    res = run_csim(args.project, n_jets=args.n_jets)
    print(json.dumps({k: v for k, v in res.to_dict().items() if k != "layer_mismatches"}, indent=2))
    if not res.bit_exact:
        fm = res.first_mismatch
        where = f"first differing layer {fm['layer']} ({fm['onnx_tensor']})" if fm else "outputs differ"
        print(f"NOT bit-exact: {res.mismatching_values} output values differ; {where}")
        return 3
    print(f"bit-exact on {res.n_jets} jets ({res.layers_compared} layers traced)")
    return 0
