"""The NoScope specialized CNNs (paper section 3, tasks N1-N4), input 3 x 50 x 50, K = 2.

Original layout (parameters F, D and ``layers`` from the NoScope paper)::

    conv3x3(3 -> F), conv3x3(F -> F), maxpool(2, 2)
    if layers == 4: conv3x3(-> 2F), conv3x3(2F -> 2F), maxpool(2, 2)
    flatten, linear(-> D), linear(-> 2)

Convs use padding 1 and pools none, as the released ``models/noscope.py``; ReLU after every
conv and the hidden linear layer. The second block's width is ``int(2F * sqrt(f))`` (not twice
``int(F * sqrt(f))``), as released. Optional dropout 0.25 after each pool and before the last
layer, off by default as in the paper's benchmark. ``width_scale`` replaces ``sqrt(f)``.
"""
from __future__ import annotations

from torch import nn

from .layers import FoldableNet, flat_features, folded_width, init_weights


class NoScopeCNN(FoldableNet):
    def __init__(self, height: int, width: int, num_classes: int, fold: int = 1, *,
                 filters: int, dense: int, layers: int = 2, image_channels: int = 3,
                 channel_align: int = 1, pad_input: bool = False, dropout: float = 0.0,
                 width_scale: float | None = None) -> None:
        super().__init__(fold, image_channels, num_classes, channel_align, pad_input)
        if layers not in (2, 4):
            raise ValueError(f"NoScope CNN 'layers' must be 2 or 4, got {layers}")
        self.input_size = (height, width)
        mods: list[nn.Module] = []
        channels = self.in_channels
        for block in range(layers // 2):
            out = folded_width(filters * 2 ** block, fold, channel_align, scale=width_scale)
            mods += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True),
                     nn.Conv2d(out, out, 3, padding=1), nn.ReLU(inplace=True),
                     nn.MaxPool2d(2, 2)]
            if dropout:
                mods.append(nn.Dropout(dropout))
            channels = out
        self.features = nn.Sequential(*mods)
        hidden = folded_width(dense, fold, channel_align, scale=width_scale)
        self.head = nn.Sequential(
            nn.Linear(flat_features(self.features, self.in_channels, height, width), hidden),
            nn.ReLU(inplace=True),
            *([nn.Dropout(dropout)] if dropout else []),
            nn.Linear(hidden, num_classes * fold),
        )
        init_weights(self)

    def from_released_key(self, key: str) -> str:
        """Released ``noscope_cnn``: one Sequential of our features, a Flatten, then our head."""
        index, _, rest = key.partition(".")
        i, n = int(index), len(self.features)
        return f"features.{i}.{rest}" if i < n else f"head.{i - n - 1}.{rest}"
