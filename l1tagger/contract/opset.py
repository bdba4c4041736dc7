"""The op set a cleaned l1tagger QONNX graph may contain, and the semantics of its layout ops.

:data:`SUPPORTED_OPS` is the only list of ops: export enforces it (:func:`check_supported`), and every walker
(``convert/frontend.py`` HANDLERS, ``rtl/lower.py`` OP_HANDLERS, ``export/intref.py`` OPS,
``report/estimates.py`` OP_ESTIMATORS) registers exactly these op types (tested).

Layout ops only move elements. Their ONNX semantics are written once here, as pure numpy functions of the data
array and the node's constant inputs: :func:`layout` (single data input), :func:`concat` and :func:`layout_shape`.
The data array may hold anything numpy can move: values (constant folding), element indices (the converter's
permutation tables), da4ml traced variables (object arrays), integers (the integer reference). Covered:

* Transpose ``perm`` (default: reversed axes);
* Reshape with the shape input: ``0`` copies the input dimension unless ``allowzero=1`` (then it is a zero-size
  dimension), one ``-1`` is inferred;
* Flatten ``axis`` (default 1, negative counts from the end) -> 2-D;
* Squeeze / Unsqueeze ``axes`` from the attribute (opset < 13) or the second input (opset >= 13), negative axes
  normalised (Squeeze without axes drops every size-1 axis);
* Concat ``axis``;
* Slice ``starts``/``ends``/``axes``/``steps`` (inputs, or attributes for opset < 10) with ONNX clamping (ends such
  as INT64_MAX, negative steps);
* Gather with a constant index tensor (negative indices count from the end) along ``axis``;
* Identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from l1tagger.contract.l1features import MASK_OP, PAIR_OP, PARTICLE_OP
from l1tagger.contract.pairtable import PAIR_TABLE_OP
from l1tagger.contract.quant import QONNX_DOMAIN, attribute
from l1tagger.contract.softmax import ONNX_DOMAIN, ONNX_OP_TYPE
from l1tagger.errors import ConversionError, ExportError, L1TaggerError

#: (domain, op_type) -> role. Arithmetic ops are followed by a Quant node in every l1tagger graph.
SUPPORTED_OPS: dict[tuple[str, str], str] = {
    (QONNX_DOMAIN, "Quant"): "fixed-point quantizer: power-of-two scale, zero point 0",
    ("", "MatMul"): "activation x weight or activation x activation",
    ("", "Add"): "bias add, residual add, interaction bias",
    ("", "Mul"): "mask multiply",
    ("", "Relu"): "activation",
    (ONNX_DOMAIN, ONNX_OP_TYPE): "bit-exact firmware softmax (docs/firmware_softmax.md)",
    (ONNX_DOMAIN, PARTICLE_OP): "per-particle features computed on chip from L1 particle words (docs/l1_inputs.md)",
    (ONNX_DOMAIN, PAIR_OP): "ParT pair features computed on chip from L1 particle words (docs/l1_inputs.md)",
    (ONNX_DOMAIN, MASK_OP): "key mask = the valid bit of L1 particle words (docs/l1_inputs.md)",
    (ONNX_DOMAIN, PAIR_TABLE_OP): "interaction bias U from tables of the quantized pair features (docs/interaction.md)",
    ("", "Transpose"): "layout",
    ("", "Reshape"): "layout",
    ("", "Flatten"): "layout",
    ("", "Squeeze"): "layout",
    ("", "Unsqueeze"): "layout",
    ("", "Concat"): "layout (heads)",
    ("", "Slice"): "layout (heads)",
    ("", "Gather"): "layout (constant index)",
    ("", "Identity"): "no-op",
}

#: op types alone, for quick membership tests
SUPPORTED_OP_TYPES = frozenset(op for _, op in SUPPORTED_OPS)

#: ops that only move elements (semantics: :func:`layout`, :func:`concat`)
LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather",
                        "Identity"})

#: layout ops with one data input (the others inputs, if any, are constants)
SINGLE_INPUT_LAYOUT_OPS = LAYOUT_OPS - {"Concat"}

#: the largest magnitude an index/shape constant keeps (Slice ends such as INT64_MAX clamp to the axis anyway)
_INDEX_CLAMP = 1 << 62


def node_domain(node) -> str:
    return "" if node.domain in ("", "ai.onnx") else node.domain


def check_supported(model, error: type[L1TaggerError] = ExportError) -> None:
    """``error`` naming the first node whose (domain, op_type) is outside SUPPORTED_OPS."""
    for node in model.graph.node:
        if (node_domain(node), node.op_type) not in SUPPORTED_OPS:
            raise error(
                f"unsupported op {node.op_type!r} (domain {node.domain or 'ai.onnx'!r}) in node {node.name!r}; "
                f"l1tagger graphs may contain only {sorted(SUPPORTED_OP_TYPES)}"
            )


# ------------------------------------------------------------------------------------------------ layout ops
def _ints(value, node, what: str, error) -> np.ndarray:
    """An index/shape constant as int64 (float storage accepted when integral; huge values clamped to 2^62)."""
    if value is None:
        raise error(f"node {node.name!r} ({node.op_type}): {what} must be a constant input")
    a = np.asarray(value)
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    if a.dtype.kind != "f" or np.any(np.isnan(a)) or np.any(a != np.round(a)):
        raise error(f"node {node.name!r} ({node.op_type}): {what} {a.ravel()[:6].tolist()} are not integers")
    return np.clip(a, -_INDEX_CLAMP, _INDEX_CLAMP).astype(np.int64)


def _axis(ax: int, rank: int, node, error) -> int:
    ax = int(ax)
    if not -rank <= ax < rank:
        raise error(f"node {node.name!r} ({node.op_type}): axis {ax} out of range for rank {rank}")
    return ax % rank


def _const_or_attr(node, consts: Sequence, i: int, name: str, error):
    """Input ``i`` (0 = the first input after the data) if present, else the attribute ``name`` (older opsets)."""
    if i < len(consts) and len(node.input) > i + 1 and node.input[i + 1]:
        return _ints(consts[i], node, name, error)
    a = attribute(node, name)
    return None if a is None else np.asarray(a, np.int64)


def _reshape(x, node, consts, error):
    shape = _ints(consts[0] if consts else None, node, "shape", error).ravel().tolist()
    allowzero = bool(attribute(node, "allowzero", 0))
    if allowzero and 0 in shape and -1 in shape:
        raise error(f"Reshape node {node.name!r}: allowzero=1 with both 0 and -1 in the shape {shape}")
    if shape.count(-1) > 1:
        raise error(f"Reshape node {node.name!r}: more than one -1 in the shape {shape}")
    if not allowzero:
        if any(s == 0 and i >= x.ndim for i, s in enumerate(shape)):
            raise error(f"Reshape node {node.name!r}: shape {shape} copies a dimension the rank-{x.ndim} input lacks")
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    if any(s < -1 for s in shape):
        raise error(f"Reshape node {node.name!r}: negative dimension in the shape {shape}")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if known == 0 or x.size % known:
            raise error(f"Reshape node {node.name!r}: cannot infer -1 in {shape} from the input shape {x.shape}")
        shape[shape.index(-1)] = x.size // known
    elif known != x.size:
        raise error(f"Reshape node {node.name!r}: input shape {x.shape} ({x.size} elements) cannot become {shape}")
    return x.reshape(shape)


def _flatten(x, node, consts, error):
    ax = int(attribute(node, "axis", 1))
    if not -x.ndim <= ax <= x.ndim:
        raise error(f"Flatten node {node.name!r}: axis {ax} out of range for rank {x.ndim}")
    ax = ax + x.ndim if ax < 0 else ax
    return x.reshape(int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:])))


def _squeeze(x, node, consts, error):
    axes = _const_or_attr(node, consts, 0, "axes", error)
    if axes is None:
        return x.reshape([d for d in x.shape if d != 1])
    axes = sorted({_axis(a, x.ndim, node, error) for a in axes.ravel()})
    if any(x.shape[a] != 1 for a in axes):
        raise error(f"Squeeze node {node.name!r}: axes {axes} of shape {x.shape} are not all of size 1")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in axes])


def _unsqueeze(x, node, consts, error):
    axes = _const_or_attr(node, consts, 0, "axes", error)
    if axes is None:
        raise error(f"Unsqueeze node {node.name!r}: no axes (attribute or input)")
    rank = x.ndim + axes.size
    axes = [_axis(a, rank, node, error) for a in axes.ravel()]
    if len(set(axes)) != len(axes):
        raise error(f"Unsqueeze node {node.name!r}: repeated axes {axes}")
    shape = iter(x.shape)
    return x.reshape([1 if i in axes else next(shape) for i in range(rank)])


def _slice_indices(start: int, end: int, step: int, dim: int) -> range:
    """ONNX Slice on one axis of length ``dim`` (clamping as the operator spec, not Python's slice)."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)


def _slice(x, node, consts, error):
    starts = _const_or_attr(node, consts, 0, "starts", error)
    ends = _const_or_attr(node, consts, 1, "ends", error)
    if starts is None or ends is None or starts.size != ends.size:
        raise error(f"Slice node {node.name!r}: needs constant starts and ends of equal length")
    axes = _const_or_attr(node, consts, 2, "axes", error)
    axes = np.arange(starts.size) if axes is None else axes.ravel()
    steps = _const_or_attr(node, consts, 3, "steps", error)
    steps = np.ones(starts.size, np.int64) if steps is None else steps.ravel()
    if not axes.size == steps.size == starts.size:
        raise error(f"Slice node {node.name!r}: starts, ends, axes and steps differ in length")
    for s, e, a, st in zip(starts.ravel(), ends.ravel(), axes, steps):
        if st == 0:
            raise error(f"Slice node {node.name!r}: step 0")
        a = _axis(a, x.ndim, node, error)
        x = np.take(x, np.asarray(_slice_indices(int(s), int(e), int(st), x.shape[a]), np.int64), axis=a)
    return x


def _gather(x, node, consts, error):
    idx = _ints(consts[0] if consts else None, node, "indices", error)
    ax = _axis(attribute(node, "axis", 0), x.ndim, node, error)
    dim = x.shape[ax]
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise error(f"Gather node {node.name!r}: index out of range [{-dim}, {dim - 1}] on axis {ax}")
    return np.take(x, np.where(idx < 0, idx + dim, idx), axis=ax)


def _transpose(x, node, consts, error):
    perm = attribute(node, "perm")
    perm = list(reversed(range(x.ndim))) if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(x.ndim)):
        raise error(f"Transpose node {node.name!r}: perm {perm} is not a permutation of rank {x.ndim}")
    return np.transpose(x, perm)


