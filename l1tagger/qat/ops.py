"""``QuantOps``: the Brevitas op factory. Same contract as ``l1tagger.models.ops.FloatOps``, quantized layers.

Every module returns plain float tensors whose values lie on a power-of-two fixed-point grid:

* ``input_quant``: QuantIdentity with a *constant* scale 2^-frac (the documented preprocessing grid);
* ``linear``: QuantLinear, fixed-point weights (learned power-of-two scale, or the constant grid 2^-frac when the
  weight spec has ``frac``: the HGQ container), quantized bias, output quantizer;
* ``relu``: QuantReLU (unsigned); ``quant``/``matmul``/``add``/``mul``: the op followed by a QuantIdentity;
* ``l1features``: the on-chip features of L1 words with the spec's constant grids (words, x, pair);
* ``softmax``: QuantIdentity onto the softmax input grid (constant scale 2^-in_frac, in_bits wide) ->
  :class:`l1tagger.qat.softmax.FirmwareSoftmax` -> QuantIdentity onto the output grid (unsigned, constant scale
  2^-out_frac; idempotent on the softmax output, it declares the type in the exported graph).

Learned scales use Brevitas' ``PowerOfTwoRestrictValue`` with an integer exponent, so every exported scale is an
exact power of two. Their lower bound is :data:`ACT_SCALE_MIN`, itself a power of two: Brevitas clamps a learned
scale to ``scaling_min_val`` *after* the power-of-two restriction (in eval mode, after dividing by 2^(bits-1)), and its
default 1e-10 is not a power of two, so an activation that saw only zeros in calibration (a dead ReLU) got the scale
1e-10 and could not be exported. Activation rounding (half_even -> ROUND, floor -> FLOOR) comes from the recipe.

With an ``hgq:`` recipe section (``l1tagger.qat.hgq``) whose ``act.trainable`` is on, every activation quantizer with
a learned scale gets a trainable per-tensor bit width (Brevitas ``BitWidthImplType.PARAMETER``, clamped to
[act.min_bits, act.max_bits], rounded straight-through): its range (threshold) stays, its LSB halves per extra bit,
and the exported Quant node carries the trained width as its scalar bit width. Constant grids (inputs, softmax)
keep their widths.

The quantized twin has the float model's parameter names (``weight``/``bias`` of each linear); load a float
checkpoint with :func:`load_float_state_dict`, then run :func:`calibrate` so the runtime-statistics scales settle.
"""

from __future__ import annotations

import functools
from typing import Iterable

import torch
from torch import nn

from l1tagger.errors import ConfigError
from l1tagger.qat.recipe import Recipe, QuantSpec, check_hgq_widths, load_recipe, quantizer_class, resolve_output
from l1tagger.qat.softmax import FirmwareSoftmax

#: smallest learned activation scale (Brevitas ``scaling_min_val``): a power of two, so the clamp of a tensor that was
#: all zero in calibration still gives a power-of-two scale; 2^-16 lies far below any scale a trained tagger learns
#: (2^-8 .. 2^0 on the default model), so it never clamps a live tensor
ACT_SCALE_MIN = 2.0**-16


@functools.lru_cache(maxsize=None)
def _injector(spec: QuantSpec, rounding_mode: str | None, widths: tuple[int, int] | None = None):
    """The Brevitas injector for one QuantSpec (bit width, rounding, optional constant power-of-two scale).

    widths: (min, max) -> a trainable bit width (activation quantizers with a learned scale only), starting at
    ``spec.bits``.
    """
    from brevitas.inject.enum import BitWidthImplType, FloatToIntImplType, ScalingImplType

    cls, family = quantizer_class(spec.quantizer)
    kw = {"bit_width": spec.bits}
    if rounding_mode is not None:
        kw["float_to_int_impl_type"] = FloatToIntImplType[rounding_mode]
    if spec.frac is not None:
        if family == "uact":
            thr = 2.0 ** (spec.bits - spec.frac)  # unsigned power-of-two int scaling: scale = thr / 2^bits
            kw.update(scaling_impl_type=ScalingImplType.CONST, min_val=0.0, max_val=thr)
        elif family == "act":
            thr = 2.0 ** (spec.bits - 1 - spec.frac)  # signed: scale = thr / 2^(bits-1)
            kw.update(scaling_impl_type=ScalingImplType.CONST, min_val=-thr, max_val=thr)
        elif family in ("weight", "bias"):
            # constant grid (HGQ weight container, fixed bias grid): scale = scaling_const / 2^(bits-1) = 2^-frac
            kw.update(scaling_impl_type=ScalingImplType.CONST, scaling_const=2.0 ** (spec.bits - 1 - spec.frac))
        else:
            raise ConfigError(f"a constant grid (frac) is not supported for {spec.quantizer}")
    elif family in ("act", "uact"):  # a learned scale: keep its clamp a power of two
        kw["scaling_min_val"] = ACT_SCALE_MIN
    if widths is not None:
        if spec.frac is not None or family not in ("act", "uact"):
            raise ConfigError(f"a trainable bit width needs an activation quantizer with a learned scale, not "
                              f"{spec.quantizer} with frac={spec.frac}")
        lo, hi = widths
        kw.update(bit_width_impl_type=BitWidthImplType.PARAMETER, min_bit_width=lo,
                  bit_width_offset_min_val=float(lo), bit_width_offset_max_val=float(hi))
    return cls.let(**kw)


