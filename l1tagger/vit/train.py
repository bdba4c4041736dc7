"""Train a jet-image ViT from scratch, or fine-tune the last encoder blocks of a user's local checkpoint.

``train_vit(config, train_jets, val_jets, out_dir)`` writes into ``out_dir``:

    config.json    the ViTTrainConfig (with the model's class names filled in)
    last.pt        full training state after each epoch (model, optimizer, scheduler, history) for ``resume``
    best.pt        {"config": ViTConfig dict, "model": state_dict, "epoch", "val"}: the epoch with the lowest
                   validation loss; ``load_vit(path)`` rebuilds the model from it alone
    metrics.json   per-epoch history and the best epoch's validation metrics

Determinism: parameters are initialised from ``seed``; epoch e shuffles with numpy ``default_rng([seed, e])`` and
seeds torch's generator (dropout) with ``seed * 100003 + e``, so a resumed run is bit-identical to an
uninterrupted one. Every file is written atomically; checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from l1tagger.utils.progress import progress as progress_bar

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError, DataError
from l1tagger.training.metrics import compute_metrics
from l1tagger.utils import dataclass_io
from l1tagger.utils.atomic import atomic_torch_save, atomic_write_json
from l1tagger.vit.inputs import model_inputs
from l1tagger.vit.model import JetViT, ViTConfig, count_parameters, freeze_all_but_last
from l1tagger.vit.tasks import resolve_groups


@dataclass
class ViTTrainConfig:
    """Everything ``train_vit`` needs.

    model:           the architecture and image recipe (``ViTConfig``); class names are filled from the jets
    task:            "" (all classes of the jets), a name in ``l1tagger.vit.tasks.TASKS`` ("qcd_vs_top", "w_vs_z")
                     or a mapping {class: [dataset classes]}
    epochs:          training epochs (total, including those of a resumed run)
    batch_size:      jets per optimizer step
    lr:              peak AdamW learning rate (linear warm-up over the first epoch, then cosine decay to 0)
    weight_decay:    AdamW weight decay
    seed:            initialisation, shuffling and dropout seed
    init_checkpoint: path of a local checkpoint to start from (a ``best.pt`` of this module or a bare state_dict);
                     tensors are matched by name and shape, a head of another class count is re-initialised
    finetune_blocks: -1 trains everything; k >= 0 freezes all but the last k encoder blocks, the final norm and
                     the head (the few-shot fine-tuning recipe)
    num_threads:     torch CPU threads
    """

    model: ViTConfig = field(default_factory=ViTConfig)
    task: str | dict = ""
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 1
    init_checkpoint: str = ""
    finetune_blocks: int = -1
    num_threads: int = 1

    def validate(self) -> "ViTTrainConfig":
        for key in ("epochs", "batch_size", "num_threads"):
            val = getattr(self, key)
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ConfigError(f"{key}: must be a positive integer, got {val!r}")
        if not (float(self.lr) > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr: must be a positive number, got {self.lr!r}")
        if float(self.weight_decay) < 0:
            raise ConfigError(f"weight_decay: must be >= 0, got {self.weight_decay!r}")
        if not isinstance(self.finetune_blocks, int) or self.finetune_blocks < -1:
            raise ConfigError(f"finetune_blocks: -1 (train all) or a block count >= 0, got {self.finetune_blocks!r}")
        if self.finetune_blocks > self.model.depth:
            raise ConfigError(f"finetune_blocks: {self.finetune_blocks} exceeds the model depth {self.model.depth}")
        if self.task:
            resolve_groups(self.task)
        if self.init_checkpoint and not Path(self.init_checkpoint).is_file():
            raise ConfigError(f"init_checkpoint: {self.init_checkpoint} does not exist")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> "ViTTrainConfig":
        """Strict (``l1tagger.utils.dataclass_io.from_dict``; errors name the dotted field, e.g. "model.image.size").
        The image recipe is validated; the rest by :meth:`validate` when training starts."""
        cfg = dataclass_io.from_dict(cls, data, path)
        dataclass_io.validated(cfg.model.image, dataclass_io.join_path(path, "model.image"))
        return cfg


@dataclass
class ViTTrainResult:
    model: JetViT  # the best epoch's weights
    out_dir: Path
    best_epoch: int
    val_metrics: dict
    history: list[dict]


# ---------------------------------------------------------------------------------------------------- checkpoints
def _load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-tensor payloads
        raise ConfigError(f"cannot read checkpoint {path} with torch.load(weights_only=True): {exc}") from exc
    if not isinstance(obj, dict):
        raise ConfigError(f"checkpoint {path}: expected a dict, got {type(obj).__name__}")
    return obj


def load_vit(path: str | Path) -> JetViT:
    """Rebuild a JetViT from a ``best.pt`` written by ``train_vit``."""
    obj = _load(path)
    if "config" not in obj or "model" not in obj:
        raise ConfigError(f"checkpoint {path} is not a train_vit checkpoint (needs 'config' and 'model' entries)")
    try:
        config = ViTConfig.from_dict(obj["config"], "config")
    except ConfigError as exc:
        raise ConfigError(f"checkpoint {path}: {exc}") from None
    model = JetViT(config)
    model.load_state_dict(obj["model"])
    return model.eval()


def load_pretrained(model: JetViT, path: str | Path) -> dict:
    """Copy matching tensors (same name and shape) of a local checkpoint into ``model``.

    Accepts a ``train_vit`` checkpoint, {"state_dict": ...} or a bare state_dict. Only ``head.*`` may differ in
    shape (a new class count: it keeps its fresh initialisation); any other missing or mismatched tensor is an
    error naming it. Returns {"loaded": [...], "reinitialised": [...], "ignored": [...]}.
    """
    obj = _load(path)
    state = obj.get("model", obj.get("state_dict", obj))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"checkpoint {path}: no state_dict of tensors found")
    own = model.state_dict()
    loaded, reinit = [], []
    for name, tensor in own.items():
        src = state.get(name)
        if src is not None and tuple(src.shape) == tuple(tensor.shape):
            own[name] = src.to(tensor.dtype)
            loaded.append(name)
        elif name.startswith("head."):
            reinit.append(name)
        elif src is None:
            raise ConfigError(f"checkpoint {path} has no tensor {name!r} (is it a JetViT of this architecture?)")
        else:
            raise ConfigError(f"checkpoint {path}: {name!r} has shape {tuple(src.shape)}, the model needs "
                              f"{tuple(tensor.shape)}")
    model.load_state_dict(own)
    return {"loaded": loaded, "reinitialised": reinit, "ignored": sorted(set(state) - set(own))}


# ------------------------------------------------------------------------------------------------------- training
def _schedule(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def predict(model: JetViT, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (n, n_classes) for images (n, size, size)."""
    model.eval()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    out = [torch.softmax(model(x[i:i + batch_size]), -1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.n_classes), np.float32)


