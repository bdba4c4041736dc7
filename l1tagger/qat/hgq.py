"""Heterogeneous, resource-aware QAT (HGQ, arXiv:2405.00645) for the Brevitas twins, exported exactly.

Design (``docs/hgq.md``): Brevitas 0.13 learns at most one bit width per tensor and a QONNX ``Quant`` node takes a
scalar bit width, so per-weight widths cannot live in the quantizer. They live in the *values* instead:

* every QuantLinear's weight quantizer is a **constant container grid** (scale 2^-frac, ``bits`` wide, narrow range:
  the recipe's ``hgq.weight``); the trainable part is a torch parametrization of the weight,
  :class:`HGQWeightQuant`, registered *after* the float weights are loaded (:func:`attach_hgq`)::

      fi = round_ste(clamp_ste(f, frac - bits, frac))           f: one trainable value per weight (or per channel)
      q  = clamp(round_ste(w * 2^fi) * 2^-fi, -M, M)             M = (2^(bits-1) - 1) * 2^-frac

  q lies on the container grid (fi <= frac), so Brevitas' container quantizer is an exact no-op on it. A weight
  whose q rounds to 0 is pruned. Straight-through rounding gives dq/df = ln2 * (w - q) (the HGQ surrogate);
* :func:`bake_hgq` (called by ``qat_finetune`` at the end and by ``export_qonnx_model``) replaces every weight by
  its quantized value and removes the parametrization: the exported initializer + ``Quant(scale 2^-frac, bits)`` is
  exact, and each constant's own width is read from its value (:func:`constant_bits`);
* activations: per-tensor trainable widths (Brevitas ``BitWidthImplType.PARAMETER``, built by ``QuantOps`` from
  the recipe's ``hgq.act``), exported as the scalar bit width of their Quant node.

EBOPs (effective bit operations per jet, :func:`ebops` differentiable, :func:`ebops_exact` integer), over the
operations of one forward pass of one jet (:func:`cost_graph` traces which quantizer feeds which operation):

* linear ``y = x W^T``: n_apply * bits(x) * sum_ij bits(W_ij), n_apply = rows the weight is applied to per jet;
* matmul of two activations ``a @ b``: (number of products) * bits(a) * bits(b)  (attention QK^T, AV);
* mul of two activations (masks): (output elements) * bits(a) * bits(b); the 0/1 ``mask`` input (or the valid
  bit computed on chip from L1 words) counts 1 bit;
* add of two activations (interaction bias, residuals): (output elements) * max(bits(a), bits(b)) (an adder);
* lookup in the interaction tables (``l1tagger.models.ops.PairTable``, U from tables of the pair features):
  (pair rows) * F * H * ceil(2^index_bits / 64) * bits(T): the LUT-ROM bits read per jet (one 64-entry LUT6 per
  output bit of each read), so the width of the table entries is trained against the cost like any activation's;
* bits(W_ij) = 0 for a pruned (zero) constant, else the span of its set bits: |W| = m * 2^e with m odd ->
  bit_length(m) (:func:`l1tagger.contract.quant.constant_bits`; a sign is not counted, as HGQ2's WRAP weights);
  bits(x) = the Quant bit width of the tensor.
  Biases and softmax tables are not counted (constant under training).

The surrogate has the exact value; its gradient is 1 per non-pruned weight w.r.t. its f (through the STE) and
flows into the activation widths through Brevitas' straight-through bit width.

Schedule (:class:`BetaSchedule`): loss = CE + beta * EBOPs / target; beta = 0 during ``warmup_epochs``, then starts
at ``beta0`` and after every epoch whose exact EBOPs exceed the target grows by ``growth`` (up to ``beta_max``);
below the target it is divided by ``backoff`` (1 = hold), never below ``beta0`` (``adjust: step``: the same factors
spread over the steps of an epoch). The last ``settle_epochs`` train the weights at frozen widths
(:func:`freeze_hgq`). :class:`BestEpoch` keeps the epoch
with the best validation accuracy among those with exact EBOPs <= target (ties: fewer EBOPs), else the cheapest one
with a warning.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from l1tagger.contract.quant import constant_bits
from l1tagger.errors import ConfigError, ExportError
from l1tagger.qat.recipe import HGQConfig

#: float32 execution of the QONNX reference is exact while every accumulation stays below 2^ACC_EXACT_BITS LSB
ACC_EXACT_BITS = 24

#: the producer name standing for the graph's 0/1 ``mask`` input (1 bit)
MASK = "<mask>"


# ------------------------------------------------------------------------------------------ straight-through ops
def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round half to even forward, identity gradient."""
    return x + (torch.round(x) - x).detach()


