"""Features computed on chip from Level-1 particle words: the spec, its tables and the integer reference.

The words (``l1tagger.data.words``: pt P, eta H, phi F, particle id I, valid bit V per particle) enter the firmware;
the per-particle features ``x`` (B, N, F), the key mask (B, N) (the valid bit, 1-bit unsigned) and the ParT pair
features ``pair`` (B, N, N, 4) are computed from them with integer arithmetic and lookup tables, defined here once
(``docs/l1_inputs.md`` has the derivation). Three ONNX ops, one per output: ``L1ParticleFeatures``,
``L1WordMask``, ``L1PairFeatures``.

* :class:`L1FeatureSpec` - which features, the output grids, the log-table resolution; validated, serialisable;
  the table contents are a function of the spec (:meth:`L1FeatureSpec.tables`, :meth:`L1FeatureSpec.table_digest`).
* :func:`features_int` - the integer algorithm written once over an array namespace ``xp`` (numpy or torch: only
  operations with the same meaning in both are used), so the numpy reference and the torch training forward
  (``l1tagger.features.onchip``) are one formula.
* :func:`features_np` - the numpy reference on checked words (the qonnx custom ops and the integer reference run it).
* :func:`spec_of_node` - the spec of an exported ``L1ParticleFeatures`` / ``L1WordMask`` / ``L1PairFeatures`` node.

Integer steps (all values integers; a log feature q has the value q * 2^-frac, in ln units):

1. Padding: every field of a particle with V = 0 is taken as 0.
2. Seed (the L1 seeded-cone jet axis): the valid particle with the largest P, ties to the lowest index
   (key V * (2P + 1); no valid particle: slot 0, whose masked fields are 0).
3. Log of an unsigned integer x by a "floor-log code": s = #{k in [M+1, W-1] : x >= 2^k},
   c = s * 2^M + (x >> s) (x itself below 2^(M+1)), then a table read T[c]; M = ``log_mantissa_bits``.
   T[c] = round_half_up(2^frac * ln(g(x_mid(c)))) where x_mid is the midpoint of the integers sharing code c
   (x itself when s = 0, and 1/2 for x = 0).
4. Per particle: L_i = LOGPT[c(P_i)] (ln pT/GeV), L_jet = LOGPT[c(sum_i P_i)];
   logpt = L_i, logptrel = L_i - L_jet, deta = H_i - H_seed, dphi = wrap(F_i - F_seed) (in word LSBs),
   charge / is_* = l1ct particle-id decoding times 2^frac (value 1.0).
5. Per pair: the angle lndelta (= ln of the angle in rad), by the spec's ``delta``:
   ``d2`` (default): D2 = (H_i - H_j)^2 + wrap(F_i - F_j)^2 (exact), lndelta = LOGDR[c(D2)];
   ``lse`` (no products): a = LOGABS[c(|H_i - H_j|)], b = LOGABS[c(|wrap(F_i - F_j)|)] (ln of each difference in
   rad), lndelta = max(a, b) + HALFSP[min(|a - b|, last)] (= 1/2 ln(exp(2a) + exp(2b)), a log-sum-exp);
   then lnkt = min(L_i, L_j) + lndelta, lnz = -(r + SOFTPLUS[min(r, last)]) with r = |L_i - L_j|
   (= ln(min pT / (pT_i + pT_j)) = -ln(1 + exp(r))), lnm2 = L_i + L_j + 2 lndelta (massless small-angle
   m^2 = pT_i pT_j Delta^2).
5b. Per pair with ``pair_set = words`` (U straight from the words, no angle log, no table beyond LOGPT):
   cdeta = c'(|H_i - H_j|), cdphi = c'(|wrap(F_i - F_j)|) (floor-log codes with ``code_mantissa_bits`` M' as
   integers: q = c', value c' * 2^-frac), lptmin = min(L_i, L_j), lptdiff = |L_i - L_j|. The interaction tables
   (``l1tagger.contract.pairtable``) index these directly: a code is a log-spaced bin of the angle difference.
5c. Per pair with ``pair_set = part_codes`` (ParT's set in code units, no ROM beyond LOGPT): the octagonal distance
   D = max(a, b) + (min(a, b) >> 1) of a = |H_i - H_j|, b = |wrap(F_i - F_j)| (within 12 % of the Euclidean one),
   its floor-log code c = c'(D) (``code_mantissa_bits`` M') standing for ln Delta, K = round(2^frac ln 2 / 2^M')
   (the code step in 2^-frac ln units; 3 for frac 4, M' 2), then lnkt = min(L_i, L_j) + K c, lnz = |L_i - L_j|
   (-ln z's monotone stand-in), lndelta = c, lnm2 = L_i + L_j + 2 K c.
6. wrap(d) = d - 2pi [d >= pi] + 2pi [d < -pi] (pi = ``intphi_pi`` LSBs; exact for 11-bit phi words).
7. Saturation into the signed ``x_bits`` / ``pair_bits`` grids, then 0 on padded particles / pairs.

Imports numpy (and onnx for :func:`spec_of_node`) only; never torch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from l1tagger.data.words import WORD_FORMATS, WordFormat, check_words, load_word_format
from l1tagger.errors import ConfigError, DataError
from l1tagger.utils import dataclass_io

#: ONNX op types (domain :data:`l1tagger.contract.softmax.ONNX_DOMAIN`) and the kind each computes
PARTICLE_OP = "L1ParticleFeatures"
PAIR_OP = "L1PairFeatures"
MASK_OP = "L1WordMask"
KIND_OF_OP = {PARTICLE_OP: "particle", PAIR_OP: "pair", MASK_OP: "mask"}
OP_OF_KIND = {k: op for op, k in KIND_OF_OP.items()}
OP_TYPES = tuple(KIND_OF_OP)

#: per-particle features the spec may select, and their C++/RTL codes (index in this tuple)
PARTICLE_FEATURES = ("logpt", "logptrel", "deta", "dphi", "charge", "is_neutral_hadron", "is_photon",
                     "is_charged_hadron", "is_electron", "is_muon")
#: features with the value 1.0 (integer 2^frac) for a true flag / unit charge
UNIT_FEATURES = frozenset(PARTICLE_FEATURES[4:])
DEFAULT_PARTICLE_FEATURES = ("logpt", "logptrel", "deta", "dphi")
#: the pair features of each pair set (L1FeatureSpec.pair_set; four each: l1tagger.models.tagger.N_PAIR_FEATURES):
#: "part" - ParT's ln kT, ln z, ln Delta, ln m^2 (module docstring, step 5); "words" - U straight from the words
#: (step 5b): the floor-log codes of |deta| and |dphi| and min(L_i, L_j), |L_i - L_j| of the pt logs, no angle log;
#: "part_codes" - ParT's four in code units (step 5c): the angle log replaced by the code of the octagonal distance
PAIR_SETS = {"part": ("lnkt", "lnz", "lndelta", "lnm2"), "words": ("cdeta", "cdphi", "lptmin", "lptdiff"),
             "part_codes": ("ckt", "lptdiff", "cdelta", "cm2")}
#: the pair sets computed without the angle logs (LOGPT the only table; code_mantissa_bits applies)
CODE_PAIR_SETS = ("words", "part_codes")
#: the ParT pair features, in ParT's order
PAIR_FEATURES = PAIR_SETS["part"]
N_PAIR_FEATURES = 4
assert all(len(v) == N_PAIR_FEATURES for v in PAIR_SETS.values())

SPEC_KEYS = ("format", "particle_features", "frac", "x_bits", "pair_bits", "log_mantissa_bits", "max_particles",
             "pairs", "delta", "pair_set", "code_mantissa_bits")
#: which pairs L1PairFeatures outputs: "full" - all N x N, (..., N, N, 4); "upper" - the unique pairs i <= j
#: (``upper_pair_index``), (..., N(N+1)/2, 4), for the symmetric interaction designs (docs/interaction.md)
PAIR_LAYOUTS = ("full", "upper")
#: how the pair angle ln Delta is computed (module docstring, step 5): "d2" - the log of the exact squared distance
#: (two variable squares per pair); "lse" - a log-sum-exp of the logs of |deta| and |dphi| (no products: two small
#: floor-log codes and ROMs instead of two squares and a wide code; docs/l1_inputs.md)
DELTA_METHODS = ("d2", "lse")
#: the tables of each angle method, in the order of :meth:`L1FeatureSpec.table_digest`
TABLES = {"d2": ("logpt", "logdr", "softplus"), "lse": ("logpt", "logabs", "halfsp", "softplus")}
#: the on-chip pair-feature variants by name, as ``model.l1features`` overrides: ParT's set with the angle by
#: ``delta`` (d2 the default, lse), or an angle-log-free pair set (words, part_codes)
PAIR_VARIANTS = {"d2": {}, **{d: {"delta": d} for d in DELTA_METHODS if d != "d2"},
                 **{p: {"pair_set": p} for p in CODE_PAIR_SETS}}
_INT_RANGES = {"frac": (0, 10), "x_bits": (4, 24), "pair_bits": (4, 24), "log_mantissa_bits": (1, 10),
               "max_particles": (1, 4096), "code_mantissa_bits": (0, 6)}


def upper_pair_index(n: int) -> np.ndarray:
    """Flat indices i * n + j (int64, (n(n+1)/2,)) of the unique pairs i <= j of n particles, row by row: the pair
    features are symmetric in (i, j), so a symmetric design computes these once (docs/interaction.md)."""
    i, j = np.triu_indices(n)
    return (i * n + j).astype(np.int64)


def full_from_upper_index(n: int) -> np.ndarray:
    """For each flat pair i * n + j of an n x n grid, its position in :func:`upper_pair_index` (pair (min, max))."""
    pos = np.empty((n, n), np.int64)
    i, j = np.triu_indices(n)
    pos[i, j] = np.arange(len(i))
    pos[j, i] = np.arange(len(i))
    return pos.ravel()


def flog_code(x, width: int, m: int):
    """Floor-log code of non-negative integers ``x`` < 2^width: c = s * 2^m + (x >> s) with
    s = #{k in [m+1, width-1]: x >= 2^k}. Numpy arrays, torch tensors and Python ints alike."""
    s = x * 0
    for k in range(m + 1, width):
        s = s + (x >= (1 << k)) * 1
    return s * (1 << m) + (x >> s)


