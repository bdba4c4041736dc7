"""Attention weights as the chip computes them, from the C-simulation trace of an HLS project.

    layers = attention_from_project("hls_projects/run1", n_heads=2)
    layers[0]["weights"]   # (n_jets, H, N, K) float64, exactly the firmware softmax outputs
    layers[0]["mask"]      # (n_jets, N) particle mask of the jets

The arrays have the layout of ``l1tagger.interpret.analysis`` (weights (n, H, rows, keys)), so the interpret
command draws the same maps and statistics for the firmware as for the PyTorch model.
"""

from __future__ import annotations

import numpy as np

from l1tagger.errors import VerificationError


def group_attention(trace: dict, softmax_layers: list[dict], n_heads: int, n_jets: int) -> list[dict]:
    """Group traced softmax layers (graph order) into attention layers of shape (n_jets, H, rows, keys).

    A softmax whose tensor already has a head axis ((H, rows, keys)) is one attention layer; per-head softmaxes
    ((rows, keys)) are grouped ``n_heads`` at a time in graph order.
    """
    if n_heads < 1:
        raise VerificationError(f"n_heads must be >= 1, got {n_heads}")
    out, pending = [], []
    for s in softmax_layers:
        name = s["layer"]
        if name not in trace:
            raise VerificationError(f"softmax layer {name!r} is not in the C-simulation trace")
        shape = list(s["shape"])
        w = np.asarray(trace[name], np.float64).reshape([n_jets] + shape)
        if len(shape) == 3:
            out.append({"layers": [name], "nodes": [s["node"]], "topk": s["topk"], "weights": w})
            continue
        if len(shape) != 2:
            raise VerificationError(f"softmax layer {name!r} has unexpected shape {shape}")
        pending.append((s, w))
        if len(pending) == n_heads:
            shapes = {p[1].shape for p in pending}
            if len(shapes) != 1:
                raise VerificationError(f"heads {[p[0]['layer'] for p in pending]} have different shapes {shapes}")
            out.append({"layers": [p[0]["layer"] for p in pending], "nodes": [p[0]["node"] for p in pending],
                        "topk": pending[0][0]["topk"], "weights": np.stack([p[1] for p in pending], axis=1)})
            pending = []
    if pending:
        raise VerificationError(f"{len(pending)} softmax layer(s) left over: not a multiple of n_heads={n_heads}")
    return out


def attention_from_project(project_dir, n_heads: int, inputs: dict | None = None, n_jets: int | None = None):
    """Compile the project (g++), run jets (default: its test bench) with tracing, return the attention layers.

    A top-k softmax fused with its attention x value product (the default firmware) never forms the N-wide weights:
    the project is rebuilt with ``fuse_topk=False`` for the maps, the N-wide softmax of the same graph, whose kept
    weights are the same integers the fused layer uses (both are bit-exact to the graph, tests/test_topk_hw.py)."""
    from l1tagger.verify.csim import hls_inputs, load_project, load_tb, trace_layers

    hls_model, fe, model, _ = load_project(project_dir, trace=True, fuse_topk=False)
    if inputs is None:
        inputs, _ = load_tb(project_dir, n_jets)
    elif n_jets is not None:
        inputs = {k: v[:n_jets] for k, v in inputs.items()}
    xs = hls_inputs(fe, inputs)
    hls_model.config.trace_output = True
    hls_model.compile()
    _, trace = trace_layers(hls_model, xs)
    n = len(xs[0])
    layers = group_attention(trace, fe.softmax_layers, n_heads, n)
    mask_name = next((v["onnx"] for v in fe.input_types.values() if v["role"] == "mask"), None)
    for layer in layers:
        layer["mask"] = np.asarray(inputs[mask_name]) if mask_name else np.ones(layer["weights"].shape[:1] +
                                                                                layer["weights"].shape[2:3])
    return layers
