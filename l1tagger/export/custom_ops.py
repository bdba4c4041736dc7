"""qonnx custom ops of the ``l1tagger.export.custom_ops`` ONNX domain.

qonnx 1.0.0 resolves a node's domain as a Python module path (``qonnx.custom_op.registry.resolve_domain``), imports
it and looks the op type up in the module's ``__all__`` (class name = op type, optional ``_vN`` version suffix).
Nodes exported with ``domain="l1tagger.export.custom_ops"`` therefore execute in ``qonnx.core.onnx_exec`` through
the classes below, with no registration call needed.

FirmwareSoftmax(logits, [mask]) -> weights
    attributes: ``spec`` (JSON of :class:`l1tagger.contract.softmax.SoftmaxSpec`), ``topk`` (int, 0 = off)
    logits are float values on the spec's input grid; the output is float o * 2^-out_frac where o is
    :func:`l1tagger.contract.softmax.softmax_int`. Off-grid or out-of-range logits raise DataError: there is no
    float fallback.

L1ParticleFeatures(words) -> x (B, N, F);  L1WordMask(words) -> mask (B, N);  L1PairFeatures(words) -> pair
    (B, N, N, 4). Attribute: ``spec`` (JSON of :class:`l1tagger.contract.l1features.L1FeatureSpec`).
    words are L1 particle words on the unit grid (integers, the format's fields on the last axis); the output is
    float q * 2^-frac where q is :func:`l1tagger.contract.l1features.features_np` (docs/l1_inputs.md; the mask is
    the 0/1 valid bit). A word that
    is not an integer or outside its field's width raises DataError naming the node, the jet, the particle and the
    field.

L1PairTable(pair, table) -> u (..., H): U_h = sum_f table[f, h, idx_f(pair)], attribute ``spec`` (JSON of
    :class:`l1tagger.contract.pairtable.PairTableSpec`; docs/interaction.md). A table of another shape or an unknown
    attribute raises ConfigError naming the node.

``spec_of_node`` (re-exported here) and the softmax itself come from the torch-free contract
(:mod:`l1tagger.contract.softmax`).
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from l1tagger.contract import l1features, pairtable
from l1tagger.errors import ConfigError, DataError
from l1tagger.contract.softmax import ONNX_DOMAIN, SoftmaxSpec, softmax_int, spec_of_node  # noqa: F401

__all__ = ["FirmwareSoftmax", "L1ParticleFeatures", "L1PairFeatures", "L1WordMask", "L1PairTable"]

DOMAIN = ONNX_DOMAIN


def grid_to_int(x: np.ndarray, frac: int, what: str) -> np.ndarray:
    """Exact integer image x * 2^frac of a float array; DataError when any value is off the grid."""
    scaled = np.asarray(x, dtype=np.float64) * (2.0**frac)
    q = np.round(scaled)
    if not np.array_equal(q, scaled):
        idx = tuple(int(i) for i in np.argwhere(q != scaled)[0])
        raise DataError(f"{what}: value {float(np.asarray(x)[idx])!r} at {idx} is off the grid 2^-{frac}")
    return q.astype(np.int64)


class FirmwareSoftmax(CustomOp):
    """The bit-exact firmware softmax (docs/firmware_softmax.md) as a qonnx-executable node."""

    def get_nodeattr_types(self):
        return {"spec": ("s", True, ""), "topk": ("i", False, 0)}

    def spec(self) -> tuple[SoftmaxSpec, int]:
        return spec_of_node(self.onnx_node)

    def make_shape_compatible_op(self, model):
        node = self.onnx_node
        return helper.make_node("Identity", [node.input[0]], [node.output[0]])

    def infer_node_datatype(self, model):
        self.spec()  # validates the attribute
        # values o * 2^-out_frac; the unsigned Quant node that follows declares the fixed-point type
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context, graph):
        node = self.onnx_node
        spec, topk = self.spec()
        logits = context[node.input[0]]
        mask = context[node.input[1]] if len(node.input) > 1 and node.input[1] else None
        q = grid_to_int(logits, spec.in_frac, f"FirmwareSoftmax node {node.name!r} input {node.input[0]!r}")
        if mask is not None:
            try:
                mask = np.broadcast_to(np.asarray(mask) != 0, q.shape)
            except ValueError as exc:
                raise DataError(
                    f"FirmwareSoftmax node {node.name!r}: mask shape {np.shape(mask)} does not broadcast to "
                    f"logits shape {q.shape}"
                ) from exc
        try:
            o = softmax_int(q, mask, topk, spec)
        except DataError as exc:
            raise DataError(f"FirmwareSoftmax node {node.name!r}: {exc}") from exc
        context[node.output[0]] = (o.astype(np.float64) * spec.out_scale).astype(np.float32)

    def verify_node(self):
        info = []
        try:
            spec, topk = self.spec()
            info.append(f"FirmwareSoftmax spec ok: {spec.to_json()}, topk={topk}")
        except ConfigError as exc:
            info.append(str(exc))
        if len(self.onnx_node.input) not in (1, 2):
            info.append("FirmwareSoftmax takes 1 or 2 inputs (logits, mask)")
        return info


class _WordFeatures(CustomOp):
    """Features computed on chip from L1 particle words (docs/l1_inputs.md) as a qonnx-executable node."""

    def get_nodeattr_types(self):
        return {"spec": ("s", True, "")}

    def spec(self) -> l1features.L1FeatureSpec:
        return l1features.spec_of_node(self.onnx_node)

    def make_shape_compatible_op(self, model):
        # qonnx hides every custom node before onnx's shape inference, so the words' shape may be unknown here:
        # take it from the nearest tensor upstream through shape-preserving nodes (the words' Quant, hidden as a Cast)
        name = self.onnx_node.input[0]
        shape = model.get_tensor_shape(name)
        while shape is None:
            producer = model.find_producer(name)
            if producer is None or producer.op_type not in ("Quant", "Cast", "Identity"):
                raise ConfigError(f"{self.onnx_node.op_type} node {self.onnx_node.name!r}: the shape of its words "
                                  f"input {self.onnx_node.input[0]!r} is unknown")
            name = producer.input[0]
            shape = model.get_tensor_shape(name)
        return self.make_const_shape_op(l1features.output_shape(self.onnx_node.op_type, shape, self.spec()))

    def infer_node_datatype(self, model):
        self.spec()  # validates the attribute
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context, graph):
        node = self.onnx_node
        spec = self.spec()
        kind = l1features.kind_of(node.op_type)
        words = grid_to_int(context[node.input[0]], 0, f"{node.op_type} node {node.name!r} input {node.input[0]!r}")
        q = l1features.features_np(words, spec, (kind,), f"{node.op_type} node {node.name!r} words")[kind]
        frac = l1features.output_grid(spec, kind)[2]
        context[node.output[0]] = (q.astype(np.float64) * 2.0**-frac).astype(np.float32)

    def verify_node(self):
        info = []
        try:
            info.append(f"{self.onnx_node.op_type} spec ok: {self.spec().to_json()}")
        except ConfigError as exc:
            info.append(str(exc))
        if len(self.onnx_node.input) != 1:
            info.append(f"{self.onnx_node.op_type} takes 1 input (words)")
        return info


class L1ParticleFeatures(_WordFeatures):
    """x (B, N, F) from the words: log pT, log pT/pT_jet, deta, dphi to the seed, particle-id features."""


class L1PairFeatures(_WordFeatures):
    """pair (B, N, N, 4) from the words: ln kT, ln z, ln Delta, ln m^2 (docs/l1_inputs.md)."""


class L1WordMask(_WordFeatures):
    """mask (B, N) from the words: the valid bit (0/1), the key mask of the attention."""


class L1PairTable(CustomOp):
    """The interaction bias from tables of the quantized pair features (docs/interaction.md)."""

    def get_nodeattr_types(self):
        return {"spec": ("s", True, "")}

    def spec(self) -> pairtable.PairTableSpec:
        return pairtable.spec_of_node(self.onnx_node)

    def make_shape_compatible_op(self, model):
        # qonnx hides every custom node before onnx's shape inference: an Einsum of the same inputs has the output's
        # shape (..., H) whatever the pair input's shape becomes
        node = self.onnx_node
        self.spec()
        return helper.make_node("Einsum", list(node.input[:2]), [node.output[0]], equation="...f,fhe->...h")

    def infer_node_datatype(self, model):
        self.spec()
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["FLOAT32"])

    def execute_node(self, context, graph):
        node = self.onnx_node
        u = pairtable.pairtable_np(context[node.input[0]], context[node.input[1]], self.spec(),
                                   f"L1PairTable node {node.name!r}")
        context[node.output[0]] = u.astype(np.float32)

    def verify_node(self):
        info = []
        try:
            info.append(f"L1PairTable spec ok: {self.spec().to_json()}")
        except ConfigError as exc:
            info.append(str(exc))
        if len(self.onnx_node.input) != 2:
            info.append("L1PairTable takes 2 inputs (pair, table)")
        return info
