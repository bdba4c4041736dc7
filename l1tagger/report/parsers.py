"""Pure parsers of vendor-tool report text (no file system access): Vitis HLS ``<top>_csynth.rpt`` and
``<top>_csynth.xml``, Vivado ``report_utilization`` and ``report_timing_summary``.

Each returns a :class:`SynthesisReport` whose ``source`` says which tool produced the numbers. A malformed or
truncated report raises :class:`l1tagger.errors.ReportParseError` naming the missing section/field.

Conventions: BRAM is counted in BRAM18 (Vivado's ``Block RAM Tile`` is a 36 Kb tile = 2 BRAM18); clocks in ns
and MHz; latency in cycles and ns.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from l1tagger.errors import ConfigError, ReportParseError
from l1tagger.utils import dataclass_io

RESOURCES = ("lut", "ff", "dsp", "bram", "uram")


@dataclass
class Resource:
    used: float
    available: float | None = None

    @property
    def utilization(self) -> float | None:
        return self.used / self.available if self.available else None


@dataclass
class SynthesisReport:
    """Numbers read from one tool's report. Missing quantities are None (e.g. Vivado has no latency)."""

    source: str  # "vitis_hls" | "vivado" | "yosys"
    top: str | None = None
    part: str | None = None
    target_clock_ns: float | None = None
    estimated_clock_ns: float | None = None  # HLS estimate, or Vivado achieved period (target - WNS)
    latency_best_cycles: int | None = None
    latency_worst_cycles: int | None = None
    latency_best_ns: float | None = None
    latency_worst_ns: float | None = None
    ii_min: int | None = None
    ii_max: int | None = None
    pipeline_type: str | None = None
    wns_ns: float | None = None
    resources: dict[str, Resource] = field(default_factory=dict)

    @property
    def achieved_clock_mhz(self) -> float | None:
        return 1e3 / self.estimated_clock_ns if self.estimated_clock_ns else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["achieved_clock_MHz"] = self.achieved_clock_mhz
        return d

    @classmethod
    def from_dict(cls, d: dict, path: str = "") -> "SynthesisReport":
        """The report of a :meth:`to_dict` mapping (its derived ``achieved_clock_MHz`` ignored), strict
        (``l1tagger.utils.dataclass_io.from_dict``): an unknown, missing or mistyped field raises ReportParseError
        naming the dotted field (e.g. ``resources.lut.used``)."""
        if isinstance(d, Mapping):
            d = {k: v for k, v in d.items() if k != "achieved_clock_MHz"}
        try:
            return dataclass_io.from_dict(cls, d, path)
        except ConfigError as exc:
            raise ReportParseError(f"synthesis summary: {exc}") from None


# ----------------------------------------------------------------------------------------------- helpers
def _table_blocks(lines: list[str], start: int = 0) -> list[tuple[int, list[list[str]]]]:
    """Bordered ASCII tables (``+---+`` / ``| a | b |``) from ``start``: [(first line index, rows of cells)]."""
    blocks, i = [], start
    while i < len(lines):
        if lines[i].strip().startswith("+-"):
            first, rows = i, []
            while i < len(lines) and lines[i].strip()[:1] in ("+", "|"):
                s = lines[i].strip()
                if s.startswith("|"):
                    rows.append([c.strip() for c in s.strip("|").split("|")])
                i += 1
            blocks.append((first, rows))
        else:
            i += 1
    return blocks


def _section(lines: list[str], title: str, what: str) -> int:
    for i, line in enumerate(lines):
        if title in line:
            return i
    raise ReportParseError(f"{what}: no '{title}' section (truncated or not a {what}?)")


def _first_table_after(lines, start, what, section, header_has: str):
    for _, rows in _table_blocks(lines, start):
        if rows and any(header_has in " ".join(r) for r in rows[:2]):
            return rows
    raise ReportParseError(f"{what}: section '{section}' has no table with a '{header_has}' header (truncated?)")


def _num(cell: str, what: str) -> float:
    s = cell.replace(",", "").strip().lstrip("~").strip()
    m = re.fullmatch(r"(-?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(ps|ns|us|ms|s)?", s)
    if not m:
        raise ReportParseError(f"{what}: expected a number, got {cell!r}")
    return float(m.group(1)) * {None: 1.0, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]