def n_codes(width: int, m: int) -> int:
    """Number of codes of integers in [0, 2^width - 1]."""
    return int(flog_code((1 << width) - 1, width, m)) + 1


def code_midpoints(n: int, m: int) -> np.ndarray:
    """Midpoint of the integers sharing each code 0..n-1 (float64; 1/2 for code 0, i.e. x = 0)."""
    c = np.arange(n, dtype=np.int64)
    s = np.maximum(c // (1 << m) - 1, 0)
    u = c - s * (1 << m)
    mid = (u << s).astype(np.float64) + ((np.int64(1) << s) - 1) / 2.0
    mid[0] = 0.5
    return mid


def _round_half_up(v: np.ndarray) -> np.ndarray:
    return np.floor(v + 0.5).astype(np.int64)


@dataclass(frozen=True)
class L1FeatureSpec:
    """What the firmware computes from the words (module docstring, ``docs/l1_inputs.md``).

    format:             the word format (``l1tagger.data.words.WordFormat``; a name or mapping in ``from_dict``)
    particle_features:  names from :data:`PARTICLE_FEATURES`, in the order of x's last axis
    frac:               fraction bits of every feature (log features in ln units, value q * 2^-frac)
    x_bits, pair_bits:  signed widths of the x and pair grids (saturation)
    log_mantissa_bits:  M, bits kept below the leading one by the floor-log code (log tables: ~(W - M + 1) 2^M
                        entries for W-bit integers; relative resolution 2^-M)
    max_particles:      the largest N the sum-of-pt log table covers
    pairs:              :data:`PAIR_LAYOUTS`: the pair output over all N x N pairs or the unique pairs i <= j only
                        (set by the model's ``interaction``; serialised only when not "full")
    delta:              :data:`DELTA_METHODS`: how ln Delta is computed (serialised only when not "d2", so the specs
                        of graphs exported before it existed read back unchanged); pair_set "part" only
    pair_set:           :data:`PAIR_SETS`: which four pair features (serialised only when not "part")
    code_mantissa_bits: M', mantissa bits of the angle codes of the pair sets :data:`CODE_PAIR_SETS` (2^M' codes
                        per octave of the angle difference; serialised only with them)
    """

    format: WordFormat = field(default_factory=lambda: WORD_FORMATS["l1ct"])
    particle_features: tuple[str, ...] = DEFAULT_PARTICLE_FEATURES
    frac: int = 4
    x_bits: int = 10
    pair_bits: int = 10
    log_mantissa_bits: int = 5
    max_particles: int = 256
    pairs: str = "full"
    delta: str = "d2"
    pair_set: str = "part"
    code_mantissa_bits: int = 2

    def __post_init__(self):
        if not isinstance(self.format, WordFormat):
            raise ConfigError(f"l1 feature spec: format must be a WordFormat, got {type(self.format).__name__}")
        for name, (lo, hi) in _INT_RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
                raise ConfigError(f"l1 feature spec field {name!r} = {v!r}: must be an integer in [{lo}, {hi}]")
            object.__setattr__(self, name, int(v))
        feats = self.particle_features
        if isinstance(feats, str) or not isinstance(feats, (tuple, list)) or not feats:
            raise ConfigError(f"l1 feature spec field 'particle_features' must be a non-empty list, got {feats!r}")
        unknown = [f for f in feats if f not in PARTICLE_FEATURES]
        if unknown:
            raise ConfigError(f"l1 feature spec: unknown particle feature {unknown[0]!r}; known: "
                              f"{list(PARTICLE_FEATURES)}")
        if len(set(feats)) != len(feats):
            raise ConfigError(f"l1 feature spec: particle feature listed twice in {list(feats)}")
        object.__setattr__(self, "particle_features", tuple(feats))
        if self.pairs not in PAIR_LAYOUTS:
            raise ConfigError(f"l1 feature spec field 'pairs' = {self.pairs!r}: must be one of {list(PAIR_LAYOUTS)}")
        if self.delta not in DELTA_METHODS:
            raise ConfigError(f"l1 feature spec field 'delta' = {self.delta!r}: must be one of {list(DELTA_METHODS)}")
        if self.pair_set not in PAIR_SETS:
            raise ConfigError(f"l1 feature spec field 'pair_set' = {self.pair_set!r}: must be one of {list(PAIR_SETS)}")
        if self.pair_set != "part" and self.delta != "d2":
            raise ConfigError(f"l1 feature spec field 'delta' = {self.delta!r}: applies to pair_set 'part' only "
                              f"(pair_set {self.pair_set!r} takes no angle log)")
        if UNIT_FEATURES & set(feats) and (1 << self.frac) > self.x_max:
            raise ConfigError(f"l1 feature spec: x_bits = {self.x_bits} cannot hold the value 1.0 at frac = "
                              f"{self.frac} (needed by {sorted(UNIT_FEATURES & set(feats))})")
        if self.log_mantissa_bits + 1 >= self.format.field("pt").bits:
            raise ConfigError(f"l1 feature spec field 'log_mantissa_bits' = {self.log_mantissa_bits}: must be "
                              f"below pt bits - 1 = {self.format.field('pt').bits - 1}")

    # ------------------------------------------------------------------ derived
    @property
    def n_features(self) -> int:
        return len(self.particle_features)

    @property
    def x_min(self) -> int:
        return -(1 << (self.x_bits - 1))

    @property
    def x_max(self) -> int:
        return (1 << (self.x_bits - 1)) - 1

    @property
    def pair_min(self) -> int:
        return -(1 << (self.pair_bits - 1))

    @property
    def pair_max(self) -> int:
        return (1 << (self.pair_bits - 1)) - 1

    @property
    def pt_code_bits(self) -> int:
        """Width of a pt word (the code input of L_i)."""
        return self.format.field("pt").bits

    @property
    def sum_code_bits(self) -> int:
        """Width of the exact sum of up to max_particles pt words."""
        return (self.max_particles * self.format.field("pt").int_max).bit_length()

    @property
    def d2_bits(self) -> int:
        """Width of D2 = deta^2 + dphi^2 (deta up to 2^eta_bits - 1, |dphi| up to pi after the wrap)."""
        deta = (1 << self.format.field("eta").bits) - 1
        return (deta * deta + self.format.intphi_pi ** 2).bit_length()

    @property
    def dabs_bits(self) -> int:
        """Width of |deta| (up to 2^eta_bits - 1) and |dphi| (up to pi after the wrap): the LOGABS code input."""
        return max(self.format.field("eta").bits, self.format.intphi_pi.bit_length())

    @property
    def code_step(self) -> int:
        """K = round(2^frac ln 2 / 2^M'): one angle-code step in 2^-frac ln units (pair_set part_codes)."""
        return int(_round_half_up(np.float64(2.0**self.frac * np.log(2.0) / 2.0**self.code_mantissa_bits)))

    @property
    def dist_bits(self) -> int:
        """Width of the octagonal distance max(a, b) + min(a, b) / 2 of |deta|, |dphi| (pair_set part_codes)."""
        return ((1 << self.dabs_bits) - 1 + ((1 << self.dabs_bits) - 1) // 2).bit_length()

    @property
    def pi(self) -> int:
        return self.format.intphi_pi

    @property
    def pair_feature_names(self) -> tuple[str, ...]:
        """The four pair features of the spec's pair_set (:data:`PAIR_SETS`)."""
        return PAIR_SETS[self.pair_set]

    @property
    def table_names(self) -> tuple[str, ...]:
        """The tables the spec computes with, in digest order (:data:`TABLES` of the angle method; the pair sets
        :data:`CODE_PAIR_SETS` need LOGPT only)."""
        return ("logpt",) if self.pair_set in CODE_PAIR_SETS else TABLES[self.delta]

    # ------------------------------------------------------------------ tables
    def logpt_table(self) -> np.ndarray:
        """LOGPT[c] = round_half_up(2^frac ln(x_mid(c) * pt_lsb)) over the codes of sum_code_bits-wide integers."""
        mid = code_midpoints(n_codes(self.sum_code_bits, self.log_mantissa_bits), self.log_mantissa_bits)
        return _round_half_up(2.0**self.frac * np.log(mid * self.format.pt_lsb))

    def logdr_table(self) -> np.ndarray:
        """LOGDR[c] = round_half_up(2^frac * 1/2 ln(x_mid(c) * lsb^2)) over the codes of D2 (lsb = pi/intphi_pi)."""
        mid = code_midpoints(n_codes(self.d2_bits, self.log_mantissa_bits), self.log_mantissa_bits)
        return _round_half_up(2.0**self.frac * 0.5 * np.log(mid * self.format.etaphi_lsb**2))

    def logabs_table(self) -> np.ndarray:
        """LOGABS[c] = round_half_up(2^frac ln(x_mid(c) * lsb)) over the codes of dabs_bits-wide integers (lse)."""
        mid = code_midpoints(n_codes(self.dabs_bits, self.log_mantissa_bits), self.log_mantissa_bits)
        return _round_half_up(2.0**self.frac * np.log(mid * self.format.etaphi_lsb))

    def halfsp_table(self) -> np.ndarray:
        """HALFSP[r] = round_half_up(2^frac 1/2 ln(1 + exp(-2 r 2^-frac))), up to and including its first 0 (lse)."""
        return _until_zero(lambda r: 0.5 * np.log1p(np.exp(-2.0 * r * 2.0**-self.frac)), self.frac)

    def softplus_table(self) -> np.ndarray:
        """SOFTPLUS[r] = round_half_up(2^frac ln(1 + exp(-r 2^-frac))), up to and including its first 0 entry."""
        return _until_zero(lambda r: np.log1p(np.exp(-r * 2.0**-self.frac)), self.frac)

    def tables(self) -> dict[str, np.ndarray]:
        """The tables of :attr:`table_names` (:data:`TABLES`: d2 -> logpt, logdr, softplus; lse -> logpt, logabs,
        halfsp, softplus; the code pair sets -> logpt): int64 numpy arrays, emitted verbatim into C++ and RTL."""
        return _tables(self)

    def table_digest(self) -> str:
        """sha256 of the tables (int64 little endian, in the order of :attr:`table_names`; for d2 logpt, logdr,
        softplus, as before lse existed)."""
        h = hashlib.sha256()
        for name in self.table_names:
            h.update(self.tables()[name].astype("<i8").tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format.to_dict(), "particle_features": list(self.particle_features),
                "frac": self.frac, "x_bits": self.x_bits, "pair_bits": self.pair_bits,
                "log_mantissa_bits": self.log_mantissa_bits, "max_particles": self.max_particles,
                **({"pairs": self.pairs} if self.pairs != "full" else {}),
                **({"delta": self.delta} if self.delta != "d2" else {}),
                **({"pair_set": self.pair_set, "code_mantissa_bits": self.code_mantissa_bits}
                   if self.pair_set in CODE_PAIR_SETS else {})}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping | None, path: str = "") -> "L1FeatureSpec":
        """From a mapping of :data:`SPEC_KEYS` (missing keys take the defaults; ``format`` a name, a mapping or a
        .yaml path, resolved by ``load_word_format``). Strict as ``l1tagger.utils.dataclass_io.from_dict``: an
        unknown or mistyped key is a ConfigError naming its dotted path (``path`` = where the spec sits)."""
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{path or 'l1 feature spec'}: expected a mapping of L1FeatureSpec keys, got "
                              f"{type(d).__name__}")
        spec = dataclass_io.from_dict(cls, {k: v for k, v in d.items() if k != "format"}, path)
        if "format" not in d:
            return spec
        try:
            fmt = load_word_format(d["format"])
        except ConfigError as exc:
            raise ConfigError(f"{dataclass_io.join_path(path, 'format')}: {exc}") from None
        return dataclasses.replace(spec, format=fmt)

    @classmethod
    def from_json(cls, text: str | bytes) -> "L1FeatureSpec":
        return cls.from_dict(dataclass_io.loads_json(text, "l1 feature spec"))


