"""``l1tagger csim``: g++ C simulation of an HLS project, bit-exact comparison with the QONNX reference."""

from __future__ import annotations

import argparse
import json

from l1tagger.cli import EXIT_NOT_BIT_EXACT, add_n_jets_argument

HELP = "compile an HLS project with g++ and prove its outputs equal the QONNX reference bit for bit"
DESCRIPTION = """Compile the project written by `l1tagger convert` with g++ (hls4ml compile(); no vendor tool),
run its test-bench jets with per-layer tracing, and compare every traced layer and every output with the QONNX
reference, bit for bit. Writes PROJECT/csim/result.json (l1tagger.verify.csim_result; the file `l1tagger report`
reads):

  bit_exact, mismatching_values / mismatching_jets of the outputs, first_mismatch (the first layer in graph
  order whose output differs: layer, ONNX tensor, jets, max |diff|), compile time, C-sim jets/s.

Exit code 0 when bit-exact, 3 when any value differs.

Example:
  l1tagger csim hls_projects/full16_int8 --n-jets 1000
  l1tagger report runs/full16 --project hls_projects/full16_int8     # the verdict, beside the budget table
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("project", help="HLS project directory from `l1tagger convert`")
    add_n_jets_argument(p, "use only the first N test-bench jets (default: all)", old_spellings=())


def run(args) -> int:
    from l1tagger.errors import ConfigError
    from l1tagger.verify import csim_result
    from l1tagger.verify.csim import run_csim

    if args.n_jets is not None and args.n_jets < 1:
        raise ConfigError(f"--n-jets must be >= 1, got {args.n_jets}")
    record = csim_result.CsimRecord.from_csim(run_csim(args.project, n_jets=args.n_jets, write=False))
    path = csim_result.write(record, args.project)
    print(json.dumps({k: v for k, v in record.to_dict().items() if k != "layer_mismatches"}, indent=2))
    print(f"{record.summary()}; wrote {path}")
    return 0 if record.bit_exact else EXIT_NOT_BIT_EXACT
