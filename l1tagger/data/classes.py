"""Class-set registry: which physics process makes which labelled jet.

A *class set* is an ordered list of jet classes plus a common jet selection (pT window, |eta| cut, matching
radius). Each class is Pythia 8 settings (hard processes, forced decays via ``onMode``, pTHat window) and a
truth rule that decides whether a reconstructed jet belongs to the class:

* ``TruthRule("parton", ids)``: the jet axis lies within dR < match_dr of an outgoing hard-process parton whose
  |PDG id| is in ``ids`` (gluon and light-quark jets);
* ``TruthRule("resonance", ids, n_leptons)``: a hard-process resonance with |id| in ``ids`` whose *visible*
  decay products (quarks, gluons and charged leptons after following W/Z/t/H cascades, neutrinos dropped) all lie
  within dR < match_dr of the jet axis, and exactly ``n_leptons`` of them are charged leptons (JetClass's
  truth-matching spirit: the whole resonance decay is inside the jet);
* ``TruthRule("any")``: every selected jet (JetClass's QCD class).

To add a class set, append a :class:`ClassSet` to :data:`CLASS_SETS`; nothing else needs to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from l1tagger.errors import DataError

_QUIET = ("Print:quiet = on", "Next:numberCount = 0", "Check:event = off")

# forced decays (onMode) shared by several classes
_W_HAD = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_Z_HAD = ("23:onMode = off", "23:onIfAny = 1 2 3 4 5")
# W+ -> l+ nu (l = e, mu), W- -> q q': exactly one leptonic W in a W+W- or t tbar event
_W_PLUS_LEP_MINUS_HAD = ("24:onMode = off", "24:onPosIfAny = 11 13", "24:onNegIfAny = 1 2 3 4 5")
# both W -> l nu (l = e, mu): in t tbar both tops can give a t -> b l nu jet
_W_LEP = ("24:onMode = off", "24:onIfAny = 11 13")
_HIGGS_PLUS_JET = ("HiggsSM:gg2Hg(l:t) = on", "HiggsSM:qg2Hq(l:t) = on", "HiggsSM:qqbar2Hg(l:t) = on")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "6:onMode = off", "6:onIfAll = 5 24")


@dataclass(frozen=True)
class TruthRule:
    """How a reconstructed jet is matched to the class's truth object (see module docstring)."""

    kind: str  # "parton" | "resonance" | "any"
    ids: tuple[int, ...] = ()
    n_leptons: int = 0

    def __post_init__(self):
        if self.kind not in ("parton", "resonance", "any"):
            raise DataError(f"unknown truth rule kind {self.kind!r}; known: parton, resonance, any")


@dataclass(frozen=True)
class JetClassSpec:
    """One labelled jet class.

    name:        class label written to the dataset (e.g. "W", "Hbb")
    settings:    Pythia 8 ``readString`` lines: processes and forced decays
    pt_hat_min:  hard-process pTHat window (GeV) that feeds the jet pT window efficiently
    pt_hat_max:  upper end of that window (-1 = none)
    truth:       the truth-matching rule
    description: one line for humans
    """

    name: str
    settings: tuple[str, ...]
    pt_hat_min: float
    pt_hat_max: float
    truth: TruthRule
    description: str = ""

    def pythia_settings(self) -> list[str]:
        return [*self.settings, f"PhaseSpace:pTHatMin = {self.pt_hat_min}", f"PhaseSpace:pTHatMax = {self.pt_hat_max}"]


@dataclass(frozen=True)
class ClassSet:
    """An ordered set of classes with a common jet selection.

    jet_pt:          accepted jet pT window (GeV), [lo, hi)
    jet_abs_eta:     |eta| < jet_abs_eta
    match_dr:        truth-matching radius
    jets_per_event:  consider the N highest-pT jets of each event
    """

    name: str
    classes: tuple[JetClassSpec, ...]
    jet_pt: tuple[float, float]
    jet_abs_eta: float = 2.0
    match_dr: float = 0.8
    jets_per_event: int = 2
    description: str = ""

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get(self, name: str) -> JetClassSpec:
        for c in self.classes:
            if c.name == name:
                return c
        raise DataError(f"class {name!r} is not in class set {self.name!r} (classes: {', '.join(self.class_names)})")

    def to_dict(self) -> dict:
        return asdict(self)


