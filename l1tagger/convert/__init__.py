"""QONNX -> hls4ml firmware for l1tagger transformer taggers (issue 5).

    model = convert("runs/x/model.onnx", "hls_projects/x", backend="Vitis", part="xcvu13p-flga2577-2-e", clock=5.0)

The graph is parsed by :mod:`l1tagger.convert.frontend` into hls4ml extension layers (:mod:`l1tagger.convert.layers`,
kernels in ``nnet_l1tagger.h``) and built with ``hls4ml.model.ModelGraph.from_layer_list`` and hls4ml's own
backend flows and writers; nothing in the installed hls4ml is modified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from l1tagger.errors import ConversionError

DEFAULT_PART = "xcvu13p-flga2577-2-e"
DEFAULT_CLOCK_NS = 5.0
BACKENDS = ("Vitis", "Vivado")


@dataclass(frozen=True)
class ConvertConfig:
    """Conversion options.

    backend:  hls4ml backend, "Vitis" (default) or "Vivado"
    part:     FPGA part for the build tcl
    clock:    clock period in ns
    project:  HLS top-level / project name
    trace:    emit per-layer trace hooks (C simulation only; removed by the HLS compiler)
    fuse_topk: build each top-k softmax with its attention x value product as one fused layer (k-wide softmax,
              k-row multiplexed product, docs/firmware_softmax.md "Top-k in hardware"); False: the N-wide softmax
              and a full product (same integers, more logic; the firmware attention maps need the N-wide weights)
    """

    backend: str = "Vitis"
    part: str = DEFAULT_PART
    clock: float = DEFAULT_CLOCK_NS
    project: str = "myproject"
    trace: bool = True
    fuse_topk: bool = True

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConversionError(f"unknown backend {self.backend!r}; choose one of {BACKENDS}")
        if not self.clock > 0:
            raise ConversionError(f"clock period must be > 0 ns, got {self.clock}")


def load_graph(onnx_path):
    """The cleaned QONNX graph as a batch-1 ModelWrapper."""
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.export.reference import graph_batch_size, with_batch_size

    path = Path(onnx_path)
    if not path.is_file():
        raise ConversionError(f"QONNX model {str(path)!r} does not exist")
    try:
        model = ModelWrapper(str(path))
    except Exception as exc:  # onnx raises many types on a corrupt file
        raise ConversionError(f"{str(path)!r} is not a readable ONNX model: {exc}") from exc
    if graph_batch_size(model) != 1:
        model = with_batch_size(model, 1)
    return model


def build_hls_model(model, out_dir, cfg: ConvertConfig = ConvertConfig()):
    """(hls4ml ModelGraph, Frontend) for a batch-1 ModelWrapper; nothing is written yet."""
    from hls4ml.model import ModelGraph

    from l1tagger.convert.frontend import build_layer_list
    from l1tagger.convert.layers import register

    register()
    fe = build_layer_list(model, fuse_topk=cfg.fuse_topk)
    layer_cfg = {}
    for layer in fe.layers:
        c = {"Trace": bool(cfg.trace)}
        if layer["class_name"] == "InputLayer":
            it = fe.input_types[layer["name"]]
            t = it["type"]
            kind = "fixed" if t.signed else "ufixed"
            c["Precision"] = {"result": f"{kind}<{t.width},{t.integer},{it['round']},{it['sat']}>"}
        layer_cfg[layer["name"]] = c
    config = {
        "OutputDir": str(out_dir),
        "ProjectName": cfg.project,
        "Backend": cfg.backend,
        "Part": cfg.part,
        "ClockPeriod": cfg.clock,
        "IOType": "io_parallel",
        "HLSConfig": {
            "Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency", "TraceOutput": False},
            "LayerName": layer_cfg,
        },
    }
    outputs = [fe.layer_of_tensor[o.name] for o in model.graph.output]
    hls_model = ModelGraph.from_layer_list(config, fe.layers, inputs=fe.inputs, outputs=outputs)
    check_every_layer_emits(hls_model)
    return hls_model, fe


def check_every_layer_emits(hls_model) -> None:
    """ConversionError unless every non-input layer has a C++ function call (pitfall 4: no silent drops)."""
    missing = [f"{layer.name} ({layer.class_name})" for layer in hls_model.get_layers()
               if layer.class_name not in ("InputLayer", "Input") and not layer.get_attr("function_cpp", None)]
    if missing:
        raise ConversionError(f"layers without a C++ call (would compute garbage): {missing}")


def convert(onnx_path, out_dir, backend: str = "Vitis", part: str = DEFAULT_PART, clock: float = DEFAULT_CLOCK_NS,
            tb_inputs: dict | None = None, n_tb: int = 1000, source: dict | None = None, trace: bool = True,
            force: bool = False, tb_source: str | None = None):
    """Convert a cleaned QONNX model into a self-contained hls4ml project in ``out_dir``. Returns the ModelGraph.

    tb_inputs: graph input name -> array (batch first), checked against the graph
               (:func:`l1tagger.verify.feed.validate_feed`; ``tb_source`` names them in its messages); the first
               ``n_tb`` jets and their QONNX-reference outputs go to ``out_dir/tb_data``.
    source:    provenance (checkpoint, recipe, ...) stored in the manifest.
    force:     replace an existing l1tagger project in ``out_dir`` (without it a non-empty ``out_dir`` is refused: a
               project must not inherit another model's reports); a folder that is not a project is never deleted.
    The project is written into a temporary sibling folder and renamed into place at the end.
    """
    from l1tagger.convert.project import check_target, write_project
    from l1tagger.verify.feed import validate_feed

    out_dir = Path(out_dir)
    cfg = ConvertConfig(backend=backend, part=part, clock=float(clock), trace=trace)
    if n_tb < 1:
        raise ConversionError(f"n_tb must be >= 1, got {n_tb}")
    check_target(out_dir, force)  # before any work
    t0 = time.perf_counter()
    model = load_graph(onnx_path)
    feed = None if tb_inputs is None else validate_feed(model, tb_inputs, tb_source or "test-bench inputs",
                                                        max_jets=n_tb)
    hls_model, fe = build_hls_model(model, out_dir, cfg)
    write_project(hls_model, fe, model, Path(onnx_path), out_dir, cfg, feed, source or {},
                  convert_s=time.perf_counter() - t0, force=force)
    return hls_model
