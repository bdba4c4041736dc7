"""Write the lowered model as a pipelined Verilog project (da4ml codegen) into ``<project>/rtl/``.

Layout written by da4ml: ``src/<top>.v`` (pipeline), ``src/<top>_stage*.v``, ``src/<top>_wrapper.v`` (uniform IO),
``src/static/*.v``, ``src/memfiles/*.mem`` (ROM contents), ``sim/`` (the Verilator C++ test-bench binder and its
makefile), ``model/pipeline.json``. We add ``rtl_manifest.json`` (ports, latency, II, op counts, the on-chip L1
feature nodes with their table digests) and ``tb/`` test vectors (inputs and expected outputs as integers on each
port's LSB grid) once co-simulated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from l1tagger.errors import ConfigError
from l1tagger.rtl.traced import exact_decimal
from l1tagger.utils.atomic import atomic_write_json


@dataclass
class RtlConfig:
    """How the traced logic becomes RTL.

    top:            Verilog top module name
    latency_cutoff: da4ml's per-stage delay budget (its delay units, roughly one adder/LUT level each); smaller
                    means more pipeline stages and a faster clock
    clock_ns:       the clock period the latency in ns is quoted at (no timing closure without Vivado: the cutoff
                    is what sets the logic depth per stage)
    """

    top: str = "l1tagger_top"
    latency_cutoff: float = 8.0
    clock_ns: float = 2.78  # 360 MHz, the CMS Phase-2 correlator clock

    def __post_init__(self):
        if not self.top.isidentifier():
            raise ConfigError(f"rtl top module name {self.top!r} is not a Verilog identifier")
        if self.latency_cutoff <= 0:
            raise ConfigError(f"rtl latency_cutoff must be > 0, got {self.latency_cutoff}")
        if self.clock_ns <= 0:
            raise ConfigError(f"rtl clock_ns must be > 0, got {self.clock_ns}")


def build_pipeline(lowered, cfg: RtlConfig):
    from da4ml.trace import to_pipeline

    with exact_decimal():
        return to_pipeline(lowered.comb, cfg.latency_cutoff, verbose=False)


def write_project(lowered, out_dir: str | Path, cfg: RtlConfig | None = None):
    """Write Verilog for ``lowered`` into ``out_dir``; returns (da4ml VerilogModel, manifest dict)."""
    from da4ml.codegen import VerilogModel

    cfg = cfg or RtlConfig()
    out_dir = Path(out_dir)
    pipe = build_pipeline(lowered, cfg)
    model = VerilogModel(pipe, cfg.top, out_dir, latency_cutoff=cfg.latency_cutoff, clock_period=cfg.clock_ns)
    with exact_decimal():
        model.write()
    stages = len(pipe.solutions)
    manifest = {
        "top": cfg.top,
        "config": asdict(cfg),
        "inputs": [asdict(p) for p in lowered.inputs],
        "outputs": [asdict(p) for p in lowered.outputs],
        "n_input_values": int(lowered.comb.shape[0]),
        "n_output_values": int(lowered.comb.shape[1]),
        "pipeline_stages": stages,
        # da4ml's latency: cycles from the registered input to the registered output (one more edge registers the
        # input bus itself)
        "latency_cycles": stages,
        "latency_ns": stages * cfg.clock_ns,
        "ii": 1,
        "da4ml_cost_estimate_lut": float(pipe.cost),
        "register_bits": int(pipe.reg_bits),
        "op_counts": lowered.op_counts,
        # da4ml's cost charged to the graph nodes that built it (l1tagger.rtl.attribution; sums to the cost above)
        "node_cost": lowered.node_cost,
        # the features computed on chip from L1 particle words: per node its op, spec and the ROMs' table digest
        "l1_features": lowered.l1_features,
        "source": "da4ml",
    }
    atomic_write_json(out_dir / "rtl_manifest.json", manifest)
    return model, manifest
