"""Jet taggers over particle constituents (float PyTorch). The quantized twins are built from the same code
with a different op factory (``l1tagger.qat.ops.QuantOps``)."""
