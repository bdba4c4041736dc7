"""HGQ2 peer taggers on an ``l1tagger run``'s jets: build, train, convert with da4ml, cost, check bit for bit.

The jets are the run's: its dataset file (or toy spec), its ``split.npz`` (train / val / test indices) and its
feature scaler (from the run's float checkpoint), turned into model inputs by ``l1tagger.features.build_inputs`` with
the run's model config (particles, ordering, features). With other features or another N than the run's
(``--features``, ``--n-particles``) the scaler is fitted on the run's training split exactly as ``l1tagger train``
fits it (``build_inputs`` on the training jets, the run's ``train.feature_clip``); the row says which. The peers read
``x`` only (padded slots are zero, as in the published HGQ2 taggers); no pair features.

Models (HGQ2 0.2 layers, heterogeneous quantization trained with the EBOPs penalty beta ramped from ``beta0`` to
``beta_final``, close to the published HGQ2 jet taggers, arXiv:2510.24784):

    linformer    QDense embed -> QLinformerAttention (heads, key_dim, k) + residual -> QDense FFN -> mean over
                 particles -> QDense hidden -> QDense logits
    mha          the same with QMultiHeadAttention (full N x N attention)
    jedi_linear  a JEDI-linear-style interaction network (our approximation, not the published model): the
                 pairwise interaction is linearised into per-particle terms plus a term of the jet mean, f_R(x_i) +
                 g(mean_j x_j) -> relu -> f_O -> mean -> classifier; no attention, no softmax

Conversion: da4ml's Keras frontend (``da4ml.converter.trace_model``, the plugin hgq2 registers) traces the quantized
model into da4ml's combinational logic (``CombLogic``). Cost: that logic pipelined at the same latency cutoff with the
same function as every l1tagger model (``l1tagger.rtl.project.build_pipeline``, the one behind
``l1tagger.report.da4ml_cost``), so the number is da4ml's LUT estimate of the same kind, from the same da4ml (the
version l1tagger pins; another version is an error). Bit-exactness: the logic run by da4ml's C++ interpreter
(``CombLogic.predict``) against the Keras quantized model on the test jets, every output value equal
(:func:`compare_outputs`); not bit-exact raises NotBitExactError after the row is written.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1tagger.errors import ConfigError, DataError, NotBitExactError
from l1tagger.peers import PEER_KINDS  # (the package sets KERAS_BACKEND=torch before keras is imported)

#: the published anchors (other jets: the hls4ml LHC jet dataset), ../shared/REFERENCE.md; shown apart from the
#: same-jets rows, never on their table or front
PUBLISHED_ANCHORS = (
    {"system": "HGQ2+da4ml Linformer", "inputs": "16 x 3", "accuracy": 0.728, "lut": 246_000, "latency_ns": 103,
     "jets": "hls4ml LHC jets (other jets)", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "HGQ2+da4ml Linformer", "inputs": "32 x 3", "accuracy": 0.784, "lut": 267_000, "latency_ns": 140,
     "jets": "hls4ml LHC jets (other jets)", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "HGQ2+da4ml multi-head attention", "inputs": "32 x 3", "accuracy": 0.770, "lut": 180_000,
     "latency_ns": 83, "jets": "hls4ml LHC jets (other jets)", "source": "arXiv:2510.24784 Table 1 [transcribed]"},
    {"system": "JEDI-linear, pT-sorted", "inputs": "16 x 3", "accuracy": 0.7195, "lut": 43_800, "latency_ns": 54,
     "jets": "hls4ml LHC jets (other jets)", "source": "calad0i/JEDI-linear post-route reports"},
    {"system": "JEDI-linear, permutation invariant", "inputs": "16 x 3", "accuracy": 0.736, "lut": 136_000,
     "latency_ns": 75, "jets": "hls4ml LHC jets (other jets)", "source": "calad0i/JEDI-linear post-route reports"},
)

#: packages whose versions a peer row records (beside l1tagger's own, l1tagger.utils.provenance.PACKAGES)
PEER_PACKAGES = ("hgq2", "keras")

#: what the bit-exact check compares, in every row
BIT_EXACT_CHECK = ("da4ml C++ interpreter (CombLogic.predict) of the traced logic vs the Keras quantized model, "
                   "every output value equal")

#: the least number of test jets a bit-exact verdict of the command stands on
MIN_BITEXACT_JETS = 1000


@dataclass
class PeerConfig:
    """One peer model and its training.

    kind:        "linformer", "mha" or "jedi_linear"
    embed_dim:   particle embedding width (the attention's model width)
    n_heads, key_dim: attention heads and their width (linformer, mha)
    linformer_k: Linformer's projected sequence length
    ffn_dim:     per-particle feed-forward width
    hidden_dim:  classifier hidden width
    weight_bits: initial bits of the weights (HGQ trains them per weight)
    act_frac_bits: initial fractional bits of the activations (HGQ trains them per value)
    beta0, beta_final: the EBOPs penalty, ramped log-linearly from beta0 to beta_final over the first
                 ``ramp_fraction`` of the epochs, then held at beta_final
    ramp_fraction: the share of the epochs spent ramping; the model kept is the best validation accuracy among the
                 epochs after the ramp (at the final beta, so at the cost the penalty aims for)
    epochs, batch_size, lr, seed: training (Adam, cosine decay)
    num_threads: torch CPU threads
    """

    kind: str = "linformer"
    embed_dim: int = 16
    n_heads: int = 2
    key_dim: int = 8
    linformer_k: int = 4
    ffn_dim: int = 16
    hidden_dim: int = 16
    weight_bits: int = 8
    act_frac_bits: int = 6
    beta0: float = 1e-7
    beta_final: float = 3e-6
    ramp_fraction: float = 0.7
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 1
    num_threads: int = 1

    def validate(self) -> "PeerConfig":
        if self.kind not in PEER_KINDS:
            raise ConfigError(f"peer kind: {self.kind!r} is not one of {list(PEER_KINDS)}")
        for name in ("embed_dim", "n_heads", "key_dim", "linformer_k", "ffn_dim", "hidden_dim", "weight_bits",
                     "epochs", "batch_size", "num_threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"peer {name}: must be a positive integer, got {v!r}")
        if not isinstance(self.act_frac_bits, int) or self.act_frac_bits < 0:
            raise ConfigError(f"peer act_frac_bits: must be an integer >= 0, got {self.act_frac_bits!r}")
        for name in ("beta0", "beta_final", "lr"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
                raise ConfigError(f"peer {name}: must be a finite number >= 0 (lr > 0), got {v!r}")
        if not isinstance(self.ramp_fraction, (int, float)) or not 0 <= self.ramp_fraction < 1:
            raise ConfigError(f"peer ramp_fraction: must be in [0, 1), got {self.ramp_fraction!r}")
        return self

    @property
    def ramp_epochs(self) -> int:
        """Epochs spent ramping beta (at least one epoch is left at the final beta)."""
        return min(self.epochs - 1, int(round(self.ramp_fraction * self.epochs)))


@dataclass
class PeerJets:
    """The standardised inputs of one run's split: x (n, N, F) float32 and integer labels per part."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    class_names: list[str]
    source: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.x["test"].shape[1]), int(self.x["test"].shape[2])


