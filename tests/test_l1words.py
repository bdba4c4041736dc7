"""Issue 15 items 1-2: L1 particle words in, features and ParT pair features computed on chip, bit-exact.

Word formats and the float -> word conversion (``l1tagger.data.words``); the integer features (contract numpy ==
torch == an independent scalar reference written from docs/l1_inputs.md); the QONNX custom ops == integer reference;
a tiny graph with the three feature ops (``l1tagger.verify.graphs.l1words_graph``) converted by
``l1tagger.convert.convert`` and C-simulated (one g++ build), and lowered by the RTL route (da4ml C++ interpreter),
bit for bit on random and edge words, with the feature tables' digests in both projects' manifests; the tagger
option ``ModelConfig.inputs = "l1words"`` (training forward, export, QONNX reference) and its model inputs
(``l1tagger.features.build_inputs``: the words, the valid bit, the clip counts, the identity scaler). The whole
chain with ``l1tagger run``: ``tests/test_l1words_pipeline.py``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from l1tagger.contract.l1features import (MASK_OP, PAIR_OP, PARTICLE_FEATURES, PARTICLE_OP, L1FeatureSpec,
                                          features_np)
from l1tagger.data.words import WORD_FORMATS, WordFormat, check_words, float_to_words, jets_to_words, \
    load_word_format
from l1tagger.errors import ConfigError, DataError

N = 6
FULL = L1FeatureSpec(particle_features=PARTICLE_FEATURES)
#: the angle from the logs of |deta| and |dphi| (L1FeatureSpec.delta = "lse": no products)
LSE = L1FeatureSpec(particle_features=PARTICLE_FEATURES, delta="lse")
#: U straight from the words (L1FeatureSpec.pair_set = "words": angle codes, no angle log)
WORDS = L1FeatureSpec(particle_features=PARTICLE_FEATURES, pair_set="words")
#: ParT's set in code units (pair_set = "part_codes": one code of the octagonal distance, no angle log)
CODES = L1FeatureSpec(particle_features=PARTICLE_FEATURES, pair_set="part_codes")
LSB = math.pi / 720


# ---------------------------------------------------------------------------------------------- words
def _word(pt=0, eta=0, phi=0, pid=0, valid=1):
    return [pt, eta, phi, pid, valid]


def edge_words() -> np.ndarray:
    """(n_jets, N, 5) l1ct words: pT 0 and saturated, eta at both ends, phi wrapping at +-pi (differences of exactly
    +-pi included), identical particles, one real particle, all padded, equal-pT seeds, every particle id, padded
    slots holding stale fields, valid particles of pT 0 only."""
    pad = _word(valid=0)
    jets = [
        [_word(0, 5, 10, 1), _word(16383, -7, 12, 3), _word(16383, 40, -30, 2), _word(1, 0, 0, 0), pad, pad],
        [_word(400, -2048, 100, 4), _word(300, 2047, -100, 5), _word(2, 2047, 719, 6), _word(3, -2048, -720, 7),
         pad, pad],
        [_word(100, 0, 719, 3), _word(90, 3, -720, 2), _word(80, -3, 700, 1), _word(70, 1, 0, 0), pad, pad],
        [_word(250, 17, -33, 3), _word(250, 17, -33, 3), _word(250, 17, -33, 3), pad, pad, pad],
        [_word(12, -100, 640, 1), pad, pad, pad, pad, pad],
        [pad] * N,
        [_word(5, 1, 2, 0), _word(9, -1, -2, 2), _word(7, 9, 9, 7, valid=0), _word(16383, -2048, 719, 5, valid=0),
         pad, pad],
        [_word(0, 0, 0, 0)] * 3 + [pad] * 3,  # valid particles of pT 0 only
    ]
    return np.array(jets, dtype=np.int64)


def random_words(n_jets: int, seed: int = 0) -> np.ndarray:
    """Full-range random l1ct words with a random number of real particles (0..N), padding all-zero."""
    rng = np.random.default_rng(seed)
    w = np.zeros((n_jets, N, 5), np.int64)
    n_real = rng.integers(0, N + 1, n_jets)
    for j, k in enumerate(n_real):
        soft = j % 3 == 0
        w[j, :k, 0] = rng.integers(0, 200 if soft else 16384, k)
        w[j, :k, 1] = rng.integers(-60, 60, k) if j % 2 else rng.integers(-2048, 2048, k)
        w[j, :k, 2] = rng.integers(-720, 720, k)
        w[j, :k, 3] = rng.integers(0, 8, k)
        w[j, :k, 4] = 1
    return w


def test_l1ct_format_is_the_cms_word():
    fmt = load_word_format("l1ct")
    assert [(f.name, f.bits, f.signed) for f in fmt.fields] == [("pt", 14, False), ("eta", 12, True),
                                                                ("phi", 11, True), ("pid", 3, False),
                                                                ("valid", 1, False)]
    assert fmt.pt_lsb == 0.25 and fmt.etaphi_lsb == pytest.approx(math.pi / 720) and fmt.word_bits == 15
    assert WordFormat.from_json(fmt.to_json()) == fmt
    # the field order survives key sorting (the spec travels as sorted JSON in ONNX attributes)
    shuffled = WordFormat.from_dict({"name": "x", "fields": {"valid": {"bits": 1}, "pt": {"bits": 14, "frac": 2},
                                                             "eta": {"bits": 12}, "phi": {"bits": 11},
                                                             "pid": {"bits": 3}}})
    assert WordFormat.from_json(json.dumps(shuffled.to_dict(), sort_keys=True)).fields == shuffled.fields
    assert shuffled.index("valid") == 0


def test_word_format_yaml_and_refusals_name_the_field(tmp_path):
    good = tmp_path / "fmt.yaml"
    good.write_text("name: mine\nfields:\n  pt: {bits: 12, frac: 2}\n  eta: {bits: 12}\n  phi: {bits: 11}\n"
                    "  pid: {bits: 3}\n  valid: {bits: 1}\npt_rounding: round\n")
    fmt = load_word_format(str(good))
    assert fmt.field("pt").bits == 12 and fmt.pt_rounding == "round"
    base = WORD_FORMATS["l1ct"].to_dict()
    bad_cases = [
        ({**base, "fields": base["fields"] + [{"name": "z0", "bits": 10}]}, "unknown field 'z0'"),
        ({**base, "fields": [dict(f, bits=40) if f["name"] == "eta" else f for f in base["fields"]]},
         "field 'eta' has unsupported width 40"),
        ({**base, "fields": [dict(f, bits=4) if f["name"] == "pid" else f for f in base["fields"]]},
         "field 'pid' has unsupported width 4"),
        ({**base, "fields": [dict(f, bits=10) if f["name"] == "phi" else f for f in base["fields"]]},
         "field 'phi' has unsupported width 10"),
        ({**base, "fields": [dict(f, width=12) if f["name"] == "eta" else f for f in base["fields"]]},
         "field 'eta' has unknown key(s) ['width']"),
        ({**base, "fields": [f for f in base["fields"] if f["name"] != "pid"]}, "missing field(s) ['pid']"),
        ({**base, "endian": "big"}, "unknown key(s) ['endian']"),
        ({**base, "pt_rounding": "ceil"}, "pt_rounding 'ceil'"),
    ]
    for d, msg in bad_cases:
        with pytest.raises(ConfigError) as exc:
            load_word_format(d)
        assert msg in str(exc.value)
    with pytest.raises(ConfigError, match="unknown word format 'l1ct_v9'"):
        load_word_format("l1ct_v9")
    with pytest.raises(ConfigError, match=r"^fromat: unknown key \(known keys: \[.*'format'"):
        L1FeatureSpec.from_dict({"fromat": "l1ct"})
    with pytest.raises(ConfigError, match=r"^format: unknown word format 'l1ct_v9'"):
        L1FeatureSpec.from_dict({"format": "l1ct_v9"})
    with pytest.raises(ConfigError, match=r"^frac: expected int, got str"):
        L1FeatureSpec.from_dict({"frac": "4"})
    with pytest.raises(ConfigError, match="unknown particle feature 'part_e_log'"):
        L1FeatureSpec.from_dict({"particle_features": ["logpt", "part_e_log"]})


def test_float_to_words_rounds_saturates_wraps_and_counts():
    lsb = LSB
    pt = np.array([[10.74, 10.74, 5000.0, 0.1, 3.0]])
    eta = np.array([[2.5 * lsb, -2.5 * lsb, 9.5, -9.5, 0.0]])
    phi = np.array([[math.pi - 1e-9, -math.pi, 3 * math.pi + 0.1, 0.0, 1.0]])
    pid = np.array([[1, 3, 5, 0, 7]])
    valid = np.array([[1, 1, 1, 1, 0]], bool)
    conv = float_to_words(pt, eta, phi, pid, valid, "l1ct")
    w = conv.words[0]
    assert list(w[:, 0]) == [42, 42, 16383, 0, 0]  # AP_TRN: floor(10.74 * 4) = 42; AP_SAT at 2^14 - 1
    assert list(w[:, 1]) == [3, -3, 2047, -2048, 0]  # round ties away from zero; saturated into ap_int<12>
    assert list(w[:, 2]) == [-720, -720, -697, 0, 0]  # +pi is -pi; 3 pi + 0.1 wraps to -pi + 0.1, never clips
    assert list(w[:, 3]) == [1, 3, 5, 0, 0] and list(w[:, 4]) == [1, 1, 1, 1, 0]
    assert conv.clipped == {"pt": 1, "eta": 2, "phi": 0} and conv.n_particles == 4
    assert conv.summary()["clipped_fraction"]["eta"] == 0.5
    rounded = float_to_words(pt, eta, phi, pid, valid, "l1ct_round").words[0]
    assert list(rounded[:, 0]) == [43, 43, 16383, 0, 0]  # Scales::makePtFromFloat: std::round(pt * 4)
    nan = eta.copy()
    nan[0, 1] = np.nan
    with pytest.raises(DataError, match="jet 0 particle 1: eta is nan"):
        float_to_words(pt, nan, phi, pid, valid)
    nan[0, 1], nan[0, 4] = 0.0, np.inf  # a padded slot's float is never read
    float_to_words(pt, nan, phi, pid, valid)


def test_jets_to_words_uses_the_model_slots_and_names_a_nan_particle(toy_jets):
    from l1tagger.features.layout import ordered_particles
    from l1tagger.physics import kinematics as kin

    conv = jets_to_words(toy_jets, 16, "l1ct", ordering="pt")
    slots = ordered_particles(toy_jets, 16, "pt")
    assert conv.words.shape == (len(toy_jets), 16, 5)
    assert np.array_equal(conv.words[..., 4] == 1, slots.mask)
    pt = kin.pt(slots.p4[..., 0], slots.p4[..., 1])
    assert np.array_equal(conv.words[..., 0], np.where(slots.mask, np.minimum(np.floor(pt * 4), 16383), 0))
    assert not conv.words[~slots.mask].any()
    check_words(conv.words, load_word_format("l1ct"))
    bad = toy_jets.subset(np.arange(4))
    bad.p4[2, 1, 0] = np.nan
    with pytest.raises(DataError, match="jet 2 particle 1: px is nan"):
        jets_to_words(bad, 16)


def test_check_words_names_jet_particle_and_field():
    w = edge_words()
    w[3, 2, 3] = 9
    with pytest.raises(DataError, match="jet 3 particle 2 field 'pid': 9 outside its 3-bit range"):
        features_np(w, FULL)
    w = edge_words().astype(np.float64)
    w[1, 0, 1] = 0.5
    with pytest.raises(DataError, match="jet 1 particle 0 field 'eta': 0.5 is not an integer word"):
        features_np(w, FULL)


# ---------------------------------------------------------------------------------------------- integer features
def _scalar_reference(jet: np.ndarray, spec: L1FeatureSpec):
    """docs/l1_inputs.md step by step in plain Python integers, tables from math.log (independent of the vectorised
    contract code)."""
    m, fr, pi = spec.log_mantissa_bits, spec.frac, 720

    def code(x):
        s = max(0, x.bit_length() - (m + 1))
        return s * (1 << m) + (x >> s), s

    def mid(x):
        c, s = code(x)
        if x == 0:
            return 0.5
        u = c - s * (1 << m)
        return u * 2**s + (2**s - 1) / 2

    rnd = lambda v: math.floor(v + 0.5)  # noqa: E731
    lnpt = lambda x: rnd(2**fr * math.log(mid(x) * 0.25))  # noqa: E731
    wrap = lambda d: d - 2 * pi if d >= pi else (d + 2 * pi if d < -pi else d)  # noqa: E731
    sat = lambda q, b: min(max(q, -(1 << (b - 1))), (1 << (b - 1)) - 1)  # noqa: E731
    parts = [tuple(int(x) * int(p[4]) for x in p[:4]) + (int(p[4]),) for p in jet]
    seed = max(range(len(parts)), key=lambda i: (parts[i][4] * (2 * parts[i][0] + 1), -i))
    ljet = lnpt(sum(p[0] for p in parts))
    x, pair = [], []
    for pt, eta, phi, pid, v in parts:
        flags = {"charge": (1 if pid % 2 else -1) if pid >= 2 else 0, "is_neutral_hadron": int(pid == 0),
                 "is_photon": int(pid == 1), "is_charged_hadron": int(pid in (2, 3)),
                 "is_electron": int(pid in (4, 5)), "is_muon": int(pid in (6, 7))}
        vals = {"logpt": lnpt(pt), "logptrel": lnpt(pt) - ljet, "deta": eta - parts[seed][1],
                "dphi": wrap(phi - parts[seed][2]), **{k: f << fr for k, f in flags.items()}}
        x.append([sat(vals[k], spec.x_bits) * v for k in spec.particle_features])
        row = []
        for pt2, eta2, phi2, _, v2 in parts:
            if spec.pair_set == "words":  # floor-log codes of |deta|, |dphi| from the bit length; pt-log min, |diff|
                mc = spec.code_mantissa_bits
                sh = [max(0, abs(d).bit_length() - (mc + 1)) for d in (eta - eta2, wrap(phi - phi2))]
                q = [k * (1 << mc) + (abs(d) >> k) for k, d in zip(sh, (eta - eta2, wrap(phi - phi2)))]
                q += [min(lnpt(pt), lnpt(pt2)), abs(lnpt(pt) - lnpt(pt2))]
                row.append([sat(a, spec.pair_bits) * v * v2 for a in q])
                continue
            if spec.pair_set == "part_codes":  # code of max + min // 2; K = round(16 ln 2 / 4) = 3 written out
                mc, kk = spec.code_mantissa_bits, round(2**fr * math.log(2) / 2**spec.code_mantissa_bits)
                ae, ap = abs(eta - eta2), abs(wrap(phi - phi2))
                dd = max(ae, ap) + min(ae, ap) // 2
                k = max(0, dd.bit_length() - (mc + 1))
                c = k * (1 << mc) + (dd >> k)
                li, lj = lnpt(pt), lnpt(pt2)
                q = [min(li, lj) + kk * c, abs(li - lj), c, li + lj + 2 * kk * c]
                row.append([sat(a, spec.pair_bits) * v * v2 for a in q])
                continue
            if spec.delta == "d2":
                d2 = (eta - eta2) ** 2 + wrap(phi - phi2) ** 2
                lnd = rnd(2**fr * 0.5 * math.log(mid(d2) * LSB**2))
            else:  # 1/2 ln(exp(2a) + exp(2b)) = max + 1/2 ln(1 + exp(-2 |a - b|)), every term rounded
                a, b = (rnd(2**fr * math.log(mid(abs(d)) * LSB)) for d in (eta - eta2, wrap(phi - phi2)))
                lnd = max(a, b) + rnd(2**fr * 0.5 * math.log1p(math.exp(-2 * abs(a - b) / 2**fr)))
            li, lj = lnpt(pt), lnpt(pt2)
            r = abs(li - lj)
            sp = rnd(2**fr * math.log1p(math.exp(-r / 2**fr)))
            q = [min(li, lj) + lnd, -(r + sp), lnd, li + lj + 2 * lnd]
            row.append([sat(a, spec.pair_bits) * v * v2 for a in q])
        pair.append(row)
    return np.array(x), np.array(pair)


def test_numpy_torch_and_scalar_reference_agree_on_edge_and_random_words():
    import torch

    from l1tagger.features.onchip import WordFeatureOp

    words = np.concatenate([edge_words(), random_words(300)])
    ref = features_np(words, FULL)
    for j in range(len(edge_words())):  # independent reference on every edge jet
        x, pair = _scalar_reference(words[j], FULL)
        assert np.array_equal(ref["particle"][j], x), j
        assert np.array_equal(ref["pair"][j], pair), j
    assert np.array_equal(ref["mask"], words[..., 4])
    for kind in ("particle", "mask", "pair"):
        op = WordFeatureOp(FULL, kind)
        got = op(torch.as_tensor(words, dtype=torch.float32)).numpy()
        frac = 0 if kind == "mask" else FULL.frac
        assert np.array_equal(got * 2**frac, ref[kind]), kind
    # the edge cases do what the spec says
    x, pair = ref["particle"], ref["pair"]
    lnd = FULL.tables()["logdr"]
    assert x[5].sum() == 0 and pair[5].sum() == 0  # all padded
    assert (pair[4, 1:] == 0).all() and (pair[4, 0, 1:] == 0).all() and pair[4, 0, 0, 2] == lnd[0]  # one particle
    assert (pair[3, :3, :3, 2] == lnd[0]).all()  # identical particles: Delta R = 0
    assert (pair[3, :3, :3] == pair[3, 0, 0]).all() and pair[3, 0, 0, 1] == -FULL.tables()["softplus"][0]
    assert (x[0, 0, 2], x[0, 1, 2], x[0, 2, 2]) == (12, 0, 47)  # seed = slot 1 (pT 16383, tie to the lower index)
    assert x[2, 1, 3] == 1 and pair[2, 0, 1, 2] == lnd[3**2 + 1]  # phi -720 - 719 wraps to +1: D2 = 9 + 1
    assert abs(pair[1, 0, 1, 2] / 16 - math.log(math.hypot(4095, 200) * LSB)) < 0.07  # eta at both ends
    assert x[6, 0, 2] == 2 and not x[7, :3, 1].any()  # stale padded pT 16383 is no seed; pT 0 jets: ratio 1
    assert not np.any(pair[6, 2:]) and not np.any(x[6, 2:])  # stale padded words never leak
    assert np.array_equal(pair, np.swapaxes(pair, 1, 2))


def _agrees_with_the_scalar_reference(spec: L1FeatureSpec):
    """(words, numpy features) on the edge words and 300 random jets, after checking numpy == the scalar reference
    (every jet, particle and pair features) == the torch training op (pair features)."""
    import torch

    from l1tagger.features.onchip import WordFeatureOp

    words = np.concatenate([edge_words(), random_words(300)])
    ref = features_np(words, spec)
    for j in range(len(words)):
        x, pair = _scalar_reference(words[j], spec)
        assert np.array_equal(ref["pair"][j], pair), j
        assert np.array_equal(ref["particle"][j], x), j
    got = WordFeatureOp(spec, "pair")(torch.as_tensor(words, dtype=torch.float32)).numpy()
    assert np.array_equal(got * 2**spec.frac, ref["pair"])
    return words, ref


def test_lse_angle_agrees_with_the_scalar_reference_and_stays_within_one_lsb_of_d2():
    """The product-free angle (delta = lse): contract numpy == torch == the scalar reference on edge and random words;
    on the pairs of real particles it differs from the exact-square angle by at most 2 LSB (1 off the x = 0 code)."""
    words, ref = _agrees_with_the_scalar_reference(LSE)
    t = LSE.tables()
    assert set(t) == {"logpt", "logabs", "halfsp", "softplus"} and "logdr" not in t
    assert (ref["pair"][3, :3, :3, 2] == t["logabs"][0] + t["halfsp"][0]).all()  # identical particles
    d2 = features_np(words, FULL)["pair"][..., 2]
    real = (words[..., 4][:, :, None] * words[..., 4][:, None, :]).astype(bool)
    diff = np.abs(ref["pair"][..., 2] - d2)[real]
    assert diff.max() <= 2 and np.mean(diff == 0) > 0.5
    assert np.array_equal(ref["particle"], features_np(words, FULL)["particle"])  # only the angle differs
    assert LSE.table_digest() != FULL.table_digest()
    assert L1FeatureSpec.from_json(LSE.to_json()) == LSE and "delta" not in FULL.to_dict()
    with pytest.raises(ConfigError, match="'delta' = 'exact'"):
        L1FeatureSpec(delta="exact")


def test_words_pair_set_agrees_with_the_scalar_reference():
    """U straight from the words (pair_set = words): contract numpy == torch == the scalar reference on edge and
    random words; the edge words give the codes the spec says; only LOGPT is tabulated; bad specs are refused."""
    words, ref = _agrees_with_the_scalar_reference(WORDS)
    pair, lp = ref["pair"], ref["particle"][..., 0]
    assert (pair[3, :3, :3, :2] == 0).all() and (pair[3, :3, :3, 3] == 0).all()  # identical particles: codes 0
    assert (pair[3, :3, :3, 2] == lp[3, 0]).all()
    assert tuple(pair[2, 0, 1, :2]) == (3, 1)  # |deta| 3 -> code 3; phi 719 - (-720) wraps to -1 -> code 1
    assert pair[1, 0, 1, 0] == 9 * 4 + (4095 >> 9)  # eta at both ends: |deta| 4095, 12-bit code, M' = 2
    assert (pair[4, 1:] == 0).all() and tuple(pair[4, 0, 0]) == (0, 0, lp[4, 0], 0)  # one real particle
    assert not pair[5].any() and not np.any(pair[6, 2:])  # all padded; stale padded words never leak
    real = (words[..., 4][:, :, None] * words[..., 4][:, None, :]).astype(bool)
    assert pair[..., 0][real].max() <= l1features_n_codes(WORDS) - 1
    assert np.array_equal(pair, np.swapaxes(pair, 1, 2))
    assert set(WORDS.tables()) == {"logpt"} and WORDS.table_names == ("logpt",)
    assert WORDS.pair_feature_names == ("cdeta", "cdphi", "lptmin", "lptdiff")
    assert WORDS.table_digest() != FULL.table_digest()
    assert L1FeatureSpec.from_json(WORDS.to_json()) == WORDS and "pair_set" not in FULL.to_dict()
    assert WORDS.to_dict()["code_mantissa_bits"] == 2
    coarse = features_np(words, L1FeatureSpec(pair_set="words", code_mantissa_bits=0))["pair"]
    assert coarse[..., 0].max() < pair[..., 0].max()  # fewer codes per octave
    with pytest.raises(ConfigError, match="'pair_set' = 'raw'"):
        L1FeatureSpec(pair_set="raw")
    with pytest.raises(ConfigError, match="'delta' = 'lse': applies to pair_set 'part' only"):
        L1FeatureSpec(pair_set="words", delta="lse")
    with pytest.raises(ConfigError, match="'code_mantissa_bits' = 9"):
        L1FeatureSpec.from_dict({"pair_set": "words", "code_mantissa_bits": 9})


def test_part_codes_pair_set_agrees_with_the_scalar_reference():
    """ParT's set in code units (pair_set = part_codes): numpy == torch == the scalar reference; the code step K is 3
    at frac 4, M' 2; the octagonal distance's code tracks ln Delta within a code step or two on real pairs."""
    words, ref = _agrees_with_the_scalar_reference(CODES)
    assert CODES.code_step == 3 and set(CODES.tables()) == {"logpt"}
    pair = ref["pair"]
    assert (pair[3, :3, :3, 2] == 0).all() and (pair[3, :3, :3, 1] == 0).all()  # identical particles
    assert pair[2, 0, 1, 2] == 3 + 0  # |deta| 3, |dphi| 1 (wrapped): D = 3 + 0 -> code 3
    real = (words[..., 4][:, :, None] * words[..., 4][:, None, :]).astype(bool)
    lnd = features_np(words, FULL)["pair"][..., 2][real] / 16.0  # ln Delta of the exact squares
    big = pair[..., 2][real] >= 16  # codes in the log region (D >= 8 LSB)
    approx = np.log(2.0) / 4 * pair[..., 2][real][big]  # code c ~ 4 log2(D) + const
    off = lnd[big] - approx
    assert np.ptp(off) < 0.6, np.ptp(off)  # a constant offset, up to ~2 code steps (0.35) + octagon error (0.12)
    assert L1FeatureSpec.from_json(CODES.to_json()) == CODES and CODES.to_dict()["pair_set"] == "part_codes"


def l1features_n_codes(spec: L1FeatureSpec) -> int:
    from l1tagger.contract.l1features import n_codes

    return n_codes(spec.dabs_bits, spec.code_mantissa_bits)


def test_tables_are_deterministic_and_digested():
    a, b = L1FeatureSpec(), L1FeatureSpec.from_json(L1FeatureSpec().to_json())
    assert a == b and a.table_digest() == b.table_digest()
    assert a.table_digest() != L1FeatureSpec(frac=5).table_digest()
    t = a.tables()
    assert all(np.all(np.diff(t[k]) >= 0) for k in ("logpt", "logdr"))  # monotone: min(L_i, L_j) = L(min pT)
    assert t["softplus"][-1] == 0 and t["softplus"][0] == round(16 * math.log(2))


# ---------------------------------------------------------------------------------------------- graph walkers
@pytest.fixture(scope="module", params=["d2", "lse", "words", "part_codes"])
def graph(request, tmp_path_factory):
    import onnx

    from l1tagger.verify.graphs import l1words_graph

    spec = {"d2": FULL, "lse": LSE, "words": WORDS, "part_codes": CODES}[request.param]
    d = tmp_path_factory.mktemp(f"l1words_{request.param}")
    model = l1words_graph(spec, N)
    onnx.save(model.model, str(d / "tiny.onnx"))
    feed = {"words": np.concatenate([edge_words(), random_words(1000, seed=3)]).astype(np.float32)}
    return {"dir": d, "onnx": d / "tiny.onnx", "model": model, "feed": feed, "spec": spec}


def test_qonnx_custom_ops_equal_intref_and_numpy(graph):
    from l1tagger.export.intref import run_intref
    from l1tagger.export.reference import run_reference

    feed = graph["feed"]
    ref = run_reference(graph["model"], feed)
    ir = run_intref(graph["model"], feed)
    want = features_np(feed["words"], graph["spec"])
    assert np.array_equal(ref["x"] * 2**graph["spec"].frac, want["particle"])
    assert np.array_equal(ref["pair"] * 2**graph["spec"].frac, want["pair"])
    for k in ("out", "x", "pair"):
        assert np.array_equal(ir[k].value(), ref[k]), k
    bad = {"words": feed["words"][:3].copy()}
    bad["words"][1, 2, 3] = 8
    with pytest.raises(DataError, match="L1ParticleFeatures node 'x' words jet 1 particle 2 field 'pid'"):
        run_reference(graph["model"], bad)


def test_hls_csim_bit_exact_with_features_on_chip(graph):
    from l1tagger.convert import convert
    from l1tagger.convert.frontend import build_layer_list
    from l1tagger.verify.csim import run_csim

    feed = graph["feed"]
    convert(graph["onnx"], graph["dir"] / "prj", tb_inputs=feed, n_tb=len(feed["words"]))
    fe = build_layer_list(graph["model"])
    assert {f["op"] for f in fe.feature_layers} == {PARTICLE_OP, MASK_OP, PAIR_OP}
    assert {f["table_digest"] for f in fe.feature_layers} == {graph["spec"].table_digest()}
    firmware = "".join(p.read_text() for p in (graph["dir"] / "prj" / "firmware").glob("parameters.h"))
    assert f"sha256 {graph['spec'].table_digest()}" in firmware
    manifest = json.loads((graph["dir"] / "prj" / "manifest.json").read_text())  # the project names its tables
    assert manifest["l1features"] == json.loads(json.dumps(fe.feature_layers))
    assert {f["table_digest"] for f in manifest["l1features"]} == {graph["spec"].table_digest()}
    res = run_csim(graph["dir"] / "prj")
    assert res.n_jets == len(feed["words"])
    assert res.mismatching_values == 0 and res.bit_exact, res.first_mismatch
    for layer in ("x", "pair", "mask", "out"):
        assert res.layer_mismatches.get(layer, 0) == 0
    assert res.layers_compared >= 12


def test_rtl_route_bit_exact_with_features_on_chip(graph):
    from l1tagger.rtl.flow import run_rtl_flow

    feed = graph["feed"]
    s = run_rtl_flow(graph["onnx"], graph["dir"] / "rtl", interp=True, inputs=feed, n_jets=len(feed["words"]),
                     progress=False)
    assert s["interp"]["n_jets"] == len(feed["words"])
    assert s["interp"]["n_mismatches"] == 0 and s["interp"]["bit_exact"], s["interp"]["first_mismatch"]
    manifest = json.loads((graph["dir"] / "rtl" / "rtl_manifest.json").read_text())  # the ROMs' contents, named
    assert {f["op"] for f in manifest["l1_features"]} == {PARTICLE_OP, MASK_OP, PAIR_OP}
    assert {f["table_digest"] for f in manifest["l1_features"]} == {graph["spec"].table_digest()}


def test_rtl_random_stimulus_is_valid_words_and_bit_exact(graph):
    """Without given inputs the RTL route drives a graph with on-chip features with valid words of its format (not
    arbitrary integers on the port's grid, which the word check refuses), full-range and collimated jets, padded
    slots and all-padded jets included."""
    from l1tagger.export.reference import run_reference
    from l1tagger.rtl.flow import interpreter_check, random_stimulus
    from l1tagger.rtl.lower import lower_model

    lowered = lower_model(graph["onnx"], progress=False)
    stim = random_stimulus(lowered, 400, seed=1)
    assert list(stim) == ["words"] and stim["words"].shape == (400, N, 5) and stim["words"].dtype == np.float32
    w = check_words(stim["words"], graph["spec"].format)
    valid = w[..., 4] == 1
    assert not valid.any(axis=1).all() and valid.all(axis=1).any()  # all-padded and full jets
    assert not w[~valid].any()  # padded slots are all-zero words
    assert w[..., 0].max() > 4096 and w[..., 1].min() < -1000 and set(np.unique(w[valid][:, 3])) == set(range(8))
    assert (w[..., 2] == -720).any() or (np.abs(w[..., 2]) > 700).any()  # phi near +-pi
    res = interpreter_check(lowered, stim, run_reference(graph["model"], stim))
    assert res["n_jets"] == 400 and res["bit_exact"], res["first_mismatch"]


def test_estimates_count_the_feature_ops(graph):
    from l1tagger.report.estimates import estimate_graph

    e = estimate_graph(graph["model"].model)
    ops = {layer["op"]: layer for layer in e["layers"]}
    squares = N * (N + 1) if graph["spec"] == FULL else 0  # two per unordered pair; lse and words: no products
    assert ops[PAIR_OP]["lut"] > 0 and ops[PARTICLE_OP]["lut"] > 0 and ops[PAIR_OP]["products"] == squares
    assert (ops[PAIR_OP]["dsp"] > 0) == (squares > 0)
    assert e["total"]["lut"] >= ops[PAIR_OP]["lut"] + ops[PARTICLE_OP]["lut"]
    assert e["pair_features"].startswith("on chip")  # no pair graph input: nothing is computed off chip
    assert e["blocks"]["pair features"]["lut"] == ops[PAIR_OP]["lut"]  # the pair features are a block of the totals
    assert e["blocks"]["particle features"]["lut"] >= ops[PARTICLE_OP]["lut"]
    assert e["blocks"]["interaction U"]["lut"] > 0


def test_lse_angle_costs_less_than_d2():
    """The product-free angle removes the squares (DSP) and the wide D2 code: the pair features' estimate drops."""
    import dataclasses

    from l1tagger.report.estimates import estimate_graph
    from l1tagger.verify.graphs import l1words_graph

    def pair_cost(spec):
        e = estimate_graph(l1words_graph(dataclasses.replace(spec, particle_features=("logpt",)), 16).model)
        return e["blocks"]["pair features"]

    d2, lse, words = pair_cost(FULL), pair_cost(LSE), pair_cost(WORDS)
    assert lse["dsp"] == 0 < d2["dsp"]
    assert lse["lut"] + 55 * lse["dsp"] < 0.8 * (d2["lut"] + 55 * d2["dsp"]), (lse, d2)  # da4ml: 0.54, below
    assert words["dsp"] == 0 and words["lut"] < lse["lut"], (words, lse)  # no angle log, no ROM per pair


def test_words_pair_set_costs_less_than_lse_in_da4ml(tmp_path):
    """da4ml's cost of the pair op (its per-node split) at N = 16: lse below 0.6 of d2; U straight from the words
    and ParT's set in code units below 3/4 of lse."""
    import dataclasses

    import onnx

    from l1tagger.rtl.lower import lower_model
    from l1tagger.verify.graphs import l1words_graph

    def pair_cost(spec, name):
        onnx.save(l1words_graph(dataclasses.replace(spec, particle_features=("logpt",)), 16).model,
                  str(tmp_path / f"{name}.onnx"))
        return lower_model(tmp_path / f"{name}.onnx", progress=False).node_cost["pair"]

    lse, words, codes = pair_cost(LSE, "lse"), pair_cost(WORDS, "words"), pair_cost(CODES, "codes")
    assert 0 < lse < 0.6 * pair_cost(FULL, "d2")  # the product-free angle: no squares, narrow codes
    assert 0 < words < 0.75 * lse, (words, lse)
    assert 0 < codes < 0.75 * lse, (codes, lse)


# ---------------------------------------------------------------------------------------------- the tagger option
def test_model_config_l1words_validation():
    from l1tagger.models.config import ModelConfig

    cfg = ModelConfig.from_dict({"inputs": "l1words", "l1features": {"particle_features": ["logpt", "deta"]}})
    assert cfg.n_features == 2 and cfg.l1_spec.particle_features == ("logpt", "deta")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"^l1features\.bits: unknown key \(known keys of l1features"):
        ModelConfig.from_dict({"inputs": "l1words", "l1features": {"bits": 3}})
    with pytest.raises(ConfigError, match="inputs: 'words' is not one of"):
        ModelConfig.from_dict({"inputs": "words"})
    with pytest.raises(ConfigError, match="l1features: given, but inputs is 'features'"):
        ModelConfig.from_dict({"l1features": {"frac": 3}})


