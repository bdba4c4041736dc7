"""From a JetSet to what a trained JetViT consumes: the task selection it was trained on, then its jet images."""

from __future__ import annotations

import numpy as np

from l1tagger.data.jetset import JetSet
from l1tagger.errors import DataError
from l1tagger.vit.images import JetFrame, jet_images
from l1tagger.vit.model import ViTConfig
from l1tagger.vit.tasks import select_task


def model_jets(config: ViTConfig, jets: JetSet) -> JetSet:
    """Apply the model's class grouping (if any) and check that the jets' classes are the model's classes."""
    if config.class_groups:
        jets = select_task(jets, config.class_groups)
    if list(jets.class_names) != list(config.class_names):
        raise DataError(f"the jets have classes {jets.class_names}, the model was trained on {config.class_names}")
    return jets


def model_inputs(config: ViTConfig, jets: JetSet) -> tuple[JetSet, np.ndarray, JetFrame]:
    """(the selected jets, images (n, size, size) float32, their image frame)."""
    jets = model_jets(config, jets)
    images, frame = jet_images(jets, config.image, return_frame=True)
    return jets, images, frame
