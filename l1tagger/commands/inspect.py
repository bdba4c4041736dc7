"""``l1tagger inspect``: class counts and per-class jet mass / tau21 plots of any supported jet file."""

from __future__ import annotations

import argparse

from l1tagger.cli import add_data_argument, add_n_jets_argument

HELP = "print class counts of a jet file and plot soft-drop mass and tau21 per class (PNG + JSON)"

DESCRIPTION = """\
Read any supported jet file (l1tagger HDF5, JetClass ROOT, hls4ml LHC jets HDF5, top-tagging pandas HDF5; the
format is detected), print the number of jets per class, and draw the soft-drop mass and tau21 = tau2/tau1
distributions per class to a PNG with the same numbers in a JSON next to it.

example:  l1tagger inspect --data data/hls4ml5.h5 --out plots/hls4ml5.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_data_argument(p, "the jet file", required=True, positional="file")
    p.add_argument("--out", default=None, metavar="PNG", help="plot path (default: DATA with .png); JSON alongside")
    p.add_argument("--format", default=None, choices=["l1tagger", "jetclass", "hls4ml_lhc", "toptag"],
                   help="force a reader instead of detecting the format")
    add_n_jets_argument(p, "look at N jets: a random subset with every class in proportion (files are often "
                           "stored class by class)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --n-jets subset (default 0)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from l1tagger.data.inspect import inspect_file

    out = Path(args.out) if args.out else Path(args.data).with_suffix(".png")
    s = inspect_file(args.data, out, format=args.format, max_jets=args.n_jets, seed=args.seed)
    print(f"{args.data}: {s['n_jets']} jets ({s['source_format']}), up to {s['max_particles']} particles per jet")
    print(f"{'class':>8} {'jets':>7} {'sdmass peak':>12} {'median':>8} {'<tau21>':>8}")
    for name, c in s["classes"].items():
        fmt = lambda v, f: format(v, f) if v is not None else "-"  # noqa: E731
        print(f"{name:>8} {c['count']:>7} {fmt(c['sdmass_peak'], '12.1f')} {fmt(c['sdmass_median'], '8.1f')} "
              f"{fmt(c['tau21_mean'], '8.3f')}")
    if s["substructure_computed_from_constituents"]:
        print("(sdmass/tau computed from the stored constituents)")
    print(f"plot: {out}  numbers: {out.with_suffix('.json')}")
    return 0