def _int(cell: str, what: str) -> int:
    if cell.strip() in ("?", "-", ""):
        raise ReportParseError(f"{what}: value is {cell.strip()!r} (undetermined: a loop with variable trip count?)")
    return int(round(_num(cell, what)))


def _header_value(text: str, key: str) -> str | None:
    m = re.search(rf"^\s*[*|]\s*{re.escape(key)}\s*:\s*(.+?)\s*$", text, re.M)
    return m.group(1) if m else None


# ----------------------------------------------------------------------------------------------- Vitis HLS
def parse_csynth_rpt(text: str) -> SynthesisReport:
    """Vitis HLS (or Vivado HLS) ``<top>_csynth.rpt``: clock, latency, II and the utilization summary."""
    what = "csynth.rpt"
    if not isinstance(text, str) or not text.strip():
        raise ReportParseError(f"{what}: empty report")
    lines = text.splitlines()
    m = re.search(r"==\s*(Vitis|Vivado) HLS Report for '([^']+)'", text)
    if not m:
        raise ReportParseError(f"{what}: no '== Vitis HLS Report for <top>' header; not a C-synthesis report")
    rep = SynthesisReport(source="vitis_hls", top=m.group(2), part=_header_value(text, "Target device"))

    perf = _section(lines, "== Performance Estimates", what)
    t_start = _section(lines[perf:], "+ Timing", what) + perf
    timing = _first_table_after(lines, t_start, what, "Timing", "Target")
    head = timing[0]
    data = [r for r in timing[1:] if r and r[0] and not r[0].lower().startswith("clock")]
    if not data:
        raise ReportParseError(f"{what}: timing table has no clock row")
    row = dict(zip([h.lower() for h in head], data[0]))
    try:
        rep.target_clock_ns = _num(row["target"], f"{what} timing target")
        rep.estimated_clock_ns = _num(row["estimated"], f"{what} timing estimated")
    except KeyError as exc:
        raise ReportParseError(f"{what}: timing table lacks column {exc}") from None

    l_start = _section(lines[perf:], "+ Latency", what) + perf
    lat = _first_table_after(lines, l_start, what, "Latency", "Latency")
    data = [r for r in lat if r and re.match(r"^[-0-9.?~]", r[0] or "x")]
    if not data:
        raise ReportParseError(f"{what}: latency summary table has no value row (truncated?)")
    vals = data[0]
    joined = " ".join(" ".join(r) for r in lat[:2])
    if "absolute" in joined:  # 2019.2+: cycles min/max, absolute min/max, interval min/max, pipeline type
        if len(vals) < 6:
            raise ReportParseError(f"{what}: latency row has {len(vals)} cells, expected 7")
        rep.latency_best_cycles = _int(vals[0], f"{what} latency min")
        rep.latency_worst_cycles = _int(vals[1], f"{what} latency max")
        rep.latency_best_ns = _num(vals[2], f"{what} latency absolute min")
        rep.latency_worst_ns = _num(vals[3], f"{what} latency absolute max")
        ii = vals[4:6]
        rep.pipeline_type = vals[6] if len(vals) > 6 else None
    else:  # older: latency min/max, interval min/max, pipeline type
        if len(vals) < 4:
            raise ReportParseError(f"{what}: latency row has {len(vals)} cells, expected 5")
        rep.latency_best_cycles = _int(vals[0], f"{what} latency min")
        rep.latency_worst_cycles = _int(vals[1], f"{what} latency max")
        rep.latency_best_ns = rep.latency_best_cycles * rep.target_clock_ns
        rep.latency_worst_ns = rep.latency_worst_cycles * rep.target_clock_ns
        ii = vals[2:4]
        rep.pipeline_type = vals[4] if len(vals) > 4 else None
    rep.ii_min = _int(ii[0], f"{what} interval min")
    rep.ii_max = _int(ii[1], f"{what} interval max")

    u_start = _section(lines, "== Utilization Estimates", what)
    util = _first_table_after(lines, u_start, what, "Utilization Estimates", "BRAM")
    head = [h.upper() for h in util[0]]
    rows = {r[0]: r for r in util[1:] if r}
    for needed in ("Total", "Available"):
        if needed not in rows:
            raise ReportParseError(f"{what}: utilization summary has no '{needed}' row (truncated?)")
    colmap = {"lut": "LUT", "ff": "FF", "dsp": ("DSP", "DSP48E"), "bram": "BRAM_18K", "uram": "URAM"}
    for key, names in colmap.items():
        names = (names,) if isinstance(names, str) else names
        idx = next((head.index(n) for n in names if n in head), None)
        if idx is None:
            if key == "uram":
                continue  # devices without URAM
            raise ReportParseError(f"{what}: utilization summary has no {names[0]} column")
        used = rows["Total"][idx] if idx < len(rows["Total"]) else ""
        avail = rows["Available"][idx] if idx < len(rows["Available"]) else ""
        rep.resources[key] = Resource(
            used=0.0 if used.strip() == "-" else _num(used, f"{what} Total {names[0]}"),
            available=None if avail.strip() in ("-", "") else _num(avail, f"{what} Available {names[0]}"),
        )
    return rep


