"""The whole RTL route as one function (used by ``l1tagger rtl`` and the benchmark).

    result = run_rtl_flow("hls_projects/run1/model.onnx", "hls_projects/run1/rtl", cosim=True, yosys=False)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from l1tagger.errors import ConversionError
from l1tagger.rtl.lower import LoweredModel, load_model, lower_model
from l1tagger.rtl.project import RtlConfig, write_project
from l1tagger.utils.atomic import atomic_write_json


#: what a run writes besides the Verilog (rtl_manifest.json by write_project, cosim.json by cosimulate, yosys.json by
#: synthesize, rtl_summary.json here)
RESULT_FILES = ("rtl_summary.json", "rtl_manifest.json", "cosim.json", "yosys.json")


def _word_format(lowered: LoweredModel):
    """The word format the graph's on-chip feature ops read (None without such ops); ConversionError when its
    feature nodes disagree on it."""
    from l1tagger.data.words import WordFormat

    formats = {json.dumps(f["spec"]["format"], sort_keys=True) for f in lowered.l1_features}
    if not formats:
        return None
    if len(formats) > 1:
        raise ConversionError(f"the on-chip feature nodes {[f['node'] for f in lowered.l1_features]} read words of "
                              f"different formats; random stimulus needs one")
    return WordFormat.from_json(formats.pop())


def random_words(fmt, n_jets: int, n_particles: int, rng: np.random.Generator) -> np.ndarray:
    """(n_jets, n_particles, n_fields) valid words of ``fmt`` (``l1tagger.data.words.check_words`` holds): 0..N real
    particles first, every field over its full range (odd jets) or collimated in eta/phi around a random axis with
    soft pT (even jets, the range of real jets); padded slots all-zero."""
    from l1tagger.data.words import check_words

    w = np.zeros((n_jets, n_particles, fmt.n_fields), np.int64)
    n_real = rng.integers(0, n_particles + 1, n_jets)
    real = np.arange(n_particles)[None, :] < n_real[:, None]
    collimated = (np.arange(n_jets) % 2 == 0)[:, None]
    for i, f in enumerate(fmt.fields):
        full = rng.integers(f.int_min, f.int_max + 1, (n_jets, n_particles))
        if f.name == "valid":
            v = np.ones_like(full)
        elif f.name in ("eta", "phi"):
            near = rng.integers(f.int_min, f.int_max + 1, (n_jets, 1)) + rng.integers(-64, 65, (n_jets, n_particles))
            if f.name == "phi":  # an axis near +-pi spreads across it: wrapped into [-pi, pi)
                near = (near + fmt.intphi_pi) % (2 * fmt.intphi_pi) - fmt.intphi_pi
            v = np.where(collimated, np.clip(near, f.int_min, f.int_max), full)
        elif f.name == "pt":
            v = np.where(collimated, rng.integers(0, min(f.int_max, 1 << 10) + 1, (n_jets, n_particles)), full)
        else:
            v = full
        w[..., i] = np.where(real, v, 0)
    return check_words(w, fmt, "random words")


def random_stimulus(lowered: LoweredModel, n_jets: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random jets on every port's grid (full range), masks 0/1 with the first particle always real; for a graph
    with on-chip features of L1 words, the port the words enter (unit grid, one value per word field) gets valid
    words of the feature ops' format (:func:`random_words`), not arbitrary integers."""
    rng = np.random.default_rng(seed)
    fmt = _word_format(lowered)
    out = {}
    for p in lowered.inputs:
        shape = (n_jets,) + p.shape
        if fmt is not None and p.quantized and p.frac == 0 and len(p.shape) == 2 and p.shape[-1] == fmt.n_fields:
            out[p.name] = random_words(fmt, n_jets, p.shape[0], rng).astype(np.float32)
        elif not p.quantized:
            n_real = rng.integers(1, p.shape[-1] + 1, size=(n_jets,) + p.shape[:-1])
            out[p.name] = (np.arange(p.shape[-1]) < n_real[..., None]).astype(np.float32)
        else:
            lo, hi = (-(2 ** (p.bits - 1)), 2 ** (p.bits - 1) - 1) if p.signed else (0, 2**p.bits - 1)
            out[p.name] = (rng.integers(lo, hi + 1, size=shape) * 2.0**-p.frac).astype(np.float32)
    return out


