"""Training and evaluation: ``train(config, train_jets, val_jets, out_dir) -> best checkpoint path``,
``load_tagger(path) -> LoadedTagger`` (``l1tagger.training.artifact``), ``evaluate(tagger, jets) -> metrics``.

Files in ``out_dir``:
    last.pt       every epoch (model, optimizer, scheduler, epoch, history): ``resume=True`` continues from it
    best.pt       the checkpoint with the lowest validation loss
    best.json     its TrainConfig, feature scaler, class names, epoch and validation metrics (beside best.pt)
    history.json  per-epoch train/val loss and accuracy
    metrics.json, roc.png   validation metrics of the best checkpoint

Checkpoints hold only tensors and plain Python values (configs as JSON strings) and are read back with
``torch.load(weights_only=True)``. Determinism: initialisation uses ``seed``, epoch e shuffles with ``seed + e``,
so an interrupted and resumed run ends with the same weights as an uninterrupted one (on the same device).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from l1tagger.utils import progress as prog

from l1tagger.data.jetset import JetSet
from l1tagger.errors import ConfigError, DataError, L1TaggerError
from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs
from l1tagger.training.artifact import LoadedTagger
from l1tagger.training.config import TrainConfig
from l1tagger.training.metrics import metrics_from_logits, write_metrics
from l1tagger.utils.atomic import atomic_torch_save, atomic_write_json

CHECKPOINT_FORMAT = "l1tagger-checkpoint-1"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise L1TaggerError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)


def build_network(tc: TrainConfig, ops=None) -> nn.Module:
    """The network a TrainConfig describes (ops: op factory for the L1 tagger; None = float)."""
    if tc.model_kind == "part":
        from l1tagger.models.part import ParT, matched, preset

        pc = preset(tc.part_preset, tc.model.n_features, tc.model.n_classes, tc.model.n_particles) \
            if tc.part_preset else matched(tc.model)
        return ParT(pc)
    from l1tagger.models import build_model

    return build_model(tc.model, ops=ops)


def _scheduler(opt, tc: TrainConfig, steps_per_epoch: int):
    total = tc.epochs * steps_per_epoch
    if tc.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    if tc.schedule == "onecycle":
        warm = max(1, int(0.3 * total))

        def f(s):
            if s < warm:
                return 0.04 + 0.96 * s / warm
            return 0.5 * (1 + math.cos(math.pi * min(s - warm, total - warm) / max(1, total - warm)))

        return torch.optim.lr_scheduler.LambdaLR(opt, f)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


@torch.no_grad()
def predict(model: nn.Module, inputs: ModelInputs, batch_size: int = 512, device=None) -> np.ndarray:
    """Logits (n, C) as float64 numpy."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        x, m, p = inputs.tensors(slice(i, i + batch_size), device)
        out.append(model(x, m, p).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.n_classes))


def evaluate_epoch(model: nn.Module, inputs: ModelInputs, device, batch_size: int = 512
                   ) -> tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, logits) of ``model`` on ``inputs`` (built with its config and scaler): the
    per-epoch validation of ``train`` and of the QAT fine-tuning."""
    logits = predict(model, inputs, batch_size, device)
    lt = torch.as_tensor(logits)
    loss = float(nn.functional.cross_entropy(lt, torch.as_tensor(inputs.labels)))
    acc = float((logits.argmax(1) == inputs.labels).mean())
    return loss, acc, logits



def _checkpoint(model, opt, sched, epoch, tc, scaler, class_names, history, best_val_loss) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "train_config": json.dumps(tc.to_dict()),
        "scaler": json.dumps(scaler.to_dict()),
        "class_names": json.dumps(list(class_names)),
        "model": model.state_dict(),
        "optimizer": opt.state_dict() if opt is not None else {},
        "scheduler": sched.state_dict() if sched is not None else {},
        "epoch": int(epoch),
        "history": json.dumps(history),
        "best_val_loss": float(best_val_loss),
    }


CHECKPOINT_KEYS = ("train_config", "scaler", "class_names", "model")


def read_checkpoint(path, fmt: str = CHECKPOINT_FORMAT, what: str = "checkpoint",
                    keys: tuple[str, ...] = CHECKPOINT_KEYS) -> dict:
    """``torch.load(weights_only=True)`` of an l1tagger checkpoint of format ``fmt`` holding ``keys``.

    ConfigError naming the file when it is missing, not a torch file (truncated, corrupt, pickled objects), of
    another format, or lacking a key; the JSON strings in it are checked by :func:`checkpoint_json`.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - RuntimeError, UnpicklingError, EOFError, BadZipFile, ... on a bad file
        lines = str(exc).strip().splitlines()
        raise ConfigError(f"{path}: cannot read {what} ({type(exc).__name__}: {lines[0] if lines else ''})") \
            from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise ConfigError(f"{path}: not an l1tagger {what} (format {fmt})")
    missing = [k for k in keys if k not in ck]
    if missing:
        raise ConfigError(f"{path}: {what} lacks {missing} (truncated or written by another tool?)")
    return ck


