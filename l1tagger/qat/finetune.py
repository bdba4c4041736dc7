"""Quantization-aware fine-tuning of a float checkpoint with a recipe, and the float-vs-quantized comparison.

    qat_finetune(checkpoint, recipe, train_jets, val_jets, QATConfig(...)) -> QATResult

1. load the float tagger (``l1tagger.training.load_tagger``: a LoadedTagger with its config, feature scaling and
   class names); build its quantized twin through ``QuantOps(recipe)`` (``build_twin``) and load the float weights;
2. calibrate the runtime-statistics scales on a few training batches; evaluate (post-training quantization);
3. fine-tune with AdamW (straight-through gradients, bit-exact firmware softmax in the forward pass), keeping the
   epoch with the lowest validation loss;
   with an ``hgq:`` recipe (``l1tagger.qat.hgq``, ``docs/hgq.md``): the twin's weights carry trainable per-weight
   fractional bits, the loss is CE + beta * EBOPs / target (beta from ``BetaSchedule``), every epoch records exact
   and surrogate EBOPs, beta and validation accuracy, the kept epoch is the most accurate one within the EBOPs target
   (``BestEpoch``), the last ``hgq.schedule.settle_epochs`` (at most epochs - 1) train the weights at frozen widths
   (``freeze_hgq``, beta = 0, a fresh optimizer), and the HGQ weights are baked into plain constants at the end
   (``bake_hgq``);
4. evaluate float and quantized models on the validation jets with the same metrics (accuracy, macro AUC,
   background rejection).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from l1tagger.errors import ConfigError, L1TaggerError
from l1tagger.qat.hgq import (BestEpoch, BetaSchedule, attach_hgq, bake_hgq, check_accumulators, ebops, ebops_exact,
                              collapse_warning, freeze_hgq, hgq_param_groups, thaw_hgq, weight_stats)
from l1tagger.qat.ops import QuantOps, calibrate, load_float_state_dict
from l1tagger.qat.recipe import Recipe, load_recipe
from l1tagger.training.artifact import LoadedTagger

QAT_CHECKPOINT_FORMAT = "l1tagger-qat-1"


@dataclass
class QATConfig:
    """Fine-tuning settings.

    epochs:         QAT epochs (0 = post-training quantization only: calibrate and evaluate)
    batch_size:     jets per step
    lr:             AdamW learning rate (smaller than float training: the weights start trained)
    weight_decay:   AdamW weight decay
    calib_batches:  training batches run in train mode (no gradients) to initialise activation scales
    seed:           shuffling and initialisation seed
    num_threads:    torch CPU threads
    target_ebops:   HGQ recipes: the EBOPs target, overriding the recipe's ``hgq.target_ebops`` (None: the recipe's;
                    a recipe with ``target_ebops: budget`` needs one, given by ``l1tagger run`` from its budget)
    """

    epochs: int = 3
    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.0
    calib_batches: int = 8
    seed: int = 1
    num_threads: int = 1
    target_ebops: float | None = None

    def validate(self) -> "QATConfig":
        for k in ("batch_size", "num_threads", "calib_batches"):
            if int(getattr(self, k)) <= 0:
                raise ConfigError(f"QAT {k} must be a positive integer, got {getattr(self, k)!r}")
        if int(self.epochs) < 0:
            raise ConfigError(f"QAT epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise ConfigError(f"QAT lr must be > 0, got {self.lr}")
        if self.target_ebops is not None and not (math.isfinite(self.target_ebops) and self.target_ebops >= 1):
            raise ConfigError(f"QAT target_ebops must be a number >= 1, got {self.target_ebops!r}")
        return self


@dataclass
class QATResult:
    recipe: Recipe
    float_tagger: LoadedTagger  # the float checkpoint as loaded
    tagger: LoadedTagger  # the fine-tuned quantized twin (recipe and softmax specs declared on it)
    float_metrics: dict
    ptq_metrics: dict
    qat_metrics: dict
    history: list = field(default_factory=list)
    source_checkpoint: Path | None = None  # the float checkpoint fine-tuned (provenance of the QAT artifact)
    hgq: dict | None = None  # HGQ recipes: target, EBOPs at start / kept epoch, selected epoch, warning

    @property
    def model(self) -> nn.Module:
        """The fine-tuned quantized network (``tagger.model``)."""
        return self.tagger.model

    def summary(self) -> dict:
        """JSON-ready float vs quantized comparison."""

        def pick(m):
            return {"accuracy": m["accuracy"], "auc_macro": m["auc_macro"], "rejection": m.get("rejection")}

        f, q = self.float_metrics, self.qat_metrics
        return {
            "recipe": self.recipe.name,
            "float": pick(f),
            "ptq": pick(self.ptq_metrics),
            "qat": pick(q),
            "accuracy_change": q["accuracy"] - f["accuracy"],
            "relative_accuracy_change": (q["accuracy"] - f["accuracy"]) / max(f["accuracy"], 1e-12),
            "auc_change": q["auc_macro"] - f["auc_macro"],
            "history": self.history,
            **({"hgq": self.hgq} if self.hgq is not None else {}),
        }


def build_twin(float_tagger: LoadedTagger, recipe: Recipe) -> LoadedTagger:
    """The quantized twin of a float tagger from ``load_tagger``: same config, scaler and class names, the recipe's
    quantizers, the float weights loaded (HGQ quantizers attached after them)."""
    from l1tagger.training.loop import build_network

    tc = float_tagger.train_config
    if tc.model_kind != "l1":
        raise ConfigError(f"only L1 taggers (model_kind 'l1') have a quantized twin, not {tc.model_kind!r}")
    ops = QuantOps(recipe)
    q = build_network(tc, ops=ops)
    ops.check_overrides_used()
    load_float_state_dict(q, float_tagger.model.state_dict())
    if recipe.hgq is not None:  # after the float weights: their state-dict names load first
        attach_hgq(q, recipe.hgq)
    return LoadedTagger(model=q, train_config=tc, scaler=float_tagger.scaler,
                        class_names=list(float_tagger.class_names), recipe=recipe,
                        softmax_specs=dict(ops.softmax_specs))


#: stands in for the recipe when qat_finetune(recipe=None) fine-tunes the float model as a baseline
FLOAT_BASELINE = Recipe(name="float+ft", rounding="half_even", kinds={}, softmax=None)  # type: ignore[arg-type]


def qat_finetune(checkpoint, recipe, train_jets, val_jets, cfg: QATConfig | None = None,
                 progress: bool = True) -> QATResult:
    """Fine-tune the quantized twin (``recipe=None``: the float model itself, the fair baseline for the same
    number of extra epochs) and evaluate float / before / after on ``val_jets``."""
    from l1tagger.utils.progress import progress as progress_bar

    from l1tagger.training import evaluate, evaluate_epoch, load_tagger

    cfg = (cfg or QATConfig()).validate()
    if recipe is not None and not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    if recipe is not None and recipe.hgq is not None:  # the target: cfg.target_ebops, else the recipe's number
        target = cfg.target_ebops if cfg.target_ebops is not None else recipe.hgq.target_ebops
        if target is None:
            raise ConfigError(f"recipe {recipe.name!r}: hgq.target_ebops is 'budget' but no budget or target was "
                              f"given: run it with `l1tagger run` (budget:), or set the QAT target_ebops")
        recipe = dataclasses.replace(recipe, hgq=dataclasses.replace(recipe.hgq, target_ebops=float(target)))
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    ftagger = load_tagger(checkpoint)
    if recipe is None:  # float baseline: the same extra fine-tuning without quantization
        qtagger = dataclasses.replace(ftagger, model=copy.deepcopy(ftagger.model))
        recipe = FLOAT_BASELINE
    else:
        qtagger = build_twin(ftagger, recipe)
    qmodel = qtagger.model
    tr, va = ftagger.inputs(train_jets), ftagger.inputs(val_jets)
    bs = cfg.batch_size
    n_calib = min(cfg.calib_batches, math.ceil(len(tr) / bs))
    calibrate(qmodel, [tr.tensors(slice(i * bs, (i + 1) * bs)) for i in range(n_calib)])
    float_metrics = evaluate(ftagger, val_jets)
    ptq_metrics = evaluate(qtagger, val_jets)

    hq = recipe.hgq
    if hq is not None:
        check_accumulators(qmodel, hq.act_max_bits if hq.act_trainable else None)
        groups = hgq_param_groups(qmodel, cfg.lr, cfg.weight_decay, hq)
        clipped = groups[0]["params"]  # the network only: f and widths are Adam-normalised, their gradients large
        schedule, selector = BetaSchedule(hq), BestEpoch(hq.target_ebops)
    else:
        groups = clipped = [p for p in qmodel.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_all, m_all, p_all = tr.tensors()
    y_all = torch.as_tensor(tr.labels)
    steps = math.ceil(len(tr) / bs)
    best_loss, acc0, _ = evaluate_epoch(qmodel, va, torch.device("cpu"), 512)
    best_state = copy.deepcopy(qmodel.state_dict())
    history = [{"epoch": 0, "val_loss": best_loss}]
    # HGQ: the compress phase, then settle_epochs at frozen widths (the compression keeps at least one epoch)
    settle_from = cfg.epochs - min(hq.settle_epochs, max(cfg.epochs - 1, 0)) if hq is not None else cfg.epochs
    if hq is not None:
        ebops0 = ebops_exact(qmodel)
        history[0].update(val_accuracy=acc0, ebops=ebops0, beta=0.0, **weight_stats(qmodel))
        selector.offer(0, acc0, ebops0, qmodel)
    for epoch in range(cfg.epochs):
        qmodel.train()
        perm = torch.randperm(len(tr), generator=torch.Generator().manual_seed(cfg.seed + epoch))
        settling = epoch >= settle_from
        if hq is not None and epoch == settle_from:  # widths frozen, a fresh optimizer over the network weights
            freeze_hgq(qmodel)
            clipped = [p for p in qmodel.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(clipped, lr=cfg.lr, weight_decay=cfg.weight_decay)
        beta = schedule.beta_for(epoch) if hq is not None and not settling else 0.0
        beta_start = beta
        total = penalty = surrogate = 0.0
        for s in progress_bar(range(steps), desc=f"QAT {recipe.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                      leave=False):
            idx = perm[s * bs:(s + 1) * bs]
            logits = qmodel(x_all[idx], m_all[idx], None if p_all is None else p_all[idx])
            ce = nn.functional.cross_entropy(logits, y_all[idx])
            loss = ce
            if hq is not None:
                cost = ebops(qmodel)
                loss = ce + beta * cost / hq.target_ebops
                surrogate += float(cost.detach()) / steps
                penalty += float(loss.detach() - ce.detach()) * len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(clipped, 1.0)
            opt.step()
            total += float(ce.detach()) * len(idx)
            if hq is not None and not settling:
                beta = schedule.step(epoch, float(cost.detach()), steps)
        val_loss, val_acc, _ = evaluate_epoch(qmodel, va, torch.device("cpu"), 512)
        rec = {"epoch": epoch + 1, "train_loss": total / len(tr), "val_loss": val_loss, "val_accuracy": val_acc}
        if hq is not None:
            exact = ebops_exact(qmodel)
            rec.update(train_penalty=penalty / len(tr), ebops=exact, ebops_surrogate=surrogate, beta=beta_start,
                       beta_end=beta, phase="settle" if settling else "compress", **weight_stats(qmodel))
            selector.offer(epoch + 1, val_acc, exact, qmodel)
            if not settling:
                schedule.update(epoch, exact)
        elif val_loss < best_loss:
            best_loss, best_state = val_loss, copy.deepcopy(qmodel.state_dict())
        history.append(rec)
    hgq_info = None
    if hq is not None:
        best_state, hgq_info = selector.result()
        collapse = collapse_warning(history[hgq_info["selected_epoch"]]["val_accuracy"], len(ftagger.class_names),
                                    hq.target_ebops)
        if collapse:  # said plainly: a target this low left no working model
            hgq_info["warning"] = "; ".join(w for w in (hgq_info["warning"], collapse) if w)
        thaw_hgq(qmodel)  # the kept epoch may predate the settle masks; its pruned weights round to 0 without them
    qmodel.load_state_dict(best_state)
    if hq is not None:
        kept, restored = history[hgq_info["selected_epoch"]]["ebops"], ebops_exact(qmodel)
        if restored != kept:
            raise L1TaggerError(f"HGQ: the restored epoch {hgq_info['selected_epoch']} costs {restored} EBOPs, not "
                                f"the {kept} measured after it (a settle mask did not hold)")
        bake_hgq(qmodel)  # plain constants on their own grids inside the container: exports exactly
        hgq_info = {"target_ebops": hq.target_ebops, "ebops_start": ebops0, "ebops_final": ebops_exact(qmodel),
                    **hgq_info, **weight_stats(qmodel)}
    qmodel.eval()
    qat_metrics = evaluate(qtagger, val_jets)
    return QATResult(recipe, ftagger, qtagger, float_metrics, ptq_metrics, qat_metrics, history,
                     source_checkpoint=Path(checkpoint), hgq=hgq_info)


def qat_checkpoint(result: QATResult, qat_config: QATConfig) -> dict:
    """A torch.save-able dict (tensors and JSON strings only: loads with weights_only=True)."""
    import json

    t = result.tagger
    return {
        "format": QAT_CHECKPOINT_FORMAT,
        "model": t.model.state_dict(),
        "train_config": json.dumps(t.train_config.to_dict()),
        "scaler": json.dumps(t.scaler.to_dict()),
        "class_names": json.dumps(list(t.class_names)),
        "recipe": json.dumps(result.recipe.to_dict()),
        "qat_config": json.dumps(asdict(qat_config)),
        "softmax_specs": json.dumps(t.softmax_specs),
    }


def load_qat_tagger(path, recipe_path=None) -> LoadedTagger:
    """The quantized tagger of a QAT checkpoint (eval mode; recipe from the checkpoint unless one is given).

    ConfigError naming the file for a missing, unreadable or foreign file and for weights that do not fit the model
    (naming the first mismatching parameter).
    """
    from l1tagger.features.inputs import FeatureScaler
    from l1tagger.qat.recipe import parse_recipe
    from l1tagger.training.loop import (CHECKPOINT_KEYS, build_network, checkpoint_class_names, checkpoint_json,
                                        checkpoint_train_config, load_weights, read_checkpoint)

    path = Path(path)
    ck = read_checkpoint(path, QAT_CHECKPOINT_FORMAT, "QAT checkpoint", CHECKPOINT_KEYS + ("recipe",))
    recipe = load_recipe(recipe_path) if recipe_path else parse_recipe(checkpoint_json(ck, "recipe", path))
    tc = checkpoint_train_config(ck, path)
    ops = QuantOps(recipe)
    model = build_network(tc, ops=ops)
    load_weights(model, ck["model"], path)
    return LoadedTagger(model=model.eval(), train_config=tc,
                        scaler=FeatureScaler.from_dict(checkpoint_json(ck, "scaler", path)),
                        class_names=checkpoint_class_names(ck, path), recipe=recipe,
                        softmax_specs=dict(ops.softmax_specs))


__all__ = ["QATConfig", "QATResult", "qat_finetune", "build_twin", "qat_checkpoint", "load_qat_tagger"]
