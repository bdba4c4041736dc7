"""Attention analysis: recording from the PyTorch model, analysis on plain arrays, figures (PNG + JSON).

    interpret(model, jets, out_dir)              all figures for a trained model (``l1tagger interpret``)
    analysis.binarity / logit_ratio / lepton_attention / subjet_attention   plain-array functions, e.g. for a
                                                 firmware C-simulation trace of the attention weights
"""

from l1tagger.interpret.analysis import attention_received, binarity, lepton_attention, logit_ratio, subjet_attention

__all__ = ["binarity", "logit_ratio", "lepton_attention", "subjet_attention", "attention_received", "interpret"]


def __getattr__(name):
    if name == "interpret":
        from l1tagger.interpret.run import interpret

        return interpret
    raise AttributeError(name)