# ---------------------------------------------------------------------------------------------------- the jets


def split_jets(jets, split: dict, model_cfg, scaler=None, clip: float = 8.0, source: dict | None = None) -> PeerJets:
    """``jets`` cut by ``split`` ({"train", "val", "test": index arrays}) as inputs of ``model_cfg`` (a ModelConfig:
    particles, ordering, features), standardised with ``scaler`` (None: fitted on the training part, as
    ``l1tagger train`` fits it)."""
    from l1tagger.features.inputs import build_inputs

    if model_cfg.inputs != "features":
        raise ConfigError(f"model.inputs: the peers take standardised particle features, not {model_cfg.inputs!r}")
    n = len(jets)
    for part in ("train", "val", "test"):
        idx = np.asarray(split.get(part, []))
        if idx.size == 0:
            raise DataError(f"split: part {part!r} is missing or empty")
        if idx.min() < 0 or idx.max() >= n:
            raise DataError(f"split: part {part!r} has indices outside the {n} jets of the dataset")
    model_cfg = dataclasses.replace(model_cfg, pair_bias=False)
    train, scaler_fitted = build_inputs(jets.subset(np.asarray(split["train"])), model_cfg, scaler, clip=clip)
    x, y = {"train": train.x}, {"train": train.labels}
    for part in ("val", "test"):
        inp, _ = build_inputs(jets.subset(np.asarray(split[part])), model_cfg, scaler_fitted, clip=clip)
        x[part], y[part] = inp.x, inp.labels
    src = dict(source or {})
    src.update({"n_particles": model_cfg.n_particles, "features": model_cfg.features,
                "ordering": model_cfg.ordering, "n_jets": {p: int(len(y[p])) for p in y},
                "scaler": src.get("scaler", "given" if scaler is not None else "fitted on the training part")})
    return PeerJets(x, y, list(jets.class_names), src)