def clamp_ste(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """clamp forward, identity gradient (a clamped f can still be pulled back by the loss)."""
    return x + (x.clamp(lo, hi) - x).detach()


# ------------------------------------------------------------------------------------------ constant widths
def grid_integers(values: torch.Tensor, frac: int) -> np.ndarray:
    """``values * 2^frac`` as exact integers (ExportError when a value is off the grid 2^-frac)."""
    v = values.detach().double().cpu().numpy() * 2.0 ** frac
    if np.any(v != np.round(v)):
        raise ExportError(f"values are not on the grid 2^-{frac}")
    return v


# ------------------------------------------------------------------------------------------ weight quantizer
class HGQWeightQuant(nn.Module):
    """Per-weight (or per-output-channel) trainable fractional bits inside a constant container grid.

    A parametrization of a QuantLinear's ``weight``: ``forward(w) -> q`` (see the module docstring).
    ``f`` has the weight's shape (granularity 'weight') or (out, 1) ('channel').
    """

    def __init__(self, shape: tuple[int, ...], bits: int, frac: int, init_frac: float, granularity: str = "weight"):
        super().__init__()
        if granularity not in ("weight", "channel"):
            raise ConfigError(f"HGQ granularity {granularity!r}: choose 'weight' or 'channel'")
        fshape = tuple(shape) if granularity == "weight" else (shape[0],) + (1,) * (len(shape) - 1)
        self.bits, self.frac = int(bits), int(frac)
        self.f_min = float(self.frac - self.bits)  # at or below: every weight inside the container rounds to 0
        self.f = nn.Parameter(torch.full(fshape, float(init_frac)))
        # settle phase (freeze_hgq): 1 where the weight is kept, 0 where it stays pruned; None while training bits
        self.register_buffer("keep", None, persistent=False)

    @property
    def limit(self) -> float:
        """Largest magnitude of the narrow-range container: (2^(bits-1) - 1) * 2^-frac."""
        return (2 ** (self.bits - 1) - 1) * 2.0 ** -self.frac

    def fi(self) -> torch.Tensor:
        """The integer fractional bits in use (straight-through in f)."""
        return round_ste(clamp_ste(self.f, self.f_min, float(self.frac)))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        fi = self.fi()
        s = torch.exp2(fi)
        q = round_ste(w * s) / s
        q = q.clamp(-self.limit, self.limit)
        return q if self.keep is None else q * self.keep

    def extra_repr(self) -> str:
        return f"container=fixed<{self.bits},{self.bits - self.frac}>, f={tuple(self.f.shape)}"


def hgq_quantizer(layer: nn.Module) -> HGQWeightQuant | None:
    """The HGQWeightQuant parametrizing ``layer.weight``, or None."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    return next((p for p in layer.parametrizations.weight if isinstance(p, HGQWeightQuant)), None)


def container_grid(layer: nn.Module) -> tuple[int, int]:
    """(bits, frac) of a QuantLinear's constant power-of-two weight grid (ConfigError if its scale is not constant:
    a scale computed from the weights would move under the HGQ values)."""
    from brevitas.inject.enum import ScalingImplType

    qw = layer.weight_quant
    kind = getattr(qw.quant_injector, "scaling_impl_type", None)
    scale = float(qw.scale())
    m, e = math.frexp(scale)
    if kind != ScalingImplType.CONST or m != 0.5 or not qw.is_narrow_range:
        raise ConfigError(f"HGQ needs a constant narrow-range power-of-two weight grid, found a {kind} scale {scale}")
    return int(qw.bit_width()), -(e - 1)


def quant_linears(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Brevitas QuantLinear of ``model``."""
    from brevitas.nn import QuantLinear

    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantLinear)]


