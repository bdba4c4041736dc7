"""Small helpers over da4ml traced arrays: elementwise maps with numpy broadcasting and balanced reductions.

Every helper accepts numpy constants and :class:`da4ml.trace.FixedVariableArray` alike, so op handlers can be
written once for constant-folded and traced tensors.
"""

from __future__ import annotations

import contextlib
import decimal
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from da4ml.trace import FixedVariable, FixedVariableArray

HWCONF = (1, -1, -1)  # da4ml HWConfig(adder_size, carry_size, latency_cutoff): unit adders, no cutoff at trace

#: significant digits of the decimal context da4ml traces in (see :func:`exact_decimal`)
DECIMAL_PRECISION = 400


@contextlib.contextmanager
def exact_decimal(prec: int = DECIMAL_PRECISION) -> Iterator[decimal.Context]:
    """A decimal context in which da4ml's bookkeeping is exact, or fails loudly.

    da4ml keeps every variable's range, step and scale factor as ``decimal.Decimal``. Python's default context
    rounds to 28 significant digits, and a chain of activation products (softmax output x value x ...) reaches
    scale factors like 2^-89, whose exact decimal expansion has 63 significant digits. Rounded to 28, the factor
    is no longer a power of two and da4ml emits a truncation that rounds the wrong way (seen: 258 of 3000
    Linformer logits off by one LSB, in da4ml's interpreters and in the Verilog alike). Here the precision is
    raised and :class:`decimal.Inexact` is trapped, so any rounding of that bookkeeping raises instead of
    silently producing RTL that differs from the model.
    """
    with decimal.localcontext(prec=prec) as ctx:
        ctx.traps[decimal.Inexact] = True
        yield ctx


def is_traced(x) -> bool:
    return isinstance(x, FixedVariableArray)


def raw(x) -> np.ndarray:
    """The numpy array behind ``x`` (object array of FixedVariable for traced tensors)."""
    return x._vars if is_traced(x) else np.asarray(x, dtype=np.float64)


def wrap(arr: np.ndarray, traced: bool):
    """Inverse of :func:`raw`: an object array becomes a FixedVariableArray (constants inside become da4ml consts)."""
    if traced:
        return FixedVariableArray(np.asarray(arr, dtype=object), hwconf=HWCONF)
    return np.asarray(arr, dtype=np.float64)


def elementwise(fn: Callable, *xs):
    """Apply ``fn`` elementwise with numpy broadcasting; the result is traced iff any input is."""
    traced = any(is_traced(x) for x in xs)
    if not traced:
        return np.asarray(fn(*[np.asarray(x, dtype=np.float64) for x in xs]), dtype=np.float64)
    arrs = [raw(x).astype(object) for x in xs]
    out = np.frompyfunc(fn, len(arrs), 1)(*arrs)
    return wrap(np.asarray(out, dtype=object), True)


def tree_reduce(items: Sequence, op: Callable):
    """Balanced binary reduction (log2 depth, so the pipeline stays short)."""
    items = list(items)
    if not items:
        raise ValueError("tree_reduce of an empty sequence")
    while len(items) > 1:
        nxt = [op(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def tree_sum(items: Sequence):
    return tree_reduce(items, lambda a, b: a + b)


def vmax(a, b):
    if isinstance(a, FixedVariable):
        return a.max_of(b)
    if isinstance(b, FixedVariable):
        return b.max_of(a)
    return max(a, b)


def vmin(a, b):
    if isinstance(a, FixedVariable):
        return a.min_of(b)
    if isinstance(b, FixedVariable):
        return b.min_of(a)
    return min(a, b)


def select(bit, a, b):
    """``a`` where the 0/1 variable ``bit`` is 1, else ``b`` (a multiplexer; constants fold)."""
    if not isinstance(bit, FixedVariable):
        return a if bit else b
    if bit.low == bit.high:
        return a if bit.low else b
    if not isinstance(a, FixedVariable) and not isinstance(b, FixedVariable) and a == b:
        return a
    return bit.msb_mux(a, b)


def is_bit(v) -> bool:
    """True for a traced variable whose only values are 0 and 1 (unsigned, integer step)."""
    return isinstance(v, FixedVariable) and v.low == 0 and v.high == 1 and v.step == 1 and v._factor > 0


def matmul(a, b):
    """numpy ``matmul`` semantics (batched, broadcasting) for constants and traced arrays.

    traced x constant matrix goes through da4ml's constant-matrix-vector multiplication (distributed arithmetic,
    no DSPs); traced x traced builds products of two variables summed by a balanced adder tree.
    """
    if not is_traced(a) and not is_traced(b):
        return np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64))
    if is_traced(a) and not is_traced(b) and np.ndim(b) == 2:
        return a @ np.asarray(b, np.float64)
    if not is_traced(a) and is_traced(b) and np.ndim(a) == 2 and b.ndim == 2:
        return (b.T @ np.asarray(a, np.float64).T).T
    A, B = raw(a).astype(object), raw(b).astype(object)
    if A.ndim == 1:
        A = A[None, :]
    squeeze_b = B.ndim == 1
    if squeeze_b:
        B = B[:, None]
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    A = np.broadcast_to(A, batch + A.shape[-2:])
    B = np.broadcast_to(B, batch + B.shape[-2:])
    n, k, m = A.shape[-2], A.shape[-1], B.shape[-1]
    out = np.empty(batch + (n, m), dtype=object)
    for idx in np.ndindex(*batch) if batch else [()]:
        Ai, Bi = A[idx], B[idx]
        for i in range(n):
            for j in range(m):
                terms = [Ai[i, t] * Bi[t, j] for t in range(k)]
                out[idx + (i, j)] = tree_sum(terms)
    if squeeze_b:
        out = out[..., 0]
    return wrap(out, True)