def test_l1words_tagger_trains_on_the_chip_integers_and_exports_bit_exactly(tmp_path, toy_jets):
    import torch

    from l1tagger.export.crosscheck import crosscheck
    from l1tagger.export.export import export_qonnx_model
    from l1tagger.export.intref import run_intref
    from l1tagger.export.reference import run_reference
    from l1tagger.models import build_model
    from l1tagger.models.config import ModelConfig
    from l1tagger.qat.ops import QuantOps, calibrate, load_float_state_dict

    torch.manual_seed(0)
    cfg = ModelConfig.from_dict(dict(n_particles=N, n_classes=3, inputs="l1words", d_model=8, n_heads=2,
                                     ffn_dim=8, embed_dim=8, head_dim=8, pair_hidden=4))
    words = np.concatenate([jets_to_words(toy_jets, N).words[:40], edge_words()])
    w = torch.as_tensor(words, dtype=torch.float32)
    fmodel = build_model(cfg)
    x, mask, pair = fmodel.words(w)
    want = features_np(words, cfg.l1_spec)
    assert np.array_equal(x.numpy() * 16, want["particle"]) and np.array_equal(pair.numpy() * 16, want["pair"])
    fmodel(w).sum().backward()  # trains: gradients reach the weights, not the words
    assert fmodel.embed_fc1.weight.grad is not None
    fmodel(w, mask)  # a mask equal to the valid bits is accepted
    bad = mask.clone()
    bad[2, 0] = 1 - bad[2, 0]
    with pytest.raises(DataError, match="mask jet 2 particle 0"):
        fmodel(w, bad)
    qmodel = build_model(cfg, ops=QuantOps("quantize/int8_floor.yaml"))
    load_float_state_dict(qmodel, fmodel.state_dict())
    calibrate(qmodel, [(w,)])
    with torch.no_grad():
        y = qmodel(w).numpy()
    wrapper = export_qonnx_model(qmodel, (w[:1],), tmp_path / "model.onnx", input_names=("words",))
    assert [i.name for i in wrapper.graph.input] == ["words"]
    assert {PARTICLE_OP, MASK_OP, PAIR_OP} <= {n.op_type for n in wrapper.graph.node}
    ref = run_reference(wrapper, {"words": words})["logits"]
    assert np.array_equal(ref, y)
    assert np.array_equal(run_intref(wrapper, {"words": words})["logits"].value(), ref)
    check = crosscheck(qmodel, wrapper, {"words": words})  # every intermediate tensor: QONNX == integer emulation
    assert check.ok and check.n_tensors_compared > 50, check.first_mismatch


