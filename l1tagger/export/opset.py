"""The op set a cleaned l1tagger QONNX graph may contain (``docs/graph_contract.md``).

The list and its check live in the torch-free contract, :mod:`l1tagger.contract.opset`; this module re-exports them
under their historical import path. Importing it does not import torch.
"""

from __future__ import annotations

from l1tagger.contract.opset import (  # noqa: F401  (re-exported)
    LAYOUT_OPS,
    QONNX_DOMAIN,
    SUPPORTED_OP_TYPES,
    SUPPORTED_OPS,
    check_supported,
)

__all__ = ["LAYOUT_OPS", "QONNX_DOMAIN", "SUPPORTED_OPS", "SUPPORTED_OP_TYPES", "check_supported"]
