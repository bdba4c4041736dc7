"""The L1 tagger family (full+U, Linformer, top-k attention), built only through the op factory.

Graph (per jet; B is the batch axis; every arrow is an op from ``l1tagger.models.ops`` with a unique dotted name):

    x (B,N,F) -> input.x -> embed.fc1 -> embed.relu -> embed.fc2                      h (B,N,d)
    pair (B,N,N,4) -> input.pair -> pair.fc1 -> pair.relu -> pair.h{h}.fc2           U_h (B,N,N), one per head
    (``cfg.interaction``, docs/interaction.md: "mlp" as above; "mlp_sym" the same over the N(N+1)/2 unique pairs
     i <= j, gathered and scattered back by Reshape + Gather; "table" / "table_sym" pair.table = ``ops.pair_table``,
     the L1PairTable op: U (B,N,N,H) = sum of per-feature table reads, over all / the unique pairs)
    (inputs "l1words": words (B,N,n_fields) -> input.words (on-chip features, ``ops.l1features``) -> x, mask =
     the valid bit, pair on the spec's grids, which replace input.x / mask / input.pair above; docs/l1_inputs.md)
    blocks.{i}:  for each head h
                   q_h, k_h, v_h = attn.h{h}.{q,k,v}(h)                               (B,N,dh)
                   full/topk:  logits = attn.h{h}.qk(q_h, k_hᵀ) [+ attn.h{h}.bias(., U_h)]      (B,N,N)
                   linformer:  k_h, v_h *= mask (attn.h{h}.kmask / vmask), then projected along the particle
                               axis by constant-weight linears attn.h{h}.E / .F (N -> k) on k_hᵀ / v_hᵀ;
                               logits = attn.h{h}.qk(q_h, E k_hᵀ) [+ attn.h{h}.bias(., attn.h{h}.u_proj(U_h·pm))]
                   w = attn.h{h}.softmax(logits, key mask, topk)      out_h = attn.h{h}.av(w, v_h)
                 concat heads -> attn.out -> res1 (add) -> ffn.fc1 -> ffn.relu -> ffn.fc2 -> res2 (add)
    cls:         per head: score_h = cls.h{h}.score(h) (B,N,1) (a learned class query folded with its key
                 projection into one linear), w = cls.h{h}.softmax(score_hᵀ, key mask), out_h = cls.h{h}.av(w,
                 cls.h{h}.v(h)); concat -> cls.out -> head.fc1 -> head.relu -> head.fc2 -> logits (B,n_classes)

Departures from ParT, each because it has no cheap fixed-point form (measured in benchmarks/bench_models.py
against ``l1tagger.models.part.ParT`` with the same widths):
- no LayerNorm (pre/post-attention, pre-FFN, FFN-internal): removed; the scale it would set is learned by the
  adjacent linears (an inference-time affine LayerNorm would fold into them, the per-jet statistics cannot);
- GELU -> ReLU;
- no 1/sqrt(d_head) multiply: the Q projection's weights and bias are initialised scaled by 1/sqrt(d_head)
  (``_init_q_scale``), so training starts from ParT's logits; the factor then lives inside W_q;
- ParT's class-attention blocks (class token attending over [cls, particles] with FFN) -> one class-attention
  pooling layer without the class token among the keys: the output depends only on real particles;
- ParT's pair embedding (Conv1d 4 -> 64 -> 64 -> 64 -> H with BatchNorm and GELU) -> linear-relu-linear.

Linformer physics bias: the bias of projected key row r for query i is sum_j E_rj U_ij (the interaction bias
averaged the way the keys are merged); ``u_proj`` is a separate N -> k linear initialised equal to E. Padded
pairs are zeroed (pair mask) before the projection, padded keys/values before theirs.

Attention recording: set ``model.record_attention = True`` (or use ``recording(model)``); each attention module
then keeps ``records`` = {"weights", "qk", "u"} as (B, H, N, N_keys) tensors of the last forward, and
"particle_weights" (B, H, N, N): the weights per particle (for linformer w @ F, F masked; otherwise = weights).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from l1tagger.contract.l1features import N_PAIR_FEATURES
from l1tagger.errors import DataError
from l1tagger.models.config import ModelConfig
from l1tagger.models.ops import FloatOps
from l1tagger.models.projections import projection_matrix



def check_mask(mask: torch.Tensor) -> None:
    """DataError naming the first jet/particle whose mask value is neither 0 nor 1 (Brevitas and QONNX would take
    it silently and compute garbage). Skipped while tracing / exporting (the graph must not hold the check); one
    comparison and one reduction over (B, N) otherwise."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return
    bad = (mask != 0) & (mask != 1)
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        where = f"jet {idx[0]} particle {idx[1]}" if len(idx) == 2 else f"at {idx}"
        raise DataError(f"mask {where}: {float(mask[idx])!r}, a mask takes only 0 or 1")


