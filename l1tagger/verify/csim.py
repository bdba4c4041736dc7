"""C-simulation proof: compile the hls4ml project with g++, run the test-bench jets with per-layer tracing and
compare every traced layer and every output with the QONNX reference bit for bit.

    result = run_csim("hls_projects/run1")            # CsimResult (nothing written; write=True stores the record)
    result.bit_exact, result.first_mismatch_layer      # first differing layer (graph order) if any

The stored result is :mod:`l1tagger.verify.csim_result` (``PROJECT/csim/result.json``), the one record
``l1tagger report`` reads.

The project is rebuilt from its ``model.onnx`` with the same converter (same extension layers), so
C-simulation always runs the code the converter generates; the manifest's hash of ``model.onnx`` is checked.
To C-simulate firmware files as they are on disk instead (inspected or edited by hand, e.g. to show that the
comparison catches a planted one-LSB error), write them once with :func:`write_firmware` and pass
``rewrite_firmware=False``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from l1tagger.errors import VerificationError

#: CsimResult.firmware: where the compiled firmware came from
REGENERATED, AS_WRITTEN = "regenerated from model.onnx", "as written on disk"


@dataclass
class CsimResult:
    """Outcome of a C simulation. ``first_mismatch`` (details) and ``first_mismatch_layer`` (its hls4ml layer name)
    are None when every traced layer agrees. ``outputs`` (the C-simulation outputs, (n_jets, n_values)) is not
    serialised."""

    project: str
    n_jets: int
    n_output_values: int
    mismatching_values: int
    mismatching_jets: int
    bit_exact: bool
    first_mismatch: dict | None
    layers_compared: int
    compile_seconds: float
    csim_seconds: float
    jets_per_second: float
    prediction_agreement: float = 1.0  # fraction of jets whose argmax class equals the reference's
    layer_mismatches: dict = field(default_factory=dict)
    first_mismatch_layer: str | None = None  # the first traced layer (graph order) whose values differ
    firmware: str = REGENERATED  # REGENERATED or AS_WRITTEN (rewrite_firmware=False)
    outputs: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "outputs"}


def load_project(project_dir, trace: bool = True, fuse_topk: bool | None = None):
    """(hls4ml ModelGraph, Frontend, batch-1 model, manifest) rebuilt from a project written by ``convert``.
    fuse_topk: None = as the project was converted; False rebuilds top-k softmaxes N-wide (attention maps)."""
    from l1tagger.convert import ConvertConfig, build_hls_model, load_graph
    from l1tagger.convert.project import read_manifest, sha256_file

    project_dir = Path(project_dir)
    man = read_manifest(project_dir)
    onnx_path = project_dir / "model.onnx"
    if not onnx_path.is_file():
        raise VerificationError(f"{project_dir}: model.onnx is missing")
    want = man.get("files", {}).get("model.onnx")
    if want and sha256_file(onnx_path) != want:
        raise VerificationError(f"{project_dir}: model.onnx does not match the manifest hash (project modified?)")
    c = man["config"]
    cfg = ConvertConfig(backend=c["backend"], part=c["part"], clock=float(c["clock_ns"]), project=c["project"],
                        trace=trace, fuse_topk=c.get("fuse_topk", True) if fuse_topk is None else fuse_topk)
    model = load_graph(onnx_path)
    hls_model, fe = build_hls_model(model, project_dir, cfg)
    return hls_model, fe, model, man


def load_tb(project_dir, n_jets: int | None = None) -> tuple[dict, dict]:
    """(inputs, reference outputs) of the project's test bench, as stored (check the inputs with validate_feed)."""
    from l1tagger.verify.feed import load_npz

    tb = Path(project_dir) / "tb_data"
    if not (tb / "inputs.npz").is_file() or not (tb / "reference.npz").is_file():
        raise VerificationError(f"{project_dir}: tb_data/inputs.npz or reference.npz is missing (convert with "
                                f"test-bench jets)")
    inputs = load_npz(tb / "inputs.npz")
    ref = load_npz(tb / "reference.npz")
    if n_jets is not None:
        inputs = {k: v[:n_jets] for k, v in inputs.items()}
        ref = {k: v[:n_jets] for k, v in ref.items()}
    return inputs, ref


def hls_inputs(fe, inputs: dict) -> list[np.ndarray]:
    """The hls4ml ``predict()`` / ``trace()`` input list, in the model's input order, of a validated float32 feed
    ({graph input: array}, :func:`l1tagger.verify.feed.validate_feed`); each (n_jets, ...) array flattened to
    (n_jets, values) as float64 (which holds every float32 value exactly)."""
    xs = []
    for lname in fe.inputs:
        a = np.asarray(inputs[fe.input_types[lname]["onnx"]], np.float64)
        xs.append(np.ascontiguousarray(a.reshape(len(a), -1)))
    return xs


def compare_trace(fe, trace: dict, ref_all: dict, n: int) -> tuple[dict, dict | None, int]:
    """Per-layer mismatch counts in graph order; returns (counts, first mismatch, layers compared)."""
    counts, first, compared = {}, None, 0
    tensor_of = {v: k for k, v in fe.layer_of_tensor.items()}
    for layer in fe.layers:
        name = layer["name"]
        t = tensor_of.get(name)
        if name not in trace or t is None or t not in ref_all:
            continue
        got = np.asarray(trace[name], np.float64).reshape(n, -1)
        want = np.asarray(ref_all[t], np.float64).reshape(n, -1)
        if got.shape != want.shape:
            raise VerificationError(f"layer {name!r}: trace shape {got.shape} != reference {want.shape}")
        bad = got != want
        compared += 1
        counts[name] = int(bad.sum())
        if counts[name] and first is None:
            jets = np.nonzero(bad.any(axis=1))[0]
            first = {"layer": name, "class": layer["class_name"], "onnx_tensor": t, "n_values": counts[name],
                     "n_jets": int(len(jets)), "first_jet": int(jets[0]),
                     "max_abs_diff": float(np.abs(got - want).max())}
    return counts, first, compared


