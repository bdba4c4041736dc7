"""Quantization-aware training: the bit-exact firmware softmax, recipes in ``quantize/*.yaml`` and the Brevitas
op factory ``QuantOps`` that builds the quantized twin of any model written against ``l1tagger.models.ops``."""
