# moved to l1tagger.features.ordering; no importer is left in l1tagger/, benchmarks/ or tests/: to be removed
from l1tagger.features.ordering import ORDERINGS, order_cluster, order_dr, order_pt, particle_order

__all__ = ["ORDERINGS", "order_cluster", "order_dr", "order_pt", "particle_order"]
