"""Evaluation of a (folded) model on a split: per-image logits over fixed, seeded groups of f
images, loss and top-1/top-5, and the agreement of predictions across in-group orders."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from config.tasks import Task
from datasets import ImageSet, to_float
from models import fold_images, unfold_logits

EVAL_SEED = 1234  # fixed groups for val/test: the same in every epoch and every run


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many rows of ``logits`` have their label among the top ``k`` (a 0-d tensor: no sync)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()


class Evaluator:
    """Evaluates ``model`` (fold ``fold`` of ``task``) on ``device``, under autocast to
    ``amp_dtype`` when given, in channels_last when asked (CUDA)."""

    def __init__(self, model: torch.nn.Module, task: Task, fold: int, device: torch.device,
                 amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> None:
        self.model, self.task, self.fold, self.device = model, task, fold, device
        self.amp_dtype, self.channels_last = amp_dtype, channels_last

    def _sequence(self, n: int) -> torch.Tensor:
        """The fixed order in which ``n`` images are grouped: consecutive runs of f are one
        group, the last padded with -1 (a blank image)."""
        order = torch.randperm(n, generator=torch.Generator().manual_seed(EVAL_SEED))
        return torch.cat([order, torch.full((-n % self.fold,), -1, dtype=torch.long)])

    def positions(self, n: int) -> torch.Tensor:
        """Each of ``n`` images' place (0..f-1) inside its evaluation group, in data order."""
        seq = self._sequence(n)
        pos = torch.empty(n, dtype=torch.long)
        valid = seq >= 0
        pos[seq[valid]] = torch.arange(len(seq))[valid] % self.fold
        return pos

    @torch.no_grad()
    def predict(self, data: ImageSet, within_group: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image logits (in ``data``'s order) and labels. Images are grouped by a fixed seeded
        shuffle, the last group padded with blank images; ``within_group`` (a seed) permutes
        the images inside every group, for the order-agreement check."""
        self.model.eval()
        n, f = len(data), self.fold
        seq = self._sequence(n)
        if within_group is not None:
            g = torch.Generator().manual_seed(within_group)
            groups = seq.view(-1, f)
            perms = torch.stack([torch.randperm(f, generator=g) for _ in range(len(groups))])
            seq = groups.gather(1, perms).flatten()
        out = torch.empty(n, self.task.num_classes)
        chunk = 4096 - 4096 % f
        for start in range(0, len(seq), chunk):
            part = seq[start:start + chunk]
            valid = part >= 0
            x = data.images.index_select(0, part.clamp(min=0)).to(self.device)
            x[~valid.to(self.device)] = 0
            x = fold_images(to_float(x, self.task), f)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = unfold_logits(self.model(x), f).float().cpu()
            out[part[valid]] = logits[valid]
        return out, data.labels

    def evaluate(self, data: ImageSet, predicted: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
        """``loss``, ``top1`` and ``top5`` (percent) over every image of ``data`` (of
        ``predicted``, the output of ``predict(data)``, when given)."""
        logits, labels = predicted if predicted is not None else self.predict(data)
        n = max(len(labels), 1)
        return {"loss": float(F.cross_entropy(logits, labels)) if len(labels) else 0.0,
                "top1": 100 * float(topk_correct(logits, labels, 1)) / n,
                "top5": 100 * float(topk_correct(logits, labels, 5)) / n}

    def position_top1(self, data: ImageSet, predicted: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[float]:
        """Top-1 (%) of the images at each place 0..f-1 of their group (of ``predicted``, the
        output of ``predict(data)``, when given). A folded network that has learned only some
        places shows the others at chance (100 / classes)."""
        logits, labels = predicted if predicted is not None else self.predict(data)
        ok = logits.argmax(1) == labels
        pos = self.positions(len(labels))
        return [100 * float(ok[pos == j].float().mean()) if bool((pos == j).any()) else float("nan")
                for j in range(self.fold)]

    def order_agreement(self, data: ImageSet, orders: int) -> float:
        """Share (%) of images whose prediction is unchanged when the images inside each
        group are permuted, averaged over ``orders`` random permutations (paper: 98.0-98.8%)."""
        base = self.predict(data)[0].argmax(1)
        agree = [float((self.predict(data, within_group=1000 + k)[0].argmax(1) == base).float().mean())
                 for k in range(orders)]
        return 100 * sum(agree) / max(len(agree), 1)
