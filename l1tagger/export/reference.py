"""The software reference: the cleaned QONNX graph executed by qonnx (``qonnx.core.onnx_exec.execute_onnx``).

Custom nodes run through their qonnx classes (``FirmwareSoftmax`` in ``l1tagger.export.custom_ops``), standard
nodes through onnxruntime in float32, which is exact for l1tagger graphs because every tensor is on a power-of-two
grid with fewer than 24 significant bits (cross-checked against the integer emulation ``intref``). No float
fallbacks: an unknown op, an off-grid softmax input or a Quant output off its grid raises.

The graph has the fixed batch size it was exported with (hls4ml wants 1); :func:`run_reference` re-batches a copy
(:func:`with_batch_size`) and runs chunks (padding the last chunk with copies of its first jet, outputs dropped).
"""

from __future__ import annotations

import math

import numpy as np

from l1tagger.errors import VerificationError
from l1tagger.export.opset import check_supported


def graph_batch_size(model) -> int:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].dim_value > 0 else 0


def _check_quant_outputs(model, ctx: dict) -> None:
    """Every Quant output lies on its grid (value * 2^frac integral, within the bit range)."""
    for node in model.graph.node:
        if node.op_type != "Quant":
            continue
        name = node.output[0]
        if name not in ctx:
            continue
        scale = float(np.asarray(model.get_initializer(node.input[1])).reshape(-1)[0])
        bits = int(np.asarray(model.get_initializer(node.input[3])).reshape(-1)[0])
        q = np.asarray(ctx[name], np.float64) / scale
        if not np.array_equal(q, np.round(q)):
            raise VerificationError(f"reference: Quant node {node.name!r} output is off its grid (scale {scale})")
        signed = next((a.i for a in node.attribute if a.name == "signed"), 1)
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if q.size and (q.min() < lo or q.max() > hi):
            raise VerificationError(f"reference: Quant node {node.name!r} output outside its {bits}-bit range")


def with_batch_size(model, batch: int):
    """A copy of the graph with batch size ``batch`` on every graph input/output and constant Reshape shape."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    import copy

    m = ModelWrapper(copy.deepcopy(model.model))
    for vi in list(m.graph.input) + list(m.graph.output):
        if m.get_initializer(vi.name) is None and vi.type.tensor_type.shape.dim:
            vi.type.tensor_type.shape.dim[0].dim_value = int(batch)
    del m.graph.value_info[:]
    for node in m.get_nodes_by_op_type("Reshape"):
        shape = m.get_initializer(node.input[1])
        if shape is not None and len(shape) and shape[0] not in (0, -1):
            shape = shape.copy()
            shape[0] = int(batch)
            m.set_initializer(node.input[1], shape)
    return m.transform(InferShapes())


def run_reference(model, inputs: dict[str, np.ndarray], return_all: bool = False, progress: bool = False,
                  chunk: int = 1000) -> dict:
    """Execute the cleaned QONNX graph on a batch. Returns {output: array} (every tensor when return_all).

    inputs: graph input name -> array with the batch axis first (any batch size), checked and cast to float32 by
    :func:`l1tagger.verify.feed.validate_feed` (DataError on a wrong shape, NaN/inf, a mask value other than 0/1).
    The graph is re-batched to min(chunk, n) (:func:`with_batch_size`) and executed chunk by chunk.
    """
    from qonnx.core.onnx_exec import execute_onnx

    from l1tagger.verify.feed import validate_feed

    check_supported(model.model if hasattr(model, "model") else model)
    inputs = validate_feed(model, inputs)
    names = list(inputs)
    inits = {i.name for i in model.graph.initializer}
    batched = batched_tensors(model)
    n = len(inputs[names[0]])
    gb = min(int(chunk), n)
    if graph_batch_size(model) != gb:
        model = with_batch_size(model, gb)
    chunks = []
    it = range(math.ceil(n / gb))
    if progress:
        from l1tagger.utils.progress import progress

        it = progress(it, desc="qonnx reference", unit="chunk")
    for c in it:
        sl = slice(c * gb, min(n, (c + 1) * gb))
        feed = {}
        for k in names:
            a = inputs[k][sl]
            if len(a) < gb:
                a = np.concatenate([a, np.repeat(a[:1], gb - len(a), axis=0)])
            feed[k] = a
        ctx = execute_onnx(model, feed, return_full_exec_context=return_all)
        if return_all:
            _check_quant_outputs(model, ctx)
        keep = sl.stop - sl.start
        chunks.append({k: (np.asarray(v)[:keep] if k in batched else v) for k, v in ctx.items() if k not in inits})
    return {
        k: np.concatenate([ch[k] for ch in chunks]) if (len(chunks) > 1 and k in batched) else ch0
        for k, ch0 in chunks[0].items()
    }


def batched_tensors(model) -> set[str]:
    """Names of tensors that depend on a graph input (they carry the batch axis first)."""
    inits = {i.name for i in model.graph.initializer}
    live = {vi.name for vi in model.graph.input if vi.name not in inits}
    for node in model.graph.node:  # graph nodes are topologically sorted
        if any(i in live for i in node.input):
            live.update(node.output)
    return live
