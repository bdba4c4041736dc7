"""One check for every feed (graph input name -> array, batch first) before anything runs on it.

    feed = validate_feed(model, np_arrays, source="inputs.npz", max_jets=1000)   # {name: float32 array}

Used by ``convert`` (test-bench jets), ``csim``, the RTL route and the QONNX reference runner, so they all refuse the
same things with the same message, and all receive the same float32 values: the graph inputs are float32, so the
cast here *is* the definition of the value a port sees (a float64 array is rounded to float32 once, here, and never
quantized from float64 elsewhere). Refused (:class:`~l1tagger.errors.DataError`, message naming the source, the
input and where):

- a graph input that is not given; an array that is not numeric;
- a rank or a shape other than the graph's (batch axis excepted): ``input 'x' has 17 particles, the model takes 16``;
- inputs with different numbers of jets, or none;
- NaN / inf (also a float64 value beyond the float32 range): ``input 'x' jet 3 particle 2: NaN``;
- in a key-mask input (a graph input read by no ``Quant`` node, the converter's rule), a value other than 0 or 1.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from l1tagger.errors import DataError


@dataclass(frozen=True)
class GraphInput:
    """One non-constant graph input: its shape without the batch axis (None where the graph leaves a dim open)."""

    name: str
    shape: tuple[int | None, ...] | None  # None: the graph gives no shape
    is_mask: bool


def graph_inputs(model) -> list[GraphInput]:
    """The graph inputs of a qonnx ModelWrapper or an onnx ModelProto, in graph order."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    quantized = {n.input[0] for n in graph.node if n.op_type == "Quant" and n.input}
    out = []
    for vi in graph.input:
        if vi.name in inits:
            continue
        shape = None
        if vi.type.tensor_type.HasField("shape"):
            shape = tuple(int(d.dim_value) if d.dim_value > 0 else None for d in vi.type.tensor_type.shape.dim[1:])
        out.append(GraphInput(vi.name, shape, vi.name not in quantized))
    return out


def load_npz(path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (no pickled objects); DataError naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such input file")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a .npy file: one array
            raise DataError(f"{path}: holds one array, expected an .npz with one array per graph input")
        with z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable .npz of input arrays ({reason})") from None


def _axis_name(rank: int, axis: int) -> str:
    if axis == rank - 1 and rank >= 3:
        return "features per particle" if rank == 3 else "pair features"
    return "particles"


def _where(rank: int, index: tuple[int, ...]) -> str:
    j = f"jet {index[0]}"
    if rank == 1:
        return j
    if rank == 4:
        return f"{j} pair ({index[1]}, {index[2]})"
    return f"{j} particle {index[1]}"


def _value(v: float) -> str:
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v!r} (beyond the float32 range)"


def validate_feed(model, feed: Mapping, source: str | None = None,
                  max_jets: int | None = None) -> dict[str, np.ndarray]:
    """Check ``feed`` against the graph's inputs and return {graph input: C-contiguous float32 array}.

    model: qonnx ModelWrapper or onnx ModelProto. feed: name -> array, batch first; names that are not graph inputs
    are ignored. source: what the feed came from (a file name), prefixed to every message. max_jets: keep only the
    first ``max_jets`` jets. Raises DataError (see the module docstring).
    """
    where = f"{source}: " if source else ""
    specs = graph_inputs(model)
    missing = [s.name for s in specs if s.name not in feed]
    if missing:
        raise DataError(f"{where}graph input(s) {missing} not given (given: {sorted(feed)})")
    out: dict[str, np.ndarray] = {}
    n_jets: dict[str, int] = {}
    for s in specs:
        a = np.asarray(feed[s.name])
        if a.dtype.kind not in "biuf":
            raise DataError(f"{where}input {s.name!r} holds {a.dtype} values, expected numbers")
        rank = a.ndim if s.shape is None else len(s.shape) + 1
        if a.ndim != rank or rank == 0:
            want = ", ".join(["n_jets"] + ["?" if d is None else str(d) for d in s.shape or ()])
            raise DataError(f"{where}input {s.name!r} has shape {a.shape}, the model takes ({want})")
        for axis, want in enumerate(s.shape or (), start=1):
            if want is not None and a.shape[axis] != want:
                what = _axis_name(rank, axis)
                raise DataError(f"{where}input {s.name!r} has {a.shape[axis]} {what}, the model takes {want}")
        if max_jets is not None:
            a = a[:max_jets]
        n_jets[s.name] = len(a)
        with np.errstate(over="ignore", invalid="ignore"):
            f32 = np.ascontiguousarray(a, dtype=np.float32)
        bad = ~np.isfinite(f32)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{where}input {s.name!r} {_where(rank, idx)}: {_value(float(a[idx]))}")
        if s.is_mask:
            bad = (f32 != 0) & (f32 != 1)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise DataError(f"{where}input {s.name!r} {_where(rank, idx)}: {float(a[idx])!r}, a mask takes "
                                f"only 0 or 1")
        out[s.name] = f32
    if len(set(n_jets.values())) > 1:
        raise DataError(f"{where}inputs hold different numbers of jets: {n_jets}")
    if specs and not next(iter(n_jets.values())):
        raise DataError(f"{where}no jets (the inputs have batch size 0)")
    return out
