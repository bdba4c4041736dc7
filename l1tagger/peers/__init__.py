"""Peer baselines on the same jets: HGQ2 (Keras 3) jet taggers trained on an ``l1tagger run``'s jets, split, scaler
and input features, converted with da4ml, costed with the same da4ml estimator and checked bit for bit.

An optional extra, never a dependency of the package: ``pip install -e ".[peers]"`` (hgq2 + keras; Keras runs on
the PyTorch backend, ``KERAS_BACKEND=torch``, set here when unset). Nothing in ``l1tagger`` imports this package;
importing it needs no hgq2 (the builders import hgq2 when called). See ``docs/peers.md``.

    python -m l1tagger.peers --run runs/default --features l1 --out results/peers    # peers.{json,md}

:mod:`l1tagger.peers.hgq2` holds the model builders (HGQ2 Linformer, MHA and a JEDI-linear-style interaction
network), the jets (:func:`~l1tagger.peers.hgq2.run_jets`, :func:`~l1tagger.peers.hgq2.split_jets`), the
conversion (:func:`~l1tagger.peers.hgq2.convert`), the cost (:func:`~l1tagger.peers.hgq2.comb_cost`), the
bit-exact comparator (:func:`~l1tagger.peers.hgq2.compare_outputs`) and the result rows.
"""

from __future__ import annotations

import os

# Keras 3 reads its backend once, at import: the peers run on PyTorch like the rest of l1tagger
os.environ.setdefault("KERAS_BACKEND", "torch")

#: the peer models this package builds
PEER_KINDS = ("linformer", "mha", "jedi_linear")

__all__ = ["PEER_KINDS"]
