"""Jet images and a Vision Transformer baseline with attention-rollout / attention-fraction analysis (issue 8).

    images    JetImageConfig, jet_images: pT-weighted η–φ grids with optional centring / rotation / flipping
    model     ViTConfig, JetViT (returns attention weights), vit_macs (analytic cost), freeze_all_but_last
    train     ViTTrainConfig, train_vit (from scratch or fine-tuning a local checkpoint), load_vit, evaluate_vit
    rollout   attention_rollout (Abnar & Zuidema), class-token maps at image size
    fraction  FastJet exclusive-kT subjets, regions of interest, attention fraction
    interpret InterpretConfig, interpret_vit: PNG + JSON per class and per task
    tasks     TASKS (qcd_vs_top, w_vs_z), select_task
"""

from l1tagger.vit.images import JetImageConfig, jet_images
from l1tagger.vit.interpret import InterpretConfig, interpret_vit
from l1tagger.vit.model import JetViT, ViTConfig, vit_macs
from l1tagger.vit.rollout import attention_rollout
from l1tagger.vit.tasks import TASKS, select_task
from l1tagger.vit.train import ViTTrainConfig, evaluate_vit, load_vit, train_vit

__all__ = ["JetImageConfig", "jet_images", "InterpretConfig", "interpret_vit", "JetViT", "ViTConfig", "vit_macs",
           "attention_rollout", "TASKS", "select_task", "ViTTrainConfig", "evaluate_vit", "load_vit", "train_vit"]