def _resolve(path: str, run_dir: Path, runs_dir: str) -> Path:
    """A path an ``l1tagger run`` recorded, relative to the directory the run was started in (``run_dir`` minus
    ``runs_dir/<name>``) when it is relative and that directory holds it, else as given."""
    p = Path(path)
    if p.is_absolute() or Path(runs_dir).is_absolute():
        return p
    base = run_dir.resolve().parent
    for _ in Path(runs_dir).parts:
        base = base.parent
    return base / p if (base / p).exists() else p


def run_jets(run_dir, features: str | None = None, n_particles: int | None = None) -> PeerJets:
    """The jets of the ``l1tagger run`` in ``run_dir`` as peer inputs: its dataset, ``split.npz`` and model config;
    its saved scaler (float checkpoint) when the features and N are the run's, else a scaler fitted on its training
    split as ``l1tagger train`` fits it."""
    import json

    from l1tagger.data.dataset import load_dataset
    from l1tagger.pipeline.config import load_run_config
    from l1tagger.training.loop import checkpoint_json, read_checkpoint
    from l1tagger.features.inputs import FeatureScaler

    run_dir = Path(run_dir)
    cfg_path, split_path = run_dir / "config.yaml", run_dir / "split.npz"
    for p in (cfg_path, split_path):
        if not p.is_file():
            raise ConfigError(f"{run_dir}: not an l1tagger run with jets ({p.name} missing; run `l1tagger run` first)")
    cfg = load_run_config(cfg_path)

    def step_record(step: str) -> dict:
        try:
            rec = json.loads((run_dir / "steps" / f"{step}.json").read_text())
        except (OSError, ValueError):
            return {}
        return rec if isinstance(rec, dict) else {}

    def step_artifact(step: str, key: str) -> str | None:
        value = (step_record(step).get("artifacts") or {}).get(key)
        return value if isinstance(value, str) else None

    recorded = step_artifact("data", "dataset")
    spec = str(_resolve(recorded, run_dir, cfg.runs_dir)) if recorded else cfg.dataset
    if not spec:
        raise ConfigError(f"{run_dir}/steps/data.json: the run records no dataset (its data step has not finished)")
    jets = load_dataset(spec)
    try:
        with np.load(split_path) as z:
            split = {k: z[k] for k in ("train", "val", "test")}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{split_path}: not a split file with train/val/test indices ({exc})") from None
    m = cfg.model
    same = (features in (None, m.features)) and (n_particles in (None, m.n_particles))
    model_cfg = m if same else dataclasses.replace(m, features=features or m.features, n_features=0,
                                                   n_particles=n_particles or m.n_particles)
    scaler, scaler_src = None, (f"fitted on the run's training split (features {model_cfg.features}, "
                                f"N {model_cfg.n_particles} differ from the run's)")
    ckpt = step_artifact("train", "checkpoint")
    if same and ckpt:
        ckpt_path = _resolve(ckpt, run_dir, cfg.runs_dir)
        ck = read_checkpoint(ckpt_path)
        scaler = FeatureScaler.from_dict(checkpoint_json(ck, "scaler", ckpt_path))
        scaler_src = f"the run's (float checkpoint {ckpt_path})"
    elif same:
        scaler_src = "fitted on the run's training split (the run has no float checkpoint yet)"
    digest = ((step_record("data").get("digests") or {}).get("dataset") or {}).get("sha256")
    return split_jets(jets, split, model_cfg, scaler, clip=cfg.train.feature_clip,
                      source={"run": str(run_dir), "dataset": spec, "dataset_sha256": digest, "split": str(split_path),
                              "scaler": scaler_src, "class_set": cfg.class_set if not cfg.dataset else None,
                              "seed": cfg.seed, "rtl_latency_cutoff": cfg.rtl_latency_cutoff})


