"""Export a quantized (Brevitas) tagger to a cleaned QONNX graph.

    brevitas.export.export_qonnx (TorchScript exporter, ``dynamo=False``: the dynamo exporter cannot carry the
    FirmwareSoftmax custom node) -> qonnx cleanup -> ConvertToChannelsLastAndClean (only when the graph has
    channels-first ops; l1tagger graphs are (B, N, F) and have none) -> GemmToMatMul -> cleanup
    -> check_supported (ExportError naming the op and node) -> check_power_of_two (ExportError naming the Quant node).

torch 2.13's ``torch.onnx.export`` and brevitas 0.13.4's ``export_qonnx`` both default to the dynamo exporter on
this torch; we pass ``dynamo=False`` explicitly. The batch axis is exported with a fixed size (the example's).

HGQ twins (``l1tagger.qat.hgq``) are baked first, in place (``bake_hgq``: each weight becomes its quantized value,
forward values unchanged), so every weight is a float initializer on its own grid followed by the container
``Quant(scale 2^-frac, bits)``; :func:`constant_widths` reads back the bits each constant uses.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from l1tagger.errors import ExportError
from l1tagger.export.opset import check_supported
from l1tagger.qat.softmax import ONNX_DOMAIN

#: ops for which qonnx's channels-last conversion applies
CHANNELS_FIRST_OPS = frozenset({"Conv", "MaxPool", "AveragePool", "BatchNormalization", "GlobalAveragePool"})

OPSET = 17


def _is_po2(x: float) -> bool:
    if not np.isfinite(x) or x <= 0:
        return False
    m, _ = math.frexp(float(x))
    return m == 0.5


def check_power_of_two(model) -> None:
    """Every Quant node: scalar power-of-two scale, zero point 0 (else ExportError naming the node)."""
    for node in model.graph.node:
        if node.op_type != "Quant":
            continue
        scale = model.get_initializer(node.input[1])
        zp = model.get_initializer(node.input[2])
        if scale is None or zp is None:
            raise ExportError(f"Quant node {node.name!r} has a non-constant scale or zero point")
        if scale.size != 1 or not _is_po2(float(np.asarray(scale).reshape(-1)[0])):
            raise ExportError(f"Quant node {node.name!r} scale {np.asarray(scale).reshape(-1)[:4]} is not a power of two")
        if np.any(np.asarray(zp) != 0):
            raise ExportError(f"Quant node {node.name!r} has a nonzero zero point")


def remove_noop_casts(model):
    """Drop Cast nodes from float32 to float32 (``mask.to(x.dtype)`` in the model), rewiring their consumers."""
    from onnx import TensorProto, helper

    graph = model.graph
    for node in list(graph.node):
        if node.op_type != "Cast":
            continue
        to = helper.get_attribute_value(next(a for a in node.attribute if a.name == "to"))
        src = node.input[0]
        vi = model.get_tensor_valueinfo(src) if hasattr(model, "get_tensor_valueinfo") else None
        src_type = vi.type.tensor_type.elem_type if vi is not None else None
        if to != TensorProto.FLOAT or src_type != TensorProto.FLOAT:
            continue
        out = node.output[0]
        if out in [o.name for o in graph.output]:
            continue
        for other in graph.node:
            for i, name in enumerate(other.input):
                if name == out:
                    other.input[i] = src
        graph.node.remove(node)
    return model


def clean(model):
    """qonnx cleanup -> drop no-op casts -> channels-last (where it applies) -> Gemm->MatMul -> cleanup."""
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    model = remove_noop_casts(cleanup_model(model))
    changed = False
    if any(n.op_type in CHANNELS_FIRST_OPS for n in model.graph.node):
        model = model.transform(ConvertToChannelsLastAndClean())
        changed = True
    if any(n.op_type == "Gemm" for n in model.graph.node):  # (a no-op pass costs seconds on large graphs)
        model = model.transform(GemmToMatMul())
        changed = True
    return cleanup_model(model) if changed else model


def export_qonnx_model(
    model: torch.nn.Module,
    example: tuple,
    path: str | Path | None = None,
    input_names: tuple[str, ...] = ("x", "mask", "pair"),
    output_names: tuple[str, ...] = ("logits",),
):
    """Export ``model(*example)`` to a cleaned QONNX ``ModelWrapper``; write it atomically to ``path`` if given.

    ``example`` holds the graph inputs in order (x, mask[, pair]); trailing ``None`` entries are dropped.
    """
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.qat.hgq import bake_hgq

    bake_hgq(model)  # traced, a parametrized weight would export as ops instead of an initializer
    args = tuple(a for a in example if a is not None)
    names = list(input_names[: len(args)])
    model = model.eval()
    try:
        proto = export_qonnx(
            model,
            args=args,
            export_path=None,
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=list(output_names),
            custom_opsets={ONNX_DOMAIN: 1},
        )
    except Exception as exc:  # torch's exporter raises many types; name the failure
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"torch/brevitas export failed: {type(exc).__name__}: {exc}") from exc
    wrapper = clean(ModelWrapper(proto))
    # cleanup gives tensors generic names (global_in, global_out, ...): restore the contract's names
    for vi, name in zip(list(wrapper.graph.input), names):
        if vi.name != name:
            wrapper.rename_tensor(vi.name, name)
    for vi, name in zip(list(wrapper.graph.output), output_names):
        if vi.name != name:
            wrapper.rename_tensor(vi.name, name)
    check_supported(wrapper.model)
    check_power_of_two(wrapper)
    if path is not None:
        save_model(wrapper, path)
    return wrapper


def constant_widths(model) -> dict[str, dict]:
    """Every Quant node of a cleaned graph whose input is an initializer (weights, biases): {node name: {"tensor",
    "bits" (the Quant's width), "frac" (scale = 2^-frac), "widths" (array shaped like the initializer: the bits each
    quantized constant uses, 0 = pruned; ``l1tagger.contract.quant.constant_bits`` of Quant(value) * 2^frac)}}.

    On a baked HGQ graph Quant(value) == value: each initializer is already on its own grid inside the container."""
    from l1tagger.contract.quant import constant_bits, decode_quant

    out = {}
    for node in model.graph.node:
        value = model.get_initializer(node.input[0]) if node.op_type == "Quant" else None
        if value is None:
            continue
        spec = decode_quant(node, *(model.get_initializer(t) for t in node.input[1:4]), error=ExportError)
        k = spec.apply(value) * 2.0 ** spec.frac
        out[node.name] = {"tensor": node.input[0], "bits": spec.bits, "frac": spec.frac, "widths": constant_bits(k)}
    return out


def save_model(wrapper, path: str | Path) -> Path:
    from l1tagger.utils.atomic import atomic_write_bytes

    return atomic_write_bytes(path, wrapper.model.SerializeToString())


def load_model(path: str | Path):
    """Load a cleaned .onnx written by export (ExportError when missing or unreadable)."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"ONNX file not found: {path}")
    try:
        return ModelWrapper(onnx.load(str(path)))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"cannot read ONNX model {path}: {exc}") from exc
