"""The one config file of ``l1tagger run``: a documented dataclass, loaded strictly from YAML, and checked as a whole
(:func:`preflight`: recipe, budget, clock, directories) before the first step runs."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from l1tagger.errors import ConfigError
from l1tagger.resources import resolve_budget, resolve_recipe
from l1tagger.utils.yamlio import load_yaml

#: a run name is one path component: runs/<name>/, hls_projects/<name>/
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

#: seeds numpy, torch and the Pythia chunk seeds all accept
MAX_SEED = 2**32 - 1

#: relative tolerance of "clock_ns is as fast as the budget's clock" (2.7778 ns is 360 MHz as written in configs)
CLOCK_RTOL = 1e-3


@dataclass
class RunConfig:
    """Everything ``l1tagger run`` needs. The built-in default is small enough for 2 CPU cores in < 20 minutes.

    Data
      data_dir:      where generated datasets are cached (reused by every run with the same generator settings)
      dataset:       path of an existing dataset any reader loads; empty = generate with Pythia 8 + FastJet
      class_set:     generator class set ("hls4ml5" or "jetclass10")
      n_per_class:   jets generated per class (train/val/test split 60/20/20)
      seed:          master seed for generation, splits, initialisation and training
    Model
      n_particles, features, attention ("full" | "linformer" | "topk"), pair_bias, d_model, n_heads, n_blocks,
      ffn_dim, linformer_k, topk_k, ordering ("pt" | "dr" | "cluster")
    Training
      epochs, batch_size, lr;  qat_epochs, qat_lr;  recipe (a path, or a preset: quantize/int8.yaml, int8_floor, ...)
    Firmware
      backend ("Vitis" | "Vivado"), part, clock_ns, n_csim_jets (test-bench jets checked bit for bit)
    Open RTL route (da4ml Verilog beside the hls4ml project; needs a floor or half-up recipe, e.g. int8_floor)
      rtl:                "off" | "verilog" (Verilog + da4ml's C++ interpreter checked bit for bit on the test-bench
                          jets: seconds) | "cosim" (+ Verilator co-simulation of the Verilog: minutes, grows with
                          the model) | "yosys" (cosim + Yosys synth_xilinx counts: minutes to hours)
      rtl_latency_cutoff: da4ml's per-stage delay budget (smaller = more pipeline stages, faster clock)
    Report
      budget (a preset name in budgets/ or a path; its clock must not be faster than 1 / clock_ns)
    Run
      name:   one path component ([A-Za-z0-9][A-Za-z0-9._-]*): the run's own runs/<name>/ and hls_projects/<name>/
    """

    name: str = "default"
    runs_dir: str = "runs"
    projects_dir: str = "hls_projects"
    data_dir: str = "data"
    # data
    dataset: str = ""
    class_set: str = "hls4ml5"
    n_per_class: int = 2000
    seed: int = 1
    # model
    n_particles: int = 16
    features: str = "kin"
    attention: str = "full"
    pair_bias: bool = True
    d_model: int = 16
    n_heads: int = 2
    n_blocks: int = 1
    ffn_dim: int = 32
    linformer_k: int = 4
    topk_k: int = 2
    ordering: str = "pt"
    # training
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    qat_epochs: int = 4
    qat_lr: float = 5e-4
    recipe: str = "quantize/int8.yaml"
    # firmware
    backend: str = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_ns: float = 2.7778
    n_csim_jets: int = 1000
    # open RTL route
    rtl: str = "off"
    rtl_latency_cutoff: float = 8.0
    # report
    budget: str = "cms_phase2_tmux6_360mhz"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    @property
    def project_dir(self) -> Path:
        return Path(self.projects_dir) / self.name

    def input_file(self, key: str) -> Path | None:
        """The file a file-valued field names (recipe and budget presets resolved), or None."""
        if key == "recipe":
            return resolve_recipe(self.recipe)
        if key == "budget":
            return resolve_budget(self.budget)
        if key == "dataset":
            return Path(self.dataset) if self.dataset else None
        return None

    def validate(self) -> "RunConfig":
        """Field-level checks (no file is read); :func:`preflight` checks the files the config names."""
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise ConfigError(f"name: {self.name!r} is not a run name: one path component of letters, digits, "
                              f"'.', '_', '-' starting with a letter or digit (at most 100 characters)")
        for key in ("runs_dir", "projects_dir", "data_dir"):
            if not str(getattr(self, key)).strip():
                raise ConfigError(f"{key}: must be a directory path, got an empty string")
        choices = {
            "attention": ("full", "linformer", "topk"),
            "backend": ("Vitis", "Vivado"),
            "ordering": ("pt", "dr", "cluster"),
            "rtl": ("off", "verilog", "cosim", "yosys"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key in ("n_per_class", "n_particles", "d_model", "n_heads", "n_blocks", "ffn_dim", "epochs",
                    "batch_size", "n_csim_jets"):
            if int(getattr(self, key)) <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {getattr(self, key)!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model: {self.d_model} is not divisible by n_heads={self.n_heads}")
        for key in ("rtl_latency_cutoff", "lr", "qat_lr", "clock_ns"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}: must be a finite number > 0, got {value!r}")
        if self.qat_epochs < 0:
            raise ConfigError(f"qat_epochs: must be >= 0, got {self.qat_epochs}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: must be in 0..{MAX_SEED} (numpy and torch refuse negative seeds), got {self.seed}")
        for key, used in (("linformer_k", "linformer"), ("topk_k", "topk")):
            k = getattr(self, key)
            if k < 1 or (self.attention == used and k > self.n_particles):
                raise ConfigError(f"{key}: must be in 1..n_particles={self.n_particles}, got {k}")
        if not self.dataset:
            from l1tagger.data.classes import CLASS_SETS

            if self.class_set not in CLASS_SETS:
                raise ConfigError(f"class_set: {self.class_set!r} is not one of {sorted(CLASS_SETS)}")
        return self


def load_run_config(path: str | Path | None = None, **overrides) -> RunConfig:
    """Load a RunConfig from YAML (strict: unknown keys and wrong types fail with the key named)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        loaded = load_yaml(path)
        loaded = {} if loaded is None else loaded
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of config keys")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; known keys: {sorted(fields)}")
    if data.get("rtl") is False:  # YAML 1.1 reads a bare `rtl: off` as the boolean false
        data["rtl"] = "off"
    elif data.get("rtl") is True:
        raise ConfigError("rtl: true is ambiguous; use 'cosim' (Verilator co-simulation) or 'yosys' (cosim + synthesis)")
    defaults = RunConfig()
    for key, value in data.items():
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            data[key] = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{key}: expected {expected.__name__}, got {type(value).__name__} ({value!r})")
    return RunConfig(**data).validate()


