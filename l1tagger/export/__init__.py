"""QONNX export of quantized taggers, the supported op set, qonnx custom ops and the software references."""