_LAYOUT = {
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Slice": _slice,
    "Gather": _gather,
    "Identity": lambda x, node, consts, error: x,
}


def layout(node, x, consts: Sequence = (), error: type[L1TaggerError] = ConversionError) -> np.ndarray:
    """The output of the single-data-input layout op ``node`` on the numpy array ``x``.

    consts: the values of the node's inputs after the data input, in order (None for one that is absent or not
    constant; a constant the op needs then raises ``error`` naming the node).
    """
    fn = _LAYOUT.get(node.op_type)
    if fn is None:
        raise error(f"node {node.name!r}: {node.op_type} is not a single-input layout op")
    return fn(np.asarray(x), node, list(consts), error)


def concat(node, xs: Sequence[np.ndarray], error: type[L1TaggerError] = ConversionError) -> np.ndarray:
    """Concat of the arrays ``xs`` along the node's ``axis`` (negative counts from the end)."""
    if not xs:
        raise error(f"Concat node {node.name!r}: no inputs")
    ax = attribute(node, "axis")
    if ax is None:
        raise error(f"Concat node {node.name!r}: no axis attribute")
    ax = _axis(ax, np.ndim(xs[0]), node, error)
    try:
        return np.concatenate(list(xs), axis=ax)
    except ValueError as exc:
        raise error(f"Concat node {node.name!r}: shapes {[np.shape(x) for x in xs]} do not concatenate on axis "
                    f"{ax}") from exc


def layout_shape(node, shapes: Sequence[tuple[int, ...]], consts: Sequence = (),
                 error: type[L1TaggerError] = ConversionError) -> tuple[int, ...]:
    """Output shape of a layout op from its data input shape(s), by the same functions on placeholder arrays."""
    if node.op_type == "Concat":
        return tuple(concat(node, [np.zeros(s, np.bool_) for s in shapes], error).shape)
    return tuple(layout(node, np.zeros(shapes[0], np.bool_), consts, error).shape)
