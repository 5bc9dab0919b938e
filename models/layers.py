"""Building blocks shared by every FoldedCNN: widths, initialisation, input padding.

Folding (paper section 3): every internal width ``c`` becomes ``int(c * sqrt(f))``.
``channel_align`` (ours, default 1 = paper-faithful) rounds such widths up to a multiple
of ``a`` so GPU tensor-core tiles are not wasted on widths like 45 or 55.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def folded_width(c: int, fold: int, channel_align: int = 1, scale: float | None = None) -> int:
    """Internal width of a layer that has ``c`` channels in the original CNN.

    ``int(c * sqrt(f))`` (paper: 32 -> 45, 55, 64 for f = 2, 3, 4), or ``int(c * scale)``
    when ``scale`` is given (EfficientNet-style width scaling), then rounded up to a
    multiple of ``channel_align``.
    """
    factor = math.sqrt(fold) if scale is None else scale
    # The small epsilon keeps exact products (32 * sqrt(4) = 64) from rounding down.
    return round_up(max(1, int(c * factor + 1e-9)), channel_align)


def init_weights(model: nn.Module) -> None:
    """The paper code's initialisation: conv Xavier-uniform (ReLU gain), linear N(0, 0.01),
    biases 0, BatchNorm weight 1 / bias 0."""
    gain = nn.init.calculate_gain("relu")
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FoldableNet(nn.Module):
    """Base of every model here: remembers its fold and pads the folded input channels.

    A model takes ``f * C`` input channels (``f`` images stacked) and returns ``f * K``
    logits per input. With ``pad_input`` the first layer expects ``in_channels`` (``f*C``
    rounded up to ``channel_align``) and ``forward`` zero-pads inputs that have fewer;
    callers that pre-pad skip that copy.
    """

    def __init__(self, fold: int, image_channels: int, num_classes: int,
                 channel_align: int = 1, pad_input: bool = False) -> None:
        super().__init__()
        self.fold = fold
        self.num_classes = num_classes
        self.raw_in_channels = fold * image_channels
        self.in_channels = (round_up(self.raw_in_channels, channel_align) if pad_input
                            else self.raw_in_channels)

    def from_released_key(self, key: str) -> str:
        """This model's state-dict key for ``key`` of the released code's same network (its
        checkpoints name layers differently); identity where the names agree."""
        return key

    def pad_channels(self, x: torch.Tensor) -> torch.Tensor:
        missing = self.in_channels - x.shape[1]
        if missing > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, missing))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(self.pad_channels(x)), 1))


def flat_features(features: nn.Module, in_channels: int, height: int, width: int) -> int:
    """Size of ``features``' flattened output for one input (found by a dry run)."""
    with torch.no_grad():
        return features(torch.zeros(1, in_channels, height, width)).numel()
