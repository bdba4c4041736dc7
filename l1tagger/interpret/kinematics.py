"""Particle kinematics in the model's order (for maps and per-particle analysis), and exclusive subjets."""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import PID_FLAGS, JetSet
from l1tagger.features.layout import ordered_particles
from l1tagger.physics import kinematics as kin


def ordered_kinematics(jets: JetSet, n_particles: int, ordering: str) -> dict:
    """deta, dphi, pt, pid (n,N,5), is_e_or_mu, hardest_lepton, mask, order (n,N) in the order and truncation the
    model sees (``l1tagger.features.layout.ordered_particles``). ``is_e_or_mu`` flags every electron/muon
    (particle-type flags); ``hardest_lepton`` only the one with the largest pT per jet (see ``hardest_lepton``)."""
    slots = ordered_particles(jets, n_particles, ordering)
    p4, mask, pid = slots.p4, slots.mask, slots.pid
    _, jeta, jphi, _ = kin.jet_axis(jets.p4.astype(np.float64), jets.mask)
    px, py, pz = p4[..., 0], p4[..., 1], p4[..., 2]
    deta = np.where(mask, kin.eta(px, py, pz) - jeta[:, None], 0.0)
    dphi = np.where(mask, kin.delta_phi(kin.phi(px, py), jphi[:, None]), 0.0)
    lep = (pid[..., PID_FLAGS.index("isElectron")] | pid[..., PID_FLAGS.index("isMuon")]).astype(bool) & mask
    pt = np.where(mask, kin.pt(px, py), 0.0)
    return {"deta": deta, "dphi": dphi, "pt": pt, "pid": pid, "is_e_or_mu": lep,
            "hardest_lepton": hardest_lepton(lep, pt), "mask": mask, "p4": p4, "order": slots.order}


def hardest_lepton(is_e_or_mu: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """(n, N) bool: the electron/muon with the largest pT in each jet (ties: the first in model order), none in
    jets without one; among the N particles given (``ordered_kinematics``: the ones the model sees).

    This is the "lepton" of the attention analysis (``analysis.LEPTON_DEFINITION``): in a semileptonic top jet
    it is usually, not always, the lepton of the W decay; the datasets carry no truth link from a constituent
    to its mother, so the rule is stated rather than assumed."""
    lep = np.asarray(is_e_or_mu).astype(bool)
    out = np.zeros(lep.shape, bool)
    has = lep.any(1)
    best = np.where(lep, np.asarray(pt, np.float64), -np.inf).argmax(1)
    out[np.flatnonzero(has), best[has]] = True
    return out


def exclusive_subjets(p4: np.ndarray, mask: np.ndarray, n_subjets: int) -> np.ndarray:
    """(n, N) subjet index per particle from exclusive kT reclustering to n_subjets (0 = hardest), -1 padded."""
    import fastjet

    out = np.full(mask.shape, -1, np.int64)
    jdef = fastjet.JetDefinition(fastjet.kt_algorithm, 10.0)
    for j in range(p4.shape[0]):
        idx = np.flatnonzero(mask[j])
        if idx.size == 0:
            continue
        parts = []
        for i in idx:
            pj = fastjet.PseudoJet(*map(float, p4[j, i]))
            pj.set_user_index(int(i))
            parts.append(pj)
        cs = fastjet.ClusterSequence(parts, jdef)
        subs = sorted(cs.exclusive_jets(min(n_subjets, idx.size)), key=lambda s: -s.pt())
        for s_i, s in enumerate(subs):
            for c in s.constituents():
                out[j, c.user_index()] = s_i
    return out
