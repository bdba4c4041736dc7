"""hls4ml extension layers (``register_layer``), their HLS templates (``backend.register_template``) and the C++
header (``backend.register_source``) for l1tagger graphs.

One layer class per kernel in ``nnet_l1tagger.h``. Each layer carries a plain ``l1`` attribute dict produced by
:mod:`l1tagger.convert.frontend`: the C++ types, constants and index/value tables of its config struct, and the
result type. Adding a kernel = a C++ template in the header + a Layer subclass here + a handler in the frontend.
"""

from __future__ import annotations

from pathlib import Path

from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.model.layers import Layer, register_layer
from hls4ml.model.types import FixedPrecisionType

from l1tagger.convert.fixed import FixedType

HEADER = Path(__file__).with_name("nnet_l1tagger.h")
INCLUDE = "nnet_utils/nnet_l1tagger.h"
BACKENDS = ("Vivado", "Vitis")


def hls_precision(t: FixedType, rounding: str = "TRN", saturation: str = "WRAP") -> FixedPrecisionType:
    return FixedPrecisionType(t.width, t.integer, t.signed, rounding, saturation)


class L1Layer(Layer):
    """Base: output shape/type come from the frontend's ``l1`` dict (keys ``shape``, ``type``, ``round``, ``sat``)."""

    kernel = ""
    #: number of activation inputs
    n_inputs = 1

    def initialize(self):
        spec = self.attributes["l1"]
        prec = hls_precision(spec["type"], spec.get("round", "TRN"), spec.get("sat", "WRAP"))
        shape = list(spec["shape"]) or [1]
        self.add_output_variable(shape, precision=prec)


class L1Quant(L1Layer):
    kernel = "quant"


class L1Relu(L1Layer):
    kernel = "relu"


class L1Const(L1Layer):
    kernel = "constant"
    n_inputs = 0


class L1Permute(L1Layer):
    kernel = "permute"


class L1Concat(L1Layer):
    kernel = "concat2"
    n_inputs = 2


class L1Add(L1Layer):
    kernel = "add"
    n_inputs = 2


class L1Mul(L1Layer):
    kernel = "mul"
    n_inputs = 2


class L1MatMul(L1Layer):
    kernel = "matmul"
    n_inputs = 2


class L1ConstMatMul(L1Layer):
    """x @ W (or W @ x) with a constant W, as shift-and-add: the config struct carries da4ml's CMVM code."""

    kernel = "cmatmul"


class L1Softmax(L1Layer):
    kernel = "softmax"
    n_inputs = 2


class L1TopkAttention(L1Layer):
    """FirmwareSoftmax(topk) -> MatMul(A, V) fused: inputs logits, key mask, values."""

    kernel = "topk_attention"
    n_inputs = 3


class L1WordParticles(L1Layer):
    kernel = "l1w_particles"


class L1WordPairs(L1Layer):
    kernel = "l1w_pairs"


class L1WordMask(L1Layer):
    kernel = "l1w_mask"


class L1PairTableLayer(L1Layer):
    """U from tables of the quantized pair features (docs/interaction.md)."""

    kernel = "pairtable"


LAYER_CLASSES = (L1Quant, L1Relu, L1Const, L1Permute, L1Concat, L1Add, L1Mul, L1MatMul, L1ConstMatMul, L1Softmax,
                 L1TopkAttention, L1WordParticles, L1WordPairs, L1WordMask, L1PairTableLayer)


def _table_fn(name: str, ctype: str, values) -> str:
    if ctype == "double" or ctype.startswith("ap_"):  # exact dyadic literals (repr round-trips float64)
        vals = ", ".join(repr(float(v)) for v in values)
    else:
        vals = ", ".join(str(int(v)) for v in values)
    n = max(1, len(values))
    return (f"    static {ctype} {name}(unsigned i) {{\n"
            f"        static const {ctype} t[{n}] = {{{vals}}};\n"
            f"        return t[i];\n    }}\n")


def config_struct(node) -> str:
    spec = node.get_attr("l1")
    lines = [f"// {line}" for line in spec.get("comment", [])] + [f"struct config{node.index} {{"]
    for k, v in spec.get("consts", {}).items():
        lines.append(f"    static const int {k} = {int(v)};")
    for k, v in spec.get("types", {}).items():
        lines.append(f"    typedef {v} {k};")
    body = "\n".join(lines) + "\n"
    for k, (ctype, values) in spec.get("tables", {}).items():
        body += _table_fn(k, ctype, values)
    return body + spec.get("code", "") + "};\n"


class L1ConfigTemplate(LayerConfigTemplate):
    def __init__(self):
        super().__init__(LAYER_CLASSES)

    def format(self, node):
        return config_struct(node)


class L1FunctionTemplate(FunctionCallTemplate):
    def __init__(self):
        super().__init__(LAYER_CLASSES, include_header=[INCLUDE])

    def format(self, node):
        ins = [node.get_input_variable(i) for i in node.inputs[: node.n_inputs]] if node.n_inputs else []
        out = node.get_output_variable()
        targs = ", ".join([v.type.name for v in ins] + [out.type.name, f"config{node.index}"])
        args = ", ".join([v.name for v in ins] + [out.name])
        return f"l1t::{node.kernel}<{targs}>({args});"


_REGISTERED = False


def register() -> None:
    """Register layers, templates and the header with hls4ml (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from hls4ml.backends import get_backend

    for cls in LAYER_CLASSES:
        register_layer(cls.__name__, cls)
    for name in BACKENDS:
        b = get_backend(name)
        b.register_template(L1ConfigTemplate)
        b.register_template(L1FunctionTemplate)
        b.register_source(HEADER)
    _REGISTERED = True
