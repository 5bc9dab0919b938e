"""Data for FoldedCNN training: splits as in-memory uint8 tensors (``load_split``),
batched GPU-friendly transforms, the curriculum schedule, and distillation targets."""
from .curriculum import CurriculumSchedule
from .distill import teacher_logits
from .errors import DatasetError
from .image_set import SPLITS, ImageSet, load_split
from .transforms import augment, resize_u8, to_float

__all__ = ["CurriculumSchedule", "DatasetError", "ImageSet", "SPLITS", "augment", "load_split", "resize_u8",
           "teacher_logits", "to_float"]
