"""da4ml's cost of a lowered graph, charged to the graph nodes that built it.

Every traced da4ml variable carries the cost of the operation that made it (``FixedVariable.cost``: da4ml's LUT
model of an adder, a constant shift-add, a lookup table, a multiplexer ...) and its operands (``_from``). The lowering
(:func:`l1tagger.rtl.lower.lower_model`) records the variables each node outputs; walking the nodes in graph order,
every *live* variable (one the graph outputs depend on, i.e. one that survives da4ml's dead-statement elimination) is
charged to the first node whose outputs reach it. Layout nodes pass their input variables through and are charged
nothing; a node whose logic is folded away (constant, unused) is charged nothing.

The charges add up to the ``CombLogic``'s cost exactly (tests/test_rtl_attribution.py), so da4ml's total can be
split per node and per block of the tagger (``l1tagger.report.blocks``) beside the estimate's split: where the LUTs
go in da4ml's model is then measured, not inferred from EBOPs.

    node_costs(node_vars, outputs) -> {node name: LUT}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from da4ml.trace import FixedVariable

from l1tagger.rtl.traced import is_traced, raw


def traced_vars(value) -> list:
    """The da4ml variables of a lowered tensor: a FixedVariable, the elements of a FixedVariableArray (constants
    and numpy arrays hold none)."""
    if isinstance(value, FixedVariable):
        return [value]
    if not is_traced(value):
        return []
    return [v for v in np.ravel(raw(value)) if isinstance(v, FixedVariable)]


def _reach(roots: Iterable, seen: set, within: set | None = None) -> Iterable:
    """Depth-first walk from ``roots`` through the operands, yielding each variable not yet in ``seen`` (and in
    ``within`` when given) once, and adding it to ``seen``."""
    stack = list(roots)
    while stack:
        v = stack.pop()
        if v.id in seen or (within is not None and v.id not in within):
            continue
        seen.add(v.id)
        yield v
        stack.extend(v._from)


def node_costs(node_vars: Sequence[tuple[str, list]], outputs: Iterable) -> dict[str, float]:
    """da4ml's LUT cost per node: ``node_vars`` = (node name, the variables it output) in graph order, ``outputs`` =
    the graph's output variables. Nodes that own no live logic are left out."""
    live: set = set()
    for _ in _reach(outputs, live):
        pass
    seen: set = set()
    costs: dict[str, float] = {}
    for name, vs in node_vars:
        c = sum(float(v.cost) for v in _reach(vs, seen, live))
        if c:
            costs[name] = costs.get(name, 0.0) + c
    return costs


__all__ = ["traced_vars", "node_costs"]
