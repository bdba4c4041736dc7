"""Model inputs from a JetSet: ParT-style particle features and pairwise interaction features."""

from l1tagger.features.pairwise import pairwise_features
from l1tagger.features.particle import FEATURE_SETS, particle_features

__all__ = ["FEATURE_SETS", "particle_features", "pairwise_features"]
