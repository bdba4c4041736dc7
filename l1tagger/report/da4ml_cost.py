"""da4ml's cost of a graph, without writing Verilog: the second estimate the report shows beside its own.

The cleaned QONNX graph is lowered to da4ml's traced program by the open RTL route's own lowering
(:func:`l1tagger.rtl.lower.lower_model`: constant matrix products become da4ml's shift-and-add solutions, the
softmax its tables) and pipelined at the run's latency cutoff (:func:`l1tagger.rtl.project.build_pipeline`); da4ml's
cost model then gives the LUT estimate of that logic (``cost``, the number ``l1tagger rtl`` records as
``da4ml_cost_estimate_lut``), its pipeline stages and register bits, and the same cost split per block of the
tagger (``blocks``: da4ml's cost charged to the nodes that built it, ``l1tagger.rtl.attribution``, summed per
``l1tagger.report.blocks`` block). Nothing is written but the cache record.

    record = cached_da4ml_cost("runs/x/model.onnx", "hls_projects/x")   # computed once, then read back

The record is cached as ``<dir>/da4ml_cost.json`` keyed by the graph's sha256, the latency cutoff, the da4ml
version and the record's schema (:data:`RECORD_SCHEMA`: a record of an older l1tagger is recomputed), so the report does not lower the graph again. A graph the RTL route cannot lower (a recipe that rounds
half-to-even: da4ml truncates or rounds half-up only; an op outside the route) and a missing da4ml (installed
with ``pip install -e ".[rtl]"``) give a record with ``status: "skipped"`` and the reason, never an error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import onnx

from l1tagger.errors import ConfigError, ConversionError
from l1tagger.utils.atomic import atomic_write_json
from l1tagger.utils.hashing import sha256_file

#: the cache record's file name (in the HLS project, or beside the graph when there is none)
CACHE_NAME = "da4ml_cost.json"

#: the RTL route's default latency cutoff (``l1tagger.rtl.project.RtlConfig.latency_cutoff``; tested equal), here so
#: that reading a cache needs no da4ml
DEFAULT_LATENCY_CUTOFF = 8.0

#: the record's layout; part of the cache key, so records without the per-block split (schema 1) are recomputed
RECORD_SCHEMA = 2

#: what every record says about where its number comes from
SOURCE = "da4ml cost model of the lowered graph (not synthesised)"


def _da4ml_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("da4ml")
    except Exception:  # noqa: BLE001 - not installed
        return None


def _key(onnx_path: Path, latency_cutoff: float) -> dict:
    return {"onnx_sha256": sha256_file(onnx_path), "latency_cutoff": float(latency_cutoff),
            "da4ml_version": _da4ml_version(), "schema": RECORD_SCHEMA}


def da4ml_cost(onnx_path, latency_cutoff: float = DEFAULT_LATENCY_CUTOFF) -> dict:
    """Lower ``onnx_path`` and return da4ml's cost record: ``{"status": "ok", "lut", "latency_cycles",
    "register_bits", "n_ops", "seconds", "source"}``, or ``{"status": "skipped", "reason"}`` when the graph cannot
    be lowered (the reason names the node and the problem) or da4ml is not installed."""
    if _da4ml_version() is None:
        return {"status": "skipped", "reason": "da4ml is not installed (pip install -e \".[rtl]\")"}
    from l1tagger.rtl.lower import lower_model
    from l1tagger.rtl.project import RtlConfig, build_pipeline

    t = time.time()
    try:
        lowered = lower_model(onnx_path)
        pipe = build_pipeline(lowered, RtlConfig(latency_cutoff=latency_cutoff))
    except (ConfigError, ConversionError) as exc:
        return {"status": "skipped", "reason": f"the graph cannot be lowered to da4ml: {exc}"}
    return {"status": "ok", "lut": float(pipe.cost), "latency_cycles": len(pipe.solutions),
            "register_bits": int(pipe.reg_bits), "n_ops": len(lowered.comb.ops), "seconds": round(time.time() - t, 2),
            "source": SOURCE, "blocks": blocks_of(onnx_path, lowered.node_cost)}


def blocks_of(onnx_path, node_cost: dict[str, float]) -> dict[str, dict]:
    """da4ml's cost per block of the tagger (``l1tagger.report.blocks``) from its cost per node."""
    from l1tagger.report.blocks import da4ml_block_costs, node_blocks

    return da4ml_block_costs(node_cost, node_blocks(onnx.load(str(onnx_path))))


def read_cached(onnx_path, cache_dir, latency_cutoff: float = DEFAULT_LATENCY_CUTOFF) -> dict | None:
    """The cached record for this graph and cutoff, or None (missing, unreadable or for another graph)."""
    path = Path(cache_dir) / CACHE_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != _key(Path(onnx_path), latency_cutoff):
        return None
    return data.get("record")


def write_cached(onnx_path, cache_dir, record: dict, latency_cutoff: float = DEFAULT_LATENCY_CUTOFF) -> Path:
    """Store ``record`` (from :func:`da4ml_cost`, or the RTL route's own numbers) for this graph and cutoff."""
    return atomic_write_json(Path(cache_dir) / CACHE_NAME,
                             {"key": _key(Path(onnx_path), latency_cutoff), "record": record})


def cached_da4ml_cost(onnx_path, cache_dir, latency_cutoff: float = DEFAULT_LATENCY_CUTOFF) -> dict:
    """:func:`da4ml_cost`, read from ``cache_dir/da4ml_cost.json`` when it holds this graph's record, else computed
    and written there (also a skipped record: the reason does not change while the graph does not)."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ConfigError(f"da4ml cost: no ONNX graph at {onnx_path}")
    cached = read_cached(onnx_path, cache_dir, latency_cutoff)
    if cached is not None:
        return cached
    record = da4ml_cost(onnx_path, latency_cutoff)
    if not (record["status"] == "skipped" and record["reason"].startswith("da4ml is not installed")):
        write_cached(onnx_path, cache_dir, record, latency_cutoff)
    return record