def attach_hgq(model: nn.Module, cfg: HGQConfig) -> int:
    """Register :class:`HGQWeightQuant` on every QuantLinear's weight (after the float weights were loaded: the
    float state-dict names load before this). Every weight quantizer must be a constant container grid (the recipe's
    ``hgq.weight``, or a per-layer override with ``frac``). Frozen weights get frozen f. Traces the cost graph.
    Returns the number of layers parametrized."""
    n = 0
    for name, layer in quant_linears(model):
        if hgq_quantizer(layer) is not None:
            continue
        try:
            bits, frac = container_grid(layer)
        except ConfigError as exc:
            raise ConfigError(f"layer {name!r}: {exc} (give its weight spec a 'frac' or drop the override)") from None
        init = min(max(cfg.init_frac, frac - bits), frac)
        hq = HGQWeightQuant(tuple(layer.weight.shape), bits, frac, init, cfg.granularity)
        hq.f.requires_grad_(layer.weight.requires_grad)
        parametrize.register_parametrization(layer, "weight", hq, unsafe=True)
        n += 1
    cost_graph(model)
    return n


def bake_hgq(model: nn.Module) -> int:
    """Replace every HGQ weight by its quantized value and remove the parametrization (forward values unchanged).

    Checks that the container quantizer is an exact no-op on every baked weight (ExportError naming the layer).
    Returns the number of layers baked."""
    n = 0
    for name, layer in quant_linears(model):
        if hgq_quantizer(layer) is None:
            continue
        with torch.no_grad():
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            w = layer.weight.detach()
            qw = layer.quant_weight().value.detach()
        if not torch.equal(w, qw):
            bad = int((w != qw).sum())
            raise ExportError(f"layer {name!r}: the container weight quantizer changes {bad} baked HGQ weights")
        n += 1
    return n


def is_act_width(param_name: str) -> bool:
    """Whether a named parameter is a trainable activation width (Brevitas' PARAMETER bit width offset)."""
    return param_name.endswith("bit_width_offset")


def freeze_hgq(model: nn.Module) -> dict:
    """Fix the widths for the settle phase: every f and every trainable activation width stops training, and each
    weight whose quantized value is 0 now stays 0 (the ``keep`` mask: its gradient is 0). Returns {"layers",
    "pruned"}. :func:`thaw_hgq` undoes the mask (a pruned weight's raw value is untouched by then, so it still
    rounds to 0)."""
    layers = pruned = 0
    with torch.no_grad():
        for _, layer in quant_linears(model):
            hq = hgq_quantizer(layer)
            if hq is None:
                continue
            q = layer.weight  # the parametrized (quantized) value
            hq.keep = (q != 0).to(q.dtype)
            hq.f.requires_grad_(False)
            layers += 1
            pruned += int((q == 0).sum())
    for name, p in model.named_parameters():
        if is_act_width(name):
            p.requires_grad_(False)
    return {"layers": layers, "pruned": pruned}


def thaw_hgq(model: nn.Module) -> None:
    """Drop the settle-phase masks (before loading the state of a kept epoch, which may predate them)."""
    for _, layer in quant_linears(model):
        hq = hgq_quantizer(layer)
        if hq is not None:
            hq.keep = None


def is_hgq(model: nn.Module) -> bool:
    """Whether any QuantLinear of ``model`` still carries an HGQ parametrization (not baked)."""
    return any(hgq_quantizer(m) is not None for _, m in quant_linears(model))


def hgq_param_groups(model: nn.Module, lr: float, weight_decay: float, cfg: HGQConfig) -> list[dict]:
    """AdamW parameter groups: network parameters (lr, weight_decay), fractional bits f (cfg.lr_frac) and
    activation widths (cfg.lr_bits), the last two without weight decay."""
    frac, bits, rest = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith(".f") and ".parametrizations.weight." in name:
            frac.append(p)
        elif is_act_width(name):
            bits.append(p)
        else:
            rest.append(p)
    groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "network"}]
    if frac:
        groups.append({"params": frac, "lr": cfg.lr_frac, "weight_decay": 0.0, "name": "hgq_frac"})
    if bits:
        groups.append({"params": bits, "lr": cfg.lr_bits, "weight_decay": 0.0, "name": "act_bits"})
    return groups


