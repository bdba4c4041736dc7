"""Jets: the in-memory representation (JetSet), the Pythia 8 + FastJet generator and readers."""

from l1tagger.data.jetset import PID_FLAGS, JetSet

__all__ = ["JetSet", "PID_FLAGS"]