def _act(spec: QuantSpec, rounding_mode: str, widths: tuple[int, int] | None = None):
    from brevitas.nn import QuantIdentity

    return QuantIdentity(act_quant=_injector(spec, rounding_mode, widths), return_quant_tensor=False)


class QuantBinary(nn.Module):
    """fn(a, b) followed by an explicit output quantizer."""

    def __init__(self, fn, out: nn.Module):
        super().__init__()
        self.fn = fn
        self.out = out

    def forward(self, a, b):
        return self.out(self.fn(a, b))


class QuantSoftmax(nn.Module):
    """Input quantizer (grid of the spec) -> firmware softmax -> output quantizer (declares the output type)."""

    def __init__(self, in_q: nn.Module, softmax: FirmwareSoftmax, out_q: nn.Module, max_terms: int, name: str):
        super().__init__()
        self.in_q = in_q
        self.softmax = softmax
        self.out_q = out_q
        self.max_terms = int(max_terms)  # the most terms the spec's sum covers (recipe max_keys, or fitted rows)
        self.layer_name = name

    @property
    def spec(self):
        return self.softmax.spec

    def forward(self, logits, key_mask=None):
        terms = logits.shape[-1] if not self.softmax.topk else min(logits.shape[-1], self.softmax.topk)
        if terms > self.max_terms:
            raise ConfigError(
                f"softmax {self.layer_name!r} sums {terms} keys per row but its spec covers {self.max_terms} (the "
                f"recipe's softmax.max_keys, or the row size it was fitted to): the inverse table would not cover "
                f"the sum"
            )
        return self.out_q(self.softmax(self.in_q(logits), key_mask))


#: width of a mask product's grid (``mask_mul``): unsigned, scale 1. 2, not 1: Brevitas exports a 1-bit quantizer as
#: BipolarQuant (values -1/+1), which is not a 0/1 grid and not in the graph contract
MASK_BITS = 2


