"""Quantization recipes: ``quantize/*.yaml`` (shipped in ``l1tagger/presets/quantize/``) parsed strictly
(``l1tagger.utils.yamlio.load_yaml``: safe loader, duplicate keys refused) into validated dataclasses.

A recipe names a Brevitas quantizer and a bit width for every layer kind, the rounding mode of activations, the
firmware softmax types, and per-layer overrides by dotted layer name::

    name: int8
    rounding: half_even            # activations: half_even | floor (Brevitas has no half-up rounding)
    input:  {quantizer: Int8ActPerTensorFixedPoint, bits: 8, frac: 4}   # frac given -> constant grid 2^-frac
    weight: {quantizer: Int8WeightPerTensorFixedPoint, bits: 8}         # frac absent -> learned power-of-two scale
    bias:   {quantizer: Int8BiasPerTensorFixedPointInternalScaling, bits: 16}
    act:    {quantizer: Int8ActPerTensorFixedPoint, bits: 8}            # linear outputs and ops.quant()
    relu:   {quantizer: Uint8ActPerTensorFixedPoint, bits: 8}
    matmul: {quantizer: Int8ActPerTensorFixedPoint, bits: 8}
    add:    {quantizer: Int8ActPerTensorFixedPoint, bits: 8}
    mul:    {quantizer: Int8ActPerTensorFixedPoint, bits: 8}
    softmax: {in_bits: 8, in_frac: 4, out_bits: 8, max_keys: 64, rounding: floor}
    overrides:
      blocks.0.attn.qk: {output: {bits: 10}}
      head.out: {weight: {bits: 6}, bias: {bits: 12}}

A weight or bias spec with ``frac`` puts the constants on the constant grid 2^-frac (``bits`` wide; weights narrow
range) instead of a grid scaled from their values. An optional
top-level ``hgq:`` section (:class:`HGQConfig`, ``quantize/hgq*.yaml``, ``docs/hgq.md``) turns on heterogeneous,
resource-aware QAT: every weight gets a trained number of fractional bits inside a constant container grid, the
activation widths are trained per tensor, and the loss adds beta * EBOPs::

    hgq:
      target_ebops: 4.0e+5                        # resource target (effective bit operations per jet), or
                                                  # "budget": derived from the run's budget (docs/cost.md)
      weight: {bits: 10, frac: 7, init_frac: 6, granularity: weight}   # container fixed<10,3>; f starts at 6
      act: {trainable: true, min_bits: 3, max_bits: 8}                 # per-tensor widths of learned-scale acts
      schedule: {beta0: 1.0e-2, beta_max: 10.0, growth: 2.0, backoff: 1.0, warmup_epochs: 0}
      lr: {frac: 0.1, bits: 0.1}                   # AdamW learning rates of the fractional bits / act widths

With ``hgq`` the ``weight`` kind may be omitted (it becomes the container); if given it must equal the container.

Quantizer names resolve through :data:`QUANTIZERS` (an explicit registry, never ``eval``); the bit width of the
named class is replaced by ``bits``. Unknown keys, bad widths and unknown quantizers raise ConfigError naming the
field (e.g. ``weight.bits`` or ``overrides.head.out.weight.quantizer``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l1tagger.errors import ConfigError
from l1tagger.qat.softmax import ROUNDING_MODES, SoftmaxSpec
from l1tagger.resources import resolve_recipe
from l1tagger.utils.yamlio import load_yaml

#: activation rounding modes a recipe may use (Brevitas FloatToIntImplType / QONNX Quant rounding_mode)
ACT_ROUNDING = {"half_even": "ROUND", "floor": "FLOOR"}

#: layer kinds of the op factory contract that own a quantizer
KINDS = ("input", "weight", "bias", "act", "relu", "matmul", "add", "mul")

#: which quantizer families each kind accepts
KIND_FAMILY = {
    "input": ("act",),
    "weight": ("weight",),
    "bias": ("bias",),
    "act": ("act",),
    "relu": ("uact", "act"),
    "matmul": ("act",),
    "add": ("act",),
    "mul": ("act",),
}

#: bit width limits per family (weights/activations: fixed point in the firmware; bias: wider accumulator)
BITS_RANGE = {"weight": (2, 16), "act": (2, 16), "uact": (1, 16), "bias": (2, 32)}


#: the explicit quantizer registry: recipe name -> family. Every entry is a power-of-two (fixed-point) per-tensor
#: quantizer class of ``brevitas.quant.fixed_point`` with the same name; its bit width is replaced by the recipe's.
QUANTIZERS: dict[str, str] = {
    "Int8WeightPerTensorFixedPoint": "weight",
    "Int8WeightPerTensorFixedPointMSE": "weight",
    "Int8ActPerTensorFixedPoint": "act",
    "Int8ActPerTensorFixedPointMSE": "act",
    "Uint8ActPerTensorFixedPoint": "uact",
    "Uint8ActPerTensorFixedPointMSE": "uact",
    "Int8BiasPerTensorFixedPointInternalScaling": "bias",
}

#: names accepted in recipes
QUANTIZER_NAMES = tuple(QUANTIZERS)


def quantizer_class(name: str):
    """The Brevitas injector registered under ``name`` and its family ('weight', 'act', 'uact', 'bias')."""
    if name not in QUANTIZERS:
        raise ConfigError(f"unknown quantizer {name!r}; known: {sorted(QUANTIZERS)}")
    from brevitas.quant import fixed_point

    return getattr(fixed_point, name), QUANTIZERS[name]


def _family(name: str) -> str:
    return QUANTIZERS[name]


@dataclass(frozen=True)
class QuantSpec:
    """One quantizer: Brevitas class name, bit width, and optional constant fraction bits.

    quantizer: a name in QUANTIZER_NAMES
    bits:      total bit width (sign included for signed quantizers)
    frac:      None -> learned power-of-two scale (static after training); an int -> constant grid 2^-frac
    """

    quantizer: str
    bits: int
    frac: int | None = None

    @property
    def family(self) -> str:
        return _family(self.quantizer)

    @property
    def signed(self) -> bool:
        return self.family != "uact"


@dataclass(frozen=True)
class SoftmaxRecipe:
    """Firmware softmax section: the input grid, output width, longest row, rounding and optional table fields.

    tables: explicit SoftmaxSpec fields (exp_table_bits, exp_shift, exp_frac, inv_table_bits, inv_shift, inv_frac,
    inv_bits, out_frac) overriding SoftmaxSpec.default_for.
    fit_rows: size each softmax's inverse table and fraction bits to the most terms its own sum can hold (the keys of
    its row; k for top-k and Linformer), at most max_keys, instead of to max_keys for every softmax (narrower
    tables and products; docs/firmware_softmax.md).
    guard_bits: exp entries carry out_bits + guard_bits fraction bits (SoftmaxSpec.default_for's exp_guard_bits).
    """

    in_bits: int = 8
    in_frac: int = 4
    out_bits: int = 8
    max_keys: int = 64
    rounding: str = "floor"
    tables: dict = field(default_factory=dict)
    fit_rows: bool = False
    guard_bits: int = 2

    def terms(self, n_keys: int | None = None) -> int:
        """The most terms the spec's sum covers: max_keys, or the row's own (``n_keys``) with ``fit_rows``."""
        return min(self.max_keys, int(n_keys)) if self.fit_rows and n_keys else self.max_keys

    def spec(self, n_keys: int | None = None) -> SoftmaxSpec:
        """The SoftmaxSpec of a softmax whose sums hold at most ``n_keys`` terms (None: unknown, max_keys)."""
        base = SoftmaxSpec.default_for(self.in_bits, self.in_frac, self.terms(n_keys), self.out_bits, self.rounding,
                                       exp_guard_bits=self.guard_bits)
        return dataclasses.replace(base, **self.tables) if self.tables else base


@dataclass(frozen=True)
class Override:
    """Per-layer override: any of the layer's quantizers (output / weight / bias) and its softmax section.

    output is kept as the partial mapping from the YAML and merged with the layer kind's spec when the layer is
    built (:func:`resolve_output`), because the kind (act, relu, matmul, ...) is only known then.
    """

    output: dict | None = None
    weight: QuantSpec | None = None
    bias: QuantSpec | None = None
    softmax: SoftmaxRecipe | None = None


#: how finely the fractional bits of the weights are trained
HGQ_GRANULARITIES = ("weight", "channel")

#: the value of ``hgq.target_ebops`` that derives the target from the run's budget
BUDGET_TARGET = "budget"

#: the default weight quantizer class of an HGQ container grid
HGQ_WEIGHT_QUANTIZER = "Int8WeightPerTensorFixedPoint"

#: container widths allowed for HGQ weights: the float32 reference is exact only while accumulations stay below
#: 2^24 LSB (checked per layer by ``l1tagger.qat.hgq.check_accumulators``)
HGQ_WEIGHT_BITS = (2, 12)

#: when beta changes (HGQConfig.beta_adjust)
HGQ_BETA_ADJUST = ("epoch", "step")

#: trainable activation widths allowed (per tensor)
HGQ_ACT_BITS = (2, 12)


@dataclass(frozen=True)
class HGQConfig:
    """The ``hgq:`` section: heterogeneous weight fractional bits, trainable activation widths, the beta schedule.

    target_ebops:   resource target in effective bit operations per jet (``l1tagger.qat.hgq.ebops``); None (YAML
                    ``target_ebops: budget``) = derived from the budget of the run (``l1tagger.qat.hgq.
                    target_from_budget``) unless ``qat.target_ebops`` gives one (precedence: docs/cost.md)
    weight_bits:    container width of every weight (sign included, narrow range)
    weight_frac:    container fractional bits: the container grid is 2^-weight_frac (the finest a weight can get)
    init_frac:      initial trainable fractional bits f of every weight (weight_frac - weight_bits <= f <= weight_frac)
    granularity:    'weight' (one f per weight) or 'channel' (one f per output channel)
    act_trainable:  train the per-tensor widths of the activation quantizers with a learned scale
    act_min_bits, act_max_bits: range of those widths
    beta0, beta_max, beta_growth, beta_backoff, warmup_epochs: the schedule of the EBOPs weight beta
                    (``l1tagger.qat.hgq.BetaSchedule``); growth and backoff are factors per epoch
    beta_adjust:    'epoch' (beta changes after each epoch, from its exact EBOPs) or 'step' (after every step, from
                    the step's EBOPs, by growth^(1/steps) or backoff^(1/steps): the EBOPs settle at the target
                    within an epoch instead of overshooting it at the next epoch boundary)
    beta_margin:    the schedule steers the EBOPs to target * (1 - margin) (the kept epoch still only needs <= target):
                    room for the settle epochs, whose integer weights may change bit spans
    settle_epochs:  the last epochs of the fine-tune train the weights at frozen widths: every f and activation
                    width is fixed, a pruned weight stays pruned, beta = 0, a fresh optimizer (the accuracy
                    recovers at the cost the compression reached); at most QAT epochs - 1
    lr_frac, lr_bits: AdamW learning rates of the fractional bits f and of the activation widths
    """

    target_ebops: float | None
    weight_bits: int = 10
    weight_frac: int = 7
    init_frac: float = 6.0
    granularity: str = "weight"
    act_trainable: bool = True
    act_min_bits: int = 3
    act_max_bits: int = 8
    beta0: float = 1e-2
    beta_max: float = 10.0
    beta_growth: float = 2.0
    beta_backoff: float = 1.0
    warmup_epochs: int = 0
    beta_adjust: str = "epoch"
    beta_margin: float = 0.0
    settle_epochs: int = 0
    lr_frac: float = 0.1
    lr_bits: float = 0.1

    @property
    def weight_spec(self) -> QuantSpec:
        """The container grid as a weight QuantSpec (constant scale 2^-weight_frac, weight_bits wide)."""
        return QuantSpec(HGQ_WEIGHT_QUANTIZER, self.weight_bits, self.weight_frac)

    @property
    def act_widths(self) -> tuple[int, int] | None:
        """(min, max) of trainable activation widths, or None when activation widths are fixed."""
        return (self.act_min_bits, self.act_max_bits) if self.act_trainable else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_ebops": BUDGET_TARGET if self.target_ebops is None else self.target_ebops,
            "weight": {"bits": self.weight_bits, "frac": self.weight_frac, "init_frac": self.init_frac,
                       "granularity": self.granularity},
            "act": {"trainable": self.act_trainable, "min_bits": self.act_min_bits, "max_bits": self.act_max_bits},
            "schedule": {"beta0": self.beta0, "beta_max": self.beta_max, "growth": self.beta_growth,
                         "backoff": self.beta_backoff, "warmup_epochs": self.warmup_epochs,
                         "adjust": self.beta_adjust, "margin": self.beta_margin,
                         "settle_epochs": self.settle_epochs},
            "lr": {"frac": self.lr_frac, "bits": self.lr_bits},
        }


@dataclass(frozen=True)
class Recipe:
    """A parsed, validated quantization recipe (see the module docstring for the YAML form)."""

    name: str
    rounding: str
    kinds: dict[str, QuantSpec]
    softmax: SoftmaxRecipe
    overrides: dict[str, Override] = field(default_factory=dict)
    description: str = ""
    source: str | None = None
    hgq: HGQConfig | None = None

    @property
    def act_rounding_mode(self) -> str:
        """QONNX/Brevitas rounding name of activation quantizers ('ROUND' or 'FLOOR')."""
        return ACT_ROUNDING[self.rounding]

    def to_dict(self) -> dict[str, Any]:
        def q(s: QuantSpec | None):
            if s is None:
                return None
            d = {"quantizer": s.quantizer, "bits": s.bits}
            if s.frac is not None:
                d["frac"] = s.frac
            return d

        def sm(s: SoftmaxRecipe):
            d = {k: getattr(s, k) for k in ("in_bits", "in_frac", "out_bits", "max_keys", "rounding")}
            d.update({k: getattr(s, k) for k in ("fit_rows", "guard_bits")
                      if getattr(s, k) != getattr(SoftmaxRecipe, k)})
            if s.tables:
                d["tables"] = dict(s.tables)
            return d

        out: dict[str, Any] = {"name": self.name, "description": self.description, "rounding": self.rounding}
        out.update({k: q(v) for k, v in self.kinds.items()})
        out["softmax"] = sm(self.softmax)
        out["overrides"] = {
            n: {k: (sm(v) if k == "softmax" else v if k == "output" else q(v)) for k in ("output", "weight", "bias", "softmax")
                if (v := getattr(o, k)) is not None}
            for n, o in self.overrides.items()
        }
        if self.hgq is not None:
            out["hgq"] = self.hgq.to_dict()
        return out


# ------------------------------------------------------------------------------------------------- parsing
def _int(value, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"recipe field {where!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"recipe field {where!r} = {value} is impossible: allowed range [{lo}, {hi}]")
    return value


def _number(value, where: str, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"recipe field {where!r} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"recipe field {where!r} = {value} is impossible: allowed range [{lo}, {hi}]")
    return float(value)


def _mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"recipe field {where!r} must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(d: dict, allowed, where: str):
    unknown = [k for k in d if k not in allowed]
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown recipe field {prefix}{unknown[0]!s} (allowed here: {sorted(allowed)})")


def _parse_quant(d, where: str, kind: str, base: QuantSpec | None = None) -> QuantSpec:
    d = _mapping(d, where)
    _check_keys(d, ("quantizer", "bits", "frac"), where)
    name = d.get("quantizer", base.quantizer if base else None)
    if name is None:
        raise ConfigError(f"recipe field '{where}.quantizer' is missing")
    if name not in QUANTIZER_NAMES:
        raise ConfigError(f"recipe field '{where}.quantizer': unknown quantizer {name!r}; known: {list(QUANTIZER_NAMES)}")
    fam = _family(name)
    if fam not in KIND_FAMILY[kind]:
        raise ConfigError(
            f"recipe field '{where}.quantizer': {name} is a {fam} quantizer, but {kind} needs one of {KIND_FAMILY[kind]}"
        )
    if "bits" not in d and base is None:
        raise ConfigError(f"recipe field '{where}.bits' is missing")
    lo, hi = BITS_RANGE[fam]
    bits = _int(d.get("bits", base.bits if base else None), f"{where}.bits", lo, hi)
    frac = d.get("frac", base.frac if base else None)
    if frac is not None:
        frac = _int(frac, f"{where}.frac", -16, 32)
    return QuantSpec(quantizer=name, bits=bits, frac=frac)


_SOFTMAX_KEYS = ("in_bits", "in_frac", "out_bits", "max_keys", "rounding", "tables", "fit_rows", "guard_bits")
_TABLE_KEYS = ("exp_table_bits", "exp_shift", "exp_frac", "inv_table_bits", "inv_shift", "inv_frac", "inv_bits", "out_frac")


def _parse_softmax(d, where: str, base: SoftmaxRecipe | None = None) -> SoftmaxRecipe:
    d = _mapping(d, where)
    _check_keys(d, _SOFTMAX_KEYS, where)
    b = base or SoftmaxRecipe()
    kw = {
        "in_bits": _int(d.get("in_bits", b.in_bits), f"{where}.in_bits", 2, 24),
        "in_frac": _int(d.get("in_frac", b.in_frac), f"{where}.in_frac", -16, 32),
        "out_bits": _int(d.get("out_bits", b.out_bits), f"{where}.out_bits", 1, 24),
        "max_keys": _int(d.get("max_keys", b.max_keys), f"{where}.max_keys", 1, 4096),
        "rounding": d.get("rounding", b.rounding),
        "guard_bits": _int(d.get("guard_bits", b.guard_bits), f"{where}.guard_bits", 0, 8),
        "fit_rows": d.get("fit_rows", b.fit_rows),
    }
    if not isinstance(kw["fit_rows"], bool):
        raise ConfigError(f"recipe field '{where}.fit_rows' = {kw['fit_rows']!r}: must be true or false")
    if kw["rounding"] not in ROUNDING_MODES:
        raise ConfigError(f"recipe field '{where}.rounding' = {kw['rounding']!r}; choose one of {ROUNDING_MODES}")
    tables = _mapping(d.get("tables", dict(b.tables)), f"{where}.tables")
    _check_keys(tables, _TABLE_KEYS, f"{where}.tables")
    rec = SoftmaxRecipe(tables=dict(tables), **kw)
    try:
        rec.spec()
    except ConfigError as exc:
        raise ConfigError(f"recipe field '{where}': {exc}") from exc
    return rec


def _check_output(d, where: str) -> dict:
    d = _mapping(d, where)
    _check_keys(d, ("quantizer", "bits", "frac"), where)
    if "quantizer" in d and d["quantizer"] not in QUANTIZER_NAMES:
        raise ConfigError(f"recipe field '{where}.quantizer': unknown quantizer {d['quantizer']!r}")
    if "bits" in d:
        _int(d["bits"], f"{where}.bits", 1, 16)
    if "frac" in d:
        _int(d["frac"], f"{where}.frac", -16, 32)
    return dict(d)


_HGQ_SECTIONS = {
    "weight": ("bits", "frac", "init_frac", "granularity"),
    "act": ("trainable", "min_bits", "max_bits"),
    "schedule": ("beta0", "beta_max", "growth", "backoff", "warmup_epochs", "adjust", "margin", "settle_epochs"),
    "lr": ("frac", "bits"),
}


def parse_hgq(d, where: str = "hgq") -> HGQConfig:
    """Validate the ``hgq:`` section (every error names the field, e.g. ``hgq.weight.init_frac``)."""
    d = _mapping(d, where)
    _check_keys(d, ("target_ebops",) + tuple(_HGQ_SECTIONS), where)
    if "target_ebops" not in d:
        raise ConfigError(f"recipe field '{where}.target_ebops' is missing")
    sec = {}
    for name, keys in _HGQ_SECTIONS.items():
        sec[name] = _mapping(d.get(name, {}), f"{where}.{name}")
        _check_keys(sec[name], keys, f"{where}.{name}")
    b = HGQConfig(target_ebops=1.0)  # defaults
    w, a, s, lr = sec["weight"], sec["act"], sec["schedule"], sec["lr"]
    bits = _int(w.get("bits", b.weight_bits), f"{where}.weight.bits", *HGQ_WEIGHT_BITS)
    frac = _int(w.get("frac", b.weight_frac), f"{where}.weight.frac", -16, 32)
    init = _number(w.get("init_frac", b.init_frac), f"{where}.weight.init_frac", frac - bits, frac)
    gran = w.get("granularity", b.granularity)
    if gran not in HGQ_GRANULARITIES:
        raise ConfigError(f"recipe field '{where}.weight.granularity' = {gran!r}; choose one of {HGQ_GRANULARITIES}")
    trainable = a.get("trainable", b.act_trainable)
    if not isinstance(trainable, bool):
        raise ConfigError(f"recipe field '{where}.act.trainable' must be true or false, got {trainable!r}")
    amin = _int(a.get("min_bits", b.act_min_bits), f"{where}.act.min_bits", *HGQ_ACT_BITS)
    amax = _int(a.get("max_bits", b.act_max_bits), f"{where}.act.max_bits", amin, HGQ_ACT_BITS[1])
    beta0 = _number(s.get("beta0", b.beta0), f"{where}.schedule.beta0", 0.0)
    adjust = s.get("adjust", b.beta_adjust)
    if adjust not in HGQ_BETA_ADJUST:
        raise ConfigError(f"recipe field '{where}.schedule.adjust' = {adjust!r}; choose one of {HGQ_BETA_ADJUST}")
    return HGQConfig(
        target_ebops=_target(d["target_ebops"], f"{where}.target_ebops"),
        weight_bits=bits, weight_frac=frac, init_frac=init, granularity=gran,
        act_trainable=trainable, act_min_bits=amin, act_max_bits=amax,
        beta0=beta0,
        beta_max=_number(s.get("beta_max", max(b.beta_max, beta0)), f"{where}.schedule.beta_max", beta0),
        beta_growth=_number(s.get("growth", b.beta_growth), f"{where}.schedule.growth", 1.0),
        beta_backoff=_number(s.get("backoff", b.beta_backoff), f"{where}.schedule.backoff", 1.0),
        warmup_epochs=_int(s.get("warmup_epochs", b.warmup_epochs), f"{where}.schedule.warmup_epochs", 0, 10**6),
        beta_adjust=adjust,
        beta_margin=_number(s.get("margin", b.beta_margin), f"{where}.schedule.margin", 0.0, 0.5),
        settle_epochs=_int(s.get("settle_epochs", b.settle_epochs), f"{where}.schedule.settle_epochs", 0, 10**6),
        lr_frac=_number(lr.get("frac", b.lr_frac), f"{where}.lr.frac", 1e-12),
        lr_bits=_number(lr.get("bits", b.lr_bits), f"{where}.lr.bits", 1e-12),
    )


def _target(value, where: str) -> float | None:
    """``hgq.target_ebops``: a number of EBOPs, or "budget" (None: derived from the run's budget)."""
    if isinstance(value, str):
        if value != BUDGET_TARGET:
            raise ConfigError(f"recipe field {where!r} = {value!r}; give a number of EBOPs or {BUDGET_TARGET!r}")
        return None
    return _number(value, where, 1.0)


def check_hgq_widths(spec: QuantSpec, hgq: HGQConfig | None, where: str) -> None:
    """ConfigError when an activation spec with a trainable width starts outside ``hgq.act`` [min_bits, max_bits]."""
    widths = hgq.act_widths if hgq is not None else None
    if widths is None or spec.frac is not None or spec.family not in ("act", "uact"):
        return
    if not widths[0] <= spec.bits <= widths[1]:
        raise ConfigError(f"recipe field '{where}.bits' = {spec.bits} is outside the trainable range "
                          f"hgq.act [min_bits, max_bits] = [{widths[0]}, {widths[1]}]")


def resolve_output(recipe: "Recipe", layer: str, kind: str) -> QuantSpec:
    """The output quantizer of ``layer`` (of ``kind``): the kind's spec with the layer's override applied."""
    base = recipe.kinds[kind]
    o = recipe.overrides.get(layer)
    if o is None or o.output is None:
        return base
    return _parse_quant(o.output, f"overrides.{layer}.output", kind, base)


def parse_recipe(data: dict, source: str | None = None) -> Recipe:
    """Validate a recipe mapping (as loaded by yaml.safe_load)."""
    data = _mapping(data, "<recipe>")
    _check_keys(data, ("name", "description", "rounding", "softmax", "overrides", "hgq") + KINDS, "")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("recipe field 'name' must be a non-empty string")
    rounding = data.get("rounding", "half_even")
    if rounding not in ACT_ROUNDING:
        hint = " (Brevitas has no half-up rounding for activations; half_up is allowed in softmax.rounding)" \
            if rounding == "half_up" else ""
        raise ConfigError(f"recipe field 'rounding' = {rounding!r}; choose one of {sorted(ACT_ROUNDING)}{hint}")
    hgq = parse_hgq(data["hgq"]) if "hgq" in data else None
    kinds = {}
    for kind in KINDS:
        if kind == "weight" and hgq is not None and kind not in data:
            kinds[kind] = hgq.weight_spec  # the HGQ container grid
            continue
        if kind not in data:
            raise ConfigError(f"recipe field {kind!r} is missing")
        kinds[kind] = _parse_quant(data[kind], kind, kind)
        check_hgq_widths(kinds[kind], hgq, kind)
    if hgq is not None:
        w, c = kinds["weight"], hgq.weight_spec
        for f in ("bits", "frac"):
            if getattr(w, f) != getattr(c, f):
                raise ConfigError(f"recipe field 'weight.{f}' = {getattr(w, f)} differs from the HGQ container "
                                  f"hgq.weight.{f} = {getattr(c, f)} (omit 'weight' to use the container)")
    if kinds["input"].frac is None:
        raise ConfigError("recipe field 'input.frac' is required: inputs are quantized in preprocessing to a fixed grid")
    softmax = _parse_softmax(data.get("softmax", {}), "softmax")
    overrides = {}
    for lname, od in _mapping(data.get("overrides") or {}, "overrides").items():
        where = f"overrides.{lname}"
        od = _mapping(od, where)
        _check_keys(od, ("output", "weight", "bias", "softmax"), where)
        overrides[str(lname)] = Override(
            output=_check_output(od["output"], f"{where}.output") if "output" in od else None,
            weight=_parse_quant(od["weight"], f"{where}.weight", "weight", kinds["weight"]) if "weight" in od else None,
            bias=_parse_quant(od["bias"], f"{where}.bias", "bias", kinds["bias"]) if "bias" in od else None,
            softmax=_parse_softmax(od["softmax"], f"{where}.softmax", softmax) if "softmax" in od else None,
        )
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ConfigError("recipe field 'description' must be a string")
    return Recipe(name=name, rounding=rounding, kinds=kinds, softmax=softmax, overrides=overrides,
                  description=desc, source=source, hgq=hgq)


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate a recipe: an existing file, or a preset of the package (``int8``, ``quantize/int8.yaml``;
    see :func:`l1tagger.resources.resolve_recipe`). ``Recipe.source`` is the file read."""
    path = resolve_recipe(path)
    data = load_yaml(path)
    try:
        return parse_recipe(data, source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
