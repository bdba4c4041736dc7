"""l1tagger: transformer jet taggers from QAT to bit-exact Level-1 trigger firmware.

Data flow (one sub-package per step):
    data -> features -> models -> training -> qat -> export -> convert -> verify -> report
and `l1tagger.pipeline` runs them in order, saving each step's artifact.
"""

__version__ = "0.1.0"