def _until_zero(fn, frac: int) -> np.ndarray:
    """round_half_up(2^frac fn(r)) for r = 0, 1, ... (integers on the 2^-frac grid) up to and including the first 0
    entry (fn positive, decreasing to 0)."""
    vals = _round_half_up(2.0**frac * fn(np.arange(0, (1 << frac) * 64, dtype=np.float64)))
    zero = int(np.flatnonzero(vals == 0)[0])
    return vals[: zero + 1]


@functools.lru_cache(maxsize=32)
def _tables(spec: L1FeatureSpec) -> dict[str, np.ndarray]:
    make = {"logpt": spec.logpt_table, "logdr": spec.logdr_table, "logabs": spec.logabs_table,
            "halfsp": spec.halfsp_table, "softplus": spec.softplus_table}
    out = {name: make[name]() for name in spec.table_names}
    for a in out.values():
        a.setflags(write=False)
    return out


# ---------------------------------------------------------------------------------------------- the integer steps
def phi_wrap(d, pi: int):
    """d - 2pi [d >= pi] + 2pi [d < -pi]: into [-pi, pi) for |d| < 3 pi (any namespace)."""
    return d - (d >= pi) * (2 * pi) + (d < -pi) * (2 * pi)


def pid_features(pid, one: int) -> dict:
    """charge and the is_* flags of l1ct particle ids (0 h0, 1 photon, 2/3 h-/+, 4/5 e-/+, 6/7 mu-/+), times ``one``."""
    ge1, ge2, ge4, ge6 = ((pid >= c) * 1 for c in (1, 2, 4, 6))
    odd = pid & 1
    return {"charge": ge2 * (2 * odd - 1) * one, "is_neutral_hadron": (1 - ge1) * one, "is_photon": (ge1 - ge2) * one,
            "is_charged_hadron": (ge2 - ge4) * one, "is_electron": (ge4 - ge6) * one, "is_muon": ge6 * one}


