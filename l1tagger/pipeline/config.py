"""The one config file of ``l1tagger run``: a documented dataclass, loaded strictly from YAML, and checked as a whole
(:func:`preflight`: recipe, budget, clock, directories) before the first step runs."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from l1tagger.errors import ConfigError
from l1tagger.models.config import ModelConfig
from l1tagger.qat.finetune import QATConfig
from l1tagger.report.budgets import DEFAULT_BUDGET, check_clock_ns, load_budget
from l1tagger.resources import resolve_budget, resolve_recipe
from l1tagger.training.config import TrainConfig
from l1tagger.utils.dataclass_io import from_dict, to_dict, validated
from l1tagger.utils.yamlio import load_yaml

#: a run name is one path component: runs/<name>/, hls_projects/<name>/
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

#: seeds numpy, torch and the Pythia chunk seeds all accept
MAX_SEED = 2**32 - 1


#: the model of the built-in default run (the other fields: ModelConfig's defaults): a Linformer (k = 4) over 16
#: particles with the interaction bias U from tables of the quantized pair features over the unique pairs
#: (``table_sym``, docs/interaction.md: on the same jets it beat ParT's per-pair MLP by 3.4 points at the same cost).
#: With 5000 generated jets per class, 30 float epochs and 12 HGQ epochs (quantize/hgq_budget.yaml, EBOPs target
#: from the budget) it ends with verdict pass on cms_phase2_tmux6_360mhz, the firmware within 1 point of the float
#: model (measured: docs/cost.md, section 6)
DEFAULT_MODEL = {"attention": "linformer", "linformer_k": 4, "d_model": 8, "ffn_dim": 16, "embed_dim": 16,
                 "head_dim": 16, "pair_hidden": 4, "interaction": "table_sym"}

#: fields of the sections that the run sets itself (dotted path -> why): a run file may not give them, and
#: ``--print-config`` leaves them out
DERIVED = {
    "model.n_classes": "taken from the dataset's classes",
    "model.n_features": "derived from model.features",
    "train.model": "the model is the top-level model: section",
    "train.seed": "the run's seed: set the top-level seed",
    "train.model_kind": "the run trains the L1 tagger, the only kind with a quantized twin",
    "train.part_preset": "the run trains the L1 tagger, the only kind with a quantized twin",
    "qat.seed": "the run's seed: set the top-level seed",
}

#: the flat keys of run files written before the sections existed, each a shorthand of the nested field(s) it sets
FLAT_KEYS = {
    **{key: (f"model.{key}",) for key in ("n_particles", "features", "attention", "pair_bias", "d_model", "n_heads",
                                           "n_blocks", "ffn_dim", "linformer_k", "topk_k", "ordering")},
    "epochs": ("train.epochs",),
    "lr": ("train.lr",),
    "batch_size": ("train.batch_size", "qat.batch_size"),
    "qat_epochs": ("qat.epochs",),
    "qat_lr": ("qat.lr",),
}


def nest_flat_keys(data: Mapping) -> dict:
    """``data`` with each flat shorthand (``attention: linformer``) moved into its section (``model:
    {attention: linformer}``); ConfigError when a field is given both ways."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items() if k not in FLAT_KEYS}
    for key, value in data.items():
        for target in FLAT_KEYS.get(key, ()):
            section, field_name = target.split(".")
            values = out.setdefault(section, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{section}: expected a mapping of {section} keys, got {type(values).__name__}")
            if field_name in values:
                raise ConfigError(f"{key} and {target} are both given; keep {target}")
            values[field_name] = value
    return out


def _accepts_flat_keys(cls):
    """``RunConfig(attention="linformer", epochs=1)``: the constructor takes the flat shorthands too."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, **values):
        flat = {k: values.pop(k) for k in list(values) if k in FLAT_KEYS}
        init(self, **values)
        for section, changes in nest_flat_keys(flat).items():
            current = to_dict(getattr(self, section), section, DERIVED)
            setattr(self, section, from_dict(type(getattr(self, section)), {**current, **changes}, section, DERIVED))

    cls.__init__ = __init__
    return cls


@_accepts_flat_keys
@dataclass
class RunConfig:
    """Everything ``l1tagger run`` needs. The built-in default (a Linformer + U of width 8 over 16 particles, 5000
    jets per class, HGQ trained to the budget: :data:`DEFAULT_MODEL`, docs/cost.md) fits the default budget and runs
    on 2 CPU cores in < 15 minutes.

    Run
      name:   one path component ([A-Za-z0-9][A-Za-z0-9._-]*): the run's own runs/<name>/ and hls_projects/<name>/
      runs_dir, projects_dir, data_dir: where runs, HLS projects and generated datasets go
    Data
      dataset:       path of an existing dataset any reader loads; empty = generate with Pythia 8 + FastJet (cached in
                     data_dir, reused by every run with the same generator settings)
      class_set:     generator class set ("hls4ml5" or "jetclass10")
      n_per_class:   jets generated per class (train/val/test split 60/20/20)
      seed:          master seed for generation, splits, initialisation, training and QAT
    model:  every field of ``l1tagger.models.config.ModelConfig`` (n_particles, features, attention, pair_bias,
            pair_hidden, d_model, n_heads, n_blocks, ffn_dim, embed_dim, head_dim, linformer_k, linformer_init,
            linformer_fixed, topk_k, ordering), except n_classes (the dataset's) and n_features (from features)
    train:  the float training, fields of ``l1tagger.training.config.TrainConfig`` (epochs, batch_size, lr,
            weight_decay, schedule, grad_clip, device, num_threads, feature_clip, background)
    recipe: quantization recipe (a path, or a preset: quantize/int8.yaml, int8_floor, hgq_budget, ...)
    qat:    the QAT fine-tuning, fields of ``l1tagger.qat.finetune.QATConfig`` (epochs, batch_size, lr, weight_decay,
            calib_batches, num_threads, target_ebops)
            With an HGQ recipe the run trains to its budget: the EBOPs target is, in this order, ``qat.target_ebops``,
            the recipe's ``hgq.target_ebops`` when it is a number, or (``target_ebops: budget``) derived from the
            budget's LUT/DSP allowance (:attr:`hgq_target`, docs/cost.md). A budget the trained model does not fit
            ends the run with an error naming the smallest cost reached, after the report is written.
    Firmware
      backend ("Vitis" | "Vivado"), part, n_csim_jets (test-bench jets checked bit for bit)
      clock_ns:  clock period in ns; null = the budget's clock (a set value may not be slower than the budget's)
    Open RTL route (da4ml Verilog beside the hls4ml project; needs a floor or half-up recipe, e.g. int8_floor)
      rtl:                "off" | "verilog" (Verilog + da4ml's C++ interpreter checked bit for bit on the test-bench
                          jets: seconds) | "cosim" (+ Verilator co-simulation of the Verilog: minutes, grows with
                          the model) | "yosys" (cosim + Yosys synth_xilinx counts: minutes to hours)
      rtl_latency_cutoff: da4ml's per-stage delay budget (smaller = more pipeline stages, faster clock)
    Report
      budget (a preset name in budgets/ or a path)

    The flat keys of older run files (``attention``, ``d_model``, ``epochs``, ``qat_epochs``, ... see ``FLAT_KEYS``)
    are still read, as shorthands of the nested fields.
    """

    name: str = "default"
    runs_dir: str = "runs"
    projects_dir: str = "hls_projects"
    data_dir: str = "data"
    # data
    dataset: str = ""
    class_set: str = "hls4ml5"
    n_per_class: int = 5000
    seed: int = 1
    # model, training, quantization
    model: ModelConfig = field(default_factory=lambda: ModelConfig(**DEFAULT_MODEL))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30))
    recipe: str = "quantize/hgq_budget.yaml"
    qat: QATConfig = field(default_factory=lambda: QATConfig(epochs=12))
    # firmware
    backend: str = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_ns: float | None = None
    n_csim_jets: int = 5000
    # open RTL route
    rtl: str = "off"
    rtl_latency_cutoff: float = 8.0
    # report
    budget: str = DEFAULT_BUDGET

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    @property
    def project_dir(self) -> Path:
        return Path(self.projects_dir) / self.name

    @property
    def clock_period_ns(self) -> float:
        """The firmware clock period: ``clock_ns``, or the budget's clock when it is not set."""
        if self.clock_ns is not None:
            return self.clock_ns
        return load_budget(self.budget).clock_period_ns

    @property
    def hgq_target(self) -> dict | None:
        """The EBOPs target of an HGQ recipe and where it comes from, None for a uniform recipe:
        ``{"target_ebops", "source", "detail"}``. Precedence: ``qat.target_ebops`` > the recipe's number >
        the budget (the recipe's ``target_ebops: budget``): ``BUDGET_EBOPS_FRACTION`` of the budget's LUT
        allowance (plus 55 per DSP where products may use DSPs), ``l1tagger.qat.hgq.target_from_budget``."""
        from l1tagger.qat.target import resolve_target

        return resolve_target(self.recipe, getattr(self.qat, "target_ebops", None), self.budget,
                              explicit_detail="set in the run config")

    def train_config(self, n_classes: int) -> TrainConfig:
        """The TrainConfig of the float training: the train section with the model section and the run's seed."""
        return dataclasses.replace(self.train, model=dataclasses.replace(self.model, n_classes=n_classes),
                                   seed=self.seed).validate()

    def qat_config(self) -> QATConfig:
        """The QATConfig of the fine-tuning: the qat section with the run's seed."""
        return dataclasses.replace(self.qat, seed=self.seed).validate()

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
        choices = {"backend": ("Vitis", "Vivado"), "rtl": ("off", "verilog", "cosim", "yosys")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        for key in ("n_per_class", "n_csim_jets"):
            if int(getattr(self, key)) <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {getattr(self, key)!r}")
        for key, value in (("rtl_latency_cutoff", self.rtl_latency_cutoff), ("train.lr", self.train.lr),
                           ("qat.lr", self.qat.lr), ("clock_ns", self.clock_ns)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}: must be a finite number > 0, got {value!r}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: must be in 0..{MAX_SEED} (numpy and torch refuse negative seeds), got {self.seed}")
        for section in ("model", "train", "qat"):
            validated(getattr(self, section), section)
        m = self.model
        for key, used in (("linformer_k", "linformer"), ("topk_k", "topk")):
            k = getattr(m, key)
            if m.attention == used and k > m.n_particles:
                raise ConfigError(f"model.{key}: must be in 1..model.n_particles={m.n_particles}, got {k}")
        if not self.dataset:
            from l1tagger.data.classes import CLASS_SETS

            if self.class_set not in CLASS_SETS:
                raise ConfigError(f"class_set: {self.class_set!r} is not one of {sorted(CLASS_SETS)}")
        return self


def load_run_config(path: str | Path | None = None, **overrides) -> RunConfig:
    """Load a RunConfig from YAML (strict: unknown keys and wrong types fail with the dotted key named).

    overrides: top-level fields or flat shorthands (``attention="linformer"``); they win over the file. None = not
    given. A ``model``, ``train`` or ``qat`` section changes the fields it gives of the default run's section (what
    ``--print-config`` shows), the others keep their defaults.
    """
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        loaded = load_yaml(path)
        loaded = {} if loaded is None else loaded
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of config keys")
        data = nest_flat_keys(loaded)
    for key, value in nest_flat_keys({k: v for k, v in overrides.items() if v is not None}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    defaults = RunConfig()
    for section in ("model", "train", "qat"):  # a section given in part changes those fields of the default run's
        if isinstance(data.get(section), dict):
            data[section] = {**to_dict(getattr(defaults, section), section, DERIVED), **data[section]}
    if data.get("rtl") is False:  # YAML 1.1 reads a bare `rtl: off` as the boolean false
        data["rtl"] = "off"
    elif data.get("rtl") is True:
        raise ConfigError("rtl: true is ambiguous; use 'cosim' (Verilator co-simulation) or 'yosys' (cosim + synthesis)")
    return from_dict(RunConfig, data, fixed=DERIVED).validate()


def dump_run_config(cfg: RunConfig) -> str:
    """The config as a nested YAML run file (what ``load_run_config`` reads back into an equal config)."""
    return yaml.safe_dump(to_dict(cfg, fixed=DERIVED), sort_keys=False)


def _same_or_inside(a: Path, b: Path) -> bool:
    """True when resolved ``a`` is ``b`` or lies inside it."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def preflight(cfg: RunConfig, log=None) -> dict:
    """Check everything the run will need before its first (expensive) step; ConfigError names the field/file.

    Field values (``RunConfig.validate``), the dataset file, the recipe (loaded and validated, resolved from any
    working directory), the budget (loaded; its clock against ``clock_ns`` when set), the RTL route's rounding and
    that the run's own directories do not overlap (the HLS project is cleared on every conversion). Returns the loaded
    ``{"recipe": Recipe, "budget": Budget}``.
    """
    from l1tagger.qat.recipe import load_recipe

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
    if cfg.clock_ns is not None:
        check_clock_ns(cfg.clock_ns, budget)
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
