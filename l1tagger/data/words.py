"""Level-1 particle words: declared word formats and the float -> word conversion (issue 15, ``docs/l1_inputs.md``).

A correlator layer-2 algorithm receives one integer word per particle. :class:`WordFormat` declares the fields of
such a word, their order on the last axis of a ``words`` array and their widths; the default ``"l1ct"`` is the CMS
Phase-2 l1ct PUPPI candidate in global coordinates (cms-sw/cmssw ``DataFormats/L1TParticleFlow/interface/
datatypes.h``):

=========  ===========================  =====================================================================
field      l1ct type                    raw integer on the word
=========  ===========================  =====================================================================
``pt``     ``pt_t = ap_ufixed<14,12>``  P in [0, 2^14 - 1], LSB 0.25 GeV (``Scales::INTPT_LSB``)
``eta``    ``glbeta_t = ap_int<12>``    H in [-2048, 2047], LSB pi/720 (``Scales::ETAPHI_LSB``)
``phi``    ``glbphi_t = ap_int<11>``    F in [-720, 719] (pi = ``INTPHI_PI`` = 720 LSB)
``pid``    ``ParticleID::bits``         0 h0, 1 photon, 2 h-, 3 h+, 4 e-, 5 e+, 6 mu-, 7 mu+ (3 bits)
``valid``  (the candidate's non-null)   1 for a particle, 0 for a padded slot (all other fields 0)
=========  ===========================  =====================================================================

Global rather than regional (``eta_t = phi_t = ap_int<10>``) coordinates: a tagger runs in layer 2 after the jet
finder, whose candidates carry global eta/phi; a 10-bit phi cannot hold +-pi (+-720 LSB), so a regional word
cannot express the phi wrap-around a jet crossing phi = +-pi needs.

A format is a frozen dataclass, selectable by name (:data:`WORD_FORMATS`), from a YAML file or a mapping::

    name: l1ct
    fields:            # word order = this order
      pt:    {bits: 14, frac: 2}
      eta:   {bits: 12}
      phi:   {bits: 11}
      pid:   {bits: 3}
      valid: {bits: 1}
    intphi_pi: 720     # pi in eta/phi LSBs
    pt_rounding: trn   # trn (AP_TRN of pt_t) | round (Scales::makePtFromFloat)

An unknown field, a missing field, an unknown key or an unsupported width is a ConfigError naming it.

Float -> word (:func:`float_to_words`, :func:`jets_to_words`), as upstream:

* pt: ``pt_rounding: trn`` (default) truncates onto the 0.25 GeV grid, as any assignment to ``pt_t``
  (``AP_TRN``) does in the firmware; ``round`` is ``Scales::makePtFromFloat`` (``std::round(pt * 4)``, ties away
  from zero). Then ``AP_SAT``: pt >= 4096 GeV becomes 2^14 - 1, counted as clipped.
* eta: ``round(eta / ETAPHI_LSB)`` (``Scales::makeGlbEta``: ties away from zero), saturated into the field and
  counted (``makeGlbEta`` would wrap on the ``ap_int`` assignment; no physical particle reaches |eta| > 8.9).
* phi: wrapped into [-pi, pi) first (periodic, never clipped), then ``round(phi / ETAPHI_LSB)``
  (``Scales::makeGlbPhi``); +pi (720) is the same direction as -pi and is written as -720.
* pid: from the JetSet's particle-type flags and charge (see :func:`pid_codes`).
* NaN / inf in a real particle: DataError naming the jet and the particle. Padded slots are all-zero words.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from l1tagger.data.jetset import PID_FLAGS
from l1tagger.errors import ConfigError, DataError

#: the fields a word must have (any order); signedness is fixed by the field
FIELD_NAMES = ("pt", "eta", "phi", "pid", "valid")
SIGNED_FIELDS = frozenset({"eta", "phi"})
#: supported widths per field (inclusive)
FIELD_BITS = {"pt": (2, 20), "eta": (4, 16), "phi": (4, 16), "pid": (3, 3), "valid": (1, 1)}
#: the per-field keys a format may give
FIELD_KEYS = {"pt": ("bits", "frac"), "eta": ("bits",), "phi": ("bits",), "pid": ("bits",), "valid": ("bits",)}
PT_ROUNDINGS = ("trn", "round")
FORMAT_KEYS = ("name", "fields", "intphi_pi", "pt_rounding")

#: l1ct ParticleID codes (``DataFormats/L1TParticleFlow/interface/datatypes.h``)
PID_HADZERO, PID_PHOTON, PID_HADMINUS, PID_HADPLUS, PID_ELEMINUS, PID_ELEPLUS, PID_MUMINUS, PID_MUPLUS = range(8)


@dataclass(frozen=True)
class WordField:
    """One field of a particle word: ``bits`` wide, signed for eta/phi; ``frac`` fraction bits (pt only)."""

    name: str
    bits: int
    frac: int = 0

    @property
    def signed(self) -> bool:
        return self.name in SIGNED_FIELDS

    @property
    def int_min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def int_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True)
class WordFormat:
    """A particle word: its fields in word order, pi in eta/phi LSBs and the pt rounding of the conversion."""

    name: str
    fields: tuple[WordField, ...]
    intphi_pi: int = 720
    pt_rounding: str = "trn"

    def __post_init__(self):
        where = f"word format {self.name!r}"
        names = [f.name for f in self.fields]
        unknown = [n for n in names if n not in FIELD_NAMES]
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}; known fields: {list(FIELD_NAMES)}")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{where}: field {dup[0]!r} given twice")
        missing = [n for n in FIELD_NAMES if n not in names]
        if missing:
            raise ConfigError(f"{where}: missing field(s) {missing}")
        for f in self.fields:
            lo, hi = FIELD_BITS[f.name]
            if isinstance(f.bits, bool) or not isinstance(f.bits, (int, np.integer)) or not lo <= f.bits <= hi:
                allowed = f"{lo}" if lo == hi else f"{lo}..{hi}"
                raise ConfigError(f"{where}: field {f.name!r} has unsupported width {f.bits!r} (bits {allowed})")
            if isinstance(f.frac, bool) or not isinstance(f.frac, (int, np.integer)) or not 0 <= f.frac < f.bits:
                raise ConfigError(f"{where}: field {f.name!r} has unsupported frac {f.frac!r} (0..bits-1)")
            if f.frac and f.name != "pt":
                raise ConfigError(f"{where}: field {f.name!r} cannot have fraction bits")
        if isinstance(self.intphi_pi, bool) or not isinstance(self.intphi_pi, (int, np.integer)) \
                or not 4 <= self.intphi_pi <= 1 << 15:
            raise ConfigError(f"{where}: intphi_pi {self.intphi_pi!r} must be an integer in [4, 32768]")
        phi = self.field("phi")
        # the on-chip delta-phi wrap subtracts or adds 2 pi once: phi must hold +-pi, and a difference must stay
        # below 3 pi (docs/l1_inputs.md)
        if (1 << (phi.bits - 1)) < self.intphi_pi or (1 << phi.bits) - 1 >= 3 * self.intphi_pi:
            need = (self.intphi_pi - 1).bit_length() + 1
            raise ConfigError(f"{where}: field 'phi' has unsupported width {phi.bits} for pi = {self.intphi_pi} "
                              f"LSB: a global phi word holding +-pi needs {need} bits")
        if self.pt_rounding not in PT_ROUNDINGS:
            raise ConfigError(f"{where}: pt_rounding {self.pt_rounding!r}; choose one of {list(PT_ROUNDINGS)}")

    # ------------------------------------------------------------------ access
    def field(self, name: str) -> WordField:
        for f in self.fields:
            if f.name == name:
                return f
        raise ConfigError(f"word format {self.name!r} has no field {name!r}")

    def index(self, name: str) -> int:
        return [f.name for f in self.fields].index(self.field(name).name)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def pt_lsb(self) -> float:
        """GeV per pt LSB (0.25 for ap_ufixed<14,12>)."""
        return 2.0 ** -self.field("pt").frac

    @property
    def etaphi_lsb(self) -> float:
        """Radians (and eta units) per eta/phi LSB: pi / intphi_pi."""
        return math.pi / self.intphi_pi

    @property
    def word_bits(self) -> int:
        """Width of a signed integer grid holding every field: the words' input Quant (scale 1)."""
        return max(f.bits + (0 if f.signed else 1) for f in self.fields)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A mapping with ``fields`` as a list of {name, bits[, frac]} in word order (the order survives any key
        sorting, e.g. ``json.dumps(sort_keys=True)``)."""
        fields = [{"name": f.name, "bits": int(f.bits), **({"frac": int(f.frac)} if f.name == "pt" else {})}
                  for f in self.fields]
        return {"name": self.name, "fields": fields, "intphi_pi": int(self.intphi_pi), "pt_rounding": self.pt_rounding}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "word format") -> "WordFormat":
        if not isinstance(d, Mapping):
            raise ConfigError(f"{source}: must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - set(FORMAT_KEYS))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {list(FORMAT_KEYS)}")
        name = str(d.get("name", source))
        raw = d.get("fields")
        if isinstance(raw, list) and all(isinstance(e, Mapping) and "name" in e for e in raw):
            items = [(e["name"], {k: v for k, v in e.items() if k != "name"}) for e in raw]
        elif isinstance(raw, Mapping) and raw:
            items = list(raw.items())
        else:
            raise ConfigError(f"{source}: 'fields' must be a mapping of field name -> {{bits: ...}} in word order")
        fields = []
        for fname, spec in items:
            if fname not in FIELD_NAMES:
                raise ConfigError(f"{source}: unknown field {fname!r}; known fields: {list(FIELD_NAMES)}")
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{source}: field {fname!r} must be a mapping like {{bits: 12}}, got {spec!r}")
            bad = sorted(set(spec) - set(FIELD_KEYS[fname]))
            if bad:
                raise ConfigError(f"{source}: field {fname!r} has unknown key(s) {bad}; known: "
                                  f"{list(FIELD_KEYS[fname])}")
            if "bits" not in spec:
                raise ConfigError(f"{source}: field {fname!r} has no width ('bits')")
            fields.append(WordField(fname, spec["bits"], spec.get("frac", 0)))
        kw = {k: d[k] for k in ("intphi_pi", "pt_rounding") if k in d}
        try:
            return cls(name, tuple(fields), **kw)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> "WordFormat":
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"word format is not valid JSON: {exc}") from None
        return cls.from_dict(d)


#: the built-in formats, selectable by name
WORD_FORMATS: dict[str, WordFormat] = {
    "l1ct": WordFormat("l1ct", (WordField("pt", 14, 2), WordField("eta", 12), WordField("phi", 11),
                                WordField("pid", 3), WordField("valid", 1))),
    "l1ct_round": WordFormat("l1ct_round", (WordField("pt", 14, 2), WordField("eta", 12), WordField("phi", 11),
                                            WordField("pid", 3), WordField("valid", 1)), pt_rounding="round"),
}


def load_word_format(src: "str | Path | Mapping | WordFormat" = "l1ct") -> WordFormat:
    """A format by name (:data:`WORD_FORMATS`), from a YAML file (``yaml.safe_load`` semantics, duplicate keys
    refused) or a mapping; ConfigError naming the problem otherwise."""
    if isinstance(src, WordFormat):
        return src
    if isinstance(src, Mapping):
        return WordFormat.from_dict(src)
    if isinstance(src, str) and src in WORD_FORMATS:
        return WORD_FORMATS[src]
    path = Path(src)
    if path.suffix in (".yaml", ".yml"):
        from l1tagger.utils.yamlio import load_yaml

        return WordFormat.from_dict(load_yaml(path), str(path))
    raise ConfigError(f"unknown word format {str(src)!r}; choose one of {sorted(WORD_FORMATS)} or a .yaml file")


# ---------------------------------------------------------------------------------------------- words check
def _where(index: tuple[int, ...]) -> str:
    return f"jet {index[0]} particle {index[1]}" if len(index) >= 2 else f"at {index}"


def check_words(words, fmt: WordFormat, source: str = "words") -> np.ndarray:
    """``words`` (..., N, n_fields) as int64, each field inside its width and the valid bit 0/1; DataError naming
    the jet, the particle and the field otherwise (a non-integer or non-finite value included)."""
    a = np.asarray(words)
    if a.ndim < 2 or a.shape[-1] != fmt.n_fields:
        raise DataError(f"{source}: shape {a.shape}, expected (..., N, {fmt.n_fields}) words of format "
                        f"{fmt.name!r} (fields {[f.name for f in fmt.fields]})")
    if a.dtype.kind not in "biuf":
        raise DataError(f"{source}: holds {a.dtype} values, expected integers")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{source} {_where(idx[:-1])} field {fmt.fields[idx[-1]].name!r}: {float(a[idx])!r} "
                            f"is not an integer word")
    w = a.astype(np.int64)
    for i, f in enumerate(fmt.fields):
        v = w[..., i]
        bad = (v < f.int_min) | (v > f.int_max)
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            raise DataError(f"{source} {_where(idx)} field {f.name!r}: {int(v[idx])} outside its {f.bits}-bit range "
                            f"[{f.int_min}, {f.int_max}]")
    return w


# ---------------------------------------------------------------------------------------------- conversion
@dataclass
class WordConversion:
    """Words of a set of jets and what the conversion saturated.

    words:       (n_jets, N, n_fields) int32 in the format's field order
    n_particles: real particles converted
    clipped:     field -> number of real particles whose value was saturated into the field
    """

    words: np.ndarray
    format: WordFormat
    n_particles: int
    clipped: dict[str, int]

    def summary(self) -> dict:
        return {"format": self.format.name, "n_jets": int(self.words.shape[0]), "n_particles": int(self.n_particles),
                "clipped": {k: int(v) for k, v in self.clipped.items()},
                "clipped_fraction": {k: (v / self.n_particles if self.n_particles else 0.0)
                                     for k, v in self.clipped.items()}}


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's ``round``/``std::round``: ties away from zero."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def pid_codes(pid_flags: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """l1ct ParticleID codes from JetSet flags (``PID_FLAGS`` order) and charge.

    photon -> 1; neutral hadron -> 0; charged hadron -> 3 (h+) / 2 (h-); electron -> 5 (e+) / 4 (e-);
    muon -> 7 (mu+) / 6 (mu-); a charged lepton/hadron of unknown (zero) charge counts as negative, as l1ct's
    charge bit 0 does. A particle without any flag (datasets without particle ids) is a charged hadron when its
    charge is nonzero, else a neutral hadron (0).
    """
    flags = np.asarray(pid_flags) != 0
    q = np.asarray(charge)
    plus = (q > 0).astype(np.int64)
    f = {name: flags[..., i] for i, name in enumerate(PID_FLAGS)}
    code = np.where(q != 0, PID_HADMINUS + plus, PID_HADZERO)  # no flag
    code = np.where(f["isNeutralHadron"], PID_HADZERO, code)
    code = np.where(f["isChargedHadron"], PID_HADMINUS + plus, code)
    code = np.where(f["isPhoton"], PID_PHOTON, code)
    code = np.where(f["isElectron"], PID_ELEMINUS + plus, code)
    code = np.where(f["isMuon"], PID_MUMINUS + plus, code)
    return code.astype(np.int64)


def float_to_words(pt, eta, phi, pid, valid, fmt: "WordFormat | str" = "l1ct",
                   source: str = "jets") -> WordConversion:
    """Words from per-particle floats (n_jets, N): pt [GeV], eta, phi [rad], pid (l1ct codes 0..7), valid (bool).

    Rounding and saturation as the module docstring; invalid slots become all-zero words. NaN/inf in a valid
    particle's pt, eta or phi is a DataError naming the jet and the particle.
    """
    fmt = load_word_format(fmt)
    valid = np.asarray(valid).astype(bool)
    pt, eta, phi = (np.asarray(a, np.float64) for a in (pt, eta, phi))
    pid = np.asarray(pid)
    shape = valid.shape
    for name, a in (("pt", pt), ("eta", eta), ("phi", phi), ("pid", pid)):
        if a.shape != shape:
            raise DataError(f"{source}: {name} has shape {a.shape}, valid has {shape}")
    for name, a in (("pt", pt), ("eta", eta), ("phi", phi)):
        bad = valid & ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{source} {_where(idx)}: {name} is {float(a[idx])!r} (NaN/inf cannot become a word)")
    bad = valid & ((pid < 0) | (pid > 7) | (pid != np.round(pid)))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{source} {_where(idx)}: pid {pid[idx]!r} is not an l1ct particle id 0..7")
    pt = np.where(valid, pt, 0.0)
    eta = np.where(valid, eta, 0.0)
    phi = np.where(valid, phi, 0.0)
    if (pt < 0).any():
        idx = tuple(int(i) for i in np.argwhere(pt < 0)[0])
        raise DataError(f"{source} {_where(idx)}: negative pt {float(pt[idx])!r}")
    f_pt, f_eta, f_phi = fmt.field("pt"), fmt.field("eta"), fmt.field("phi")
    scaled = pt * (1 << f_pt.frac)
    p = np.floor(scaled) if fmt.pt_rounding == "trn" else np.floor(scaled + 0.5)
    h = _round_half_away(eta / fmt.etaphi_lsb)
    wrapped = np.remainder(phi + math.pi, 2 * math.pi) - math.pi  # [-pi, pi): periodic, never clipped
    fi = _round_half_away(wrapped / fmt.etaphi_lsb)
    fi = np.where(fi >= fmt.intphi_pi, fi - 2 * fmt.intphi_pi, fi)  # +pi is the direction -pi
    clipped = {}
    cols = {}
    for name, f, v in (("pt", f_pt, p), ("eta", f_eta, h), ("phi", f_phi, fi)):
        out = (v < f.int_min) | (v > f.int_max)
        clipped[name] = int((out & valid).sum())
        cols[name] = np.clip(v, f.int_min, f.int_max)
    cols["pid"] = np.where(valid, pid, 0)
    cols["valid"] = valid
    words = np.stack([np.where(valid, cols[f.name], 0) for f in fmt.fields], axis=-1).astype(np.int32)
    return WordConversion(words, fmt, int(valid.sum()), clipped)


def jets_to_words(jets, n_particles: int, fmt: "WordFormat | str" = "l1ct",
                  ordering: "str | np.ndarray | None" = None) -> WordConversion:
    """Words of a JetSet in the model's slots (``l1tagger.features.layout.ordered_particles``: the same ordering,
    truncation and padding as the float features). NaN/inf in a real particle: DataError naming jet and particle."""
    from l1tagger.features.layout import ordered_particles
    from l1tagger.physics import kinematics as kin

    p4 = np.asarray(jets.p4)
    real = jets.mask
    bad = real[..., None] & ~np.isfinite(p4)
    if bad.any():
        j, i, c = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"jet {j} particle {i}: {('px', 'py', 'pz', 'E')[c]} is {float(p4[j, i, c])!r} "
                        f"(NaN/inf cannot become a word)")
    slots = ordered_particles(jets, n_particles, ordering)
    px, py, pz = (slots.p4[..., i] for i in range(3))
    pt = kin.pt(px, py)
    eta = kin.eta(px, py, pz)
    phi = kin.phi(px, py)
    pid = pid_codes(slots.pid, slots.charge)
    return float_to_words(pt, eta, phi, pid, slots.mask, fmt)


def words_to_float(words, fmt: "WordFormat | str" = "l1ct") -> dict[str, np.ndarray]:
    """Decode words (checked by :func:`check_words`) into pt [GeV], eta, phi [rad], pid and valid arrays."""
    fmt = load_word_format(fmt)
    w = check_words(words, fmt)
    get = lambda name: w[..., fmt.index(name)]  # noqa: E731
    return {"pt": get("pt") * fmt.pt_lsb, "eta": get("eta") * fmt.etaphi_lsb, "phi": get("phi") * fmt.etaphi_lsb,
            "pid": get("pid"), "valid": get("valid").astype(bool)}

