"""The self-contained HLS project: hls4ml firmware + build tcl, tb_data/ and manifest.json.

Layout of ``hls_projects/<run>/``::

    firmware/, build_prj.tcl, ...   written by hls4ml (``ModelGraph.write``)
    model.onnx                      the converted QONNX graph (batch 1)
    tb_data/inputs.npz              test-bench jets (graph input name -> array)
    tb_data/reference.npz           QONNX-reference outputs of those jets (graph output name -> array)
    tb_data/tb_input_features.dat   the same, in hls4ml's test-bench text format (inputs concatenated per jet)
    tb_data/tb_output_predictions.dat
    manifest.json                   provenance, layer map, softmax specs, versions, sha256 of every file
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from l1tagger.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text

MANIFEST = "manifest.json"
PACKAGES = ("l1tagger", "hls4ml", "qonnx", "onnx", "brevitas", "torch", "numpy")


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_tb_data(out_dir: Path, model, inputs: dict, n_tb: int) -> dict:
    """Write the first n_tb jets and their QONNX-reference outputs; returns a summary for the manifest."""
    from l1tagger.export.reference import run_reference

    names = [vi.name for vi in model.graph.input if model.get_initializer(vi.name) is None]
    missing = [n for n in names if n not in inputs]
    if missing:
        from l1tagger.errors import ConversionError

        raise ConversionError(f"test-bench inputs lack graph input(s) {missing}")
    feed = {n: np.asarray(inputs[n][:n_tb], np.float32) for n in names}
    ref = run_reference(model, feed, progress=len(feed[names[0]]) > 200)
    outs = {o.name: np.asarray(ref[o.name]) for o in model.graph.output}
    tb = out_dir / "tb_data"
    atomic_write_bytes(tb / "inputs.npz", _npz_bytes(feed))
    atomic_write_bytes(tb / "reference.npz", _npz_bytes(outs))
    n = len(feed[names[0]])
    flat_in = np.concatenate([feed[k].reshape(n, -1) for k in names], axis=1)
    flat_out = np.concatenate([outs[o.name].reshape(n, -1) for o in model.graph.output], axis=1)
    atomic_write_text(tb / "tb_input_features.dat", "\n".join(" ".join(repr(float(v)) for v in r) for r in flat_in) + "\n")
    atomic_write_text(tb / "tb_output_predictions.dat",
                      "\n".join(" ".join(repr(float(v)) for v in r) for r in flat_out) + "\n")
    return {"n_jets": int(n), "inputs": names, "outputs": [o.name for o in model.graph.output]}


def layer_map(fe) -> list[dict]:
    """hls4ml layer -> ONNX tensor it computes, with its exact type (for tracing and reports)."""
    inv = {v: k for k, v in fe.layer_of_tensor.items()}
    rows = []
    for layer in fe.layers:
        l1 = layer.get("l1")
        t = l1["type"] if l1 else fe.input_types[layer["name"]]["type"]
        rows.append({"layer": layer["name"], "class": layer["class_name"], "onnx_tensor": inv.get(layer["name"]),
                     "type": t.describe(), "cpp": t.cpp()})
    return rows


def write_project(hls_model, fe, model, onnx_path: Path, out_dir: Path, cfg, tb_inputs, n_tb, source,
                  convert_s: float) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    hls_model.write()
    atomic_write_bytes(out_dir / "model.onnx", model.model.SerializeToString())
    tb = write_tb_data(out_dir, model, tb_inputs, n_tb) if tb_inputs is not None else None
    files = sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))
    manifest = {
        "schema": 1,
        "source": {"onnx": str(onnx_path), "onnx_sha256": sha256_file(onnx_path), **source},
        "config": {"backend": cfg.backend, "part": cfg.part, "clock_ns": cfg.clock, "io_type": "io_parallel",
                   "project": cfg.project},
        "inputs": {k: {"onnx": v["onnx"], "role": v["role"], "type": v["type"].describe(),
                       "cpp": v["type"].cpp("AP_" + v["round"] if v["round"] != "TRN" else "AP_TRN",
                                            "AP_" + v["sat"])}
                   for k, v in fe.input_types.items()},
        "pair_features": "taken as graph inputs (computed off-chip from particle 4-vectors by l1tagger features)"
        if any(v["onnx"] == "pair" for v in fe.input_types.values()) else None,
        "outputs": [o.name for o in model.graph.output],
        "softmax": fe.softmax_layers,
        "layers": layer_map(fe),
        "tb_data": tb,
        "convert_seconds": round(convert_s, 3),
        "versions": package_versions(),
        "onnx_opset": [{"domain": o.domain, "version": o.version} for o in model.model.opset_import],
        "files": {str(p.relative_to(out_dir)): sha256_file(p) for p in files},
    }
    atomic_write_json(out_dir / MANIFEST, manifest)
    return out_dir / MANIFEST


def read_manifest(project_dir) -> dict:
    from l1tagger.errors import VerificationError

    p = Path(project_dir) / MANIFEST
    if not p.is_file():
        raise VerificationError(f"{str(project_dir)!r} is not an l1tagger HLS project (no {MANIFEST})")
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise VerificationError(f"{p}: corrupt manifest: {exc}") from exc
