"""Training and evaluation of the taggers; physics metrics on plain arrays.

    train(TrainConfig(...), train_jets, val_jets, out_dir) -> best checkpoint path
    load_checkpoint(path[, ops]) -> model with train_config / feature_scaler / class_names attached
    evaluate(model, jets) -> metrics dict
    build_inputs(jets, model_config[, scaler]) -> (ModelInputs(x, mask, pair, labels), scaler)  (l1tagger.features)
    compute_metrics(probs, labels, class_names) / metrics_from_logits(logits, labels, class_names)
"""

from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs
from l1tagger.training.config import TrainConfig
from l1tagger.training.loop import evaluate, load_checkpoint, predict, train
from l1tagger.training.metrics import compute_metrics, metrics_from_logits, write_metrics

__all__ = ["TrainConfig", "FeatureScaler", "ModelInputs", "build_inputs", "train", "evaluate", "load_checkpoint",
           "predict", "compute_metrics", "metrics_from_logits", "write_metrics"]