def write_firmware(hls_model) -> Path:
    """Write the firmware :func:`run_csim` compiles (hls4ml project with per-layer trace hooks) into the model's
    output directory; returns the firmware folder (``parameters.h`` holds every constant, ``<project>.cpp`` the
    layer calls)."""
    hls_model.config.trace_output = True  # per-layer trace hooks (C simulation only)
    hls_model.write()
    return Path(hls_model.config.get_output_dir()) / "firmware"


def check_trace_hooks(hls_model) -> None:
    """VerificationError unless the firmware on disk was written with per-layer trace hooks."""
    top = Path(hls_model.config.get_output_dir()) / "firmware" / f"{hls_model.config.get_project_name()}.cpp"
    if not top.is_file():
        raise VerificationError(f"{top}: firmware file missing (write it with l1tagger.verify.csim.write_firmware)")
    if "nnet::save_layer_output" not in top.read_text():
        raise VerificationError(f"{top}: firmware has no per-layer trace hooks (write it with "
                                f"l1tagger.verify.csim.write_firmware)")


def run_csim(project_dir, n_jets: int | None = None, write: bool = False, hls_model=None, fe=None,
             model=None, rewrite_firmware: bool = True) -> CsimResult:
    """Compile (g++) + trace the test-bench jets and compare with the QONNX reference bit for bit.

    write: also store the result as the project's one C-simulation record, ``PROJECT/csim/result.json``
    (:func:`l1tagger.verify.csim_result.write`, what ``l1tagger report`` reads); the default writes nothing.
    rewrite_firmware: True (default) writes the firmware from the graph first; False compiles the firmware files
    as they are on disk (written by :func:`write_firmware` from the same ``hls_model``, possibly edited since).
    """
    from l1tagger.export.reference import run_reference
    from l1tagger.verify.feed import validate_feed

    project_dir = Path(project_dir)
    if hls_model is None:
        hls_model, fe, model, _ = load_project(project_dir, trace=True)
    inputs, ref = load_tb(project_dir, n_jets)
    inputs = validate_feed(model, inputs, str(project_dir / "tb_data" / "inputs.npz"))
    n = len(next(iter(inputs.values())))
    ref_all = run_reference(model, inputs, return_all=True)
    xs = hls_inputs(fe, inputs)
    t0 = time.perf_counter()
    if rewrite_firmware:
        write_firmware(hls_model)
    else:
        check_trace_hooks(hls_model)
    # hls4ml's compile() is write() + _compile(); the firmware is written above (or deliberately kept as it is)
    try:
        hls_model._compile()  # g++ build of the files on disk
    except Exception as exc:  # hls4ml raises a bare Exception (and prints the compiler output)
        raise VerificationError(f"{project_dir}: g++ build of the firmware failed: {exc}") from exc
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out, trace = trace_layers(hls_model, xs)
    csim_s = time.perf_counter() - t0
    counts, first, compared = compare_trace(fe, trace, ref_all, n)
    outs = out if isinstance(out, list) else [out]
    got = np.concatenate([np.asarray(o, np.float64).reshape(n, -1) for o in outs], axis=1)
    want = np.concatenate([np.asarray(ref[o.name], np.float64).reshape(n, -1) for o in model.graph.output], axis=1)
    bad = got != want
    res = CsimResult(
        project=str(project_dir), n_jets=int(n), n_output_values=int(got.size), mismatching_values=int(bad.sum()),
        mismatching_jets=int(bad.any(axis=1).sum()), bit_exact=bool(not bad.any() and first is None),
        first_mismatch=first, layers_compared=compared, compile_seconds=round(compile_s, 3),
        csim_seconds=round(csim_s, 3), jets_per_second=round(n / max(csim_s, 1e-9), 1),
        prediction_agreement=_agreement(outs[0], ref[model.graph.output[0].name], n),
        layer_mismatches={k: v for k, v in counts.items() if v},
        first_mismatch_layer=first["layer"] if first else None,
        firmware=REGENERATED if rewrite_firmware else AS_WRITTEN, outputs=got)
    if write:
        from l1tagger.verify import csim_result

        csim_result.write(csim_result.CsimRecord.from_csim(res), project_dir)
    return res


def _agreement(got, want, n: int) -> float:
    """Fraction of jets with the same argmax class (equal tagging decisions)."""
    g = np.asarray(got, np.float64).reshape(n, -1)
    w = np.asarray(want, np.float64).reshape(n, -1)
    return float(np.mean(g.argmax(1) == w.argmax(1))) if n else 1.0


def trace_layers(hls_model, xs: list[np.ndarray]):
    """hls4ml ``trace`` of the inputs ``xs`` (:func:`hls_inputs`) on a model whose library was just compiled with
    per-layer trace hooks (:func:`write_firmware`, then ``_compile``), without trace()'s own second g++ build;
    returns (outputs, {layer name: (n_jets, ...) array})."""
    import contextlib
    import io

    buf = io.StringIO()
    # trace() starts with its own compile(); the library was just built with the trace hooks, so skip the
    # second g++ build with an instance-level no-op (the installed hls4ml is untouched)
    hls_model.compile = lambda: None
    try:
        with contextlib.redirect_stdout(buf):
            out, trace = hls_model.trace(xs if len(xs) > 1 else xs[0])
    finally:
        del hls_model.compile
    return out, trace