KINDS = ("particle", "mask", "pair")


def features_int(words, spec: L1FeatureSpec, tables: Mapping, xp, kinds=KINDS) -> dict:
    """The integer features of checked int64 ``words`` (..., N, n_fields) in the namespace ``xp`` (numpy or torch).

    tables: the spec's tables as arrays of that namespace (on the words' device). Returns {"particle": (..., N, F),
    "mask": (..., N), "pair": (..., N, N, 4)} (int64, the requested kinds) on the integer grids (value q * 2^-frac;
    the mask is the 0/1 valid bit).
    """
    fmt, m = spec.format, spec.log_mantissa_bits
    v = words[..., fmt.index("valid")]
    out = {"mask": v} if "mask" in kinds else {}
    if "particle" not in kinds and "pair" not in kinds:
        return out
    p = words[..., fmt.index("pt")] * v
    h = words[..., fmt.index("eta")] * v
    f = words[..., fmt.index("phi")] * v
    logpt = tables["logpt"]
    lp = logpt[flog_code(p, spec.pt_code_bits, m)]
    if "particle" in kinds:
        n = p.shape[-1]
        idx = (p * 0 + 1).cumsum(-1) - 1
        rank = (2 * p + 1) * v * n + (n - 1 - idx)  # unique per slot: the max is the seed, ties to the lowest index
        seed = (rank == xp.amax(rank, -1)[..., None]) * 1
        hs = (seed * h).sum(-1)[..., None]
        fs = (seed * f).sum(-1)[..., None]
        ljet = logpt[flog_code(p.sum(-1), spec.sum_code_bits, m)][..., None]
        cols = {"logpt": lambda: lp, "logptrel": lambda: lp - ljet, "deta": lambda: h - hs,
                "dphi": lambda: phi_wrap(f - fs, spec.pi)}
        unit = None
        vals = []
        for name in spec.particle_features:
            if name in cols:
                vals.append(cols[name]())
            else:
                unit = unit or pid_features(words[..., fmt.index("pid")] * v, 1 << spec.frac)
                vals.append(unit[name])
        x = xp.clip(xp.stack(vals, -1), spec.x_min, spec.x_max)
        out["particle"] = x * v[..., None]
    if "pair" in kinds:
        deta = h[..., :, None] - h[..., None, :]
        dphi = phi_wrap(f[..., :, None] - f[..., None, :], spec.pi)
        li, lj = lp[..., :, None], lp[..., None, :]
        r = xp.abs(li - lj)
        if spec.pair_set == "words":  # step 5b: U straight from the words
            mc = spec.code_mantissa_bits
            cols = [flog_code(xp.abs(deta), spec.dabs_bits, mc), flog_code(xp.abs(dphi), spec.dabs_bits, mc),
                    xp.minimum(li, lj), r]
        elif spec.pair_set == "part_codes":  # step 5c: ParT's set with the code of the octagonal distance
            a, b = xp.abs(deta), xp.abs(dphi)
            c = flog_code(xp.maximum(a, b) + (xp.minimum(a, b) >> 1), spec.dist_bits, spec.code_mantissa_bits)
            k = spec.code_step
            cols = [xp.minimum(li, lj) + k * c, r, c, li + lj + 2 * k * c]
        else:
            lnd = lndelta_int(deta, dphi, spec, tables, xp)
            sp = tables["softplus"]
            cols = [xp.minimum(li, lj) + lnd, -(r + sp[xp.clip(r, 0, sp.shape[0] - 1)]), lnd, li + lj + 2 * lnd]
        pair = xp.clip(xp.stack(cols, -1), spec.pair_min, spec.pair_max)
        pair = pair * (v[..., :, None] * v[..., None, :])[..., None]
        if spec.pairs == "upper":  # the unique pairs i <= j, row by row
            n = pair.shape[-2]
            flat = pair.reshape(pair.shape[:-3] + (n * n, pair.shape[-1]))
            up = upper_pair_index(n)
            pair = flat[..., up, :] if xp is np else flat[..., xp.as_tensor(up, device=flat.device), :]
        out["pair"] = pair
    return out