# ---------------------------------------------------------------------------------------------------- the models


def _import_hgq():
    """ConfigError unless hgq2 and keras import on Keras' torch backend."""
    import os

    backend = os.environ.get("KERAS_BACKEND", "torch")
    if backend != "torch":
        raise ConfigError(f"KERAS_BACKEND is {backend!r}: the peers run on Keras' torch backend (unset KERAS_BACKEND "
                          "or set it to torch)")
    try:
        import hgq  # noqa: F401
        import keras  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the peer baselines need the optional extra: pip install -e \".[peers]\" ({exc})") from None


def build_model(cfg: PeerConfig, n_particles: int, n_features: int, n_classes: int):
    """The HGQ2 Keras model of ``cfg.kind`` for (n_particles, n_features) inputs and ``n_classes`` logits."""
    cfg.validate()
    _import_hgq()
    import keras
    from hgq.config import LayerConfigScope, QuantizerConfigScope
    from hgq.layers import QAdd, QDense, QLinformerAttention, QMeanPow2, QMultiHeadAttention

    keras.utils.set_random_seed(cfg.seed)
    weights = QuantizerConfigScope(k0=1, b0=cfg.weight_bits, i0=1, overflow_mode="WRAP")
    lanes = QuantizerConfigScope(place="datalane", k0=1, f0=cfg.act_frac_bits, overflow_mode="WRAP")
    # attention internals saturate and round (a wrapped logit would wreck the softmax)
    attn = QuantizerConfigScope(k0=1, i0=1, f0=cfg.act_frac_bits, round_mode="RND", overflow_mode="SAT")
    with LayerConfigScope(enable_ebops=True, beta0=cfg.beta0), weights, lanes:
        inp = keras.layers.Input((n_particles, n_features), name="x")
        x = QDense(cfg.embed_dim, activation="relu", name="embed")(inp)
        if cfg.kind in ("linformer", "mha"):
            with attn:
                if cfg.kind == "linformer":
                    a = QLinformerAttention(cfg.n_heads, lin_kv_proj_dim=cfg.linformer_k, key_dim=cfg.key_dim,
                                            name="attention")(x, x)
                else:
                    a = QMultiHeadAttention(cfg.n_heads, key_dim=cfg.key_dim, name="attention")(x, x)
            x = QAdd(name="residual")([x, a])
            x = QDense(cfg.ffn_dim, activation="relu", name="ffn")(x)
        else:  # JEDI-linear style: f_R(x_i) + g(mean_j x_j), the interaction linearised through the jet mean
            g = QMeanPow2(axes=1, keepdims=True, name="jet_mean")(x)
            x = QAdd(name="interaction")([QDense(cfg.ffn_dim, name="f_r")(x),
                                          QDense(cfg.ffn_dim, use_bias=False, name="g")(g)])
            x = keras.layers.ReLU(name="interaction_relu")(x)
            x = QDense(cfg.ffn_dim, activation="relu", name="f_o")(x)
        x = QMeanPow2(axes=1, name="pool")(x)
        x = QDense(cfg.hidden_dim, activation="relu", name="hidden")(x)
        out = QDense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=f"hgq2_{cfg.kind}")


def model_ebops(model, x_calib: np.ndarray) -> int:
    """The model's EBOPs after calibrating its wrapping quantizers' integer bits on ``x_calib``
    (``hgq.utils.trace_minmax``, what HGQ2 does before conversion)."""
    from hgq.utils import trace_minmax

    return int(trace_minmax(model, x_calib, batch_size=1024, verbose=0))


