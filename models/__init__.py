"""FoldedCNN models: ``build_model`` builds any task's CNN; ``fold``/``unfold`` move between
images and folded inputs."""
from .bandlimit import BandLimitedConv2d, kept_fraction
from .build import ARCHITECTURES, SCALINGS, build_model, model_input_shape
from .game_cnn import CompoundScaling
from .fold import (FoldedClassifier, FoldError, fold_images, fold_logits, pad_to_multiple,
                   unfold_images, unfold_logits)
from .layers import FoldableNet, folded_width

__all__ = ["ARCHITECTURES", "SCALINGS", "BandLimitedConv2d", "CompoundScaling", "kept_fraction", "build_model", "model_input_shape",
           "FoldedClassifier", "FoldError", "fold_images", "fold_logits", "pad_to_multiple",
           "unfold_images", "unfold_logits", "FoldableNet", "folded_width"]
