"""Knowledge distillation targets (paper section 4: folded CIFAR-10 models learn the f = 1
ResNet-18's logits with an MSE loss).

The teacher sees UN-augmented, normalised images, so its logits are computed once before
training and paired with the images by index (the trainer gathers a batch's targets with the
same indices as its images).
"""
from __future__ import annotations

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
