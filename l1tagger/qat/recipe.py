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

Quantizer names resolve through :data:`QUANTIZERS` (an explicit registry, never ``eval``); the bit width of the
named class is replaced by ``bits``. Unknown keys, bad widths and unknown quantizers raise ConfigError naming the
field (e.g. ``weight.bits`` or ``overrides.head.out.weight.quantizer``).
"""

from __future__ import annotations

import dataclasses
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
    """

    in_bits: int = 8
    in_frac: int = 4
    out_bits: int = 8
    max_keys: int = 64
    rounding: str = "floor"
    tables: dict = field(default_factory=dict)

    def spec(self) -> SoftmaxSpec:
        base = SoftmaxSpec.default_for(self.in_bits, self.in_frac, self.max_keys, self.out_bits, self.rounding)
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
        return out


# ------------------------------------------------------------------------------------------------- parsing
def _int(value, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"recipe field {where!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"recipe field {where!r} = {value} is impossible: allowed range [{lo}, {hi}]")
    return value


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


_SOFTMAX_KEYS = ("in_bits", "in_frac", "out_bits", "max_keys", "rounding", "tables")
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
    }
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
    _check_keys(data, ("name", "description", "rounding", "softmax", "overrides") + KINDS, "")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("recipe field 'name' must be a non-empty string")
    rounding = data.get("rounding", "half_even")
    if rounding not in ACT_ROUNDING:
        hint = " (Brevitas has no half-up rounding for activations; half_up is allowed in softmax.rounding)" \
            if rounding == "half_up" else ""
        raise ConfigError(f"recipe field 'rounding' = {rounding!r}; choose one of {sorted(ACT_ROUNDING)}{hint}")
    kinds = {}
    for kind in KINDS:
        if kind not in data:
            raise ConfigError(f"recipe field {kind!r} is missing")
        kinds[kind] = _parse_quant(data[kind], kind, kind)
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
                  description=desc, source=source)


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate a recipe: an existing file, or a preset of the package (``int8``, ``quantize/int8.yaml``;
    see :func:`l1tagger.resources.resolve_recipe`). ``Recipe.source`` is the file read."""
    path = resolve_recipe(path)
    data = load_yaml(path)
    try:
        return parse_recipe(data, source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
