"""Bit-exactness cross-check: Brevitas model vs QONNX reference (qonnx) vs integer emulation (intref).

    crosscheck(qmodel, wrapper, inputs) -> CrossCheck

compares the graph outputs of all three and every intermediate tensor of the QONNX reference against the integer
emulation (so every intermediate is shown to lie on its fixed-point grid). Raises nothing on mismatch: the result
names the first differing tensor (graph order) and its node; ``CrossCheck.raise_if_failed()`` turns that into a
VerificationError.

Brevitas and the graph are compared per layer too, once their outputs differ: the export renames every node, so
each quantizer of the Brevitas model (activation, weight and bias proxies, recorded by forward hooks on the jets
that differ) is matched to the graph's ``Quant`` tensors by value. On a faithful export every ``Quant`` tensor
equals one Brevitas quantizer output (tested for every attention kind and recipe); the first one in graph order
that equals none is where the two part, and the Brevitas quantizer of the same shape closest to it is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from l1tagger.errors import VerificationError
from l1tagger.export.intref import Fx, run_intref
from l1tagger.export.reference import batched_tensors, run_reference

#: at most this many differing jets are re-run through Brevitas with hooks to localise a Brevitas/graph mismatch
LOCALISE_JETS = 64


@dataclass
class CrossCheck:
    n_jets: int
    n_tensors_compared: int
    brevitas_vs_qonnx_mismatches: int
    qonnx_vs_intref_mismatches: int
    first_mismatch: str | None = None  # one line: where and how the first difference shows
    first_mismatch_tensor: str | None = None  # the first differing graph tensor (graph order)
    first_mismatch_node: str | None = None  # the node producing it
    grids: dict[str, int] = field(default_factory=dict)  # tensor -> fraction bits (intref)

    @property
    def ok(self) -> bool:
        return self.brevitas_vs_qonnx_mismatches == 0 and self.qonnx_vs_intref_mismatches == 0 and \
            self.first_mismatch is None

    def to_dict(self) -> dict:
        return {"n_jets": self.n_jets, "n_tensors_compared": self.n_tensors_compared,
                "brevitas_vs_qonnx_mismatches": self.brevitas_vs_qonnx_mismatches,
                "qonnx_vs_intref_mismatches": self.qonnx_vs_intref_mismatches,
                "first_mismatch": self.first_mismatch, "first_mismatch_tensor": self.first_mismatch_tensor,
                "first_mismatch_node": self.first_mismatch_node, "bit_exact": self.ok}

    def raise_if_failed(self) -> "CrossCheck":
        if not self.ok:
            raise VerificationError(f"bit-exactness check failed: {self.first_mismatch}")
        return self


def quantizer_outputs(qmodel, args: tuple) -> list[tuple[str, np.ndarray]]:
    """(module name, value) of every Brevitas quantizer call (activation, weight and bias proxies) in one forward
    pass of ``qmodel(*args)``, in call order."""
    from brevitas.proxy.quant_proxy import QuantProxyFromInjector

    rec: list[tuple[str, np.ndarray]] = []

    def hook(name):
        def record(module, inputs, output):
            value = getattr(output, "value", output)
            if isinstance(value, torch.Tensor):
                rec.append((name, value.detach().cpu().numpy()))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in qmodel.named_modules()
               if isinstance(m, QuantProxyFromInjector)]
    try:
        with torch.no_grad():
            qmodel(*args)
    finally:
        for h in handles:
            h.remove()
    return rec


def _key(a) -> tuple:
    a = np.ascontiguousarray(np.asarray(a, np.float64) + 0.0)  # + 0.0: -0.0 and 0.0 are the same value
    return a.shape, a.tobytes()


def localise_brevitas(qmodel, wrapper, feed: dict, ref: dict, jets: np.ndarray) -> dict | None:
    """The first ``Quant`` tensor of the graph (graph order) that no Brevitas quantizer output equals on ``jets``.

    Returns {"index", "node", "tensor", "brevitas", "n_diff", "n_values"} (``brevitas``: the quantizer of the same
    shape closest to it, None if there is none) or None when every ``Quant`` tensor is reproduced.
    """
    rec = quantizer_outputs(qmodel, tuple(torch.as_tensor(feed[k][jets]) for k in feed))
    seen, by_shape = set(), {}
    for name, v in rec:
        for a in (v, v.T) if v.ndim == 2 else (v,):  # a Linear weight is (out, in); the graph's MatMul takes (in, out)
            seen.add(_key(a))
            by_shape.setdefault(a.shape, []).append((name, np.asarray(a, np.float64)))
    batched = batched_tensors(wrapper)
    for i, node in enumerate(wrapper.graph.node):
        t = node.output[0]
        if node.op_type != "Quant" or t not in ref:
            continue
        a = np.asarray(ref[t], np.float64)
        if t in batched:
            a = a[jets]
        if _key(a) in seen:
            continue
        diffs = [(int(np.sum(b != a)), name) for name, b in by_shape.get(a.shape, [])]
        n_diff, closest = min(diffs) if diffs else (int(a.size), None)
        return {"index": i, "node": node.name, "tensor": t, "brevitas": closest, "n_diff": n_diff,
                "n_values": int(a.size)}
    return None


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
    nodes = list(wrapper.graph.node)
    first = None  # (node index, message, tensor, node name)
    bad = (np.asarray(brev, np.float64) != np.asarray(ref[out_name], np.float64)).reshape(n, -1)
    bq = int(bad.sum())
    if bq:
        jet, idx = (int(v) for v in np.argwhere(bad)[0])
        where = f"graph output {out_name!r}: Brevitas and QONNX reference differ on {bq} values (first: jet {jet}, " \
                f"value {idx})"
        loc = localise_brevitas(qmodel, wrapper, feed, ref, np.nonzero(bad.any(axis=1))[0][:LOCALISE_JETS])
        if loc is None:
            producer = next((nd.name for nd in nodes if out_name in nd.output), None)
            first = (len(nodes), where, out_name, producer)
        else:
            near = f"closest Brevitas quantizer {loc['brevitas']!r} differs on {loc['n_diff']} of {loc['n_values']} " \
                   f"values" if loc["brevitas"] else "no Brevitas quantizer has its shape"
            first = (loc["index"], f"tensor {loc['tensor']!r} (node {loc['node']!r}, Quant): first graph tensor that "
                                   f"no Brevitas quantizer output equals ({near}); {where}",
                     loc["tensor"], loc["node"])
    compared, qi, grids = 0, 0, {}
    for i, node in enumerate(nodes):
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
                if first is None or i < first[0]:
                    first = (i, f"tensor {t!r} (node {node.name!r}, {node.op_type}): QONNX and integer emulation "
                                f"differ on {diff} values", t, node.name)
    _, msg, tensor, node_name = first or (None, None, None, None)
    return CrossCheck(n, compared, bq, qi, msg, tensor, node_name, grids)
