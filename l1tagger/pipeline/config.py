"""The one config file of ``l1tagger run``: a documented dataclass, loaded strictly from YAML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from l1tagger.errors import ConfigError


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
      epochs, batch_size, lr;  qat_epochs, qat_lr;  recipe (a file in quantize/)
    Firmware
      backend ("Vitis" | "Vivado"), part, clock_ns, n_csim_jets (test-bench jets checked bit for bit)
    Open RTL route (da4ml Verilog beside the hls4ml project; needs a floor or half-up recipe, e.g. int8_floor)
      rtl:                "off" | "verilog" (Verilog + da4ml's C++ interpreter checked bit for bit on the test-bench
                          jets: seconds) | "cosim" (+ Verilator co-simulation of the Verilog: minutes, grows with
                          the model) | "yosys" (cosim + Yosys synth_xilinx counts: minutes to hours)
      rtl_latency_cutoff: da4ml's per-stage delay budget (smaller = more pipeline stages, faster clock)
    Report
      budget (a preset name in budgets/ or a path)
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

    def validate(self) -> "RunConfig":
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
        if self.rtl_latency_cutoff <= 0:
            raise ConfigError(f"rtl_latency_cutoff: must be > 0, got {self.rtl_latency_cutoff!r}")
        if self.qat_epochs < 0:
            raise ConfigError(f"qat_epochs: must be >= 0, got {self.qat_epochs}")
        return self


def load_run_config(path: str | Path | None = None, **overrides) -> RunConfig:
    """Load a RunConfig from YAML (strict: unknown keys and wrong types fail with the key named)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
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
