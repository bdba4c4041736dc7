"""The torch-free graph contract: one place for the semantics every walker of an l1tagger graph shares.

* :mod:`l1tagger.contract.opset` - SUPPORTED_OPS (the only op list) and the layout-op semantics (numpy functions);
* :mod:`l1tagger.contract.quant` - Quant-node decoding (:class:`QuantSpec`) and the one rounding table
  :data:`ROUNDING` (qonnx <-> ap_fixed <-> da4ml <-> numpy);
* :mod:`l1tagger.contract.softmax` - the firmware softmax spec, its tables and the integer reference;
* :mod:`l1tagger.contract.l1features` - the features computed on chip from L1 particle words (the graph input
  ``words`` of a model with ``inputs: l1words``): :class:`~l1tagger.contract.l1features.L1FeatureSpec`, its tables
  and digest, the integer program (numpy or torch) behind the ops ``L1ParticleFeatures``, ``L1WordMask`` and
  ``L1PairFeatures`` (``docs/l1_inputs.md``).

The walkers (``convert/frontend.py``, ``rtl/lower.py``, ``export/intref.py``, ``report/estimates.py``) take their
semantics from here and keep their own arithmetic (the L1 word features: the C++ kernels and the traced RTL
reimplement the integer steps; intref and the qonnx ops run ``features_np``). This package imports numpy and onnx
only: never torch, and never qonnx (which pulls in onnxruntime). See ``docs/graph_contract.md``.
"""

from l1tagger.contract.opset import (
    LAYOUT_OPS,
    SUPPORTED_OP_TYPES,
    SUPPORTED_OPS,
    check_supported,
    concat,
    layout,
    layout_shape,
)
from l1tagger.contract.quant import QONNX_DOMAIN, ROUNDING, QuantSpec, Rounding, decode_quant
from l1tagger.contract.softmax import ONNX_DOMAIN, ONNX_OP_TYPE, SoftmaxSpec, softmax_int, spec_of_node

__all__ = [
    "LAYOUT_OPS", "SUPPORTED_OPS", "SUPPORTED_OP_TYPES", "check_supported", "concat", "layout", "layout_shape",
    "QONNX_DOMAIN", "ROUNDING", "QuantSpec", "Rounding", "decode_quant",
    "ONNX_DOMAIN", "ONNX_OP_TYPE", "SoftmaxSpec", "softmax_int", "spec_of_node",
]