def _safe_xml(text: str, what: str):
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ReportParseError(f"{what}: DOCTYPE/ENTITY declarations are not accepted in a report")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportParseError(f"{what}: not well-formed XML ({exc}); truncated?") from None


def _xml_text(root, path: str, what: str) -> str:
    node = root.find(path)
    if node is None or node.text is None or not node.text.strip():
        raise ReportParseError(f"{what}: missing element {path}")
    return node.text.strip()


def parse_csynth_xml(text: str) -> SynthesisReport:
    """Vitis HLS ``<top>_csynth.xml`` (the same numbers as the .rpt, machine readable)."""
    what = "csynth.xml"
    root = _safe_xml(text, what)
    rep = SynthesisReport(source="vitis_hls")
    ua = root.find("UserAssignments")
    if ua is None:
        raise ReportParseError(f"{what}: missing element UserAssignments")
    rep.top = (ua.findtext("TopModelName") or "").strip() or None
    rep.part = (ua.findtext("Part") or "").strip() or None
    rep.target_clock_ns = _num(_xml_text(root, "UserAssignments/TargetClockPeriod", what), what)
    perf = "PerformanceEstimates"
    rep.estimated_clock_ns = _num(_xml_text(root, f"{perf}/SummaryOfTimingAnalysis/EstimatedClockPeriod", what), what)
    lat = f"{perf}/SummaryOfOverallLatency"
    rep.latency_best_cycles = _int(_xml_text(root, f"{lat}/Best-caseLatency", what), f"{what} Best-caseLatency")
    rep.latency_worst_cycles = _int(_xml_text(root, f"{lat}/Worst-caseLatency", what), f"{what} Worst-caseLatency")
    best_rt, worst_rt = root.findtext(f"{lat}/Best-caseRealTimeLatency"), root.findtext(f"{lat}/Worst-caseRealTimeLatency")
    rep.latency_best_ns = _num(best_rt, what) if best_rt else rep.latency_best_cycles * rep.target_clock_ns
    rep.latency_worst_ns = _num(worst_rt, what) if worst_rt else rep.latency_worst_cycles * rep.target_clock_ns
    rep.ii_min = _int(_xml_text(root, f"{lat}/Interval-min", what), f"{what} Interval-min")
    rep.ii_max = _int(_xml_text(root, f"{lat}/Interval-max", what), f"{what} Interval-max")
    rep.pipeline_type = (root.findtext(f"{perf}/PipelineType") or "").strip() or None
    tags = {"lut": ("LUT",), "ff": ("FF",), "dsp": ("DSP", "DSP48E"), "bram": ("BRAM_18K",), "uram": ("URAM",)}
    for key, names in tags.items():
        used = next((root.findtext(f"AreaEstimates/Resources/{n}") for n in names
                     if root.find(f"AreaEstimates/Resources/{n}") is not None), None)
        avail = next((root.findtext(f"AreaEstimates/AvailableResources/{n}") for n in names
                      if root.find(f"AreaEstimates/AvailableResources/{n}") is not None), None)
        if used is None:
            if key == "uram":
                continue
            raise ReportParseError(f"{what}: missing element AreaEstimates/Resources/{names[0]}")
        rep.resources[key] = Resource(_num(used, what), _num(avail, what) if avail else None)
    return rep


# ----------------------------------------------------------------------------------------------- Vivado
_UTIL_ROWS = {
    "lut": ("CLB LUTs", "Slice LUTs"),
    "ff": ("CLB Registers", "Slice Registers"),
    "bram": ("Block RAM Tile",),
    "uram": ("URAM",),
    "dsp": ("DSPs",),
}


