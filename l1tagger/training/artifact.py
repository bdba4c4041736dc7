"""A loaded tagger: the network together with everything needed to feed it jets and read its outputs.

    tagger = load_tagger("runs/x/best.pt")            # float (l1tagger.training.loop.load_tagger)
    tagger = load_qat_tagger("runs/x/qat/int8/qat.pt")  # quantized twin (l1tagger.qat.artifact.load_qat_tagger)
    tagger.model            the torch module (eval mode)
    tagger.train_config     its TrainConfig (tagger.model_config: the ModelConfig it was built from)
    tagger.scaler           the FeatureScaler of its training jets
    tagger.class_names      output classes in logit order
    tagger.recipe           QAT models: the quantization Recipe; float models: None
    tagger.softmax_specs    QAT models: {softmax layer name: SoftmaxSpec.to_dict()}; float models: {}
    tagger.inputs(jets)     the jets as this model's inputs (ModelInputs, its config and scaler)

These used to be attributes set on the torch module (``model.train_config``, ``model.feature_scaler``,
``model.class_names``, ``model.recipe``, ``model.softmax_specs``). ``l1tagger.qat.finetune`` still builds its
quantized models that way; :meth:`LoadedTagger.of_model` reads them (the one place that does) and
:meth:`LoadedTagger.attach` writes them for the readers not switched yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError, L1TaggerError
from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs
from l1tagger.models.config import ModelConfig
from l1tagger.training.config import TrainConfig

if TYPE_CHECKING:
    from l1tagger.qat.recipe import Recipe

#: {LoadedTagger field: the module attribute that used to carry it} of every model, then of quantized models
LEGACY_ATTRIBUTES = {"train_config": "train_config", "scaler": "feature_scaler", "class_names": "class_names"}
LEGACY_QAT_ATTRIBUTES = {"recipe": "recipe", "softmax_specs": "softmax_specs"}


@dataclass
class LoadedTagger:
    """A trained tagger (see the module docstring). ``recipe`` and ``softmax_specs`` are set for quantized models."""

    model: nn.Module
    train_config: TrainConfig
    scaler: FeatureScaler
    class_names: list[str]
    recipe: Recipe | None = None
    softmax_specs: dict[str, dict] = field(default_factory=dict)

    @property
    def model_config(self) -> ModelConfig:
        return self.train_config.model

    @property
    def quantized(self) -> bool:
        return self.recipe is not None

    def inputs(self, jets: JetSet) -> ModelInputs:
        """``jets`` as this model's inputs: its model config (particles, features, ordering) and feature scaler."""
        return build_inputs(jets, self.model_config, self.scaler)[0]

    def check_classes(self, jets: JetSet, what: str = "evaluation") -> None:
        """DataError unless ``jets`` have this model's classes in its logit order."""
        if list(jets.class_names) != list(self.class_names):
            raise DataError(f"{what} jets have classes {list(jets.class_names)}, the model {list(self.class_names)}")

    @classmethod
    def of_model(cls, model: nn.Module) -> "LoadedTagger":
        """The LoadedTagger of a module that still carries the old attributes (the quantized models of
        ``l1tagger.qat.finetune``: ``QATResult.model``, ``build_twin``, ``load_qat_checkpoint``)."""
        missing = [attr for attr in LEGACY_ATTRIBUTES.values() if not hasattr(model, attr)]
        if missing:
            raise L1TaggerError(f"{type(model).__name__} carries no {missing}: load it with load_tagger / "
                                f"load_qat_tagger, which return a LoadedTagger")
        return cls(model=model, train_config=model.train_config, scaler=model.feature_scaler,
                   class_names=list(model.class_names), recipe=getattr(model, "recipe", None),
                   softmax_specs=dict(getattr(model, "softmax_specs", {}) or {}))

    def attach(self) -> nn.Module:
        """``model`` with the old attributes set (``train_config``, ``feature_scaler``, ``class_names`` and, for a
        quantized model, ``recipe``, ``softmax_specs``), for the readers not switched to LoadedTagger yet."""
        names = {**LEGACY_ATTRIBUTES, **(LEGACY_QAT_ATTRIBUTES if self.quantized else {})}
        for key, attr in names.items():
            setattr(self.model, attr, getattr(self, key))
        return self.model


def as_tagger(obj) -> LoadedTagger:
    """``obj`` itself when it is a LoadedTagger, else :meth:`LoadedTagger.of_model` of a module carrying the old
    attributes (what functions taking a tagger accept until ``l1tagger.qat.finetune`` returns LoadedTaggers)."""
    return obj if isinstance(obj, LoadedTagger) else LoadedTagger.of_model(obj)


__all__ = ["LoadedTagger", "as_tagger"]