def _init_q_scale(layer: nn.Module, head_size: int) -> None:
    """Absorb ParT's 1/sqrt(d_head) into the query projection's initial weights (and bias)."""
    scale = 1.0 / math.sqrt(head_size)
    with torch.no_grad():
        layer.weight.mul_(scale)
        if getattr(layer, "bias", None) is not None:
            layer.bias.mul_(scale)


class SymmetricPairs(nn.Module):
    """Gather the unique pairs i <= j of (B, N, N, C) -> (B, N(N+1)/2, C), and scatter (B, P, C) back to (B, N, N, C):
    Reshape + Gather with constant indices (``l1tagger.contract.l1features.upper_pair_index``), no new op."""

    def __init__(self, n: int):
        super().__init__()
        from l1tagger.contract.l1features import full_from_upper_index, upper_pair_index

        self.n = int(n)
        self.register_buffer("upper", torch.from_numpy(upper_pair_index(self.n)), persistent=False)
        self.register_buffer("scatter_index", torch.from_numpy(full_from_upper_index(self.n)), persistent=False)

    def gather(self, pair):
        return pair.reshape(-1, self.n * self.n, pair.shape[-1]).index_select(1, self.upper)

    def scatter(self, z):
        """(B, P, C) -> (B, N, N, C)."""
        return z.index_select(1, self.scatter_index).reshape(-1, self.n, self.n, z.shape[-1])


class PairEmbed(nn.Module):
    """ParT interaction bias U: per-pair linear-relu-linear over the 4 pairwise features, one channel per head.

    ``cfg.interaction == "mlp_sym"``: the MLP runs over the unique pairs i <= j only (:class:`SymmetricPairs`)."""

    def __init__(self, ops, name: str, cfg: ModelConfig):
        super().__init__()
        # l1words: the pair features come on their grid from the on-chip feature op
        self.inp = ops.input_quant("input.pair") if cfg.inputs == "features" else nn.Identity()
        self.sym = SymmetricPairs(cfg.n_particles) if cfg.interaction == "mlp_sym" else None
        self.gather = cfg.inputs == "features"  # on L1 words the feature op already gives the unique pairs
        self.fc1 = ops.linear(f"{name}.fc1", N_PAIR_FEATURES, cfg.pair_hidden)
        self.relu = ops.relu(f"{name}.relu")
        self.fc2 = nn.ModuleList(ops.linear(f"{name}.h{h}.fc2", cfg.pair_hidden, 1) for h in range(cfg.n_heads))

    def forward(self, pair):
        pair = self.inp(pair)
        if self.sym is not None and self.gather:
            pair = self.sym.gather(pair)  # (B, P, 4)
        z = self.relu(self.fc1(pair))
        if self.sym is not None:
            return [self.sym.scatter(fc(z)).squeeze(-1) for fc in self.fc2]  # H x (B, N, N)
        return [fc(z).squeeze(-1) for fc in self.fc2]  # H x (B, N, N)


class PairTableEmbed(nn.Module):
    """U from tables of the quantized pair features (``cfg.interaction`` "table" / "table_sym"):
    U_h(i, j) = sum_f T[f, h][q_f(i, j)] (``l1tagger.contract.pairtable``, op ``L1PairTable``), built by
    ``ops.pair_table``; "table_sym" looks the unique pairs i <= j up once and scatters them back."""

    def __init__(self, ops, name: str, cfg: ModelConfig):
        super().__init__()
        self.inp = ops.input_quant("input.pair") if cfg.inputs == "features" else nn.Identity()
        self.sym = SymmetricPairs(cfg.n_particles) if cfg.interaction == "table_sym" else None
        self.gather = cfg.inputs == "features"  # on L1 words the feature op already gives the unique pairs
        self.table = ops.pair_table(f"{name}.table", cfg.pair_table_bits, cfg.n_heads, N_PAIR_FEATURES)
        self.n_heads = cfg.n_heads

    def forward(self, pair):
        pair = self.inp(pair)
        if self.sym is not None:
            u = self.sym.scatter(self.table(self.sym.gather(pair) if self.gather else pair))  # (B, N, N, H)
        else:
            u = self.table(pair)  # (B, N, N, H)
        return [u[..., h] for h in range(self.n_heads)]  # H x (B, N, N)


