"""A loaded tagger: the network together with everything needed to feed it jets and read its outputs.

    tagger = load_tagger("runs/x/best.pt")            # float (l1tagger.training.loop.load_tagger)
    tagger = load_qat_tagger("runs/x/qat/int8/qat.pt")  # quantized twin (l1tagger.qat.finetune.load_qat_tagger)
    tagger.model            the torch module (eval mode)
    tagger.train_config     its TrainConfig (tagger.model_config: the ModelConfig it was built from)
    tagger.scaler           the FeatureScaler of its training jets
    tagger.class_names      output classes in logit order
    tagger.recipe           QAT models: the quantization Recipe; float models: None
    tagger.softmax_specs    QAT models: {softmax layer name: SoftmaxSpec.to_dict()}; float models: {}
    tagger.inputs(jets)     the jets as this model's inputs (ModelInputs, its config and scaler)

These used to be attributes stuck on the torch module (``model.train_config``, ``model.feature_scaler``, ...);
they are declared here instead, and the torch module carries nothing but its layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import nn

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError
from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs
from l1tagger.models.config import ModelConfig
from l1tagger.training.config import TrainConfig

if TYPE_CHECKING:
    from l1tagger.qat.recipe import Recipe

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


__all__ = ["LoadedTagger"]
