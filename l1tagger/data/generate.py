"""Labelled large-radius jets from Pythia 8 (``pythia8mc``) and FastJet, written to l1tagger HDF5.

Per class of a class set (``l1tagger.data.classes``) Pythia generates pp collisions at 13.6 TeV with the class's
hard processes and forced decays, parton shower and hadronisation on. Visible final-state particles (neutrinos
dropped) are clustered with anti-kT R = 0.8; of the ``jets_per_event`` highest-pT jets, those inside the pT window
and |eta| cut that pass the class's truth rule are kept. Per jet: constituents (4-vector, charge, type flags) and
pt, eta, phi, mass, soft-drop mass, tau1..tau3 (``l1tagger.physics.substructure``).

Final-state particles below ``MIN_PARTICLE_ENERGY`` (1 MeV) are dropped before clustering (see
:func:`visible_particles` for why).

Work is split into chunks of ``chunk_size`` jets of one class. Chunk ``c`` of class ``k`` always gets the Pythia
seed derived from (master seed, k, c), so the same seed gives the same jets whatever the number of workers.
Each finished chunk is written atomically to ``<out>.parts/``; an interrupted run resumes from the chunks there,
and the final file is assembled atomically, after which the parts are removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from l1tagger.data.classes import BASE_SETTINGS, ClassSet, JetClassSpec, get_class_set
from l1tagger.data.jetset import PID_FLAGS, JetSet
from l1tagger.errors import DataError, OutputError
from l1tagger.physics import kinematics as kin
from l1tagger.physics.substructure import SubstructureConfig, substructure
from l1tagger.utils.atomic import atomic_write_json

NEUTRINOS = (12, 14, 16)
CHARGED_LEPTONS = (11, 13, 15)
RESONANCES = (6, 23, 24, 25)  # followed through their decays when collecting truth decay products
PARTONS = (1, 2, 3, 4, 5, 21)
MAX_SEED = 900_000_000  # Pythia's Random:seed upper limit
#: Minimum energy in GeV of a final-state particle the generator keeps (1 MeV); see :func:`visible_particles`.
MIN_PARTICLE_ENERGY = 1e-3


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator settings (recorded in the output file).

    ecm:              pp centre-of-mass energy in GeV
    mpi:              multiparton interactions (underlying event). Off by default: about 2x faster, and the
                      L1 jet taggers here are studied without pile-up/UE (as the hls4ml LHC jet dataset)
    limit_tau0:       decay only particles with c*tau0 < tau0_max_mm (K0S, Lambda, ... stay stable, as at a
                      collider's particle-level truth)
    tau0_max_mm:      see limit_tau0
    jet_r:            anti-kT radius
    max_particles:    constituents stored per jet (highest pT first; substructure uses all of them)
    chunk_size:       jets per chunk (unit of parallel work, resumption and seeding; part of the seed scheme)
    max_events_per_jet: give up on a chunk after chunk_size * this many events (selection too tight)
    extra_settings:   further Pythia readString lines applied to every class (e.g. a tune)
    substructure:     soft-drop and N-subjettiness parameters
    min_particle_energy: final-state particles below this energy (GeV) are dropped before clustering
                      (default ``MIN_PARTICLE_ENERGY`` = 1 MeV; see :func:`visible_particles`)
    """

    ecm: float = 13600.0
    mpi: bool = False
    limit_tau0: bool = True
    tau0_max_mm: float = 10.0
    jet_r: float = 0.8
    max_particles: int = 128
    chunk_size: int = 500
    max_events_per_jet: int = 200
    extra_settings: tuple[str, ...] = ()
    substructure: SubstructureConfig = field(default_factory=SubstructureConfig)
    min_particle_energy: float = MIN_PARTICLE_ENERGY

    def pythia_settings(self, spec: JetClassSpec, seed: int) -> list[str]:
        return [
            *BASE_SETTINGS,
            f"Beams:eCM = {self.ecm}",
            f"PartonLevel:MPI = {'on' if self.mpi else 'off'}",
            f"ParticleDecays:limitTau0 = {'on' if self.limit_tau0 else 'off'}",
            f"ParticleDecays:tau0Max = {self.tau0_max_mm}",
            *self.extra_settings,
            *spec.pythia_settings(),
            "Random:setSeed = on",
            f"Random:seed = {seed}",
        ]

    def to_dict(self) -> dict:
        return asdict(self)