def checkpoint_json(ck: dict, key: str, path):
    """A JSON string of a checkpoint, decoded; ConfigError naming the file and key when it is not JSON."""
    try:
        return json.loads(ck[key])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: checkpoint entry {key!r} is not valid JSON ({exc})") from None


def load_weights(model: nn.Module, state, path, strict: bool = True) -> None:
    """``model.load_state_dict(state, strict)``; weights that do not fit the model (another model's checkpoint, an
    edited config) raise ConfigError naming the checkpoint and the first mismatching parameter."""
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: the checkpoint's 'model' entry is not a state dict")
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        own = model.state_dict()
        bad = next((k for k, v in state.items() if k in own and hasattr(v, "shape")
                    and tuple(v.shape) != tuple(own[k].shape)), None)
        if bad is not None:
            detail = (f"parameter {bad!r} has shape {tuple(state[bad].shape)} in the checkpoint, "
                      f"{tuple(own[bad].shape)} in the model its config describes")
        else:
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            detail = (f"parameter {missing[0]!r} is missing from the checkpoint" if missing and strict else
                      f"checkpoint parameter {unexpected[0]!r} is not in the model" if unexpected and strict else
                      next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc)))
        raise ConfigError(f"{path}: weights do not fit the model: {detail} (a checkpoint of another model?)") \
            from None


