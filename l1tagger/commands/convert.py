"""``l1tagger convert``: cleaned QONNX graph -> self-contained hls4ml HLS project (firmware, tcl, tb_data, manifest)."""

from __future__ import annotations

import argparse
from pathlib import Path

from l1tagger.errors import ConfigError

HELP = "convert a QONNX model (l1tagger quantize --export) into an hls4ml HLS project with test-bench data"
DESCRIPTION = """Convert the cleaned QONNX graph written by `l1tagger quantize --export` into an hls4ml project
(io_parallel; attention via l1tagger's hls4ml extension layers; exact fixed-point widths everywhere; firmware
softmax tables from the graph's SoftmaxSpec) and write it to OUT:

  firmware/ build_prj.tcl ...     hls4ml project (synthesise with vitis_hls -f build_prj.tcl)
  model.onnx                      the converted graph (batch 1)
  tb_data/inputs.npz, reference.npz, tb_*.dat   test-bench jets and their QONNX-reference outputs
  manifest.json                   source checkpoint/recipe, softmax specs, package versions, sha256 of every file

Test-bench jets come from --tb-inputs (an .npz of graph inputs, e.g. x, mask, pair) or from --data (jets file
or toy:N) turned into model inputs with the QAT checkpoint's feature scaler (--checkpoint, default qat.pt next
to the model). Then run `l1tagger csim OUT` for the bit-exact C-simulation proof.

A graph with an op the converter cannot map fails with the op and node named; test-bench inputs that do not fit
the graph (particles, features, NaN, mask values other than 0/1) fail naming the input, jet and particle.

OUT must be absent or empty: a project of another model would keep its synthesis reports. --force replaces an
existing l1tagger project there (a folder without its manifest.json is never deleted). The project is written
beside OUT and renamed into place at the end, so a failed convert leaves no half-written project.

Examples:
  l1tagger convert runs/full16/qat/int8/model.onnx --out hls_projects/full16_int8 --data toy:1000
  l1tagger convert model.onnx --out hls_projects/x --tb-inputs inputs.npz --backend Vivado --clock 4
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("onnx", help="cleaned QONNX model (model.onnx from `l1tagger quantize --export`)")
    p.add_argument("--out", required=True, help="project directory, e.g. hls_projects/<run>")
    p.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado"], help="hls4ml backend (default Vitis)")
    p.add_argument("--part", default=None, help="FPGA part (default xcvu13p-flga2577-2-e)")
    p.add_argument("--clock", type=float, default=None, help="clock period in ns (default 5)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--tb-inputs", help=".npz with one array per graph input (batch first)")
    g.add_argument("--data", help="jets file or toy:N[:C] for the test bench (needs the QAT checkpoint)")
    p.add_argument("--checkpoint", help="QAT checkpoint for --data (default: qat.pt next to the model)")
    p.add_argument("--n-tb", type=int, default=1000, help="test-bench jets (default 1000)")
    p.add_argument("--force", action="store_true", help="replace the l1tagger project already in OUT")


def _tb_from_data(args, onnx_path: Path) -> tuple[dict, dict]:
    import numpy as np

    from l1tagger.qat.finetune import load_qat_checkpoint
    from l1tagger.training import build_inputs
    from l1tagger.training.data import load_dataset

    ckpt = Path(args.checkpoint) if args.checkpoint else onnx_path.with_name("qat.pt")
    if not ckpt.is_file():
        raise ConfigError(f"--data needs the QAT checkpoint; {ckpt} does not exist (give --checkpoint)")
    model = load_qat_checkpoint(ckpt)
    jets = load_dataset(args.data, args.n_tb)
    jets = jets.subset(np.arange(min(len(jets), args.n_tb)))
    inp, _ = build_inputs(jets, model.train_config.model, model.feature_scaler)
    feed = inp.graph_feed()
    return feed, {"checkpoint": str(ckpt), "data": args.data}


def run(args) -> int:
    from l1tagger.convert import DEFAULT_CLOCK_NS, DEFAULT_PART, convert
    from l1tagger.verify.feed import load_npz

    onnx_path = Path(args.onnx)
    if args.n_tb < 1:
        raise ConfigError(f"--n-tb must be >= 1, got {args.n_tb}")
    source: dict = {}
    tb, tb_source = None, None
    if args.tb_inputs:
        if not Path(args.tb_inputs).is_file():
            raise ConfigError(f"--tb-inputs file {args.tb_inputs} does not exist")
        tb, tb_source = load_npz(args.tb_inputs), args.tb_inputs
        source["tb_inputs"] = args.tb_inputs
    elif args.data:
        tb, source = _tb_from_data(args, onnx_path)
        tb_source = args.data
    export_manifest = onnx_path.with_name("manifest.json")
    if export_manifest.is_file():
        import json

        try:
            em = json.loads(export_manifest.read_text())
        except ValueError as exc:
            raise ConfigError(f"{export_manifest}: corrupt export manifest ({exc})") from None
        if not isinstance(em, dict):
            raise ConfigError(f"{export_manifest}: not an export manifest (top level is not a mapping)")
        source.update({"export_manifest": str(export_manifest), "recipe": em.get("recipe"),
                       "source_checkpoint": em.get("source_checkpoint"),
                       "source_checkpoint_sha256": em.get("source_checkpoint_sha256")})
    convert(onnx_path, args.out, backend=args.backend, part=args.part or DEFAULT_PART,
            clock=args.clock or DEFAULT_CLOCK_NS, tb_inputs=tb, n_tb=args.n_tb, source=source, force=args.force,
            tb_source=tb_source)
    n_jets = "no test bench" if tb is None else f"{min(args.n_tb, len(next(iter(tb.values()))))} tb jets"
    print(f"wrote HLS project {args.out} ({n_jets})")
    return 0
