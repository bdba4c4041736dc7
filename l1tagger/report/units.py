"""Units of every quantity in budgets and reports. A quantity is ``{value: ..., unit: ...}``; converting it to the
dimension's base unit (ns, MHz, cycles, or the resource's own count) is a table lookup, never string arithmetic.

Base units: time -> ns, frequency -> MHz, cycles -> cycles, fraction -> 1, and each resource counts itself
(BRAM is counted in BRAM18 halves: one BRAM36 = 2 BRAM18).
"""

from __future__ import annotations

from dataclasses import dataclass

from l1tagger.errors import ConfigError

#: dimension -> {unit: factor to the base unit}
UNITS: dict[str, dict[str, float]] = {
    "time": {"ps": 1e-3, "ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9},
    "frequency": {"Hz": 1e-6, "kHz": 1e-3, "MHz": 1.0, "GHz": 1e3},
    "cycles": {"cycles": 1.0},
    "fraction": {"fraction": 1.0, "percent": 0.01, "%": 0.01},
    "lut": {"LUT": 1.0},
    "ff": {"FF": 1.0},
    "dsp": {"DSP": 1.0},
    "bram": {"BRAM18": 1.0, "BRAM36": 2.0},
    "uram": {"URAM": 1.0},
    "count": {"count": 1.0},
}

BASE_UNIT = {"time": "ns", "frequency": "MHz", "cycles": "cycles", "fraction": "fraction", "lut": "LUT",
             "ff": "FF", "dsp": "DSP", "bram": "BRAM18", "uram": "URAM", "count": "count"}


@dataclass(frozen=True)
class Quantity:
    """A number with its unit, as written in the file, plus its value in the dimension's base unit."""

    value: float
    unit: str
    dimension: str

    @property
    def base(self) -> float:
        return self.value * UNITS[self.dimension][self.unit]

    def to(self, unit: str) -> float:
        table = UNITS[self.dimension]
        if unit not in table:
            raise ConfigError(f"cannot express a {self.dimension} quantity in {unit!r}; units: {sorted(table)}")
        return self.base / table[unit]

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit}


def parse_quantity(raw, dimension: str, path: str) -> Quantity:
    """``{value: number, unit: str}`` -> Quantity; ConfigError naming ``path`` on anything else."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping {{value: ..., unit: ...}}, got {raw!r}")
    unknown = sorted(set(raw) - {"value", "unit"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; a quantity has only 'value' and 'unit'")
    if "unit" not in raw:
        raise ConfigError(f"{path}: missing unit (one of {sorted(UNITS[dimension])})")
    if "value" not in raw:
        raise ConfigError(f"{path}: missing value")
    unit, value = raw["unit"], raw["value"]
    if unit not in UNITS[dimension]:
        raise ConfigError(f"{path}: unknown unit {unit!r} for a {dimension} quantity; allowed: {sorted(UNITS[dimension])}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: value must be a number, got {value!r}")
    if value < 0:
        raise ConfigError(f"{path}: value must be >= 0, got {value}")
    return Quantity(float(value), unit, dimension)
