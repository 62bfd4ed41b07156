"""The three taggers (image CNN, coefficient CNN, joint double-view CNN) and their I/O."""

from scattertag.models.backbones import BACKBONES
from scattertag.models.card import ModelCard
from scattertag.models.io import (
    MODELS,
    build_model,
    check_compatible,
    load_model,
    pretrained_dir,
    save_model,
)
from scattertag.models.joint import JointTagger, joint_from_views
from scattertag.models.taggers import CoeffTagger, ImageTagger, Tagger

__all__ = [
    "BACKBONES",
    "MODELS",
    "CoeffTagger",
    "ImageTagger",
    "JointTagger",
    "ModelCard",
    "Tagger",
    "build_model",
    "check_compatible",
    "joint_from_views",
    "load_model",
    "pretrained_dir",
    "save_model",
]
