"""The whole RTL route as one function (used by ``l1tagger rtl`` and the benchmark).

    result = run_rtl_flow("hls_projects/run1/model.onnx", "hls_projects/run1/rtl", cosim=True, yosys=False)
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from l1tagger.errors import ConversionError
from l1tagger.rtl.lower import LoweredModel, lower_model
from l1tagger.rtl.project import RtlConfig, write_project
from l1tagger.utils.atomic import atomic_write_json


def random_stimulus(lowered: LoweredModel, n_jets: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random jets on every port's grid (full range), masks 0/1 with the first particle always real."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in lowered.inputs:
        shape = (n_jets,) + p.shape
        if not p.quantized:
            n_real = rng.integers(1, p.shape[-1] + 1, size=(n_jets,) + p.shape[:-1])
            out[p.name] = (np.arange(p.shape[-1]) < n_real[..., None]).astype(np.float32)
        else:
            lo, hi = (-(2 ** (p.bits - 1)), 2 ** (p.bits - 1) - 1) if p.signed else (0, 2**p.bits - 1)
            out[p.name] = (rng.integers(lo, hi + 1, size=shape) * 2.0**-p.frac).astype(np.float32)
    return out


def load_inputs(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"no input file at {path}")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def run_rtl_flow(onnx_path, out_dir, *, cosim: bool = False, yosys: bool = False, n_jets: int = 1000,
                 inputs: dict | None = None, cfg: RtlConfig | None = None, seed: int = 0, progress: bool = True,
                 yosys_timeout_s: int = 3600, stimulus: str = "given inputs") -> dict:
    """Lower, write Verilog, optionally co-simulate (Verilator) and synthesize (Yosys). Returns the summary dict
    (also written to ``<out_dir>/rtl_summary.json``)."""
    out_dir = Path(out_dir)
    cfg = cfg or RtlConfig()
    t = time.time()
    lowered = lower_model(onnx_path, progress=progress)
    lower_s = time.time() - t
    model, manifest = write_project(lowered, out_dir, cfg)
    summary = {"onnx": str(onnx_path), "rtl_dir": str(out_dir), "lower_s": round(lower_s, 2), **manifest}
    if cosim:
        from qonnx.core.modelwrapper import ModelWrapper

        from l1tagger.export.reference import run_reference
        from l1tagger.rtl.cosim import cosimulate

        stim = stimulus
        if inputs is None:
            inputs, stim = random_stimulus(lowered, n_jets, seed), f"random on-grid jets (seed {seed})"
        inputs = {k: np.asarray(v)[:n_jets] for k, v in inputs.items()}
        feed = {p.name: inputs[p.name] for p in lowered.inputs}
        ref = run_reference(ModelWrapper(str(onnx_path)), feed, progress=progress)
        res = cosimulate(lowered, model, feed, ref, out_dir)
        summary["cosim"] = {**asdict(res), "bit_exact": res.bit_exact, "stimulus": stim, "source": "verilator"}
    if yosys:
        from l1tagger.rtl.yosys import synthesize

        summary["yosys"] = synthesize(out_dir, cfg.top, timeout_s=yosys_timeout_s)
    atomic_write_json(out_dir / "rtl_summary.json", summary)
    return summary
