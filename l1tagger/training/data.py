# moved to l1tagger.data.dataset; no importer is left in l1tagger/, benchmarks/ or tests/: to be removed
from l1tagger.data.dataset import load_dataset, split, split_indices

__all__ = ["load_dataset", "split", "split_indices"]
