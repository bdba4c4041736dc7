"""Preprocessing: a JetSet's constituents in the model's ordering and slots, ParT-style particle features,
pairwise interaction features, and the standardised model inputs.

    particle_order(jets, "dr", n_keep=N)          -> (n_jets, P) permutation   (features/ordering.py)
    ordered_particles(jets, N, ordering)          -> OrderedParticles           (features/layout.py: the one
                                                     order + truncate + pad)
    particle_features / jet_pairwise_features     -> per-particle / pairwise arrays in those slots
    build_inputs(jets, model_config[, scaler])    -> (ModelInputs, FeatureScaler)  (features/inputs.py; for a
                                                     model on L1 words (inputs: l1words) the words, word_inputs)
"""

from l1tagger.features.inputs import (WORDS_INPUT, FeatureScaler, ModelInputs, build_inputs, raw_inputs, standardise,
                                      word_inputs)
from l1tagger.features.layout import OrderedParticles, ordered_particles
from l1tagger.features.ordering import ORDERINGS, particle_order
from l1tagger.features.pairwise import jet_pairwise_features, pairwise_features
from l1tagger.features.particle import FEATURE_SETS, particle_features

__all__ = ["FEATURE_SETS", "particle_features", "pairwise_features", "jet_pairwise_features", "OrderedParticles",
           "ordered_particles", "ORDERINGS", "particle_order", "FeatureScaler", "ModelInputs", "build_inputs",
           "raw_inputs", "standardise", "word_inputs", "WORDS_INPUT"]
