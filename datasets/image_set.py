"""One split of one task's data, decoded once and kept in memory as a uint8 tensor.

``load_split(task, split)`` is the single entry point used by training and evaluation.
Where the images come from is a fact of the task (``task.data.source``), looked up in
``_LOADERS``; what to tell a user whose data is missing is ``datasets/hints.py``'s, keyed by
the task's family. Nothing here branches on task names.

Example::

    from datasets import load_split
    train = load_split("lol/goldnumber-fraction", "train")   # data/game_data/lol/...
    val = load_split("cifar10", "val", fold=3)                # 5001 images (multiple of 3)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from config.tasks import Task, get_task

from .cifar import load_cifar
from .errors import DatasetError
from .image_folder import load_image_folder

SPLITS = ("train", "val", "test")


@dataclass
class ImageSet:
    """Images (uint8, N x C x H x W, contiguous, CPU) with integer labels into ``classes``."""
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, idx: torch.Tensor) -> "ImageSet":
        """The images at ``idx`` (integer indices or a boolean mask), as a new ImageSet."""
        idx = torch.as_tensor(idx)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().squeeze(1)
        return ImageSet(self.images[idx].contiguous(), self.labels[idx].contiguous(),
                        self.classes, self.source)

    def class_counts(self) -> torch.Tensor:
        """Images per class (length ``len(classes)``), for summaries and checks."""
        return torch.bincount(self.labels, minlength=len(self.classes))


def _image_folder(task: Task, split: str, root: Path, fold: int, progress: bool,
                  val_images: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    return load_image_folder(task, split, root, progress=progress)


def _cifar(task: Task, split: str, root: Path, fold: int, progress: bool,
           val_images: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    return load_cifar(task, split, root, fold=fold, val_images=val_images)


# task.data.source -> loader(task, split, root, fold, progress, val_images) -> (images, labels)
_LOADERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "image_folder": _image_folder,
    "cifar10": _cifar,
    "cifar100": _cifar,
}


def load_split(task: Task | str, split: str, root: Path | str | None = None, *, fold: int = 1,
               progress: bool = True, val_images: int | None = None) -> ImageSet:
    """Load ``split`` ("train", "val" or "test") of ``task`` from ``root`` (default
    ``task.data_dir()``: ``$DATA_ROOT``, ``data/`` or ``data_root/``, see ``config/tasks.py``).

    ``fold`` matters only where a split's size must be a multiple of ``f`` (the CIFAR
    validation split); ``val_images`` overrides ``task.data.validation_images``
    (tests use it to stay tiny). Raises DatasetError with a one-line how-to-fix message.
    """
    task = get_task(task)
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    source = task.data.source
    if source not in _LOADERS:
        raise DatasetError(f"task {task.name}: unknown data source {source!r}; "
                           f"valid sources: {', '.join(_LOADERS)}")
    root = Path(root) if root is not None else task.data_dir()
    images, labels = _LOADERS[source](task, split, root, fold, progress, val_images)
    return ImageSet(images, labels, task.classes, f"{task.name} {split} ({root})")