def interaction(ops, name: str, cfg: ModelConfig) -> nn.Module:
    """The module computing U (H x (B, N, N)) from the pair features, by ``cfg.interaction``."""
    if cfg.interaction in ("table", "table_sym"):
        return PairTableEmbed(ops, name, cfg)
    return PairEmbed(ops, name, cfg)


class AttentionHead(nn.Module):
    def __init__(self, ops, name: str, cfg: ModelConfig):
        super().__init__()
        d, dh, N = cfg.d_model, cfg.head_size, cfg.n_particles
        self.kind = cfg.attention
        self.q = ops.linear(f"{name}.q", d, dh)
        _init_q_scale(self.q, dh)
        self.k = ops.linear(f"{name}.k", d, dh)
        self.v = ops.linear(f"{name}.v", d, dh)
        self.qk = ops.matmul(f"{name}.qk")
        self.av = ops.matmul(f"{name}.av")
        self.bias = ops.add(f"{name}.bias") if cfg.pair_bias else None
        topk = cfg.topk_k if cfg.attention == "topk" else 0
        # the most terms a row's sum holds: the projected keys (Linformer), the kept keys (top-k), else every particle
        terms = cfg.linformer_k if cfg.attention == "linformer" else (topk or cfg.n_particles)
        self.softmax = ops.softmax(f"{name}.softmax", topk=topk, n_keys=terms)
        if self.kind == "linformer":
            k = cfg.linformer_k
            self.kmask = ops.mul(f"{name}.kmask")
            self.vmask = ops.mul(f"{name}.vmask")
            self.E = ops.linear(f"{name}.E", N, k, bias=False)
            self.F = ops.linear(f"{name}.F", N, k, bias=False)
            init = projection_matrix(cfg.linformer_init, N, k)
            with torch.no_grad():
                if init is not None:
                    w = torch.as_tensor(init, dtype=self.E.weight.dtype)
                    self.E.weight.copy_(w)
                    self.F.weight.copy_(w)
            if cfg.linformer_fixed:
                self.E.weight.requires_grad_(False)
                self.F.weight.requires_grad_(False)
            if cfg.pair_bias:
                self.umask = ops.mul(f"{name}.umask")
                self.u_proj = ops.linear(f"{name}.u_proj", N, k, bias=False)
                with torch.no_grad():
                    self.u_proj.weight.copy_(self.E.weight)

    def forward(self, h, mask3, key_mask, u=None, pair_mask=None):
        """h (B,N,d); mask3 (B,N,1); key_mask (B,1,N); u (B,N,N) or None; pair_mask (B,N,N) (linformer+U)."""
        q, k, v = self.q(h), self.k(h), self.v(h)
        if self.kind == "linformer":
            kT = self.kmask(k, mask3).transpose(1, 2)  # (B,dh,N)
            vT = self.vmask(v, mask3).transpose(1, 2)
            kp_T = self.E(kT)  # (B,dh,k) = (E k)ᵀ
            vp = self.F(vT).transpose(1, 2)  # (B,k,dh)
            qk = self.qk(q, kp_T)  # (B,N,k)
            if u is not None:
                u = self.u_proj(self.umask(u, pair_mask))  # (B,N,k)
            key_mask, v = None, vp  # projected rows are mixtures: no key mask
        else:
            qk = self.qk(q, k.transpose(1, 2))  # (B,N,N)
        logits = self.bias(qk, u) if u is not None else qk
        w = self.softmax(logits, key_mask)
        return self.av(w, v), w, qk, u

    def particle_weights(self, w, mask3):
        """Weights per *particle* (B,N,N): w itself, or for linformer w @ (F masked), the share of each
        particle's value in the output (what the attention analysis reads)."""
        if self.kind != "linformer":
            return w
        Fm = self.F.weight.unsqueeze(0) * mask3.transpose(1, 2)  # (B,k,N)
        return torch.matmul(w, Fm)