# ---------------------------------------------------------------------------------------------- model inputs
def _words_cfg(n=24, **kw):
    from l1tagger.models.config import ModelConfig

    return ModelConfig.from_dict(dict(n_particles=n, n_classes=3, inputs="l1words", **kw))


def test_build_inputs_gives_words_the_valid_bit_and_the_clip_counts(toy_jets):
    """``build_inputs`` for a model on L1 words: x = the words (float32 integers) in the model's slots, mask = the
    valid bit, no pair, ``graph_feed()`` = {"words": ...}, what the conversion saturated kept on the inputs."""
    from l1tagger.features.inputs import build_inputs

    jets = toy_jets.subset(np.arange(12))
    jets.p4[0, 0] = [5000.0, 0.0, 0.0, 5000.0]  # pT 5 TeV: saturates the 14-bit pt field
    eta = 9.5  # beyond |eta| 8.93: saturates the 12-bit eta field
    jets.p4[1, 0] = [60.0, 0.0, 60.0 * math.sinh(eta), 60.0 * math.cosh(eta)]
    cfg = _words_cfg(ordering="pt")
    inputs, scaler = build_inputs(jets, cfg)
    want = jets_to_words(jets, 24, "l1ct", ordering="pt").words
    assert inputs.x.dtype == np.float32 and np.array_equal(inputs.x, want) and inputs.is_words
    assert np.array_equal(inputs.mask, want[..., 4]) and inputs.pair is None
    assert list(inputs.graph_feed()) == ["words"] and inputs.graph_feed()["words"] is inputs.x
    assert inputs.tensors()[2] is None and np.array_equal(inputs.labels, jets.labels)
    conv = inputs.word_conversion
    assert conv["format"] == "l1ct" and conv["n_particles"] == int(jets.mask.sum())
    assert conv["clipped"] == {"pt": 1, "eta": 1, "phi": 0}
    assert inputs.x[0, 0, 0] == 16383 and inputs.x[1, :, 1].max() == 2047
    # the model computes its features from exactly these words
    got = features_np(inputs.x, cfg.l1_spec)
    assert np.array_equal(got["mask"], want[..., 4])