def train_peer(model, jets: PeerJets, cfg: PeerConfig, log=print) -> dict:
    """Train ``model`` on the training part (beta ramped, then held), keep the weights of the best validation
    accuracy at the final beta, calibrate on the training part; returns {"epochs", "history", "best_epoch", "best_val_accuracy", "ebops", "seconds"}."""
    import keras
    import torch
    from hgq.utils.sugar import BetaScheduler, FreeEBOPs, PieceWiseSchedule

    torch.set_num_threads(cfg.num_threads)
    steps = max(1, math.ceil(len(jets.y["train"]) / cfg.batch_size)) * cfg.epochs
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(cfg.lr, steps))
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    if cfg.beta0 > 0 and cfg.beta_final > 0 and cfg.ramp_epochs > 0:
        ramp = [(0, cfg.beta0, "log"), (cfg.ramp_epochs, cfg.beta_final, "constant")]
    else:
        ramp = [(0, cfg.beta_final, "constant")]
    best: dict = {"acc": -1.0, "epoch": None, "weights": None}

    class KeepBest(keras.callbacks.Callback):
        """The weights of the best validation accuracy among the epochs at the final beta."""

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            acc = float(logs.get("val_accuracy", -1.0))
            log(f"  {cfg.kind} epoch {epoch + 1}/{cfg.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
                f"val accuracy {acc:.4f}, EBOPs {logs.get('ebops', 0):,}, beta {logs.get('beta', 0):.2g}")
            if epoch >= cfg.ramp_epochs and acc > best["acc"]:
                best.update(acc=acc, epoch=epoch + 1, weights=[w.copy() for w in self.model.get_weights()])

    t = time.time()
    hist = model.fit(jets.x["train"], jets.y["train"], validation_data=(jets.x["val"], jets.y["val"]),
                     epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=0,
                     callbacks=[BetaScheduler(PieceWiseSchedule(ramp)), FreeEBOPs(), KeepBest()])
    if best["weights"] is not None:
        model.set_weights(best["weights"])
    ebops = model_ebops(model, jets.x["train"])
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return {"epochs": cfg.epochs, "history": history, "best_epoch": best["epoch"],
            "best_val_accuracy": best["acc"], "ebops": ebops, "seconds": round(time.time() - t, 1)}


# ---------------------------------------------------------------------------------------- firmware, cost, check


def check_da4ml_version() -> str:
    """The installed da4ml version; ConfigError when it is not the one l1tagger pins (the costs would differ)."""
    import re
    from importlib import metadata

    try:
        have = metadata.version("da4ml")
    except metadata.PackageNotFoundError:
        raise ConfigError("da4ml is not installed (pip install -e \".[rtl]\")") from None
    try:
        reqs = metadata.requires("l1tagger") or []
    except metadata.PackageNotFoundError:
        reqs = []
    pinned = next((m.group(1) for r in reqs if (m := re.fullmatch(r"da4ml\s*==\s*([\w.]+)", r.strip()))), None)
    if pinned is not None and pinned != have:
        raise ConfigError(f"da4ml {have} is installed, l1tagger pins da4ml=={pinned}: a peer costed with another "
                          f"da4ml is not comparable (install da4ml=={pinned} in this environment)")
    return have


def convert(model):
    """The quantized Keras ``model`` as da4ml combinational logic (``CombLogic``), through da4ml's Keras frontend."""
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace

    inp, out = trace_model(model)
    return comb_trace(inp, out)


def comb_cost(comb, latency_cutoff: float | None = None) -> dict:
    """da4ml's cost record of ``comb``, the same fields and function as ``l1tagger.report.da4ml_cost.da4ml_cost``:
    the logic pipelined at ``latency_cutoff`` by ``l1tagger.rtl.project.build_pipeline``; ``lut`` is its cost."""
    from types import SimpleNamespace

    from l1tagger.report.da4ml_cost import DEFAULT_LATENCY_CUTOFF, SOURCE
    from l1tagger.rtl.project import RtlConfig, build_pipeline

    cutoff = DEFAULT_LATENCY_CUTOFF if latency_cutoff is None else latency_cutoff
    rtl = RtlConfig(latency_cutoff=cutoff)
    t = time.time()
    pipe = build_pipeline(SimpleNamespace(comb=comb), rtl)
    stages = len(pipe.solutions)
    return {"status": "ok", "lut": float(pipe.cost), "latency_cycles": stages, "register_bits": int(pipe.reg_bits),
            "n_ops": len(comb.ops), "seconds": round(time.time() - t, 2), "latency_cutoff": cutoff,
            "latency_ns": round(stages * rtl.clock_ns, 3), "clock_ns": rtl.clock_ns,
            "source": SOURCE.replace("lowered graph", "traced HGQ2 model")}


