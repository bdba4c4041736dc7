# moved to l1tagger.features.inputs; kept for the imports in l1tagger/interpret/run.py and l1tagger/qat/finetune.py
from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs, raw_inputs, standardise

__all__ = ["FeatureScaler", "ModelInputs", "build_inputs", "raw_inputs", "standardise"]
