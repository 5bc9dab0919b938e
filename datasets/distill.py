"""Knowledge distillation targets (paper section 4: folded CIFAR-10 models learn the f = 1
ResNet-18's logits with an MSE loss).

The teacher sees UN-augmented, normalised images, so its logits are computed once before
training and paired with the images by index: the student's augmented batch and the
teacher's logit of the same image travel together through ``distill_batches``.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from config.tasks import Task
from models import FoldedClassifier

from .image_set import ImageSet
from .transforms import to_float


@torch.no_grad()
def teacher_logits(teacher: nn.Module, data: ImageSet, task: Task, device: str | torch.device = "cpu",
                   batch_size: int = 1024) -> torch.Tensor:
    """(N, K) float32 CPU logits of ``teacher`` on every image of ``data``, in order, eval mode."""
    device = torch.device(device)
    net = FoldedClassifier(teacher) if getattr(teacher, "fold", 1) > 1 else teacher
    was_training = teacher.training
    teacher.eval()
    try:
        out = []
        for start in range(0, len(data), batch_size):
            x = to_float(data.images[start:start + batch_size].to(device, non_blocking=True), task)
            out.append(net(x).float().cpu())
        k = out[0].shape[1] if out else task.num_classes
        return torch.cat(out) if out else torch.empty(0, k)
    finally:
        teacher.train(was_training)


def distill_batches(data: ImageSet, batch_size: int, logits: torch.Tensor | None = None, *,
                    shuffle: bool = True, generator: torch.Generator | None = None, multiple: int = 1
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Yield (images uint8, labels, teacher logits or None) batches over ``data``.

    Each batch is trimmed to a multiple of ``multiple`` (the fold factor), so a folded
    model sees whole groups; a trailing batch shorter than ``multiple`` is dropped.
    """
    if logits is not None and logits.shape[0] != len(data):
        raise ValueError(f"{logits.shape[0]} teacher logits for {len(data)} images")
    order = torch.randperm(len(data), generator=generator) if shuffle else torch.arange(len(data))
    for start in range(0, len(data), batch_size):
        idx = order[start:start + batch_size]
        idx = idx[: len(idx) - len(idx) % multiple]
        if len(idx) == 0:
            continue
        yield data.images[idx], data.labels[idx], (logits[idx] if logits is not None else None)