# ------------------------------------------------------------------------------------------ cost graph
@dataclass(frozen=True)
class CostTerm:
    """One operation of one jet's forward pass.

    kind:     'linear' | 'matmul' | 'mul' | 'add' | 'lookup'
    module:   dotted name of the consuming module (QuantLinear, QuantBinary or PairTable)
    operands: per operand, the producer quantizer modules whose outputs reach it (MASK: the 0/1 mask input)
    count:    linear: rows the weight is applied to; matmul: scalar products; mul/add: output elements;
              lookup: pair rows x F x H x ceil(2^index_bits / 64) (LUT6 per output bit of the table entries)
    in_features: linear only
    """

    kind: str
    module: str
    operands: tuple[tuple[str, ...], ...]
    count: int
    in_features: int = 0


@dataclass
class CostGraph:
    """The costed operations of one jet's forward pass, in call order."""

    terms: list[CostTerm] = field(default_factory=list)


def _example(model: nn.Module) -> tuple:
    """One jet of the model's forward arguments, every particle present: (x, mask, pair) of zeros, or for an
    "l1words" model (words,) of zero words (their valid bit 0: the structure is the same)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise ConfigError("EBOPs need an L1 tagger (a model with .cfg) to trace one jet")
    if getattr(cfg, "inputs", "features") == "l1words":
        return (torch.zeros(1, cfg.n_particles, cfg.l1_spec.format.n_fields),)
    x = torch.zeros(1, cfg.n_particles, cfg.n_features)
    mask = torch.ones(1, cfg.n_particles)
    pair = torch.zeros(1, cfg.n_particles, cfg.n_particles, 4) if cfg.pair_bias else None
    return x, mask, pair


def trace_costs(model: nn.Module, example: tuple | None = None) -> CostGraph:
    """Run one jet (batch 1) and record every costed operation with the quantizers feeding its operands.

    Provenance is followed through layout ops (transpose, reshape, cat, slicing) by a TorchFunctionMode that passes
    each tensor's producer set on to every tensor computed from it; a quantizer module's output starts a new set.
    """
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    from l1tagger.models.ops import PairTable
    from l1tagger.qat.ops import QuantBinary

    tags: dict[int, frozenset] = {}
    keep: list[torch.Tensor] = []  # keeps tagged tensors alive: ids stay unique during the probe
    terms: list[CostTerm] = []

    def tag(t, names):
        if isinstance(t, torch.Tensor):
            tags[id(t)] = frozenset(names)
            keep.append(t)

    def of(t, module: str) -> tuple[str, ...]:
        names = tags.get(id(t))
        if not names:
            raise ConfigError(f"EBOPs: an input of {module!r} comes from no quantizer (an unquantized tensor)")
        if any(n.startswith("<input") for n in names):
            raise ConfigError(f"EBOPs: an input of {module!r} is an unquantized graph input")
        return tuple(sorted(names))

    class Provenance(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            src = set()
            for a in tree_flatten((args, kwargs or {}))[0]:
                if isinstance(a, torch.Tensor):
                    src |= tags.get(id(a), frozenset())
            if src:
                for o in tree_flatten(out)[0]:
                    tag(o, src)
            return out

    def produced(name):
        def hook(_m, _inp, out):
            tag(out, {name})
        return hook

    def consumed(name, module):
        def hook(_m, inp):
            if isinstance(module, QuantLinear):
                x = inp[0]
                terms.append(CostTerm("linear", name, (of(x, name),), x.numel() // module.in_features,
                                      module.in_features))
                return
            a, b = inp
            kind = {torch.matmul: "matmul", torch.mul: "mul", torch.add: "add"}.get(module.fn)
            if kind is None:
                raise ConfigError(f"EBOPs: no cost model for {name!r} ({module.fn})")
            if kind == "matmul":
                batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
                count = math.prod(batch) * a.shape[-2] * a.shape[-1] * b.shape[-1]
            else:
                count = math.prod(torch.broadcast_shapes(a.shape, b.shape))
            terms.append(CostTerm(kind, name, (of(a, name), of(b, name)), int(count)))
        return hook

    def mask_out(_m, _inp, out):
        tag(out, {MASK})

    def looked_up(name, module):
        def hook(_m, inp):
            rows = inp[0].numel() // module.n_features
            luts = rows * module.n_features * module.n_heads * max(1, -(-(1 << module.bits) // 64))
            terms.append(CostTerm("lookup", name, ((f"{name}.table_quant",),), int(luts)))
        return hook

    args = example if example is not None else _example(model)
    args = tuple(a for a in args if a is not None)
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (QuantLinear, QuantBinary)):
            handles.append(m.register_forward_pre_hook(consumed(name, m)))
        if isinstance(m, (QuantIdentity, QuantReLU, QuantLinear)):
            handles.append(m.register_forward_hook(produced(name)))
        if getattr(m, "kind", None) == "mask" and hasattr(m, "spec"):  # the valid bit computed on chip from words
            handles.append(m.register_forward_hook(mask_out))
        if isinstance(m, PairTable) and isinstance(m.table_quant, QuantIdentity):
            handles.append(m.register_forward_pre_hook(looked_up(name, m)))
    for i, a in enumerate(args):
        tag(a, {MASK} if i == 1 else {f"<input{i}>"})
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), Provenance():
            model(*args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return CostGraph(terms)


def cost_graph(model: nn.Module, example: tuple | None = None) -> CostGraph:
    """The model's cost graph (traced once on one jet, cached on the model as ``hgq_cost_graph``). ``example``:
    the forward's arguments for one jet (default: zeros shaped by ``model.cfg``, all particles real)."""
    g = getattr(model, "hgq_cost_graph", None)
    if g is None:
        g = trace_costs(model, example)
        model.hgq_cost_graph = g
    return g


