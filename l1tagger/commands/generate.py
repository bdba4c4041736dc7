"""``l1tagger generate``: labelled jets from Pythia 8 + FastJet into an l1tagger HDF5 file."""

from __future__ import annotations

import argparse

HELP = "generate labelled jets with Pythia 8 + FastJet (anti-kT R=0.8) into an HDF5 file"

DESCRIPTION = """\
Generate labelled large-radius jets with Pythia 8 (13.6 TeV pp, shower + hadronisation) and FastJet
(anti-kT R = 0.8, visible final-state particles). Per particle: 4-vector, charge, type flags; per jet: pt, eta,
phi, mass, soft-drop mass (z_cut 0.1, beta 0) and N-subjettiness tau1..tau3 (exclusive-kT axes, beta 1).

Class sets:
  hls4ml5     g, q, W, Z, t jets at pT 900-1100 GeV, |eta| < 2 (hls4ml LHC jet dataset regime)
  jetclass10  QCD, Hbb, Hcc, Hgg, H4q, Hqql, Zqq, Wqq, Tbqq, Tbl at pT 500-1000 GeV, |eta| < 2

Multiparton interactions (underlying event) are off unless --mpi is given. Work runs in chunks on all cores; the
same --seed (and --chunk-size) gives the same jets for any --workers. Finished chunks are kept in OUT.parts/ so an
interrupted run resumes; OUT is written atomically at the end. Settings, seed and versions are stored in OUT.
OUT.lock is locked while OUT is generated: a second generator of the same OUT (another `l1tagger generate`, or an
`l1tagger run` generating it) fails at once, or waits with --wait-lock.

example:  l1tagger generate --classes hls4ml5 --n-per-class 200 --seed 1 --out data/hls4ml5.h5
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--classes", default="hls4ml5", metavar="SET", help="class set: hls4ml5 or jetclass10 (default hls4ml5)")
    p.add_argument("--n-per-class", type=int, default=1000, metavar="N", help="jets per class (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="master seed (default 1)")
    p.add_argument("--out", required=True, metavar="FILE", help="output HDF5 file, e.g. data/jets.h5")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--max-particles", type=int, default=128, metavar="P",
                   help="constituents stored per jet, highest pT first (default 128)")
    p.add_argument("--chunk-size", type=int, default=None, metavar="N", help="jets per chunk (default 500); part of the seed scheme")
    p.add_argument("--mpi", action="store_true",
                   help="switch on multiparton interactions (underlying event); about 2x slower")
    p.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after assembling OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--wait-lock", action="store_true",
                   help="if another process is generating OUT, wait for it instead of failing")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from l1tagger.data.generate import GeneratorConfig, generate
    from l1tagger.data.io import load_jets
    from l1tagger.utils.lock import DatasetLockedError, exclusive_lock, lock_path_for

    cfg = GeneratorConfig(mpi=args.mpi)
    if args.chunk_size:
        cfg = replace(cfg, chunk_size=args.chunk_size)
    with exclusive_lock(lock_path_for(args.out), f"dataset {args.out}", wait=args.wait_lock, error=DatasetLockedError,
                        log=print):
        out = generate(args.classes, args.n_per_class, args.out, seed=args.seed, max_particles=args.max_particles,
                       workers=args.workers, cfg=cfg, progress=not args.no_progress, keep_parts=args.keep_parts)
    js = load_jets(out)
    stats = js.meta.get("stats", {})
    print(f"wrote {out}: {len(js)} jets, classes {js.class_counts()}")
    for name, s in stats.get("per_class", {}).items():
        print(f"  {name:>5}: {s['jets_per_event']:.2f} jets/event, {s['jets_per_s_per_core']:.0f} jets/s/core")
    return 0