def parse_vivado_utilization(text: str) -> SynthesisReport:
    """Vivado ``report_utilization`` text: LUT, FF, DSP, BRAM (tiles -> BRAM18), URAM with availability."""
    what = "Vivado utilization report"
    if not isinstance(text, str) or "Site Type" not in text:
        raise ReportParseError(f"{what}: no 'Site Type' tables; not a report_utilization output (or truncated)")
    rep = SynthesisReport(source="vivado", top=_header_value(text, "Design"), part=_header_value(text, "Device"))
    found: dict[str, tuple[float, float | None]] = {}
    for _, rows in _table_blocks(text.splitlines()):
        if not rows or rows[0][0] != "Site Type":
            continue
        head = rows[0]
        try:
            iu, ia = head.index("Used"), head.index("Available")
        except ValueError:
            raise ReportParseError(f"{what}: a Site Type table lacks Used/Available columns") from None
        for r in rows[1:]:
            name = r[0].rstrip("*").strip()
            for key, names in _UTIL_ROWS.items():
                if name in names and key not in found:
                    if len(r) <= max(iu, ia):
                        raise ReportParseError(f"{what}: row {name!r} is truncated")
                    avail = r[ia].strip()
                    found[key] = (_num(r[iu], f"{what} {name} Used"),
                                  _num(avail, f"{what} {name} Available") if avail else None)
    missing = [k for k in ("lut", "ff", "dsp", "bram") if k not in found]
    if missing:
        raise ReportParseError(f"{what}: no row for {[_UTIL_ROWS[k][0] for k in missing]} (truncated?)")
    for key, (used, avail) in found.items():
        if key == "bram":  # 36 Kb tiles -> BRAM18
            used, avail = 2 * used, (2 * avail if avail is not None else None)
        rep.resources[key] = Resource(used, avail)
    return rep


def parse_vivado_timing_summary(text: str, clock: str | None = "ap_clk") -> SynthesisReport:
    """Vivado ``report_timing_summary``: WNS and the clock period -> achieved period = period - WNS."""
    what = "Vivado timing summary"
    if not isinstance(text, str):
        raise ReportParseError(f"{what}: not text")
    lines = text.splitlines()
    start = _section(lines, "Design Timing Summary", what)
    wns = None
    for i in range(start, len(lines)):
        if "WNS(ns)" in lines[i]:
            heads = lines[i].split()
            vals = lines[i + 2].split() if i + 2 < len(lines) else []
            if len(vals) < 1 or not vals[0].replace(".", "", 1).lstrip("-").isdigit():
                raise ReportParseError(f"{what}: WNS value row missing or not numeric (truncated? got {vals[:1]})")
            wns = float(vals[heads.index("WNS(ns)")])
            break
    if wns is None:
        raise ReportParseError(f"{what}: no WNS(ns) column in the Design Timing Summary")
    c_start = _section(lines, "Clock Summary", what)
    clocks: dict[str, float] = {}
    for line in lines[c_start:]:
        m = re.match(r"^\s*(\S+)\s+\{[^}]*\}\s+([0-9.]+)\s+([0-9.]+)\s*$", line)
        if m:
            clocks[m.group(1)] = float(m.group(2))
        elif clocks and not line.strip():
            break
    if not clocks:
        raise ReportParseError(f"{what}: Clock Summary lists no clock (no create_clock constraint?)")
    name = clock if clock in clocks else (next(iter(clocks)) if len(clocks) == 1 else None)
    if name is None:
        raise ReportParseError(f"{what}: clock {clock!r} not in the Clock Summary {sorted(clocks)}")
    period = clocks[name]
    rep = SynthesisReport(source="vivado", top=_header_value(text, "Design"), part=_header_value(text, "Device"))
    rep.target_clock_ns = period
    rep.wns_ns = wns
    rep.estimated_clock_ns = period - wns
    return rep


def merge(*reports: SynthesisReport) -> SynthesisReport:
    """Combine reports of one tool (e.g. Vivado utilization + timing): later reports only fill fields still None."""
    if not reports:
        raise ReportParseError("merge: no reports")
    out = SynthesisReport(source=reports[0].source)
    for r in reports:
        if r.source != out.source:
            raise ReportParseError(f"merge: cannot merge {r.source} into {out.source} numbers")
        for f in out.__dataclass_fields__:
            v = getattr(r, f)
            if f == "resources":
                out.resources.update(v)
            elif v is not None and getattr(out, f) is None:  # the first report that has a field wins
                setattr(out, f, v)
    return out
