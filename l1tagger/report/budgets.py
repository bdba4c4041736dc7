"""Level-1 trigger budgets: named YAML presets in ``l1tagger/presets/budgets/`` (``budgets/`` in a checkout), or any
file a user writes, loaded strictly.

File layout (every quantity carries a unit; see ``l1tagger/report/units.py``)::

    name: cms_phase2_tmux6_360mhz
    description: one line
    sources: [list of citations for every number]
    rationale: why the latency allowance and the resource share were chosen
    collision_rate: {value: 40, unit: MHz}
    clock:          {value: 360, unit: MHz}        # algorithm clock
    tmux: 6                                         # time-multiplexing period in bunch crossings
    latency:        {value: 1.0, unit: us}          # per-algorithm latency allowance
    device:
      name: VU13P
      part: xcvu13p-flga2577-2-e
      totals: {lut: {value: .., unit: LUT}, ff: {.., unit: FF}, dsp: {.., unit: DSP},
               bram: {.., unit: BRAM18 | BRAM36}, uram: {.., unit: URAM}}
    share: {value: 0.25, unit: fraction}            # fraction of the device the tagger may use

Derived: II budget = tmux * clock / collision_rate cycles (54 at TMUX 6, 360 MHz), i.e. tmux * 25 ns.
Unknown keys, duplicate keys, missing units, unknown units and non-finite numbers raise ConfigError naming the field
path (e.g. ``device.totals.lut``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from l1tagger import resources
from l1tagger.errors import ConfigError
from l1tagger.report.units import Quantity, parse_quantity
from l1tagger.utils.yamlio import load_yaml

RESOURCES = ("lut", "ff", "dsp", "bram", "uram")
#: the budget of `l1tagger report`, `l1tagger run` and the default clock of `l1tagger convert` / `l1tagger rtl`
DEFAULT_BUDGET = "cms_phase2_tmux6_360mhz"
#: relative tolerance of "clock_ns is as fast as the budget's clock" (2.7778 ns is 360 MHz as written in configs)
CLOCK_RTOL = 1e-3
_TOP_KEYS = {"name", "description", "sources", "rationale", "collision_rate", "clock", "tmux", "latency", "device",
             "share"}
_REQUIRED = ("name", "sources", "rationale", "collision_rate", "clock", "tmux", "latency", "device", "share")
_DEVICE_KEYS = {"name", "part", "totals"}


def budgets_dir() -> Path:
    """Directory of the presets: $L1TAGGER_BUDGETS_DIR, else the package's ``presets/budgets``."""
    return resources.budgets_dir()


@dataclass(frozen=True)
class Device:
    """An FPGA and its resource totals (base units: LUT, FF, DSP, BRAM18, URAM)."""

    name: str
    part: str
    totals: dict[str, Quantity]


@dataclass(frozen=True)
class Budget:
    """One Level-1 slot: what a tagger may spend. See the module docstring for the file format."""

    name: str
    description: str
    sources: tuple[str, ...]
    rationale: str
    collision_rate: Quantity
    clock: Quantity
    tmux: int
    latency: Quantity
    device: Device
    share: Quantity
    path: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def clock_mhz(self) -> float:
        return self.clock.base

    @property
    def clock_period_ns(self) -> float:
        return 1e3 / self.clock.base

    @property
    def ii_cycles(self) -> int:
        """New event every tmux bunch crossings: tmux * clock / collision_rate cycles (54 at TMUX 6, 360 MHz)."""
        return int(math.floor(self.tmux * self.clock.base / self.collision_rate.base + 1e-9))

    @property
    def ii_ns(self) -> float:
        return self.tmux * 1e3 / self.collision_rate.base

    @property
    def latency_ns(self) -> float:
        return self.latency.base

    @property
    def latency_cycles(self) -> int:
        return int(math.floor(self.latency_ns / self.clock_period_ns + 1e-9))

    def allowed(self, resource: str) -> float:
        """Resource allowance in base units: share x device total."""
        return self.share.base * self.device.totals[resource].base

    def summary(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "sources": list(self.sources),
            "rationale": self.rationale,
            "clock_MHz": self.clock_mhz,
            "tmux": self.tmux,
            "ii_cycles": self.ii_cycles,
            "ii_ns": self.ii_ns,
            "latency_ns": self.latency_ns,
            "latency_cycles": self.latency_cycles,
            "device": self.device.name,
            "part": self.device.part,
            "share": self.share.base,
            "allowed": {r: self.allowed(r) for r in RESOURCES},
            "device_totals": {r: self.device.totals[r].base for r in RESOURCES},
            "path": self.path,
        }