def lndelta_int(deta, dphi, spec: L1FeatureSpec, tables: Mapping, xp):
    """ln Delta of integer angle differences (word LSBs; dphi wrapped) by the spec's ``delta`` (step 5)."""
    m = spec.log_mantissa_bits
    if spec.delta == "d2":
        return tables["logdr"][flog_code(deta * deta + dphi * dphi, spec.d2_bits, m)]
    logabs, hsp = tables["logabs"], tables["halfsp"]
    a = logabs[flog_code(xp.abs(deta), spec.dabs_bits, m)]
    b = logabs[flog_code(xp.abs(dphi), spec.dabs_bits, m)]
    return xp.maximum(a, b) + hsp[xp.clip(xp.abs(a - b), 0, hsp.shape[0] - 1)]


def features_np(words, spec: L1FeatureSpec, kinds=KINDS, source: str = "words") -> dict:
    """The numpy integer reference on ``words`` (..., N, n_fields): checked (DataError naming the jet, the particle
    and the field), then :func:`features_int`."""
    w = check_words(words, spec.format, source)
    if w.shape[-2] > spec.max_particles:
        raise DataError(f"{source}: {w.shape[-2]} particles exceed the spec's max_particles = {spec.max_particles}")
    return features_int(w, spec, spec.tables(), np, kinds)


