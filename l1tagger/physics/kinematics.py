"""Kinematic formulas shared by numpy and torch callers.

Every function takes arrays of the same backend and an optional ``xp`` namespace (numpy or torch).
Only functions that exist with the same name and meaning in both namespaces are used
(sqrt, log, atan2/arctan2 via ``_atan2``, clip, minimum, where, remainder, abs).
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-8  # ParT / weaver-core clamp for logarithms
RAPIDITY_EPS = 1e-20  # weaver-core's clamp of E - pz in the rapidity (``to_ptrapphim``)


def namespace(x):
    """Return the array namespace (numpy or torch) of ``x``."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        import torch

        return torch
    return np


def _atan2(y, x, xp):
    return xp.arctan2(y, x) if xp is np else xp.atan2(y, x)


def pt(px, py, xp=None):
    xp = xp or namespace(px)
    return xp.sqrt(px * px + py * py)


def phi(px, py, xp=None):
    xp = xp or namespace(px)
    return _atan2(py, px, xp)


def eta(px, py, pz, xp=None):
    """Pseudorapidity, finite for pT = 0 (returns 0 there)."""
    xp = xp or namespace(px)
    p_t = pt(px, py, xp)
    p = xp.sqrt(p_t * p_t + pz * pz)
    val = 0.5 * xp.log(_clamp_min(p + pz, EPS, xp) / _clamp_min(p - pz, EPS, xp))
    return xp.where(p_t > 0, val, xp.zeros_like(val))


def rapidity(e, pz, xp=None):
    """Rapidity y = 1/2 ln((E+pz)/(E-pz)) written as weaver-core's ``to_ptrapphim`` writes it,
    1/2 ln(1 + 2 pz / max(E - pz, 1e-20)), so ParT's pairwise features agree with weaver-core's.

    The tiny clamp keeps the true rapidity of soft particles: a clamp of E - pz at 1e-8 (as the logarithms')
    replaced it for any particle with E - pz < 1e-8 GeV. Finite everywhere: padded entries (E = pz = 0) get
    y = 0, E = pz gives a large finite y, and where rounding makes E + pz <= 0 (weaver-core returns -inf/NaN
    there) the argument of the log is clamped at 1e-20, i.e. y >= -23.
    """
    xp = xp or namespace(e)
    ratio = 1 + 2 * pz / _clamp_min(e - pz, RAPIDITY_EPS, xp)
    return 0.5 * xp.log(_clamp_min(ratio, RAPIDITY_EPS, xp))


def delta_phi(a, b, xp=None):
    """phi_a - phi_b wrapped into [-pi, pi)."""
    xp = xp or namespace(a)
    return xp.remainder(a - b + math.pi, 2 * math.pi) - math.pi


def mass2(e, px, py, pz):
    return e * e - px * px - py * py - pz * pz


def jet_axis(p4, mask, xp=None):
    """Jet (pt, eta, phi, E) from the sum of its real constituents: p4 (..., P, 4) (px, py, pz, E), mask (..., P)
    bool. Sums in p4's dtype."""
    xp = xp or namespace(p4)
    s = (p4 * mask[..., None]).sum(-2)
    px, py, pz, e = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
    return pt(px, py, xp), eta(px, py, pz, xp), phi(px, py, xp), e


def _clamp_min(x, lo, xp):
    return xp.clip(x, lo, None) if xp is np else xp.clamp(x, min=lo)


def pairwise_features(px, py, pz, e, xp=None):
    """ParT pairwise features for all particle pairs.

    Inputs have shape (..., N). Returns (..., N, N, 4) in the order [ln kT, ln z, ln Delta, ln m^2], exactly as
    weaver-core's ``pairwise_lv_fts``: rapidity-based Delta = sqrt(dy^2 + dphi^2), kT = min(pT) * Delta,
    z = min(pT) / (pT_i + pT_j), m^2 = (E_i+E_j)^2 - |p_i+p_j|^2, each clamped at 1e-8 before the log.
    Padded particles must be masked by the caller (see ``l1tagger.features.pairwise``).
    """
    xp = xp or namespace(px)
    p_t = pt(px, py, xp)
    y = rapidity(e, pz, xp)
    ph = phi(px, py, xp)

    def pair(a):
        return a[..., :, None], a[..., None, :]

    pti, ptj = pair(p_t)
    yi, yj = pair(y)
    phii, phij = pair(ph)
    delta = xp.sqrt((yi - yj) ** 2 + delta_phi(phii, phij, xp) ** 2)
    ptmin = xp.minimum(pti, ptj)
    lndelta = xp.log(_clamp_min(delta, EPS, xp))
    lnkt = xp.log(_clamp_min(ptmin * delta, EPS, xp))
    lnz = xp.log(_clamp_min(ptmin / _clamp_min(pti + ptj, EPS, xp), EPS, xp))
    (pxi, pxj), (pyi, pyj), (pzi, pzj), (ei, ej) = pair(px), pair(py), pair(pz), pair(e)
    m2 = mass2(ei + ej, pxi + pxj, pyi + pyj, pzi + pzj)
    lnm2 = xp.log(_clamp_min(m2, EPS, xp))
    return xp.stack([lnkt, lnz, lndelta, lnm2], -1)
