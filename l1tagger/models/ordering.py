# moved to l1tagger.features.ordering; kept for the imports in l1tagger/interpret/kinematics.py
from l1tagger.features.ordering import ORDERINGS, order_cluster, order_dr, order_pt, particle_order

__all__ = ["ORDERINGS", "order_cluster", "order_dr", "order_pt", "particle_order"]
