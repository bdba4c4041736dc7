# moved to l1tagger.features.inputs; kept for the import in l1tagger/qat/finetune.py (load_qat_checkpoint)
from l1tagger.features.inputs import FeatureScaler, ModelInputs, build_inputs, raw_inputs, standardise

__all__ = ["FeatureScaler", "ModelInputs", "build_inputs", "raw_inputs", "standardise"]