def dump_run_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def _same_or_inside(a: Path, b: Path) -> bool:
    """True when resolved ``a`` is ``b`` or lies inside it."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def preflight(cfg: RunConfig, log=None) -> dict:
    """Check everything the run will need before its first (expensive) step; ConfigError names the field/file.

    Field values (``RunConfig.validate``), the dataset file, the recipe (loaded and validated, resolved from any
    working directory), the budget (loaded; its clock against ``clock_ns``), the RTL route's rounding and that the
    run's own directories do not overlap (the HLS project is cleared on every conversion). Returns the loaded
    ``{"recipe": Recipe, "budget": Budget}``.
    """
    from l1tagger.qat.recipe import load_recipe
    from l1tagger.report.budgets import load_budget

    cfg.validate()
    if cfg.dataset and not cfg.dataset.startswith("toy:") and not Path(cfg.dataset).is_file():
        raise ConfigError(f"dataset: {cfg.dataset} is not a file")
    try:
        recipe = load_recipe(cfg.recipe)
    except ConfigError as exc:
        raise ConfigError(f"recipe: {exc}") from None
    try:
        budget = load_budget(cfg.budget)
    except ConfigError as exc:
        raise ConfigError(f"budget: {exc}") from None
    if cfg.clock_ns > budget.clock_period_ns * (1 + CLOCK_RTOL):
        raise ConfigError(
            f"clock_ns: {cfg.clock_ns} ns ({1e3 / cfg.clock_ns:.4g} MHz) is slower than the clock of budget "
            f"{budget.name!r} ({budget.clock_mhz:g} MHz = {budget.clock_period_ns:.4f} ns); set clock_ns <= "
            f"{budget.clock_period_ns:.4f} or choose a budget with a slower clock"
        )
    if cfg.rtl != "off" and recipe.rounding != "floor":
        raise ConfigError(
            f"rtl: {cfg.rtl!r} needs a floor-rounding recipe (da4ml rounds only by truncation), but recipe "
            f"{cfg.recipe} rounds {recipe.rounding}; use e.g. recipe: quantize/int8_floor.yaml, or rtl: 'off'"
        )
    run_dir, project = cfg.run_dir, cfg.project_dir
    for other, what in ((run_dir, "the run directory"), (Path(cfg.data_dir), "data_dir"), (Path.cwd(), "the "
                        "working directory")):
        if _same_or_inside(other, project):
            raise ConfigError(f"projects_dir: the HLS project {project} (cleared on every conversion) would contain "
                              f"{what} {other}; use separate runs_dir, projects_dir and data_dir")
    if cfg.dataset and not cfg.dataset.startswith("toy:") and _same_or_inside(Path(cfg.dataset), project):
        raise ConfigError(f"dataset: {cfg.dataset} lies inside the HLS project {project}, which is cleared on "
                          f"every conversion")
    return {"recipe": recipe, "budget": budget}