def interpreter_check(lowered, feed: dict, ref: dict) -> dict:
    """da4ml's C++ interpreter of the traced logic against the QONNX reference, value by value.

    The interpreter runs the same integer operations the Verilog is generated from (it reproduced, bit for bit, every
    RTL mismatch l1tagger has met: docs/rtl_route.md), in seconds instead of a Verilator build, so it is the check
    for designs too large to verilate in reasonable time. It is not a simulation of the Verilog itself.
    The traced logic is one program (no per-layer trace): a mismatch names the output tensor, the jet and the index
    (``first_mismatch``, ``first_mismatch_output``).
    """
    from l1tagger.rtl.cosim import compare

    t = time.time()
    y = lowered.comb.predict(lowered.encode_inputs(feed), n_threads=1)
    r = np.concatenate([np.asarray(ref[p.name], np.float64).reshape(len(y), -1) for p in lowered.outputs], axis=1)
    n_bad, maxdiff, first = compare(y, r, lowered.outputs)
    return {"n_jets": len(y), "n_values": int(r.size), "n_mismatches": n_bad, "max_abs_diff": maxdiff,
            "first_mismatch": first, "first_mismatch_output": first["output"] if first else None,
            "bit_exact": n_bad == 0, "seconds": round(time.time() - t, 2),
            "source": "da4ml C++ interpreter (not a simulation of the Verilog)"}


def run_rtl_flow(onnx_path, out_dir, *, cosim: bool = False, yosys: bool = False, interp: bool = False,
                 n_jets: int = 1000,
                 inputs: dict | None = None, cfg: RtlConfig | None = None, seed: int = 0, progress: bool = True,
                 yosys_timeout_s: int = 3600, stimulus: str = "given inputs", inputs_source: str | None = None) -> dict:
    """Lower, write Verilog, optionally check it (``interp``: da4ml's C++ interpreter; ``cosim``: Verilator) against
    the QONNX reference and synthesize it (Yosys). Returns the summary dict (also ``<out_dir>/rtl_summary.json``).

    inputs: graph input name -> array (batch first), checked and cast to float32 once by
    :func:`l1tagger.verify.feed.validate_feed` (``inputs_source`` names them in its messages) before anything is
    lowered: the RTL ports and the QONNX reference then see the same float32 values.
    """
    from qonnx.core.modelwrapper import ModelWrapper

    from l1tagger.verify.feed import validate_feed

    out_dir = Path(out_dir)
    cfg = cfg or RtlConfig()
    graph = ModelWrapper(load_model(onnx_path))  # ConversionError naming a missing or unreadable file
    if inputs is not None and (cosim or interp):
        inputs = validate_feed(graph, inputs, inputs_source or stimulus, max_jets=n_jets)
    for name in RESULT_FILES:  # a previous run's results must not look current if this one fails
        (out_dir / name).unlink(missing_ok=True)
    t = time.time()
    lowered = lower_model(onnx_path, progress=progress)
    lower_s = time.time() - t
    model, manifest = write_project(lowered, out_dir, cfg)
    summary = {"onnx": str(onnx_path), "rtl_dir": str(out_dir), "lower_s": round(lower_s, 2), **manifest}
    if cosim or interp:
        from l1tagger.export.reference import run_reference

        stim = stimulus
        if inputs is None:
            stim = f"random on-grid jets (seed {seed})"
            inputs = validate_feed(graph, random_stimulus(lowered, n_jets, seed), stim)
        feed = {p.name: inputs[p.name] for p in lowered.inputs}
        ref = run_reference(graph, feed, progress=progress)
        if interp:
            summary["interp"] = {**interpreter_check(lowered, feed, ref), "stimulus": stim}
        if cosim:
            from l1tagger.rtl.cosim import cosimulate

            res = cosimulate(lowered, model, feed, ref, out_dir)
            summary["cosim"] = {**asdict(res), "bit_exact": res.bit_exact, "stimulus": stim, "source": "verilator"}
    if yosys:
        from l1tagger.rtl.yosys import synthesize

        summary["yosys"] = synthesize(out_dir, cfg.top, timeout_s=yosys_timeout_s)
    atomic_write_json(out_dir / "rtl_summary.json", summary)
    return summary