def evaluate_vit(model: JetViT, jets: JetSet, batch_size: int = 512) -> dict:
    """The classification metrics of ``model`` on ``jets`` (after the model's own task selection and imaging)."""
    jets, images, _ = model_inputs(model.config, jets)
    return compute_metrics(predict(model, images, batch_size), jets.labels, model.config.class_names)


def _loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def train_vit(config: ViTTrainConfig | dict, train_jets: JetSet, val_jets: JetSet, out_dir: str | Path,
              resume: bool = True, stop_after: int | None = None, progress: bool = True) -> ViTTrainResult:
    """Train (or fine-tune) a JetViT; see the module docstring for the files written.

    resume:     continue from ``out_dir/last.pt`` when it exists (its config must equal ``config``)
    stop_after: leave after this many epochs of this call (for wall-time-limited jobs; call again to resume)
    """
    if isinstance(config, dict):
        config = ViTTrainConfig.from_dict(config)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model))
    out_dir = Path(out_dir)
    torch.set_num_threads(config.num_threads)

    groups = resolve_groups(config.task) if config.task else {}
    config.model.class_groups = groups
    if groups:
        config.model.class_names = list(groups)
    elif not config.model.class_names:
        config.model.class_names = list(train_jets.class_names)
    config.validate()
    dataclass_io.validated(config.model, "model")
    train_jets, x_train, _ = model_inputs(config.model, train_jets)
    val_jets, x_val, _ = model_inputs(config.model, val_jets)
    if len(val_jets) == 0 or len(train_jets) == 0:
        raise DataError("train_vit needs at least one training and one validation jet")
    y_train = torch.as_tensor(train_jets.labels)
    x_train_t = torch.as_tensor(x_train)

    torch.manual_seed(config.seed)
    model = JetViT(config.model)
    init_info = load_pretrained(model, config.init_checkpoint) if config.init_checkpoint else None
    trainable = (freeze_all_but_last(model, config.finetune_blocks) if config.finetune_blocks >= 0
                 else [n for n, _ in model.named_parameters()])
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_jets) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(config.epochs * steps_per_epoch, steps_per_epoch))

    cfg_dict = config.to_dict()
    history: list[dict] = []
    start_epoch, best_loss, best_epoch = 0, float("inf"), -1
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last_path.exists():
        state = _load(last_path)
        saved_cfg = json.loads(state.get("config_json", "null"))
        if saved_cfg != json.loads(json.dumps(cfg_dict)):
            raise ConfigError(f"{last_path} belongs to a run with a different config; use another out_dir or "
                              f"resume=False")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_loss, best_epoch = int(state["epoch"]) + 1, float(state["best_loss"]), int(state["best_epoch"])
        history = json.loads(state["history_json"])
    atomic_write_json(out_dir / "config.json", cfg_dict)

    epochs = range(start_epoch, config.epochs)
    if stop_after is not None:
        epochs = range(start_epoch, min(config.epochs, start_epoch + int(stop_after)))
    bar = progress_bar(epochs, desc="vit epochs", disable=not progress)
    for epoch in bar:
        model.train()
        torch.manual_seed(config.seed * 100003 + epoch)
        perm = torch.as_tensor(np.random.default_rng([config.seed, epoch]).permutation(len(train_jets)))
        t0, total, n_seen = time.perf_counter(), 0.0, 0
        for i in progress_bar(range(0, len(perm), config.batch_size), desc=f"epoch {epoch}", leave=False,
                      disable=not progress):
            idx = perm[i:i + config.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x_train_t[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            n_seen += len(idx)
        probs = predict(model, x_val)
        val_loss = _loss(probs, val_jets.labels)
        row = {"epoch": epoch, "train_loss": total / n_seen, "val_loss": val_loss,
               "val_accuracy": float((probs.argmax(1) == val_jets.labels).mean()),
               "lr": float(scheduler.get_last_lr()[0]), "seconds": time.perf_counter() - t0}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            atomic_torch_save(best_path, {"config": config.model.to_dict(), "model": model.state_dict(),
                                          "epoch": epoch, "val_loss": val_loss})
        atomic_torch_save(last_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                      "scheduler": scheduler.state_dict(), "epoch": epoch, "best_loss": best_loss,
                                      "best_epoch": best_epoch, "history_json": json.dumps(history),
                                      "config_json": json.dumps(cfg_dict)})

    if not best_path.exists():
        raise DataError(f"no epoch finished in {out_dir}; nothing to report")
    best = load_vit(best_path)
    val_metrics = compute_metrics(predict(best, x_val), val_jets.labels, config.model.class_names)
    atomic_write_json(out_dir / "metrics.json", {
        "best_epoch": best_epoch, "epochs_done": len(history), "epochs": config.epochs,
        "finished": len(history) >= config.epochs, "val": val_metrics, "history": history,
        "n_train": len(train_jets), "n_val": len(val_jets), "parameters": count_parameters(best),
        "trainable_parameters": n_trainable, "trainable_tensors": trainable, "init_checkpoint": init_info,
    })
    return ViTTrainResult(best, out_dir, best_epoch, val_metrics, history)
