"""Class-set registry and the truth-matching helpers (on hand-built Pythia-style event records)."""

import numpy as np
import pytest

from l1tagger.data.classes import CLASS_SETS, get_class_set
from l1tagger.data.generate import chunk_seed, jet_matches, truth_objects, visible_decay_products
from l1tagger.errors import DataError


def test_known_class_sets():
    assert get_class_set("hls4ml5").class_names == ["g", "q", "W", "Z", "t"]
    assert get_class_set("jetclass10").class_names == ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq",
                                                       "Tbqq", "Tbl"]
    for name in CLASS_SETS:
        cs = get_class_set(name)
        assert cs.jet_pt[0] < cs.jet_pt[1]
        for spec in cs.classes:
            lines = spec.pythia_settings()
            assert any(line.startswith("PhaseSpace:pTHatMin") for line in lines)


def test_unknown_class_set_names_it_and_lists_known():
    with pytest.raises(DataError, match=r"'nope'.*hls4ml5.*jetclass10"):
        get_class_set("nope")
    with pytest.raises(DataError, match="'X' is not in class set"):
        get_class_set("hls4ml5").get("X")


def test_chunk_seed_is_pure_and_distinct():
    assert chunk_seed(1, 0, 0) == chunk_seed(1, 0, 0)
    seeds = {chunk_seed(s, k, c) for s in (1, 2) for k in range(10) for c in range(20)}
    assert len(seeds) == 400
    assert all(1 <= s <= 900_000_000 for s in seeds)


def _record(rows):
    """rows: (id, status, d1, d2, px, py, pz, e) -> event dict as generate uses it."""
    a = np.array(rows, dtype=np.float64)
    return {"id": a[:, 0].astype(int), "status": a[:, 1].astype(int), "d1": a[:, 2].astype(int),
            "d2": a[:, 3].astype(int), "px": a[:, 4], "py": a[:, 5], "pz": a[:, 6], "e": a[:, 7]}


def test_top_decay_products_follow_copies_and_w_cascade():
    # 0 system, 1 t (hard, status -22) -> copy 2 -> decays to b (3) and W+ (4); W+ -> u (5) dbar (6)
    ev = _record([
        (90, -11, 0, 0, 0, 0, 0, 0),
        (6, -22, 2, 2, 1000, 0, 0, 1015),
        (6, -44, 3, 4, 1000, 0, 0, 1015),
        (5, 23, 0, 0, 400, 50, 0, 403),
        (24, -22, 5, 6, 600, -50, 0, 607),
        (2, 23, 0, 0, 350, -80, 0, 359),
        (-1, 23, 0, 0, 250, 30, 0, 252),
    ])
    assert visible_decay_products(1, ev["id"], ev["d1"], ev["d2"]) == [3, 5, 6]
    from l1tagger.data.classes import JetClassSpec, TruthRule

    top = JetClassSpec("t", (), 0, -1, TruthRule("resonance", (6,)))
    objs = truth_objects(top, ev)
    assert len(objs) == 1 and objs[0].shape == (3, 2)
    assert jet_matches(top, objs, 0.0, 0.0, 0.8)
    assert not jet_matches(top, objs, 0.0, 1.0, 0.8)  # products outside dR < 0.8
    lep = JetClassSpec("Tbl", (), 0, -1, TruthRule("resonance", (6,), n_leptons=1))
    assert truth_objects(lep, ev) == []  # hadronic W: not a t -> b l nu jet


def test_neutrinos_are_dropped_from_products():
    ev = _record([
        (90, -11, 0, 0, 0, 0, 0, 0),
        (24, -22, 2, 3, 500, 0, 0, 510),
        (-11, 23, 0, 0, 300, 0, 0, 300),
        (12, 23, 0, 0, 200, 0, 0, 200),
    ])
    assert visible_decay_products(1, ev["id"], ev["d1"], ev["d2"]) == [2]