def _check_keys(raw: dict, allowed: set, path: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}unknown key(s) {[f'{path}.{k}'.lstrip('.') for k in unknown]}; "
                          f"allowed: {sorted(allowed)}")


def _str(raw, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{path}: expected a non-empty string, got {raw!r}")
    return raw.strip()


def parse_budget(raw, origin: str = "<budget>") -> Budget:
    """Validate a mapping (from YAML) into a Budget; ConfigError names the offending field path."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: top level must be a mapping of budget fields")
    _check_keys(raw, _TOP_KEYS, "")
    for key in _REQUIRED:
        if key not in raw:
            raise ConfigError(f"{origin}: missing field {key!r}")
    sources = raw["sources"]
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s.strip() for s in sources):
        raise ConfigError(f"sources: expected a non-empty list of citations, got {sources!r}")
    tmux = raw["tmux"]
    if isinstance(tmux, bool) or not isinstance(tmux, int) or tmux <= 0:
        raise ConfigError(f"tmux: expected a positive integer (bunch crossings), got {tmux!r}")
    dev = raw["device"]
    if not isinstance(dev, dict):
        raise ConfigError(f"device: expected a mapping with {sorted(_DEVICE_KEYS)}, got {dev!r}")
    _check_keys(dev, _DEVICE_KEYS, "device")
    for key in sorted(_DEVICE_KEYS):
        if key not in dev:
            raise ConfigError(f"device.{key}: missing")
    totals = dev["totals"]
    if not isinstance(totals, dict):
        raise ConfigError(f"device.totals: expected a mapping of {list(RESOURCES)}, got {totals!r}")
    _check_keys(totals, set(RESOURCES), "device.totals")
    missing = [r for r in RESOURCES if r not in totals]
    if missing:
        raise ConfigError(f"device.totals: missing {[f'device.totals.{r}' for r in missing]}")
    device = Device(
        name=_str(dev["name"], "device.name"),
        part=_str(dev["part"], "device.part"),
        totals={r: parse_quantity(totals[r], r, f"device.totals.{r}") for r in RESOURCES},
    )
    for r, q in device.totals.items():
        _finite(q, f"device.totals.{r}")
    share = _finite(parse_quantity(raw["share"], "fraction", "share"), "share")
    if not 0 < share.base <= 1:
        raise ConfigError(f"share: must be in (0, 1] of the device, got {share.value} {share.unit}")
    clock = parse_quantity(raw["clock"], "frequency", "clock")
    rate = parse_quantity(raw["collision_rate"], "frequency", "collision_rate")
    latency = parse_quantity(raw["latency"], "time", "latency")
    for q, name in ((clock, "clock"), (rate, "collision_rate"), (latency, "latency")):
        if _finite(q, name).base <= 0:
            raise ConfigError(f"{name}: must be > 0, got {q.value} {q.unit}")
    return Budget(
        name=_str(raw["name"], "name"),
        description=str(raw.get("description", "")).strip(),
        sources=tuple(s.strip() for s in sources),
        rationale=_str(raw["rationale"], "rationale"),
        collision_rate=rate,
        clock=clock,
        tmux=tmux,
        latency=latency,
        device=device,
        share=share,
        path=origin,
    )


def check_clock_ns(clock_ns: float, budget: Budget, field_name: str = "clock_ns") -> None:
    """ConfigError unless a design clocked at ``clock_ns`` is at least as fast as ``budget``'s clock (within
    ``CLOCK_RTOL``); ``field_name`` (a config key or a command-line flag) names the value in the message."""
    if clock_ns > budget.clock_period_ns * (1 + CLOCK_RTOL):
        raise ConfigError(
            f"{field_name}: {clock_ns} ns ({1e3 / clock_ns:.4g} MHz) is slower than the clock of budget "
            f"{budget.name!r} ({budget.clock_mhz:g} MHz = {budget.clock_period_ns:.4f} ns); set {field_name} <= "
            f"{budget.clock_period_ns:.4f} or choose a budget with a slower clock"
        )


def _finite(q: Quantity, path: str) -> Quantity:
    if not math.isfinite(q.value):
        raise ConfigError(f"{path}: value must be a finite number, got {q.value}")
    return q


def list_presets() -> list[str]:
    return resources.list_budgets()


def load_budget(name_or_path: str | os.PathLike) -> Budget:
    """A preset name (``cms_phase2_tmux6_360mhz``, ``budgets/<name>.yaml``) or a path to a user's YAML file; an
    existing path wins (see :func:`l1tagger.resources.resolve_budget`)."""
    path = resources.resolve_budget(name_or_path)
    raw = load_yaml(path)
    try:
        return parse_budget(raw, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
