"""Jets: the in-memory representation (JetSet), the Pythia 8 + FastJet generator, readers and dataset access
(``data.dataset``: a file or toy set by name, class-balanced subsets, seeded splits)."""

from l1tagger.data.jetset import PID_FLAGS, JetSet

__all__ = ["JetSet", "PID_FLAGS"]
