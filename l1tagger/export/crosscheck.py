"""Bit-exactness cross-check: Brevitas model vs QONNX reference (qonnx) vs integer emulation (intref).

    crosscheck(qmodel, wrapper, inputs) -> CrossCheck

compares the graph outputs of all three and every intermediate tensor of the QONNX reference against the integer
emulation (so every intermediate is shown to lie on its fixed-point grid). Raises nothing on mismatch: the result
names the first differing tensor; ``CrossCheck.raise_if_failed()`` turns that into a VerificationError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from l1tagger.errors import VerificationError
from l1tagger.export.intref import Fx, run_intref
from l1tagger.export.reference import run_reference


@dataclass
class CrossCheck:
    n_jets: int
    n_tensors_compared: int
    brevitas_vs_qonnx_mismatches: int
    qonnx_vs_intref_mismatches: int
    first_mismatch: str | None = None
    grids: dict[str, int] = field(default_factory=dict)  # tensor -> fraction bits (intref)

    @property
    def ok(self) -> bool:
        return self.brevitas_vs_qonnx_mismatches == 0 and self.qonnx_vs_intref_mismatches == 0 and \
            self.first_mismatch is None

    def to_dict(self) -> dict:
        return {"n_jets": self.n_jets, "n_tensors_compared": self.n_tensors_compared,
                "brevitas_vs_qonnx_mismatches": self.brevitas_vs_qonnx_mismatches,
                "qonnx_vs_intref_mismatches": self.qonnx_vs_intref_mismatches,
                "first_mismatch": self.first_mismatch, "bit_exact": self.ok}

    def raise_if_failed(self) -> "CrossCheck":
        if not self.ok:
            raise VerificationError(f"bit-exactness check failed: {self.first_mismatch}")
        return self


def crosscheck(qmodel, wrapper, inputs: dict[str, np.ndarray], batch_size: int = 1000) -> CrossCheck:
    """inputs: {'x': (B,N,F), 'mask': (B,N)[, 'pair': (B,N,N,4)]} float arrays on any grid (quantized inside),
    checked and cast to float32 once (:func:`l1tagger.verify.feed.validate_feed`): all three see the same values."""
    from l1tagger.verify.feed import validate_feed

    feed = validate_feed(wrapper, inputs)
    names = list(feed)
    n = len(feed[names[0]])
    qmodel.eval()
    with torch.no_grad():
        outs = []
        for s in range(0, n, batch_size):
            args = [torch.as_tensor(feed[k][s:s + batch_size]) for k in names]
            outs.append(qmodel(*args).numpy())
    brev = np.concatenate(outs)
    ref = run_reference(wrapper, feed, return_all=True)
    ir = run_intref(wrapper, feed, return_all=True)
    out_name = wrapper.graph.output[0].name
    first = None
    bq = int(np.sum(brev != ref[out_name]))
    if bq:
        first = f"graph output {out_name!r}: Brevitas and QONNX reference differ on {bq} values"
    compared, qi, grids = 0, 0, {}
    for node in wrapper.graph.node:
        for t in node.output:
            if t not in ref or t not in ir:
                continue
            a = ir[t]
            if not isinstance(a, Fx):
                continue
            compared += 1
            grids[t] = a.frac
            diff = int(np.sum(np.asarray(ref[t], np.float64) != a.value()))
            if diff:
                qi += diff
                if first is None:
                    first = f"tensor {t!r} (node {node.name!r}, {node.op_type}): QONNX and integer emulation differ " \
                            f"on {diff} values"
    return CrossCheck(n, compared, bq, qi, first, grids)