def checkpoint_train_config(ck: dict, path) -> TrainConfig:
    """The TrainConfig stored in a checkpoint (strict: ConfigError naming the file and the dotted field)."""
    try:
        return TrainConfig.from_dict(checkpoint_json(ck, "train_config", path), "train_config")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def checkpoint_class_names(ck: dict, path) -> list[str]:
    """The class names stored in a checkpoint (ConfigError naming the file unless a list of strings)."""
    names = checkpoint_json(ck, "class_names", path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: checkpoint entry 'class_names' is not a list of class names: {names!r}")
    return names


def load_tagger(path, ops=None, device="cpu") -> LoadedTagger:
    """The trained model of a checkpoint written by :func:`train` (eval mode on ``device``) with its TrainConfig,
    feature scaler and class names.

    ``ops``: op factory to build the L1 tagger with (e.g. QuantOps for the quantized twin loading float weights;
    its ``recipe`` and ``softmax_specs`` are kept). A file that is not a readable checkpoint, or whose weights do
    not fit the model its config describes, raises ConfigError naming the file (and the first mismatching
    parameter).
    """
    ck = read_checkpoint(path)
    tc = checkpoint_train_config(ck, path)
    model = build_network(tc, ops=ops)
    load_weights(model, ck["model"], path, strict=ops is None)
    return LoadedTagger(model=model.to(device).eval(), train_config=tc,
                        scaler=FeatureScaler.from_dict(checkpoint_json(ck, "scaler", path)),
                        class_names=checkpoint_class_names(ck, path), recipe=getattr(ops, "recipe", None),
                        softmax_specs=dict(getattr(ops, "softmax_specs", {})))


def train(config: TrainConfig, train_jets: JetSet, val_jets: JetSet, out_dir, resume: bool = False,
          progress: bool = True, epochs_now: int | None = None) -> Path:
    """Train ``config`` on ``train_jets``, select on ``val_jets``; return the path of best.pt.

    resume:     continue from ``out_dir/last.pt`` (same config required)
    epochs_now: run at most this many epochs in this call (time-sliced jobs); a later call with resume=True
                continues exactly where it stopped
    """
    tc = config.validate()
    if tc.model.n_classes != len(train_jets.class_names):
        raise DataError(f"model has n_classes={tc.model.n_classes}, the jets {len(train_jets.class_names)} classes "
                        f"{train_jets.class_names}")
    if list(val_jets.class_names) != list(train_jets.class_names):
        raise DataError(f"validation jets have classes {val_jets.class_names}, the model {train_jets.class_names}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    class_names = list(train_jets.class_names)

    tr, scaler = build_inputs(train_jets, tc.model, clip=tc.feature_clip)
    va, _ = build_inputs(val_jets, tc.model, scaler)

    torch.manual_seed(tc.seed)
    model = build_network(tc).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    steps = math.ceil(len(tr) / tc.batch_size)
    sched = _scheduler(opt, tc, steps)
    start, history, best = 0, [], float("inf")
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and last_path.exists():
        ck = read_checkpoint(last_path, keys=CHECKPOINT_KEYS + ("optimizer", "scheduler", "epoch", "history",
                                                                 "best_val_loss"))
        if checkpoint_json(ck, "train_config", last_path) != json.loads(json.dumps(tc.to_dict())):
            raise L1TaggerError(f"cannot resume: {last_path} was written with a different config")
        load_weights(model, ck["model"], last_path)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, history, best = ck["epoch"], json.loads(ck["history"]), ck["best_val_loss"]

    x_all, m_all, p_all = tr.tensors(slice(None), device)
    y_all = torch.as_tensor(tr.labels, device=device)
    stop = tc.epochs if epochs_now is None else min(tc.epochs, start + int(epochs_now))
    for epoch in range(start, stop):
        model.train()
        g = torch.Generator().manual_seed(tc.seed + epoch)
        perm = torch.randperm(len(tr), generator=g).to(device)
        total, n = 0.0, 0
        bar = prog.progress(range(steps), desc=f"epoch {epoch + 1}/{tc.epochs}", disable=not progress, leave=False)
        for s in bar:
            idx = perm[s * tc.batch_size:(s + 1) * tc.batch_size]
            logits = model(x_all[idx], m_all[idx], None if p_all is None else p_all[idx])
            loss = nn.functional.cross_entropy(logits, y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, tc.grad_clip)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.set_postfix(loss=f"{total / n:.4f}")
        val_loss, val_acc, _ = evaluate_epoch(model, va, device, 512)
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_loss": val_loss, "val_accuracy": val_acc,
                        "lr": sched.get_last_lr()[0]})
        if progress:
            prog.write(f"epoch {epoch + 1}: train loss {total / n:.4f}  val loss {val_loss:.4f}  val acc {val_acc:.4f}")
        if val_loss < best:
            best = val_loss
            atomic_torch_save(best_path, _checkpoint(model, None, None, epoch + 1, tc, scaler, class_names, history, best))
            atomic_write_json(out / "best.json", {"checkpoint": best_path.name, "epoch": epoch + 1,
                                                  "val_loss": val_loss, "val_accuracy": val_acc,
                                                  "train_config": tc.to_dict(), "scaler": scaler.to_dict(),
                                                  "class_names": class_names})
        atomic_torch_save(last_path, _checkpoint(model, opt, sched, epoch + 1, tc, scaler, class_names, history, best))
        atomic_write_json(out / "history.json", history)

    if not best_path.exists():
        raise L1TaggerError(f"training wrote no best checkpoint in {out} (epochs={tc.epochs})")
    metrics = evaluate(load_tagger(best_path, device=device), val_jets, with_curves=True)
    write_metrics(metrics, out / "metrics.json", out / "roc.png", title=f"validation, {tc.model.attention}")
    info = json.loads((out / "best.json").read_text())
    info["metrics"] = {k: metrics[k] for k in ("accuracy", "auc_macro", "auc_per_class", "rejection")}
    atomic_write_json(out / "best.json", info)
    return best_path


def evaluate(tagger: LoadedTagger, jets: JetSet, batch_size: int = 512, with_curves: bool = False,
             background: list[str] | None = None) -> dict:
    """Metrics of ``tagger`` (from :func:`load_tagger`, ``load_qat_tagger`` or ``QATResult.tagger``) on ``jets``,
    which must have its classes.

    background: background class names (default: the TrainConfig's ``background``, else QCD/light by name)."""
    tagger.check_classes(jets)
    inputs = tagger.inputs(jets)
    logits = predict(tagger.model, inputs, batch_size)
    bkg = background if background is not None else list(tagger.train_config.background)
    return metrics_from_logits(logits, inputs.labels, tagger.class_names, bkg or None, with_curves)
