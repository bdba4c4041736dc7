"""Attention analysis: recording from the PyTorch model, analysis on plain arrays, figures (PNG + JSON).

    interpret(tagger, jets, out_dir)             all figures for a trained LoadedTagger (``l1tagger interpret``)
    analysis.binarity / logit_spread / lepton_attention / subjet_attention   plain-array functions, e.g. for a
                                                 firmware C-simulation trace of the attention weights
Definitions of the reported numbers: docs/interpretation.md.
"""

from l1tagger.interpret.analysis import (LEPTON_DEFINITION, attention_received, binarity, lepton_attention,
                                         logit_spread, subjet_attention)

__all__ = ["binarity", "logit_spread", "lepton_attention", "subjet_attention", "attention_received",
           "LEPTON_DEFINITION", "interpret"]


def __getattr__(name):
    if name == "interpret":
        from l1tagger.interpret.run import interpret

        return interpret
    raise AttributeError(name)
