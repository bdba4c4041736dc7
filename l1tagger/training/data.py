# moved to l1tagger.data.dataset; kept for the imports in l1tagger/commands/convert.py, l1tagger/commands/interpret.py,
# l1tagger/commands/quantize.py and l1tagger/pipeline/run.py
from l1tagger.data.dataset import load_dataset, split, split_indices

__all__ = ["load_dataset", "split", "split_indices"]