def _hls4ml5() -> ClassSet:
    lo, hi = 900.0, 1150.0
    return ClassSet(
        name="hls4ml5",
        description="gluon, light quark, W->qq', Z->qq, t->bqq' jets at pT ~ 1 TeV (hls4ml LHC jet dataset regime)",
        jet_pt=(900.0, 1100.0),
        classes=(
            JetClassSpec("g", ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"), lo, hi, TruthRule("parton", (21,)),
                         "gluon jets from gg->gg, qqbar->gg"),
            JetClassSpec("q", ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", "HardQCD:gg2qqbar = on"), lo, hi,
                         TruthRule("parton", (1, 2, 3)), "light-quark (u, d, s) jets"),
            JetClassSpec("W", ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_W_HAD), lo, hi,
                         TruthRule("resonance", (24,)), "W + jet, W -> q q'"),
            JetClassSpec("Z", ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
                               "WeakZ0:gmZmode = 2", *_Z_HAD), lo, hi, TruthRule("resonance", (23,)),
                         "Z + jet, Z -> q qbar"),
            JetClassSpec("t", (*_TTBAR, *_W_HAD), lo - 50.0, hi, TruthRule("resonance", (6,)),
                         "t tbar, t -> b W, W -> q q'"),
        ),
    )


def _jetclass10() -> ClassSet:
    lo, hi = 500.0, 1000.0
    h = _HIGGS_PLUS_JET
    return ClassSet(
        name="jetclass10",
        description="JetClass-like 10 classes at jet pT 500-1000 GeV, |eta| < 2, resonance decays inside the jet",
        jet_pt=(500.0, 1000.0),
        classes=(
            JetClassSpec("QCD", ("HardQCD:all = on",), lo, hi, TruthRule("any"), "QCD multijet"),
            JetClassSpec("Hbb", (*h, "25:onMode = off", "25:onIfMatch = 5 -5"), lo, hi,
                         TruthRule("resonance", (25,)), "H -> b bbar"),
            JetClassSpec("Hcc", (*h, "25:onMode = off", "25:onIfMatch = 4 -4"), lo, hi,
                         TruthRule("resonance", (25,)), "H -> c cbar"),
            JetClassSpec("Hgg", (*h, "25:onMode = off", "25:onIfMatch = 21 21"), lo, hi,
                         TruthRule("resonance", (25,)), "H -> g g"),
            JetClassSpec("H4q", (*h, "25:onMode = off", "25:onIfMatch = 24 -24", *_W_HAD), lo, hi,
                         TruthRule("resonance", (25,)), "H -> W W* -> 4 q"),
            JetClassSpec("Hqql", (*h, "25:onMode = off", "25:onIfMatch = 24 -24", *_W_PLUS_LEP_MINUS_HAD), lo, hi,
                         TruthRule("resonance", (25,), n_leptons=1), "H -> W W* -> l nu q q' (l = e, mu)"),
            JetClassSpec("Zqq", ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
                                 "WeakZ0:gmZmode = 2", *_Z_HAD), lo, hi, TruthRule("resonance", (23,)), "Z -> q qbar"),
            JetClassSpec("Wqq", ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_W_HAD), lo, hi,
                         TruthRule("resonance", (24,)), "W -> q q'"),
            JetClassSpec("Tbqq", (*_TTBAR, *_W_HAD), lo, hi, TruthRule("resonance", (6,)), "t -> b W -> b q q'"),
            JetClassSpec("Tbl", (*_TTBAR, *_W_LEP), lo, hi, TruthRule("resonance", (6,), n_leptons=1),
                         "t -> b W -> b l nu (l = e, mu)"),
        ),
    )


#: name -> factory; add new class sets here
CLASS_SETS = {"hls4ml5": _hls4ml5, "jetclass10": _jetclass10}


def get_class_set(name: str) -> ClassSet:
    """The registered class set ``name``; DataError naming it and listing the known ones otherwise."""
    try:
        return CLASS_SETS[name]()
    except KeyError:
        raise DataError(f"unknown class set {name!r}; known class sets: {', '.join(sorted(CLASS_SETS))}") from None


BASE_SETTINGS: tuple[str, ...] = _QUIET
