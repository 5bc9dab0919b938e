"""Batched image transforms on any device, driven by the task's data facts.

Images stay uint8 until the last moment (4x less host-to-device traffic); ``to_float``
scales to [0, 1] and applies ``task.data.normalize``; ``augment`` applies the named
augmentations of ``task.data.augment`` (CIFAR: RandomCrop(32, padding=4) and a
horizontal flip, paper section 4) to every image independently, without a Python loop.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from config.tasks import Task

from .errors import DatasetError


def to_float(images_u8: torch.Tensor, task: Task) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1], normalised with the task's mean/std if it has them."""
    x = images_u8.float().div_(255.0)
    norm = task.data.normalize
    if norm is not None:
        mean = torch.tensor(norm.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(norm.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        x = x.sub_(mean).div_(std)
    return x


def resize_u8(images_u8: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, *size): bilinear with antialiasing, which is what
    torchvision's ``Resize`` does to a PIL image (the released code's EfficientNet input)."""
    x = F.interpolate(images_u8.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _rand(shape: tuple[int, ...], high: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random integers in [0, high) drawn on the generator's device, moved to ``like``'s."""
    dev = generator.device if generator is not None else like.device
    return torch.randint(high, shape, generator=generator, device=dev).to(like.device)


def random_crop(x: torch.Tensor, size: int, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop a random ``size`` x ``size`` window per image."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    top = _rand((n,), h + 2 * padding - size + 1, x, generator)
    left = _rand((n,), w + 2 * padding - size + 1, x, generator)
    ar = torch.arange(size, device=x.device)
    rows = (top[:, None] + ar)[:, None, :, None]    # (N, 1, S, 1)
    cols = (left[:, None] + ar)[:, None, None, :]   # (N, 1, 1, S)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def horizontal_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = _rand((x.shape[0],), 1 << 24, x, generator) < int(p * (1 << 24))
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


# task.data.augment names -> batched transforms(x, generator=...)
AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "random_crop_32_pad_4": partial(random_crop, size=32, padding=4),
    "horizontal_flip": horizontal_flip,
}


def augment(images_u8: torch.Tensor, task: Task, generator: torch.Generator | None = None) -> torch.Tensor:
    """The task's training augmentation of a batch (N, C, H, W); identity for tasks without one."""
    x = images_u8
    for name in task.data.augment:
        if name not in AUGMENTATIONS:
            raise DatasetError(f"task {task.name}: unknown augmentation {name!r}; valid: "
                               f"{', '.join(AUGMENTATIONS)}")
        x = AUGMENTATIONS[name](x, generator=generator)
    return x
