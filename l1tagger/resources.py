"""Where the package's own data lives, for a checkout and for an installed (non-editable) package alike.

The presets ship inside the package (``l1tagger/presets/``, listed in ``pyproject.toml``'s package-data):

    quantize/*.yaml   quantization recipes        resolve_recipe("quantize/int8.yaml") or resolve_recipe("int8")
    budgets/*.yaml    Level-1 budgets             resolve_budget("cms_phase2_tmux6_360mhz")
    tcl/*.tcl         vendor tool scripts         tcl_dir()

A path that exists (absolute, or relative to the working directory) always wins; otherwise a preset name, a file
name or a ``quantize/<name>.yaml``-style path is looked up in the package, so the spellings of the docs work from
any working directory. ``$L1TAGGER_BUDGETS_DIR`` / ``$L1TAGGER_TCL_DIR`` replace the budget / tcl folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from l1tagger.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def presets_dir() -> Path:
    """``l1tagger/presets`` of the imported package."""
    return PRESETS_DIR


def recipes_dir() -> Path:
    return PRESETS_DIR / "quantize"


def budgets_dir() -> Path:
    """The budget presets: ``$L1TAGGER_BUDGETS_DIR`` if set, else ``l1tagger/presets/budgets``."""
    env = os.environ.get("L1TAGGER_BUDGETS_DIR")
    return Path(env) if env else PRESETS_DIR / "budgets"


def tcl_dir() -> Path:
    """The vendor tool scripts: ``$L1TAGGER_TCL_DIR`` if set, else ``l1tagger/presets/tcl``."""
    env = os.environ.get("L1TAGGER_TCL_DIR")
    return Path(env) if env else PRESETS_DIR / "tcl"


def list_recipes() -> list[str]:
    return _names(recipes_dir())


def list_budgets() -> list[str]:
    return _names(budgets_dir())


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _resolve(spec, folder: Path, prefix: str, what: str, names: list[str]) -> Path:
    text = os.fspath(spec)
    if not str(text).strip():
        raise ConfigError(f"{what}: empty name; give a preset name ({', '.join(names)}) or a path")
    path = Path(text)
    if path.is_file():
        return path
    # not a file here: a preset name ("int8"), a file name ("int8.yaml") or the checkout spelling ("quantize/int8.yaml")
    parts = path.parts
    if len(parts) == 2 and parts[0] == prefix:
        parts = parts[1:]
    if len(parts) == 1 and parts[0] not in (".", ".."):
        name = parts[0]
        candidate = folder / (name if Path(name).suffix in (".yaml", ".yml") else f"{name}.yaml")
        if candidate.is_file():
            return candidate
    if path.exists():
        raise ConfigError(f"{what} {text!r}: not a file")
    raise ConfigError(f"{what} {text!r} not found: no such file, and no such preset in {folder} (presets: {names})")


def resolve_recipe(spec: str | os.PathLike) -> Path:
    """The recipe file of ``spec``: an existing path, else a preset (``int8``, ``int8.yaml``, ``quantize/int8.yaml``)."""
    return _resolve(spec, recipes_dir(), "quantize", "recipe", list_recipes())


def resolve_budget(spec: str | os.PathLike) -> Path:
    """The budget file of ``spec``: an existing path, else a preset (``cms_phase2_tmux6_360mhz``, ``budgets/<x>.yaml``)."""
    return _resolve(spec, budgets_dir(), "budgets", "budget", list_budgets())