class QuantOps:
    """Brevitas layers with bit widths from a recipe (a :class:`Recipe` or a path to ``quantize/*.yaml``)."""

    quantized = True

    def __init__(self, recipe: Recipe | str):
        self.recipe = load_recipe(recipe) if not isinstance(recipe, Recipe) else recipe
        self.used: set[str] = set()
        self.softmax_specs: dict[str, dict] = {}

    # ---------------------------------------------------------------- helpers
    @property
    def _mode(self) -> str:
        return self.recipe.act_rounding_mode

    def _widths(self, spec: QuantSpec, name: str, kind: str) -> tuple[int, int] | None:
        """(min, max) trainable width of the output quantizer of layer ``name`` (HGQ recipes), else None."""
        hgq = self.recipe.hgq
        if hgq is None or hgq.act_widths is None or spec.frac is not None or spec.family not in ("act", "uact"):
            return None
        o = self.recipe.overrides.get(name)
        check_hgq_widths(spec, hgq, f"overrides.{name}.output" if o is not None and o.output else kind)
        return hgq.act_widths

    def _out(self, name: str, kind: str) -> nn.Module:
        self.used.add(name)
        spec = resolve_output(self.recipe, name, kind)
        return _act(spec, self._mode, self._widths(spec, name, kind))

    def check_overrides_used(self) -> None:
        """ConfigError naming any override whose layer name was never built (a typo in the recipe)."""
        unused = sorted(set(self.recipe.overrides) - self.used)
        if unused:
            raise ConfigError(
                f"recipe {self.recipe.name!r}: override(s) for unknown layer(s) {unused}; "
                f"layers of this model: {sorted(self.used)[:20]}{' ...' if len(self.used) > 20 else ''}"
            )

    # ---------------------------------------------------------------- contract
    def input_quant(self, name: str) -> nn.Module:
        return self._out(name, "input")

    def quant(self, name: str) -> nn.Module:
        return self._out(name, "act")

    def linear(self, name: str, in_features: int, out_features: int, bias: bool = True) -> nn.Module:
        from brevitas.nn import QuantLinear

        o = self.recipe.overrides.get(name)
        w = (o.weight if o and o.weight else None) or self.recipe.kinds["weight"]
        b = (o.bias if o and o.bias else None) or self.recipe.kinds["bias"]
        out = resolve_output(self.recipe, name, "act")
        self.used.add(name)
        return QuantLinear(
            in_features,
            out_features,
            bias=bias,
            weight_quant=_injector(w, None),
            bias_quant=_injector(b, None) if bias else None,
            output_quant=_injector(out, self._mode, self._widths(out, name, "act")),
            return_quant_tensor=False,
        )

    def relu(self, name: str) -> nn.Module:
        from brevitas.nn import QuantReLU

        self.used.add(name)
        spec = resolve_output(self.recipe, name, "relu")
        return QuantReLU(act_quant=_injector(spec, self._mode, self._widths(spec, name, "relu")),
                         return_quant_tensor=False)

    def matmul(self, name: str) -> nn.Module:
        return QuantBinary(torch.matmul, self._out(name, "matmul"))

    def add(self, name: str) -> nn.Module:
        return QuantBinary(torch.add, self._out(name, "add"))

    def mul(self, name: str) -> nn.Module:
        return QuantBinary(torch.mul, self._out(name, "mul"))

    def mask_mul(self, name: str) -> nn.Module:
        """The product of two 0/1 masks on the constant grid ufixed<MASK_BITS, MASK_BITS> (scale 1: 0 and 1 exactly),
        whatever the recipe: what it multiplies costs bits(x) x MASK_BITS, not x the recipe's activation width."""
        self.used.add(name)
        return QuantBinary(torch.mul, _act(QuantSpec("Uint8ActPerTensorFixedPoint", MASK_BITS, 0), self._mode))

    def softmax(self, name: str, topk: int = 0, n_keys: int | None = None) -> nn.Module:
        """n_keys: the most terms this softmax's sums hold (its row's keys; k for top-k), used by ``fit_rows``."""
        self.used.add(name)
        o = self.recipe.overrides.get(name)
        sm = o.softmax if o and o.softmax else self.recipe.softmax
        spec = sm.spec(n_keys)
        self.softmax_specs[name] = spec.to_dict()
        in_q = _act(QuantSpec("Int8ActPerTensorFixedPoint", spec.in_bits, spec.in_frac), self._mode)
        out_q = _act(QuantSpec("Uint8ActPerTensorFixedPoint", spec.out_bits, spec.out_frac), "ROUND")
        return QuantSoftmax(in_q, FirmwareSoftmax(spec, topk), out_q, sm.terms(n_keys), name)

    def l1features(self, name: str, spec, pair: bool) -> nn.Module:
        """Features computed on chip from L1 words (``l1tagger.features.onchip``): constant grids from the spec
        (words: signed, scale 1; x / pair: signed, scale 2^-frac), not from the recipe."""
        from l1tagger.features.onchip import OnChipFeatures

        act = lambda bits, frac: _act(QuantSpec("Int8ActPerTensorFixedPoint", bits, frac), self._mode)  # noqa: E731
        return OnChipFeatures(spec, act(spec.format.word_bits, 0), act(spec.x_bits, spec.frac),
                              act(spec.pair_bits, spec.frac) if pair else None)


    def pair_table(self, name: str, bits: int, n_heads: int, n_features: int) -> nn.Module:
        """Tables of the interaction bias (``l1tagger.models.ops.PairTable``), entries through the recipe's ``act``
        quantizer named ``name`` (exported as a Quant node on the table initializer)."""
        from l1tagger.models.ops import PairTable

        return PairTable(bits, n_heads, n_features, self._out(name, "act"))


# -------------------------------------------------------------------------------------------- model helpers
def load_float_state_dict(qmodel: nn.Module, state_dict: dict) -> list[str]:
    """Load a float model's weights into its quantized twin.

    Every float key must exist in the twin with the same shape; the only keys left missing may be quantizer
    state (scales, statistics). Returns the list of quantizer keys left at their initial values.
    """
    own = qmodel.state_dict()
    extra = [k for k in state_dict if k not in own]
    if extra:
        raise ConfigError(f"float checkpoint has parameters the quantized twin lacks: {extra[:5]}")
    for k, v in state_dict.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise ConfigError(f"parameter {k!r}: float shape {tuple(v.shape)} vs quantized {tuple(own[k].shape)}")
    missing = [k for k in own if k not in state_dict]
    bad = [k for k in missing if not _is_quantizer_key(k)]
    if bad:
        raise ConfigError(f"quantized twin parameters missing from the float checkpoint: {bad[:5]}")
    qmodel.load_state_dict(state_dict, strict=False)
    return missing


def _is_quantizer_key(key: str) -> bool:
    """Brevitas quantizer state: every such key passes through a ``*_quant`` proxy (act/weight/bias/output)."""
    return any(p in key.split(".") for p in ("act_quant", "weight_quant", "bias_quant", "output_quant", "input_quant"))


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[tuple], forward=None) -> nn.Module:
    """Run batches in training mode without gradients so runtime-statistics scales initialise, then eval()."""
    model.train()
    for b in batches:
        (forward or model)(*b)
    return model.eval()
