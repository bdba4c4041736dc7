"""``l1tagger sweep``: a grid of ordinary, resumable ``l1tagger run`` points on Dask, and their Pareto table.

    spec.py     the sweep file: parsing, grid expansion, every point's RunConfig validated before anything runs
    engine.py   running the points: one ``l1tagger run`` subprocess per point from a Dask task (LocalCluster on
                this machine, dask-jobqueue on Slurm/HTCondor), skipping points whose run is complete
    collect.py  pareto.json / pareto.md / pareto.png from the points' report.json and metrics

This module imports nothing heavy: Dask workers import :mod:`l1tagger.sweep.engine` to run a point.
"""