def chunk_seed(master_seed: int, class_index: int, chunk_index: int) -> int:
    """Pythia seed of one chunk, a pure function of (master seed, class, chunk) in [1, 900000000]."""
    state = np.random.SeedSequence([int(master_seed), int(class_index), int(chunk_index)]).generate_state(2)
    return int((int(state[0]) << 32 | int(state[1])) % MAX_SEED) + 1


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("l1tagger", "pythia8mc", "fastjet", "numpy", "awkward", "h5py"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


# ------------------------------------------------------------------------------------------ truth matching
def _bottom_copy(i: int, ids: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> int:
    """Follow Pythia's carbon copies (same id, single daughter) to the last copy before the decay."""
    while d1[i] > 0 and (d2[i] == d1[i] or d2[i] == 0) and ids[d1[i]] == ids[i]:
        i = int(d1[i])
    return i


def _daughters(i: int, d1: np.ndarray, d2: np.ndarray) -> list[int]:
    a, b = int(d1[i]), int(d2[i])
    if a <= 0:
        return []
    if b == 0 or b == a:
        return [a]
    return list(range(a, b + 1)) if b > a else [a, b]


def visible_decay_products(i: int, ids, d1, d2) -> list[int]:
    """Indices of the visible decay products of resonance ``i``: quarks, gluons and charged leptons after
    following W/Z/t/H cascades; neutrinos are dropped."""
    out: list[int] = []
    for k in _daughters(_bottom_copy(i, ids, d1, d2), d1, d2):
        a = abs(int(ids[k]))
        if a in RESONANCES:
            out.extend(visible_decay_products(k, ids, d1, d2))
        elif a in NEUTRINOS:
            continue
        elif a in PARTONS or a in CHARGED_LEPTONS:
            out.append(k)
    return out


def _dr(eta1, phi1, eta2, phi2):
    return np.hypot(eta1 - eta2, kin.delta_phi(phi1, phi2))


def truth_objects(spec: JetClassSpec, ev: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Truth objects of one event: for each, the (k, 2) array of (eta, phi) that must lie inside the jet.

    Returns [] for TruthRule("any") (every jet is accepted; see :func:`jet_matches`).
    """
    rule = spec.truth
    ids, status, d1, d2 = ev["id"], ev["status"], ev["d1"], ev["d2"]
    eta, phi = kin.eta(ev["px"], ev["py"], ev["pz"]), kin.phi(ev["px"], ev["py"])
    aid, ast = np.abs(ids), np.abs(status)
    objs = []
    if rule.kind == "parton":
        for i in np.flatnonzero((ast == 23) & np.isin(aid, rule.ids)):
            objs.append(np.array([[eta[i], phi[i]]]))
    elif rule.kind == "resonance":
        for i in np.flatnonzero(((ast == 22) | (ast == 23)) & np.isin(aid, rule.ids)):
            prods = visible_decay_products(int(i), ids, d1, d2)
            n_lep = sum(abs(int(ids[k])) in CHARGED_LEPTONS for k in prods)
            if prods and n_lep == rule.n_leptons:
                objs.append(np.stack([eta[prods], phi[prods]], axis=1))
    return objs


def jet_matches(spec: JetClassSpec, objs: list[np.ndarray], jet_eta: float, jet_phi: float, match_dr: float) -> bool:
    if spec.truth.kind == "any":
        return True
    return any(bool((_dr(o[:, 0], o[:, 1], jet_eta, jet_phi) < match_dr).all()) for o in objs)


# ------------------------------------------------------------------------------------------ one chunk
def visible_particles(status: np.ndarray, ids: np.ndarray, energy: np.ndarray,
                      min_energy: float = MIN_PARTICLE_ENERGY) -> np.ndarray:
    """Mask of the particles that enter jet clustering: final state (status > 0), not a neutrino, and with
    energy >= ``min_energy`` GeV.

    Why a threshold: Pythia's QED shower radiates photons down to 1e-13 GeV. No detector sees them (calorimeter
    cell noise is tens of MeV), they carry no measurable energy, and anti-kT / soft drop / N-subjettiness are
    infrared safe, so dropping them leaves the jets unchanged. Kept, they break the model inputs: for such a
    photon E - |pz| is below any float clamp, so its rapidity, and the ParT pairwise ln Delta of every pair it
    is in, is set by the clamp rather than the kinematics (ln Delta off by up to 5.2 against weaver-core's
    formula on 0.04 % of pairs). 1 MeV is far below any detector threshold (it removes only photons and the odd
    soft electron: every hadron has E >= m_pi = 140 MeV) and far above the scale where float32 constituents lose
    their rapidity: for E >= 1 MeV inside |eta| < 3, E - |pz| > 1e-6 GeV.
    """
    status, ids, energy = np.asarray(status), np.asarray(ids), np.asarray(energy)
    return (status > 0) & ~np.isin(np.abs(ids), NEUTRINOS) & (energy >= min_energy)


def _particle_flags(ids: np.ndarray, charge: np.ndarray) -> np.ndarray:
    aid = np.abs(ids)
    hadron = (aid > 100) & (aid < 1_000_000)
    flags = np.stack([hadron & (charge != 0), hadron & (charge == 0), aid == 22, aid == 11, aid == 13], axis=1)
    assert flags.shape[1] == len(PID_FLAGS)
    return flags.astype(np.uint8)


class _ChargeTable:
    def __init__(self, pythia):
        self._pd = pythia.particleData
        self._cache: dict[int, float] = {}

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(ids, return_inverse=True)
        vals = np.empty(len(uniq), np.float32)
        for k, i in enumerate(uniq.tolist()):
            if i not in self._cache:
                self._cache[i] = float(self._pd.charge(int(i)))
            vals[k] = self._cache[i]
        return vals[inv]


def _make_pythia(settings: list[str]):
    import pythia8mc as pythia8

    py = pythia8.Pythia("", False)
    for line in settings:
        if not py.readString(line):
            raise DataError(f"Pythia rejected the setting {line!r}")
    if not py.init():
        raise DataError("Pythia initialisation failed (see the settings recorded in the class set)")
    return py


def _batch_to_numpy(batch) -> tuple[dict[str, np.ndarray], np.ndarray]:
    import awkward as ak

    prt = batch["prt"]
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    flat = {
        "id": ak.to_numpy(ak.flatten(prt.id)).astype(np.int64),
        "status": ak.to_numpy(ak.flatten(prt.status)).astype(np.int64),
        "d1": ak.to_numpy(ak.flatten(prt.daughter1)).astype(np.int64),
        "d2": ak.to_numpy(ak.flatten(prt.daughter2)).astype(np.int64),
    }
    p = prt.p
    for src, dst in (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "e")):
        flat[dst] = ak.to_numpy(ak.flatten(p[src])).astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return flat, offsets


def _select_jets(flat, offsets, spec: JetClassSpec, cs: ClassSet, jet_r: float,
                 min_energy: float = MIN_PARTICLE_ENERGY):
    """Cluster every event of a batch; yield (event index in batch, constituent indices into ``flat``) per kept jet."""
    import awkward as ak
    import fastjet

    from l1tagger.physics.substructure import quiet_fastjet

    quiet_fastjet()
    visible = visible_particles(flat["status"], flat["id"], flat["e"], min_energy)
    vis_idx = np.flatnonzero(visible)
    event_of = np.searchsorted(offsets, vis_idx, side="right") - 1
    n_events = len(offsets) - 1
    vis_counts = np.bincount(event_of, minlength=n_events)
    recs = ak.zip({"px": flat["px"][vis_idx], "py": flat["py"][vis_idx], "pz": flat["pz"][vis_idx],
                   "E": flat["e"][vis_idx]})
    jagged = ak.unflatten(recs, vis_counts)
    seq = fastjet.ClusterSequence(jagged, fastjet.JetDefinition(fastjet.antikt_algorithm, jet_r))
    min_pt = 0.5 * cs.jet_pt[0]
    jets = seq.inclusive_jets(min_pt=min_pt)
    cons = seq.constituent_index(min_pt=min_pt)
    vis_start = np.concatenate([[0], np.cumsum(vis_counts)])
    jets_px, jets_py, jets_pz = (ak.to_list(jets[k]) for k in ("px", "py", "pz"))
    cons_list = ak.to_list(cons)
    for e in range(n_events):
        if not jets_px[e]:
            continue
        jpx, jpy, jpz = np.array(jets_px[e]), np.array(jets_py[e]), np.array(jets_pz[e])
        jpt = np.hypot(jpx, jpy)
        lead = np.argsort(-jpt, kind="stable")[: cs.jets_per_event]
        objs = None
        for j in lead:
            if not (cs.jet_pt[0] <= jpt[j] < cs.jet_pt[1]):
                continue
            jeta, jphi = kin.eta(jpx[j], jpy[j], jpz[j]), kin.phi(jpx[j], jpy[j])
            if abs(jeta) >= cs.jet_abs_eta:
                continue
            if objs is None:
                sl = slice(offsets[e], offsets[e + 1])
                objs = truth_objects(spec, {k: v[sl] for k, v in flat.items()})
            if jet_matches(spec, objs, float(jeta), float(jphi), cs.match_dr):
                yield e, vis_idx[vis_start[e] + np.asarray(cons_list[e][j], dtype=np.int64)]


def generate_chunk(class_set: str, class_index: int, n_jets: int, seed: int,
                   cfg: GeneratorConfig = GeneratorConfig(), batch_events: int = 8) -> tuple[JetSet, dict]:
    """Generate exactly ``n_jets`` jets of one class with Pythia seed ``seed``. Returns (jets, stats)."""
    cs = get_class_set(class_set)
    if not 0 <= class_index < len(cs.classes):
        raise DataError(f"class index {class_index} outside class set {class_set!r} ({len(cs.classes)} classes)")
    spec = cs.classes[class_index]
    t0, c0 = time.perf_counter(), time.process_time()
    py = _make_pythia(cfg.pythia_settings(spec, seed))
    t_init = time.perf_counter() - t0
    charge_of = _ChargeTable(py)
    max_events = max(100, n_jets * cfg.max_events_per_jet)
    jets_p4, jets_q, jets_pid = [], [], []
    n_generated = 0  # events generated
    n_used = 0  # events up to and including the one that gave the last kept jet
    while len(jets_p4) < n_jets:
        if n_generated >= max_events:
            raise DataError(
                f"class {spec.name!r}: only {len(jets_p4)} of {n_jets} jets after {n_generated} events; the selection "
                f"(pT {cs.jet_pt}, |eta| < {cs.jet_abs_eta}, truth {spec.truth}) is too tight for the pTHat window"
            )
        # size the next batch from the rate seen so far; the jets do not depend on the batch size because
        # Pythia's event sequence is fixed by the seed and we keep jets in event order
        need = n_jets - len(jets_p4)
        if n_generated == 0:
            n_batch = min(32, max(batch_events, need))
        else:
            rate = max(len(jets_p4) / n_generated, 0.02)
            n_batch = int(min(256, max(batch_events, math.ceil(need / rate))))
        batch = py.nextBatch(n_batch)
        flat, offsets = _batch_to_numpy(batch)
        for e, idx in _select_jets(flat, offsets, spec, cs, cfg.jet_r, cfg.min_particle_energy):
            ids = flat["id"][idx]
            q = charge_of(ids)
            jets_p4.append(np.stack([flat["px"][idx], flat["py"][idx], flat["pz"][idx], flat["e"][idx]], axis=1))
            jets_q.append(q)
            jets_pid.append(_particle_flags(ids, q))
            n_used = n_generated + e + 1
            if len(jets_p4) == n_jets:
                break
        n_generated += len(offsets) - 1
    js = _assemble(jets_p4, jets_q, jets_pid, class_index, cs, cfg)
    stats = {"class": spec.name, "n_jets": n_jets, "n_events": n_used, "n_events_generated": n_generated, "seed": seed,
             "init_s": round(t_init, 3), "seconds": round(time.perf_counter() - t0, 3),
             "cpu_s": round(time.process_time() - c0, 3)}
    return js, stats


def _assemble(jets_p4, jets_q, jets_pid, class_index: int, cs: ClassSet, cfg: GeneratorConfig) -> JetSet:
    from l1tagger.data.io import jet_kinematics, pad_sorted

    # all constituents for the jet observables, then truncate for storage
    full_p4, full_n, _, _ = pad_sorted(jets_p4)
    jet = jet_kinematics(full_p4)
    jet.update(substructure(full_p4, full_n, cfg.substructure))
    jet["n_constituents"] = full_n.astype(np.int32)
    p4, n, charge, pid = pad_sorted(jets_p4, jets_q, jets_pid, max_particles=cfg.max_particles)
    labels = np.full(len(jets_p4), class_index, np.int64)
    return JetSet(p4=p4, n_particles=n, charge=charge, pid=pid, labels=labels, class_names=cs.class_names,
                  jet=jet).validate()


# ------------------------------------------------------------------------------------------ whole file
def _chunk_task(task: dict) -> dict:
    """Worker entry point: generate one chunk and write it atomically to its part file."""
    from l1tagger.data.io import write_jets

    cfg = _config_from_dict(task["cfg"])
    js, stats = generate_chunk(task["class_set"], task["class_index"], task["n_jets"], task["seed"], cfg)
    js.meta = {"chunk": stats}
    write_jets(js, task["path"], compression=None)
    return stats


def _config_from_dict(d: dict) -> GeneratorConfig:
    d = dict(d)
    d["substructure"] = SubstructureConfig(**d.get("substructure", {}))
    d["extra_settings"] = tuple(d.get("extra_settings", ()))
    return GeneratorConfig(**d)


def plan_chunks(class_set: str, n_per_class: int, seed: int, cfg: GeneratorConfig, parts_dir: Path) -> list[dict]:
    """The list of chunk tasks (class, chunk, jets, seed, part path) of a run, in output order."""
    cs = get_class_set(class_set)
    tasks = []
    for k, spec in enumerate(cs.classes):
        n_chunks = math.ceil(n_per_class / cfg.chunk_size)
        for c in range(n_chunks):
            n = min(cfg.chunk_size, n_per_class - c * cfg.chunk_size)
            s = chunk_seed(seed, k, c)
            tasks.append({"class_set": class_set, "class_index": k, "chunk": c, "n_jets": n, "seed": s,
                          "path": str(parts_dir / f"{k:02d}_{spec.name}_{c:05d}.h5"), "cfg": cfg.to_dict()})
    return tasks


def generate(class_set: str, n_per_class: int, out_path: str | os.PathLike, seed: int = 1,
             max_particles: int = 128, workers: int | None = None, cfg: GeneratorConfig | None = None,
             progress: bool = True, keep_parts: bool = False) -> Path:
    """Generate ``n_per_class`` jets for every class of ``class_set`` into ``out_path`` (l1tagger HDF5).

    workers:  processes (None = all cores). The jets do not depend on it.
    cfg:      generator settings; ``max_particles`` overrides ``cfg.max_particles``
    Resumes from ``<out_path>.parts/`` when a previous run with the same settings was interrupted, and returns
    at once when ``out_path`` already holds a file generated with the same settings.
    """
    from l1tagger.data.io import output_problem, write_jets
    from l1tagger.data.readers.l1tagger_h5 import read as read_part

    if n_per_class <= 0:
        raise DataError(f"n_per_class must be positive, got {n_per_class}")
    if max_particles <= 0:
        raise DataError(f"max_particles must be positive, got {max_particles}")
    cs = get_class_set(class_set)
    cfg = cfg or GeneratorConfig()
    if not (math.isfinite(cfg.min_particle_energy) and cfg.min_particle_energy >= 0):
        raise DataError(f"min_particle_energy must be a finite energy >= 0 GeV, got {cfg.min_particle_energy}")
    cfg = replace(cfg, max_particles=int(max_particles))
    out_path = Path(out_path)
    parts_dir = out_path.with_name(out_path.name + ".parts")
    manifest = {"class_set": class_set, "n_per_class": int(n_per_class), "seed": int(seed), "generator": cfg.to_dict()}
    if _already_generated(out_path, manifest):
        return out_path  # deterministic: the same settings would give the same file
    try:  # an unwritable output fails here, before any event is generated
        _prepare_parts_dir(parts_dir, manifest)
    except OSError as exc:
        raise OutputError(f"{out_path}: cannot create the chunk directory {parts_dir}: {output_problem(exc)}") from exc

    tasks = plan_chunks(class_set, n_per_class, seed, cfg, parts_dir)
    todo = [t for t in tasks if not Path(t["path"]).is_file()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    t0 = time.perf_counter()
    total = sum(t["n_jets"] for t in tasks)
    _run_tasks(todo, workers, total=total, done=total - sum(t["n_jets"] for t in todo), progress=progress)
    wall = time.perf_counter() - t0

    parts = [read_part(Path(t["path"])) for t in tasks]
    stats = [p.meta.get("chunk", {}) for p in parts]
    js = JetSet.concatenate(parts)
    per_class = {}
    for s in stats:
        d = per_class.setdefault(s.get("class"), {"n_jets": 0, "n_events": 0, "cpu_s": 0.0, "wall_s": 0.0})
        d["n_jets"] += s.get("n_jets", 0)
        d["n_events"] += s.get("n_events", 0)
        d["cpu_s"] += s.get("cpu_s", s.get("seconds", 0.0))
        d["wall_s"] += s.get("seconds", 0.0)
    for d in per_class.values():
        d["jets_per_event"] = d["n_jets"] / max(d["n_events"], 1)
        d["jets_per_s_per_core"] = d["n_jets"] / max(d["cpu_s"], 1e-9)  # per CPU-second of the worker
    js.meta = {
        "source": "l1tagger.data.generate",
        "class_set": cs.to_dict(),
        "n_per_class": int(n_per_class),
        "seed": int(seed),
        "chunk_seeds": "SeedSequence([seed, class_index, chunk_index]) -> Random:seed (see chunk_seed)",
        "generator": cfg.to_dict(),
        "pythia_settings": {spec.name: cfg.pythia_settings(spec, seed=0)[:-1] for spec in cs.classes},
        "versions": versions(),
        "stats": {"per_class": per_class, "workers": workers, "wall_s_this_run": round(wall, 3)},
    }
    write_jets(js, out_path)
    if not keep_parts:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return out_path


def _already_generated(out_path: Path, manifest: dict) -> bool:
    """True when ``out_path`` is a complete file generated with exactly these settings."""
    from l1tagger.data.io import read_meta

    if not out_path.is_file():
        return False
    try:
        meta = read_meta(out_path)
    except DataError:  # unreadable: generate it again
        return False
    want = json.loads(json.dumps(manifest))
    return (meta.get("class_set", {}).get("name") == want["class_set"]
            and all(meta.get(k) == want[k] for k in ("n_per_class", "seed", "generator")))


def _prepare_parts_dir(parts_dir: Path, manifest: dict) -> None:
    mpath = parts_dir / "manifest.json"
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        if old != json.loads(json.dumps(manifest)):
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != json.loads(json.dumps(manifest)).get(k))
            raise DataError(
                f"{parts_dir} holds chunks of an interrupted run with different settings ({', '.join(diff)}); "
                "delete that directory or choose another output path"
            )
        return
    parts_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(mpath, manifest)


def _run_tasks(todo: list[dict], workers: int, total: int, done: int, progress: bool) -> None:
    from l1tagger.utils.progress import progress as progress_bar

    bar = progress_bar(total=total, initial=done, unit="jet", desc="generate", disable=not progress, dynamic_ncols=True)
    try:
        if workers == 1:
            for t in todo:
                _chunk_task(t)
                bar.update(t["n_jets"])
        else:
            import multiprocessing as mp

            # spawn: workers start clean (no inherited torch / OpenMP thread pools)
            with mp.get_context("spawn").Pool(workers) as pool:
                for stats in pool.imap_unordered(_chunk_task, todo):
                    bar.update(stats["n_jets"])
    finally:
        bar.close()
