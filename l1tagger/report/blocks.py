"""Which block of the tagger each node of a cleaned QONNX graph belongs to, and the cost per block.

Pure functions over the graph (no torch, no names: exported node names are generic), so the split holds for every
attention kind and interaction design:

* ``particle features``: the on-chip per-particle feature op and the valid-bit op (L1ParticleFeatures, L1WordMask);
* ``pair features``: the on-chip pair-feature op (L1PairFeatures);
* ``interaction U``: every node whose data comes from the pair features alone (the pair embedding / tables, the
  per-head U, its masking and a Linformer projection of U); the node where U meets QK^T belongs to attention;
* ``softmax``: the firmware softmax nodes;
* ``particle path``: everything else (embedding, Q/K/V, QK^T + U, attention x value, FFN, pooling, head).

Taint rule: a node is in the pair cone when at least one input descends from the pair features (graph input ``pair``
or an L1PairFeatures output) and none descends from the particle features (graph inputs ``x`` / ``words`` through
anything but the pair op). The mask is neutral (a 0/1 multiplier, not data).

    node_blocks(model) -> {node name: block}
    block_costs(estimate_layers, blocks) -> {block: {lut, dsp, ebops, bram18, share_lut, share_cost}}
    da4ml_block_costs(node_cost, blocks) -> {block: {lut, share}}   (da4ml's cost charged per node, l1tagger.rtl)
"""

from __future__ import annotations

from l1tagger.contract.l1features import MASK_OP, PAIR_OP, PARTICLE_OP
from l1tagger.contract.opset import node_domain
from l1tagger.contract.softmax import ONNX_DOMAIN, ONNX_OP_TYPE

BLOCKS = ("particle features", "pair features", "interaction U", "softmax", "particle path")
#: graph inputs that carry no data (a multiplier of 0/1)
NEUTRAL_INPUTS = frozenset({"mask"})
PAIR_INPUTS = frozenset({"pair"})


def node_blocks(model) -> dict[str, str]:
    """{node name: block} for every node of ``model`` (onnx ModelProto or qonnx ModelWrapper)."""
    g = getattr(model, "graph", None) or model.model.graph
    consts = {i.name for i in g.initializer}
    pair: set[str] = set()  # tensors that descend from the pair features only
    data: set[str] = set()  # tensors that descend from particle data
    for vi in g.input:
        if vi.name in consts or vi.name in NEUTRAL_INPUTS:
            continue
        (pair if vi.name in PAIR_INPUTS else data).add(vi.name)
    out: dict[str, str] = {}
    for node in g.node:
        dom, op = node_domain(node), node.op_type
        ins = [i for i in node.input if i]
        if dom == ONNX_DOMAIN and op in (PARTICLE_OP, MASK_OP):
            block = "particle features"
            if op == PARTICLE_OP:
                data.update(node.output)
        elif dom == ONNX_DOMAIN and op == PAIR_OP:
            block = "pair features"
            pair.update(node.output)
        elif dom == ONNX_DOMAIN and op == ONNX_OP_TYPE:
            block = "softmax"
            data.update(node.output)
        elif any(i in pair for i in ins) and not any(i in data for i in ins):
            block = "interaction U"
            pair.update(node.output)
        else:
            block = "particle path"
            if any(i in pair or i in data for i in ins):
                data.update(node.output)
        out[node.name] = block
    return out


def block_costs(layers, blocks: dict[str, str], ebops_per_dsp: float = 55.0) -> dict[str, dict]:
    """Sum of the estimate's per-layer LUT/DSP/EBOPs/BRAM18 per block, with each block's share of the total LUT and of
    the total cost (LUT + ebops_per_dsp x DSP). ``layers``: LayerEstimate objects or their dicts. A layer the graph
    does not name (none today) counts in ``particle path``."""
    keys = ("lut", "dsp", "ebops", "bram18")
    acc = {b: dict.fromkeys(keys, 0.0) for b in BLOCKS}
    for layer in layers:
        d = layer if isinstance(layer, dict) else vars(layer)
        b = blocks.get(d["name"], "particle path")
        for k in keys:
            acc[b][k] += float(d[k])
    tot_lut = sum(a["lut"] for a in acc.values())
    tot_cost = sum(a["lut"] + ebops_per_dsp * a["dsp"] for a in acc.values())
    for a in acc.values():
        cost = a["lut"] + ebops_per_dsp * a["dsp"]
        a["share_lut"] = a["lut"] / tot_lut if tot_lut else 0.0
        a["share_cost"] = cost / tot_cost if tot_cost else 0.0
    return acc


def da4ml_block_costs(node_cost: dict[str, float], blocks: dict[str, str]) -> dict[str, dict]:
    """da4ml's LUT per block and its share of da4ml's total, from da4ml's cost per node (``LoweredModel.node_cost``,
    ``l1tagger.rtl.attribution``: it sums to da4ml's total). A node the graph does not name counts in ``particle
    path``, as in :func:`block_costs`."""
    acc = {b: {"lut": 0.0} for b in BLOCKS}
    for name, lut in node_cost.items():
        acc[blocks.get(name, "particle path")]["lut"] += float(lut)
    total = sum(a["lut"] for a in acc.values())
    for a in acc.values():
        a["share"] = a["lut"] / total if total else 0.0
    return acc


def interaction_share(costs: dict[str, dict]) -> float:
    """The share of the whole tagger's cost (LUT + 55 DSP) spent on U, on-chip pair features included."""
    return costs["pair features"]["share_cost"] + costs["interaction U"]["share_cost"]


def da4ml_interaction_share(costs: dict[str, dict]) -> float:
    """The same share of da4ml's LUT (:func:`da4ml_block_costs`)."""
    return costs["pair features"]["share"] + costs["interaction U"]["share"]
