"""Physics formulas, written once over an array namespace ``xp`` (numpy or torch).

Following scikit-hep/vector's split of formulas from array backends: nothing here knows whether it is
called with numpy arrays or torch tensors; the caller passes the namespace (or it is inferred).
"""
