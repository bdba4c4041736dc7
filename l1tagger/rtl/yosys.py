"""Yosys synthesis (``synth_xilinx -family xcup``, UltraScale+) of the generated Verilog and the stat parser.

Debian's Yosys 0.23 stops on da4ml's ROMs (``no valid mapping found for memory ...lookup_table.lut_rom``);
``setattr -unset rom_style */lut_rom`` before synthesis lets the ROMs map to LUTs on both 0.23 and yowasp 0.70.
These are counts from an open synthesizer, labelled ``source: "yosys"`` (not Vivado post-route numbers).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from l1tagger.errors import ConversionError, VerificationError
from l1tagger.rtl.tools import find_yosys
from l1tagger.utils.atomic import atomic_write_json

#: resource class -> regex over Xilinx primitive names in ``stat`` output
RESOURCE_CLASSES: dict[str, str] = {
    "LUT": r"LUT[1-6]",
    "FF": r"FD[RSCP]E(_1)?|FD[RSCP]|FDRE|LDCE|LDPE",
    "CARRY": r"CARRY[48]",
    "DSP": r"DSP48E[12]|DSP48|DSP58",
    "LUTRAM": r"RAM\d+[XSMD]\w*",
    "BRAM": r"RAMB\d+\w*",
    "MUXF": r"MUXF[789]",
    "SRL": r"SRL16E|SRLC16E|SRLC32E",  # shift registers in LUTs (pipeline delay lines)
}

_NEW = re.compile(r"^\s*(\d+)\s+(?:[\d.]+\s+)?([A-Za-z_$][\w$]*)\s*$")  # yosys >= 0.5x: "   92   CARRY4"
_OLD = re.compile(r"^\s*([A-Za-z_$][\w$]*)\s+(\d+)\s*$")  # yosys 0.23: "     CARRY4       92"


def parse_stat(text: str) -> dict:
    """Cell counts from a Yosys ``stat`` report (old and new formats) -> {"cells": {...}, "LUT": n, "FF": n, ...}.

    Only the last module section is read when several are printed (the flattened top comes last).
    """
    sections = re.split(r"^=== .* ===\s*$", text, flags=re.M)
    body = sections[-1] if len(sections) > 1 else text
    cells: dict[str, int] = {}
    for line in body.splitlines():
        m = _NEW.match(line)
        if m:
            count, name = int(m.group(1)), m.group(2)
        else:
            m = _OLD.match(line)
            if not m:
                continue
            name, count = m.group(1), int(m.group(2))
        if name.startswith("$") or name.lower() in ("cells", "wires", "ports", "memories", "processes"):
            continue
        if not re.match(r"^[A-Z][A-Z0-9_]*$", name):  # Xilinx primitives are upper case
            continue
        cells[name] = cells.get(name, 0) + count
    if not cells:
        raise VerificationError("no cell counts found in the Yosys stat report")
    out: dict = {"cells": cells}
    for cls, pat in RESOURCE_CLASSES.items():
        rx = re.compile(rf"^(?:{pat})$")
        out[cls] = sum(n for c, n in cells.items() if rx.match(c))
    return out


def yosys_script(top: str, sources: list[str], stat_file: str = "yosys_stat.txt") -> str:
    files = " ".join(sources)
    return (
        f"read_verilog -defer -sv {files}; hierarchy -top {top}; "
        f"setattr -unset rom_style */lut_rom; "
        f"synth_xilinx -family xcup -flatten -noiopad -top {top}; "
        f"tee -q -o {stat_file} stat"
    )


def synthesize(rtl_dir: str | Path, top: str, timeout_s: int = 3600) -> dict:
    """Run Yosys on a written project; returns counts + tool info and writes ``<rtl_dir>/yosys.json``.

    Runs inside ``src/memfiles`` so the ROMs' ``$readmemh`` paths resolve (and yowasp's sandbox sees every file).
    """
    rtl_dir = Path(rtl_dir).resolve()
    src = rtl_dir / "src"
    if not (src / f"{top}.v").is_file():
        raise ConversionError(f"no Verilog top {top}.v under {src}; write the project first")
    tool = find_yosys()
    mem = src / "memfiles"
    mem.mkdir(exist_ok=True)
    sources = sorted(f"../static/{p.name}" for p in (src / "static").glob("*.v"))
    sources += sorted(f"../{p.name}" for p in src.glob(f"{top}_stage*.v")) + [f"../{top}.v"]
    script = yosys_script(top, sources)
    t = time.time()
    try:
        r = subprocess.run(tool.command + ["-q", "-p", script], cwd=mem, capture_output=True, text=True,
                           timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise VerificationError(f"yosys did not finish within {timeout_s} s") from exc
    if r.returncode != 0:
        raise VerificationError(f"yosys failed (exit {r.returncode}): {(r.stderr or r.stdout)[-2000:]}")
    stat_path = mem / "yosys_stat.txt"
    text = stat_path.read_text()
    (rtl_dir / "yosys_stat.txt").write_text(text)
    stat_path.unlink()
    res = parse_stat(text)
    res.update({"source": "yosys", "tool": tool.name, "tool_version": tool.version, "family": "xcup",
                "script": script, "synth_s": round(time.time() - t, 1)})
    atomic_write_json(rtl_dir / "yosys.json", res)
    return res