# ------------------------------------------------------------------------------------------ EBOPs
def _act_proxy(module: nn.Module):
    """The activation quant proxy of a producer (QuantLinear output, QuantIdentity / QuantReLU act)."""
    return getattr(module, "output_quant", None) or module.act_quant


def _act_bit_width(module: nn.Module) -> torch.Tensor:
    """Bit width of a producer's output (straight-through in a trainable width). Reads the bit-width module
    directly: ``proxy.bit_width()`` runs a whole quantizer forward through Brevitas' injector (10x slower)."""
    proxy = _act_proxy(module)
    impl = getattr(getattr(getattr(proxy, "fused_activation_quant_proxy", None), "tensor_quant", None),
                   "msb_clamp_bit_width_impl", None)
    return (impl() if impl is not None else proxy.bit_width()).reshape(())


def weight_bits(layer: nn.Module) -> torch.Tensor:
    """Per-weight bits of a QuantLinear (0 = pruned). Exact values; for an HGQ weight the gradient w.r.t. each
    non-pruned weight's f is 1 (straight-through), so the value of the surrogate is the exact count."""
    hq = hgq_quantizer(layer)
    if hq is not None:
        k = grid_integers(layer.weight, hq.frac)
        exact = torch.from_numpy(constant_bits(k)).to(layer.weight.dtype)
        fi = hq.fi()
        return exact + (fi - fi.detach()) * (exact > 0)
    qt = layer.quant_weight()
    scale = float(qt.scale)
    k = qt.value.detach().double().cpu().numpy() / scale
    return torch.from_numpy(constant_bits(np.round(k))).to(qt.value.dtype)