class AttentionBlock(nn.Module):
    def __init__(self, ops, name: str, cfg: ModelConfig):
        super().__init__()
        self.heads = nn.ModuleList(AttentionHead(ops, f"{name}.attn.h{h}", cfg) for h in range(cfg.n_heads))
        self.out = ops.linear(f"{name}.attn.out", cfg.d_model, cfg.d_model)
        self.res1 = ops.add(f"{name}.res1")
        self.fc1 = ops.linear(f"{name}.ffn.fc1", cfg.d_model, cfg.ffn_dim)
        self.relu = ops.relu(f"{name}.ffn.relu")
        self.fc2 = ops.linear(f"{name}.ffn.fc2", cfg.ffn_dim, cfg.d_model)
        self.res2 = ops.add(f"{name}.res2")
        self.record_attention = False
        self.records: dict[str, torch.Tensor | None] = {}

    def forward(self, h, mask3, key_mask, us=None, pair_mask=None):
        outs, ws, pws, qks, uu = [], [], [], [], []
        for i, head in enumerate(self.heads):
            o, w, qk, u = head(h, mask3, key_mask, None if us is None else us[i], pair_mask)
            outs.append(o)
            if self.record_attention:
                ws.append(w)
                pws.append(head.particle_weights(w, mask3))
                qks.append(qk)
                uu.append(u)
        if self.record_attention:
            self.records = {
                "weights": torch.stack(ws, 1).detach(),
                "particle_weights": torch.stack(pws, 1).detach(),
                "qk": torch.stack(qks, 1).detach(),
                "u": torch.stack(uu, 1).detach() if uu and uu[0] is not None else None,
            }
        h = self.res1(h, self.out(torch.cat(outs, dim=-1)))
        return self.res2(h, self.fc2(self.relu(self.fc1(h))))


class ClassAttentionPool(nn.Module):
    """A learned class query attending over the real particles (per head), then an output linear."""

    def __init__(self, ops, name: str, cfg: ModelConfig):
        super().__init__()
        dh = cfg.head_size
        self.score = nn.ModuleList(ops.linear(f"{name}.h{h}.score", cfg.d_model, 1) for h in range(cfg.n_heads))
        self.v = nn.ModuleList(ops.linear(f"{name}.h{h}.v", cfg.d_model, dh) for h in range(cfg.n_heads))
        self.softmax = nn.ModuleList(ops.softmax(f"{name}.h{h}.softmax", topk=0, n_keys=cfg.n_particles)
                                     for h in range(cfg.n_heads))
        self.av = nn.ModuleList(ops.matmul(f"{name}.h{h}.av") for h in range(cfg.n_heads))
        self.out = ops.linear(f"{name}.out", cfg.d_model, cfg.d_model)
        self.record_attention = False
        self.records: dict[str, torch.Tensor | None] = {}

    def forward(self, h, key_mask):
        outs, ws = [], []
        for score, v, sm, av in zip(self.score, self.v, self.softmax, self.av):
            w = sm(score(h).transpose(1, 2), key_mask)  # (B,1,N)
            outs.append(av(w, v(h)))  # (B,1,dh)
            ws.append(w)
        if self.record_attention:
            w = torch.stack(ws, 1).detach()
            self.records = {"weights": w, "particle_weights": w, "qk": None, "u": None}
        return self.out(torch.cat(outs, dim=-1)).flatten(1)  # (B,d)


