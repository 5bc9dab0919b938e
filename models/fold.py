"""The fold transform (paper section 1): the only code that reshapes between images and
folded inputs. Everything else calls these functions or ``FoldedClassifier``.

Image ``j`` of a group of ``f`` occupies input channels ``[j*C, (j+1)*C)`` and logit
block ``[j*K, (j+1)*K)``; with a contiguous NCHW batch both are plain reshapes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FoldError(ValueError):
    """A batch that cannot be folded; the message says how to fix it."""


def _check(n: int, fold: int, what: str) -> None:
    if fold < 1:
        raise FoldError(f"bad fold {fold}: the fold factor must be >= 1")
    if n % fold:
        raise FoldError(f"cannot fold {n} {what} with f={fold}: the count must be a multiple of f "
                        f"(trim to {n - n % fold} or pad to {n + fold - n % fold}, "
                        "e.g. with FoldedClassifier)")


def fold_images(x: torch.Tensor, fold: int) -> torch.Tensor:
    """(N, C, H, W) images -> (N/f, f*C, H, W) folded inputs, in order."""
    if x.dim() != 4:
        raise FoldError(f"fold_images expects an (N, C, H, W) batch, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    _check(n, fold, "images")
    return x.reshape(n // fold, fold * c, h, w)


def unfold_images(x: torch.Tensor, fold: int) -> torch.Tensor:
    """Inverse of ``fold_images``: (N/f, f*C, H, W) -> (N, C, H, W)."""
    g, fc, h, w = x.shape
    _check(fc, fold, "channels")
    return x.reshape(g * fold, fc // fold, h, w)


def unfold_logits(y: torch.Tensor, fold: int) -> torch.Tensor:
    """(N/f, f*K) logits -> (N, K) per-image logits in the original image order."""
    if y.dim() != 2:
        raise FoldError(f"unfold_logits expects (N/f, f*K) logits, got shape {tuple(y.shape)}")
    g, fk = y.shape
    _check(fk, fold, "logits per input")
    return y.reshape(g * fold, fk // fold)


def fold_logits(y: torch.Tensor, fold: int) -> torch.Tensor:
    """Inverse of ``unfold_logits``: (N, K) -> (N/f, f*K)."""
    n, k = y.shape
    _check(n, fold, "logit rows")
    return y.reshape(n // fold, fold * k)


def pad_to_multiple(x: torch.Tensor, fold: int) -> torch.Tensor:
    """Zero-pad the batch dimension up to a multiple of ``fold``."""
    missing = -x.shape[0] % fold
    if missing:
        x = F.pad(x, (0, 0) * (x.dim() - 1) + (0, missing))
    return x


class FoldedClassifier(nn.Module):
    """Wraps a FoldedCNN so callers pass any batch of images and get per-image logits.

    The last group is zero-padded when ``N`` is not a multiple of ``f``; the padding's
    logits are dropped. ``model.fold`` gives ``f``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.fold = int(getattr(model, "fold", 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        x = fold_images(pad_to_multiple(images, self.fold), self.fold)
        return unfold_logits(self.model(x), self.fold)[:n]
