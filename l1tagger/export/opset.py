"""The op set a cleaned l1tagger QONNX graph may contain (``docs/graph_contract.md``).

``l1tagger/convert/`` (hls4ml) and ``l1tagger/rtl/`` (da4ml) implement every op here and fail with the node named
on anything else; :func:`check_supported` enforces the set at export.
"""

from __future__ import annotations

from l1tagger.errors import ExportError
from l1tagger.qat.softmax import ONNX_DOMAIN

QONNX_DOMAIN = "qonnx.custom_op.general"

#: (domain, op_type) -> role. Arithmetic ops are followed by a Quant node in every l1tagger graph.
SUPPORTED_OPS: dict[tuple[str, str], str] = {
    (QONNX_DOMAIN, "Quant"): "fixed-point quantizer: power-of-two scale, zero point 0",
    ("", "MatMul"): "activation x weight or activation x activation",
    ("", "Add"): "bias add, residual add, interaction bias",
    ("", "Mul"): "mask multiply",
    ("", "Relu"): "activation",
    (ONNX_DOMAIN, "FirmwareSoftmax"): "bit-exact firmware softmax (docs/firmware_softmax.md)",
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


def check_supported(model) -> None:
    """ExportError naming the first node whose (domain, op_type) is outside SUPPORTED_OPS."""
    for node in model.graph.node:
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        if (domain, node.op_type) not in SUPPORTED_OPS:
            raise ExportError(
                f"unsupported op {node.op_type!r} (domain {node.domain or 'ai.onnx'!r}) in node {node.name!r}; "
                f"l1tagger graphs may contain only {sorted(SUPPORTED_OP_TYPES)}"
            )