def keras_outputs(model, x: np.ndarray) -> np.ndarray:
    """The Keras quantized model's outputs (n, C) in float64 (its fixed-point values, exactly)."""
    y = model.predict(x, batch_size=1024, verbose=0)
    return np.asarray(y, np.float64).reshape(len(x), -1)


def firmware_outputs(comb, x: np.ndarray) -> np.ndarray:
    """The firmware logic's outputs (n, C), run by da4ml's C++ interpreter."""
    return np.asarray(comb.predict(np.asarray(x, np.float64).reshape(len(x), -1)), np.float64)


def compare_outputs(reference: np.ndarray, firmware: np.ndarray) -> dict:
    """Bit-exact comparison of two (n, C) output arrays: {"bit_exact", "n_jets", "n_mismatched_jets",
    "n_mismatched_values", "max_abs_diff", "first_mismatch"} (first_mismatch: jet index, or None)."""
    ref, fw = np.asarray(reference, np.float64), np.asarray(firmware, np.float64)
    if ref.shape != fw.shape or ref.ndim != 2:
        raise DataError(f"bit-exact check: reference outputs {ref.shape} and firmware outputs {fw.shape} differ "
                        f"in shape (expected equal (n_jets, n_outputs))")
    diff = (ref != fw) & ~(np.isnan(ref) & np.isnan(fw))
    bad = np.flatnonzero(diff.any(axis=1))
    return {"bit_exact": bool(bad.size == 0 and ref.shape[0] > 0), "n_jets": int(ref.shape[0]),
            "n_mismatched_jets": int(bad.size), "n_mismatched_values": int(diff.sum()),
            "max_abs_diff": float(np.nanmax(np.abs(ref - fw))) if ref.size else 0.0,
            "first_mismatch": int(bad[0]) if bad.size else None}


# ---------------------------------------------------------------------------------------------------- the rows