class L1Tagger(nn.Module):
    """The L1 tagger. ``forward(x, mask, pair=None) -> logits``; build the quantized twin with ``ops=QuantOps(...)``.

    With ``cfg.inputs == "l1words"``: ``forward(words, mask=None) -> logits``; ``words`` (B,N,n_fields) are L1
    particle words, x, the mask (the valid bit) and pair are computed from them on chip (``self.words``); a
    ``mask`` given as well must equal the valid bit.
    """

    def __init__(self, cfg: ModelConfig, ops=None):
        super().__init__()
        ops = ops or FloatOps()
        self.cfg = cfg.validate()
        self.words = ops.l1features("input.words", cfg.chip_spec, cfg.pair_bias) if cfg.inputs == "l1words" else None
        self.inp = ops.input_quant("input.x") if self.words is None else nn.Identity()
        self.embed_fc1 = ops.linear("embed.fc1", cfg.n_features, cfg.embed_dim)
        self.embed_relu = ops.relu("embed.relu")
        self.embed_fc2 = ops.linear("embed.fc2", cfg.embed_dim, cfg.d_model)
        self.pair = interaction(ops, "pair", cfg) if cfg.pair_bias else None
        self.pair_mask = ops.mask_mul("pair.mask") if cfg.pair_bias and cfg.attention == "linformer" else None
        self.blocks = nn.ModuleList(AttentionBlock(ops, f"blocks.{i}", cfg) for i in range(cfg.n_blocks))
        self.cls = ClassAttentionPool(ops, "cls", cfg)
        self.head_fc1 = ops.linear("head.fc1", cfg.d_model, cfg.head_dim)
        self.head_relu = ops.relu("head.relu")
        self.head_fc2 = ops.linear("head.fc2", cfg.head_dim, cfg.n_classes)

    def check_inputs(self, x, mask, pair):
        cfg = self.cfg
        if mask is None:
            raise DataError("this model takes (x, mask[, pair]): mask is missing")
        if x.dim() != 3 or x.shape[1] != cfg.n_particles or x.shape[2] != cfg.n_features:
            raise DataError(
                f"x must have shape (B, {cfg.n_particles}, {cfg.n_features}) for this model, got {tuple(x.shape)}"
                + (" (more particles than the model takes: truncate in preprocessing)"
                   if x.dim() == 3 and x.shape[1] > cfg.n_particles else "")
            )
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise DataError(f"mask must have shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
        check_mask(mask)
        if cfg.pair_bias:
            n = cfg.n_particles
            # symmetric designs on L1 words: the on-chip op gives the unique pairs only
            rows = (n * (n + 1) // 2,) if self.words is not None and cfg.symmetric_pairs else (n, n)
            want = (x.shape[0], *rows, N_PAIR_FEATURES)
            if pair is None or tuple(pair.shape) != want:
                got = None if pair is None else tuple(pair.shape)
                raise DataError(f"this model uses the interaction bias: pair must have shape {want}, got {got}")

    def word_inputs(self, words, mask=None, pair=None):
        """(x, mask, pair) computed on chip from the words; a given mask must equal the valid bit."""
        if pair is not None:
            raise DataError("this model computes the pair features on chip from the words: pair must not be given")
        self.words.check(words, self.cfg.n_particles)
        x, valid, pair = self.words(words)
        if mask is not None and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            if tuple(mask.shape) != tuple(valid.shape):
                raise DataError(f"mask must have shape {tuple(valid.shape)}, got {tuple(mask.shape)}")
            bad = mask.to(valid.dtype) != valid
            if bool(bad.any()):
                j, p = (int(i) for i in bad.nonzero()[0])
                raise DataError(f"mask jet {j} particle {p}: {float(mask[j, p])!r}, but the word's valid bit is "
                                f"{int(valid[j, p])}")
        return x, valid, pair

    def forward(self, x, mask=None, pair=None):
        if self.words is not None:
            x, mask, pair = self.word_inputs(x, mask, pair)
        self.check_inputs(x, mask, pair)
        mask = mask.to(x.dtype)
        mask3, key_mask = mask.unsqueeze(-1), mask.unsqueeze(1)
        h = self.embed_fc2(self.embed_relu(self.embed_fc1(self.inp(x))))
        us = self.pair(pair) if self.pair is not None else None
        pm = self.pair_mask(mask3, key_mask) if self.pair_mask is not None else None
        for block in self.blocks:
            h = block(h, mask3, key_mask, us, pm)
        z = self.cls(h, key_mask)
        return self.head_fc2(self.head_relu(self.head_fc1(z)))

    # ------------------------------------------------------------ recording
    @property
    def record_attention(self) -> bool:
        return self.cls.record_attention

    @record_attention.setter
    def record_attention(self, on: bool) -> None:
        for m in list(self.blocks) + [self.cls]:
            m.record_attention = bool(on)
            if not on:
                m.records = {}

    def attention_records(self) -> list[dict]:
        """Per particle block, then the class-attention pooling: dicts of numpy arrays (B,H,N,N_keys) or None."""
        out = []
        for name, m in [(f"blocks.{i}", b) for i, b in enumerate(self.blocks)] + [("cls", self.cls)]:
            rec = {k: (None if v is None else v.cpu().numpy()) for k, v in m.records.items()}
            rec["layer"] = name
            out.append(rec)
        return out


@contextlib.contextmanager
def recording(model: L1Tagger):
    """``with recording(model): model(x, mask, pair)`` then ``model.attention_records()``."""
    model.record_attention = True
    try:
        yield model
    finally:
        for m in list(model.blocks) + [model.cls]:
            m.record_attention = False