# ---------------------------------------------------------------------------------------------- exported node
def spec_of_node(node) -> L1FeatureSpec:
    """The L1FeatureSpec of an l1 feature NodeProto (:data:`OP_TYPES`; ConfigError naming the node)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if "spec" not in attrs:
        raise ConfigError(f"{node.op_type} node {node.name!r} has no 'spec' attribute")
    raw = attrs["spec"]
    try:
        return L1FeatureSpec.from_json(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except ConfigError as exc:
        raise ConfigError(f"{node.op_type} node {node.name!r}: {exc}") from None


def output_shape(node_op_type: str, words_shape, spec: L1FeatureSpec) -> tuple[int, ...]:
    """Output shape of a feature node from its words shape (..., N, n_fields)."""
    *lead, n, _ = tuple(int(s) for s in words_shape)
    kind = kind_of(node_op_type)
    if kind == "particle":
        return (*lead, n, spec.n_features)
    if kind == "mask":
        return (*lead, n)
    if spec.pairs == "upper":
        return (*lead, n * (n + 1) // 2, N_PAIR_FEATURES)
    return (*lead, n, n, N_PAIR_FEATURES)


def kind_of(op_type: str) -> str:
    """"particle", "mask" or "pair" for the op types of :data:`OP_TYPES`."""
    if op_type not in KIND_OF_OP:
        raise ConfigError(f"{op_type!r} is not an l1 feature op; known: {list(OP_TYPES)}")
    return KIND_OF_OP[op_type]


def output_grid(spec: L1FeatureSpec, kind: str) -> tuple[bool, int, int]:
    """(signed, bits, frac) of the output grid of a kind: x and pair signed on 2^-frac, the mask 1-bit unsigned."""
    if kind == "mask":
        return False, 1, 0
    return True, (spec.x_bits if kind == "particle" else spec.pair_bits), spec.frac