def _term_values(model: nn.Module, exact: bool):
    """Per cost term: (term, EBOPs) as tensors (exact=False) or Python ints (exact=True)."""
    g = cost_graph(model)
    mods = dict(model.named_modules())
    cache: dict[str, object] = {}

    def bits(name):
        if name == MASK:
            return 1 if exact else torch.tensor(1.0)
        if name not in cache:
            b = _act_bit_width(mods[name])
            cache[name] = int(round(float(b))) if exact else b
        return cache[name]

    def operand(names):
        vals = [bits(n) for n in names]
        return max(vals) if exact else torch.stack(vals).max()

    for t in g.terms:
        if t.kind == "linear":
            wb = weight_bits(mods[t.module])
            wsum = int(wb.detach().sum().round()) if exact else wb.sum()
            yield t, t.count * operand(t.operands[0]) * wsum
        elif t.kind in ("matmul", "mul"):
            yield t, t.count * operand(t.operands[0]) * operand(t.operands[1])
        elif t.kind == "lookup":
            yield t, t.count * operand(t.operands[0])
        else:  # add
            a, b = operand(t.operands[0]), operand(t.operands[1])
            yield t, t.count * (max(a, b) if exact else torch.maximum(a, b))


def ebops(model: nn.Module) -> torch.Tensor:
    """Differentiable EBOPs per jet (value = :func:`ebops_exact`; gradients into f and activation widths)."""
    total = torch.zeros(())
    for _, v in _term_values(model, exact=False):
        total = total + v
    return total


def ebops_exact(model: nn.Module, per_layer: bool = False):
    """Exact integer EBOPs per jet from the quantized constants and the integer activation widths (works on HGQ,
    baked and uniform twins). ``per_layer``: {module name: EBOPs} instead of the total."""
    with torch.no_grad():
        vals = {t.module: int(v) for t, v in _term_values(model, exact=True)}
    return vals if per_layer else sum(vals.values())


def weight_stats(model: nn.Module) -> dict:
    """Number of weights, pruned weights, and the mean bits of the non-pruned ones (exact)."""
    n = pruned = total = 0
    with torch.no_grad():
        for _, layer in quant_linears(model):
            b = weight_bits(layer).detach()
            n += b.numel()
            pruned += int((b == 0).sum())
            total += float(b.sum())
    return {"weights": n, "pruned": pruned, "mean_bits": total / max(n - pruned, 1)}


# ------------------------------------------------------------------------------------------ accumulators
def _accumulators(model: nn.Module, act_max_bits: int | None):
    """Per QuantLinear: (name, log2 of the worst-case |x W^T + b| in accumulator LSBs, input LSB, weight LSB,
    bias LSB or None)."""
    g = cost_graph(model)
    mods = dict(model.named_modules())
    with torch.no_grad():
        for t in g.terms:
            if t.kind != "linear":
                continue
            layer = mods[t.module]
            x_max, x_lsb = 0.0, math.inf
            for p in t.operands[0]:
                proxy = _act_proxy(mods[p])
                bits, scale = float(proxy.bit_width()), float(proxy.scale())
                top = 2.0 ** (bits - 1) if proxy.is_signed else 2.0 ** bits - 1
                trainable = any(n.endswith("bit_width_offset") for n, _ in proxy.named_parameters())
                lsb = scale * 2.0 ** (bits - act_max_bits) if trainable and act_max_bits else scale
                x_max, x_lsb = max(x_max, top * scale), min(x_lsb, lsb)
            qw = layer.quant_weight()
            w_lsb = float(qw.scale)
            lsb, total = x_lsb * w_lsb, t.in_features * x_max * (2.0 ** (float(qw.bit_width) - 1) - 1) * w_lsb
            b_lsb = None
            if layer.bias is not None:  # the bias grid's whole range: training may move the bias
                qb = layer.quant_bias()
                b_lsb = float(qb.scale)
                lsb, total = min(lsb, b_lsb), total + 2.0 ** (float(qb.bit_width) - 1) * b_lsb
            yield t.module, (math.log2(total / lsb) if total > 0 else 0.0), x_lsb, w_lsb, b_lsb


def accumulator_bounds(model: nn.Module, act_max_bits: int | None = None) -> dict[str, float]:
    """Per QuantLinear: log2 of the worst-case accumulation (x W^T + b) in units of its LSB.

    Worst case over any weights on the container grid, any input on its grid and any bias on its grid;
    ``act_max_bits``: every trainable-width input at that width (the upper end of training) instead of its current
    width. Float32 execution of the QONNX reference is exact while each bound stays below ACC_EXACT_BITS."""
    return {name: b for name, b, *_ in _accumulators(model, act_max_bits)}


