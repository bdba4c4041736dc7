"""The self-contained HLS project: hls4ml firmware + build tcl, tb_data/ and manifest.json.

Layout of ``hls_projects/<run>/``::

    firmware/, build_prj.tcl, ...   written by hls4ml (``ModelGraph.write``)
    model.onnx                      the converted QONNX graph (batch 1)
    tb_data/inputs.npz              test-bench jets (graph input name -> array)
    tb_data/reference.npz           QONNX-reference outputs of those jets (graph output name -> array)
    tb_data/tb_input_features.dat   the same, in hls4ml's test-bench text format (inputs concatenated per jet)
    tb_data/tb_output_predictions.dat
    manifest.json                   provenance, layer map, softmax specs, on-chip L1 feature layers (spec, table
                                    digest), versions, sha256 of every file
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import secrets
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np

from l1tagger.errors import ConfigError
from l1tagger.utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text

MANIFEST = "manifest.json"
HLS4ML_CONFIG = "hls4ml_config.yml"  # hls4ml's record of the project config (holds OutputDir)
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


def write_tb_data(out_dir: Path, model, feed: dict) -> dict:
    """Write the test-bench jets and their QONNX-reference outputs; returns a summary for the manifest.

    feed: {graph input: float32 array} as returned by :func:`l1tagger.verify.feed.validate_feed`.
    """
    from l1tagger.export.reference import run_reference

    names = list(feed)
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


def is_project(path) -> bool:
    """Whether ``path`` holds an l1tagger HLS project (a manifest.json written by :func:`write_project`)."""
    try:
        man = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(man, dict) and isinstance(man.get("config"), dict) and "io_type" in man["config"] \
        and isinstance(man.get("files"), dict)


def _protected(path: Path) -> bool:
    """/, a top-level folder, a home folder, the working directory or one of its parents."""
    cwd = Path.cwd().resolve()
    homes = {Path.home().resolve(), Path(os.path.expanduser("~")).resolve()}
    return len(path.parts) <= 2 or path in homes or path.parent in (Path("/home"), Path("/Users")) or \
        path == cwd or path in cwd.parents


def check_target(out_dir, force: bool = False) -> None:
    """ConfigError unless ``out_dir`` may receive a new project: absent or empty, or (with ``force``) an l1tagger
    HLS project, which is then replaced as a whole. Never a folder that is not one (nor /, a home or ``.``)."""
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        above = next((a for a in out_dir.absolute().parents if a.exists()), None)
        if above is not None and not above.is_dir():
            raise ConfigError(f"{out_dir}: {above} is a file, not a directory; choose another --out")
        return
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory; choose another --out")
    if not any(out_dir.iterdir()):
        return
    if not force:
        raise ConfigError(f"{out_dir}: not empty (a project of another model would leave its synthesis reports "
                          f"behind); pass --force to replace the l1tagger project there, or choose another --out")
    if _protected(out_dir.resolve()):
        raise ConfigError(f"{out_dir}: refusing to replace {out_dir.resolve()} (/, a top-level or home folder, or the "
                          f"working directory); choose another --out")
    if not is_project(out_dir):
        raise ConfigError(f"{out_dir}: not empty and not an l1tagger HLS project (no valid {MANIFEST}); refusing to "
                          f"delete it, choose another --out")


@contextlib.contextmanager
def staged_dir(out_dir: Path, force: bool = False):
    """Yield a new temporary folder beside ``out_dir``; on success it replaces ``out_dir`` (checked by
    :func:`check_target`) with one rename, on any failure or interrupt it is removed and ``out_dir`` is untouched."""
    check_target(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stem = out_dir.parent / f".{out_dir.name}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp, old = stem.with_name(stem.name + ".tmp"), stem.with_name(stem.name + ".old")
    tmp.mkdir()  # usual permissions (umask), unlike mkdtemp's 0700
    try:
        yield tmp
        check_target(out_dir, force)  # unchanged meanwhile?
        if out_dir.exists() or out_dir.is_symlink():
            os.replace(out_dir, old)
            try:
                os.replace(tmp, out_dir)
            except BaseException:
                os.replace(old, out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_project(hls_model, fe, model, onnx_path: Path, out_dir: Path, cfg, tb_feed, source, convert_s: float,
                  force: bool = False) -> Path:
    """Write the whole project into a temporary sibling of ``out_dir`` and rename it into place at the end (a failed
    or interrupted convert leaves no half-written project). tb_feed: validated test-bench inputs or None."""
    import yaml

    with staged_dir(out_dir, force) as tmp:
        hls_model.config.config["OutputDir"] = str(tmp)
        try:
            hls_model.write()
        finally:
            hls_model.config.config["OutputDir"] = str(out_dir)
        atomic_write_text(tmp / HLS4ML_CONFIG, yaml.dump(hls_model.config.config))  # as hls4ml writes it
        write_files(fe, model, onnx_path, tmp, cfg, tb_feed, source, convert_s)
    return out_dir / MANIFEST


def write_files(fe, model, onnx_path: Path, out_dir: Path, cfg, tb_feed, source, convert_s: float) -> Path:
    """model.onnx, tb_data/ and manifest.json (last: it hashes every other file) into ``out_dir``."""
    atomic_write_bytes(out_dir / "model.onnx", model.model.SerializeToString())
    tb = write_tb_data(out_dir, model, tb_feed) if tb_feed is not None else None
    files = sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))
    manifest = {
        "schema": 1,
        "source": {"onnx": str(onnx_path), "onnx_sha256": sha256_file(onnx_path), **source},
        "config": {"backend": cfg.backend, "part": cfg.part, "clock_ns": cfg.clock, "io_type": "io_parallel",
                   "project": cfg.project, "fuse_topk": cfg.fuse_topk},
        "inputs": {k: {"onnx": v["onnx"], "role": v["role"], "type": v["type"].describe(),
                       "cpp": v["type"].cpp("AP_" + v["round"] if v["round"] != "TRN" else "AP_TRN",
                                            "AP_" + v["sat"])}
                   for k, v in fe.input_types.items()},
        "pair_features": "taken as graph inputs (computed off-chip from particle 4-vectors by l1tagger features)"
        if any(v["onnx"] == "pair" for v in fe.input_types.values()) else None,
        # the features computed on chip from L1 particle words: per layer its node, op, spec and table digest
        "l1features": fe.feature_layers,
        "outputs": [o.name for o in model.graph.output],
        "softmax": fe.softmax_layers,
        "topk_attention": fe.topk_attention_layers,
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
