"""Training and evaluation of the taggers; physics metrics on plain arrays.

    train(TrainConfig(...), train_jets, val_jets, out_dir) -> best checkpoint path
    load_tagger(path[, ops]) -> LoadedTagger(model, train_config, scaler, class_names, recipe, softmax_specs)
    evaluate(tagger, jets) -> metrics dict
    build_inputs(jets, model_config[, scaler]) -> (ModelInputs(x, mask, pair, labels), scaler)  (l1tagger.features)
    compute_metrics(probs, labels, class_names) / metrics_from_logits(logits, labels, class_names)
"""

from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs
from l1tagger.training.artifact import LoadedTagger
from l1tagger.training.config import TrainConfig
from l1tagger.training.loop import evaluate, evaluate_epoch, load_tagger, predict, train
from l1tagger.training.metrics import compute_metrics, metrics_from_logits, write_metrics

__all__ = ["TrainConfig", "FeatureScaler", "ModelInputs", "LoadedTagger", "build_inputs", "train", "evaluate",
           "evaluate_epoch", "load_tagger", "predict", "compute_metrics", "metrics_from_logits",
           "write_metrics"]