def test_words_scaler_is_the_identity_and_round_trips(toy_jets):
    """A model on words standardises nothing: its scaler is the identity, survives the checkpoint's JSON
    (``to_dict`` / ``from_dict``) and is refused for features; a fitted feature scaler is refused for words."""
    from l1tagger.features.inputs import FeatureScaler, build_inputs, standardise
    from l1tagger.models.config import ModelConfig

    cfg = _words_cfg(n=8)
    inputs, scaler = build_inputs(toy_jets, cfg, clip=6.0)
    assert scaler.is_identity and scaler.clip == 6.0
    back = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert back.is_identity and back.clip == 6.0
    again, same = build_inputs(toy_jets, cfg, back)
    assert same is back and np.array_equal(again.x, inputs.x)
    fcfg = ModelConfig.from_dict(dict(n_particles=8, n_classes=3))
    finputs, fitted = build_inputs(toy_jets, fcfg)
    assert not fitted.is_identity and list(finputs.graph_feed()) == ["x", "mask", "pair"]
    assert finputs.word_conversion is None and not finputs.is_words
    with pytest.raises(ConfigError, match="takes L1 particle words .* holds feature statistics"):
        build_inputs(toy_jets, cfg, fitted)
    with pytest.raises(DataError, match="scaler has no feature statistics"):
        build_inputs(toy_jets, fcfg, back)
    with pytest.raises(DataError, match="never standardised"):
        standardise(inputs, fitted)