def check_accumulators(model: nn.Module, act_max_bits: int | None = None) -> dict[str, float]:
    """:func:`accumulator_bounds`; ConfigError naming the first layer whose bound reaches 2^24 LSB and its LSBs."""
    out = {}
    for name, b, x_lsb, w_lsb, b_lsb in _accumulators(model, act_max_bits):
        if b >= ACC_EXACT_BITS:
            bias = f", bias LSB {b_lsb:.3g}" if b_lsb is not None else ""
            raise ConfigError(f"layer {name!r}: worst-case accumulation needs 2^{b:.1f} LSB >= 2^{ACC_EXACT_BITS} "
                              f"(input LSB {x_lsb:.3g}, weight LSB {w_lsb:.3g}{bias}): the float32 reference would "
                              f"not be exact; narrow hgq.weight.bits or hgq.act.max_bits, or coarsen the finest grid")
        out[name] = b
    return out


# ------------------------------------------------------------------------------------------ target from a budget
#: share of a budget's LUT allowance that a budget-derived target gives to the operations EBOPs count; the rest is
#: left for the logic EBOPs do not count but the estimate and the firmware hold (bias adders, ReLUs, residual adds,
#: the adder trees of the attention products, the softmax max/sum trees and tables): docs/cost.md
BUDGET_EBOPS_FRACTION = 0.6

#: HGQ: EBOPs ~ LUT + EBOPS_PER_DSP * DSP after place and route
EBOPS_PER_DSP = 55.0