def peer_row(cfg: PeerConfig, jets: PeerJets, out_dir, signal_efficiency: float = 0.5,
             min_bitexact_jets: int = MIN_BITEXACT_JETS, latency_cutoff: float | None = None, log=print,
             argv: list[str] | None = None) -> dict:
    """Build, train, convert, cost and check one peer on ``jets``; write its model and metrics into
    ``out_dir/<name>/``; return its row (keys of ``l1tagger.sweep.collect.point_row`` plus ``peer``). ``argv``: the
    command recorded in the provenance (default: this process's)."""
    from l1tagger.sweep.collect import rejection_at
    from l1tagger.training.metrics import metrics_from_logits, write_metrics
    from l1tagger.utils.atomic import atomic_path, atomic_write_json
    from l1tagger.utils.provenance import config_key, package_versions, provenance, PACKAGES

    cfg.validate()
    if not 0 < signal_efficiency < 1:
        raise ConfigError(f"signal efficiency: must be in (0, 1), got {signal_efficiency!r}")
    n_test = len(jets.y["test"])
    if n_test < min_bitexact_jets:
        raise ConfigError(f"the test split has {n_test} jets, the bit-exact check needs at least {min_bitexact_jets}")
    da4ml_version = check_da4ml_version()
    n_particles, n_features = jets.shape
    config = {"peer": dataclasses.asdict(cfg), "jets": jets.source, "signal_efficiency": signal_efficiency,
              "latency_cutoff": latency_cutoff}
    key = config_key(config)
    name = f"peer-hgq2-{cfg.kind}-n{n_particles}x{n_features}-{key[:8]}"
    work = Path(out_dir) / name
    log(f"{name}: training on {len(jets.y['train'])} jets ({jets.source.get('scaler')})")
    t0 = time.time()
    model = build_model(cfg, n_particles, n_features, len(jets.class_names))
    training = train_peer(model, jets, cfg, log)
    with atomic_path(work / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    logits = keras_outputs(model, jets.x["test"])
    metrics = write_metrics(metrics_from_logits(logits, jets.y["test"], jets.class_names, with_curves=True),
                            work / "metrics.json", work / "roc.png", f"HGQ2 {cfg.kind} (Keras quantized)")
    log(f"  accuracy {metrics['accuracy']:.4f} on {n_test} test jets, {training['ebops']:,} EBOPs; converting")
    comb = convert(model)
    cost = comb_cost(comb, latency_cutoff)
    fw = firmware_outputs(comb, jets.x["test"])
    check = compare_outputs(logits, fw)
    fw_metrics = metrics_from_logits(fw, jets.y["test"], jets.class_names)
    verdict = "bit-exact" if check["bit_exact"] else "NOT bit-exact"
    log(f"  da4ml cost {cost['lut']:,.0f} LUT, {cost['latency_cycles']} cycles; {verdict} on {check['n_jets']} jets "
        f"({check['n_mismatched_jets']} differ)")
    rej = rejection_at(metrics, signal_efficiency)
    row = {
        "name": name, "origin": "same-jets peer (hgq2)", "overrides": {}, "state": "finished", "returncode": 0,
        "seconds": round(time.time() - t0, 1), "error": None, "log": None,
        "run_dir": str(work), "project_dir": None,
        "accuracy": metrics["accuracy"], "accuracy_n_jets": metrics["n_jets"],
        "accuracy_jets": f"test split of {jets.source.get('run') or 'the given split'}",
        "auc_macro": metrics["auc_macro"], "accuracy_float": None,
        "firmware_accuracy": fw_metrics["accuracy"], "firmware_n_jets": fw_metrics["n_jets"],
        "rejection": rej, "rejection_geomean": rej["geomean"],
        "da4ml_lut": cost["lut"], "ebops": training["ebops"],
        "lut": None, "lut_source": None, "dsp": 0,
        "latency_ns": cost["latency_ns"],
        "latency_source": f"da4ml pipeline, {cost['latency_cycles']} stages at cutoff {cost['latency_cutoff']:g} x "
                          f"{cost['clock_ns']} ns (not synthesised)",
        "ii_cycles": 1, "rtl_latency_ns": cost["latency_ns"],
        "bit_exact": {"verdict": verdict, "n_jets": check["n_jets"],
                      "jets": f"the whole test split ({check['n_jets']} jets)",
                      "checks": {"da4ml_interp": {"bit_exact": check["bit_exact"], "n_jets": check["n_jets"]}},
                      "detail": {**check, "check": BIT_EXACT_CHECK}},
        "budget_verdict": None,
        "config": config, "config_key": key,
        "peer": {"framework": "hgq2", "kind": cfg.kind, "same_jets": True, "training": training,
                 "da4ml_cost": cost, "model": str(work / "model.keras"), "metrics": str(work / "metrics.json")},
        "provenance": {**provenance(argv), "versions": package_versions(PACKAGES + PEER_PACKAGES),
                       "da4ml_used": da4ml_version},
    }
    atomic_write_json(work / "row.json", row)
    return row


def write_results(out_dir, rows: list[dict], signal_efficiency: float, log=print) -> dict:
    """Add ``rows`` to ``out_dir/peers.json`` (a row with the same config replaces its old one) and rewrite
    ``out_dir/peers.md``; returns the JSON document."""
    from l1tagger.utils.atomic import atomic_write_json, atomic_write_text
    from l1tagger.utils.provenance import add_rows

    out_dir = Path(out_dir)
    all_rows = add_rows(out_dir / "peers.json", rows, log=log)
    doc = {"notes": {"same_jets": "rows: peers trained and tested on the jets, split, scaler and features of an "
                                  "l1tagger run (config.jets); comparable point by point with that run's models",
                     "accuracy": "Keras quantized model on the whole test split (accuracy_n_jets jets)",
                     "rejection": f"1/eps_B at eps_S = {signal_efficiency:g} per signal class vs the background "
                                  "classes (l1tagger.training.metrics), geometric mean over signal classes",
                     "da4ml_lut": "da4ml cost of the traced logic pipelined like every l1tagger model "
                                  "(l1tagger.rtl.project.build_pipeline)",
                     "bit_exact": BIT_EXACT_CHECK,
                     "published_anchors": "published figures on other jets (hls4ml LHC jets), post-route LUT: "
                                          "shown apart, never on the same-jets table or front"},
           "rows": all_rows, "published_anchors": list(PUBLISHED_ANCHORS)}
    atomic_write_json(out_dir / "peers.json", doc)
    atomic_write_text(out_dir / "peers.md", markdown(doc))
    return doc


def markdown(doc: dict) -> str:
    from l1tagger.sweep.collect import fmt_value

    lines = ["# Peer baselines on the same jets", "",
             f"Accuracy: {doc['notes']['accuracy']}. Rejection: {doc['notes']['rejection']}. Cost: "
             f"{doc['notes']['da4ml_lut']}. Bit-exact: {doc['notes']['bit_exact']}.", "",
             "| peer | jets (run, N x F, scaler) | accuracy (test jets) | rej. (geo. mean) | da4ml LUT | EBOPs | "
             "latency ns | bit-exact (jets, differing) | epochs | command | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        jets = (r.get("config") or {}).get("jets") or {}
        be = r.get("bit_exact") or {}
        detail = be.get("detail") or {}
        prov = r.get("provenance") or {}
        peer = (r.get("config") or {}).get("peer") or {}
        lines.append(
            f"| {r.get('name')} | {jets.get('run') or '—'}, {jets.get('n_particles')} x {jets.get('features')}, "
            f"scaler {jets.get('scaler')} | {fmt_value(r.get('accuracy'))} ({fmt_value(r.get('accuracy_n_jets'))}) | "
            f"{fmt_value(r.get('rejection_geomean'))} | {fmt_value(r.get('da4ml_lut'))} | {fmt_value(r.get('ebops'))} | "
            f"{fmt_value(r.get('latency_ns'))} | {be.get('verdict')} ({fmt_value(be.get('n_jets'))}, "
            f"{fmt_value(detail.get('n_mismatched_jets'))}) | {fmt_value(peer.get('epochs'))} | "
            f"`{prov.get('command')}` | {(prov.get('commit') or 'unknown')[:10]}"
            f"{' (dirty)' if prov.get('dirty') else ''} |")
    lines += ["", "## Published anchors (other jets: not comparable point by point)", "",
              "| system | inputs | accuracy | LUT (post-route) | latency ns | jets | source |",
              "|---|---|---|---|---|---|---|"]
    for a in doc.get("published_anchors", []):
        lines.append(f"| {a['system']} | {a['inputs']} | {a['accuracy']:.3f} | {a['lut']:,} | {a['latency_ns']} | "
                     f"{a['jets']} | {a['source']} |")
    return "\n".join(lines) + "\n"


def run(run_dir, kinds, out_dir, cfg: PeerConfig | None = None, features: str | None = None,
        n_particles: int | None = None, signal_efficiency: float = 0.5,
        min_bitexact_jets: int = MIN_BITEXACT_JETS, latency_cutoff: float | None = None, log=print,
        argv: list[str] | None = None) -> dict:
    """Every peer of ``kinds`` on the jets of the run in ``run_dir``; rows added to ``out_dir/peers.{json,md}``.
    ``latency_cutoff`` None: the run's ``rtl_latency_cutoff`` (the cutoff of its own da4ml cost).
    A peer that is not bit-exact raises NotBitExactError after all rows are written."""
    base = (cfg or PeerConfig()).validate()
    kinds = list(kinds)
    for k in kinds:
        dataclasses.replace(base, kind=k).validate()
    check_da4ml_version()
    _import_hgq()
    jets = run_jets(run_dir, features, n_particles)
    if latency_cutoff is None:  # the cutoff the run's own da4ml cost was computed at
        latency_cutoff = jets.source.get("rtl_latency_cutoff")
    rows = [peer_row(dataclasses.replace(base, kind=k), jets, out_dir, signal_efficiency, min_bitexact_jets,
                     latency_cutoff, log, argv) for k in kinds]
    doc = write_results(out_dir, rows, signal_efficiency, log)
    bad = [r["name"] for r in rows if r["bit_exact"]["verdict"] != "bit-exact"]
    if bad:
        raise NotBitExactError(f"{Path(out_dir) / 'peers.json'}: not bit-exact: {', '.join(bad)} (firmware logic and "
                               f"Keras model differ; see bit_exact.detail)")
    return doc