def target_from_budget(lut: float, dsp: float, cfg: HGQConfig, fraction: float = BUDGET_EBOPS_FRACTION,
                       dsp_min_width: int = 8) -> float:
    """The EBOPs target of a budget allowing ``lut`` LUTs and ``dsp`` DSPs: ``fraction * (lut + 55 * dsp)``, the DSP
    term only when a product may map to a DSP, i.e. activations may be wider than ``dsp_min_width`` (the estimate's
    ``MappingRules.var_dsp_min_width``: constant products are shift-and-add, and a product of two activations
    goes to a DSP only when both are wider); with ``hgq.act.max_bits <= 8`` every product EBOPs count is in LUTs."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"budget fraction of the EBOPs target must be in (0, 1], got {fraction}")
    if lut <= 0:
        raise ConfigError(f"the budget allows {lut} LUTs: no EBOPs target can be derived from it")
    dsp_part = EBOPS_PER_DSP * dsp if products_may_use_dsp(cfg, dsp_min_width) else 0.0
    return float(round(fraction * (lut + dsp_part)))


def products_may_use_dsp(cfg: HGQConfig, dsp_min_width: int = 8) -> bool:
    """Whether a product EBOPs count may map to a DSP: trainable activations may grow wider than
    ``dsp_min_width`` (constant products are shift-and-add in LUTs whatever their width)."""
    return cfg.act_trainable and cfg.act_max_bits > dsp_min_width


# ------------------------------------------------------------------------------------------ schedule
class BetaSchedule:
    """beta: 0 during warm-up, then beta0; x growth per epoch above the target (<= beta_max), / backoff per epoch at
    or below it (>= beta0). ``adjust: 'epoch'``: after each epoch, from its exact EBOPs (:meth:`update`);
    ``'step'``: after each step by the per-step root of those factors, from the step's EBOPs (:meth:`step`).
    Above/below means relative to ``goal`` = target * (1 - margin)."""

    def __init__(self, cfg: HGQConfig):
        self.cfg = cfg
        self.beta = cfg.beta0
        self.goal = float(cfg.target_ebops) * (1.0 - cfg.beta_margin)

    def beta_for(self, epoch: int) -> float:
        """beta of 0-based training epoch ``epoch`` (at its start)."""
        return 0.0 if epoch < self.cfg.warmup_epochs else self.beta

    def _move(self, above: bool, power: float) -> None:
        c = self.cfg
        if above:
            self.beta = min(self.beta * c.beta_growth ** power, c.beta_max)
        else:
            self.beta = max(self.beta / c.beta_backoff ** power, c.beta0)

    def step(self, epoch: int, ebops_value: float, steps_per_epoch: int) -> float:
        """After a step of 0-based epoch ``epoch`` whose EBOPs were ``ebops_value``: the beta of the next step
        (unchanged with ``adjust: 'epoch'`` and during warm-up)."""
        if self.cfg.beta_adjust == "step" and epoch >= self.cfg.warmup_epochs:
            self._move(ebops_value > self.goal, 1.0 / max(int(steps_per_epoch), 1))
        return self.beta_for(epoch)

    def update(self, epoch: int, exact_ebops: float) -> float:
        """After 0-based epoch ``epoch`` with ``exact_ebops``: the next beta (``adjust: 'epoch'`` only)."""
        if self.cfg.beta_adjust == "epoch" and epoch >= self.cfg.warmup_epochs:
            self._move(exact_ebops > self.goal, 1.0)
        return self.beta


#: a kept epoch within this much of chance accuracy (1 / classes) is reported as a collapse
COLLAPSE_MARGIN = 0.02


def collapse_warning(accuracy: float, n_classes: int, target: float) -> str | None:
    """The warning for a kept epoch whose validation ``accuracy`` is at chance level (<= 1/n_classes +
    COLLAPSE_MARGIN), else None."""
    chance = 1.0 / max(int(n_classes), 1)
    if accuracy > chance + COLLAPSE_MARGIN:
        return None
    return (f"the kept epoch's validation accuracy {accuracy:.4f} is at chance level ({chance:.4f}): the target "
            f"{target:.6g} EBOPs is below what this model reaches without collapsing (its activation products, "
            f"adders and softmax have a floor of their own)")


class BestEpoch:
    """The selected epoch: best validation accuracy among epochs with exact EBOPs <= target (ties: fewer EBOPs),
    else the epoch with the fewest EBOPs (``warning`` says so)."""

    def __init__(self, target: float):
        self.target = float(target)
        self.feasible: tuple | None = None  # (accuracy, -ebops, epoch, state)
        self.cheapest: tuple | None = None  # (-ebops, accuracy, epoch, state)

    def offer(self, epoch: int, accuracy: float, exact_ebops: int, model: nn.Module) -> None:
        if exact_ebops <= self.target:
            key = (accuracy, -exact_ebops)
            if self.feasible is None or key > self.feasible[:2]:
                self.feasible = (accuracy, -exact_ebops, epoch, copy.deepcopy(model.state_dict()))
        elif self.feasible is None:
            key = (-exact_ebops, accuracy)
            if self.cheapest is None or key > self.cheapest[:2]:
                self.cheapest = (-exact_ebops, accuracy, epoch, copy.deepcopy(model.state_dict()))

    def result(self) -> tuple[dict, dict]:
        """(state dict, {"selected_epoch", "reached_target", "warning"})."""
        if self.feasible is not None:
            acc, neg, epoch, state = self.feasible
            return state, {"selected_epoch": epoch, "reached_target": True, "warning": None}
        if self.cheapest is None:
            raise ConfigError("BestEpoch: no epoch was offered")
        neg, acc, epoch, state = self.cheapest
        return state, {"selected_epoch": epoch, "reached_target": False,
                       "warning": f"no epoch reached the EBOPs target {self.target:.6g}; kept the cheapest, epoch "
                                  f"{epoch} with {-neg} EBOPs"}


__all__ = [
    "HGQConfig", "HGQWeightQuant", "quant_linears", "attach_hgq", "bake_hgq", "freeze_hgq", "thaw_hgq", "is_hgq",
    "is_act_width", "hgq_quantizer", "hgq_param_groups", "CostTerm", "CostGraph", "trace_costs", "cost_graph", "ebops",
    "ebops_exact", "weight_bits", "weight_stats", "constant_bits", "grid_integers", "accumulator_bounds",
    "check_accumulators", "BetaSchedule", "BestEpoch", "collapse_warning", "COLLAPSE_MARGIN", "round_ste", "clamp_ste",
    "container_grid", "ACC_EXACT_BITS", "MASK", "target_from_budget", "BUDGET_EBOPS_FRACTION", "EBOPS_PER_DSP",
    "products_may_use_dsp",
]
