"""The game-scraping CNN (paper section 3, tasks V1-V6) and its EfficientNet-style baseline.

Layout of the original (``n_units`` = 1, or 2 for sot/timer3), widths before folding::

    conv3x3(3 -> 32), maxpool(3, s2)
    n_units x [conv3x3(-> 32), conv3x3(32 -> 32), conv3x3(32 -> 32), maxpool(3, s1)]
    conv3x3(-> 8), maxpool(3, s2)
    flatten, linear(-> K)

Every conv is 'same' (padding 1) and followed by ReLU; pools use padding 1, which gives the
paper's 11 x 26 activations for a 22 x 52 input (its AI example, section 2).
"""
from __future__ import annotations

from torch import nn

from .layers import FoldableNet, flat_features, folded_width, init_weights

# EfficientNet-style compound scaling with phi = -1 (paper Table 5).
EFFNET_WIDTH = 1.1        # beta: widths x 1/1.1
EFFNET_RESOLUTION = 1.15  # gamma: input size x 1/1.15
EFFNET_DEPTH_RELEASED = 1.1  # the released code divides the conv count by 1.1 ...
EFFNET_DEPTH_PAPER = 1.2     # ... although the paper's alpha is 1.2


def game_units(n_units: int) -> list[tuple[list[int], tuple[int, int]]]:
    """The original's layers as (conv widths, (pool kernel, pool stride)) units."""
    return ([([32], (3, 2))] + [([32, 32, 32], (3, 1))] * n_units + [([8], (3, 2))])


class GameCNN(FoldableNet):
    """Game-scraping CNN in FoldedCNN form (``fold`` = 1 is the original).

    ``conv_layers`` keeps only the first convs (EfficientNet depth scaling); a pool stays
    only after a unit that kept a conv. ``width_scale`` replaces the ``sqrt(f)`` factor.
    """

    def __init__(self, height: int, width: int, num_classes: int, fold: int = 1, *,
                 image_channels: int = 3, n_units: int = 1, channel_align: int = 1,
                 pad_input: bool = False, width_scale: float | None = None,
                 conv_layers: int | None = None) -> None:
        super().__init__(fold, image_channels, num_classes, channel_align, pad_input)
        self.input_size = (height, width)
        layers: list[nn.Module] = []
        channels, kept = self.in_channels, 0
        budget = conv_layers if conv_layers is not None else 10 ** 9
        for widths, (kernel, stride) in game_units(n_units):
            unit_convs = 0
            for c in widths:
                if kept == budget:
                    break
                out = folded_width(c, fold, channel_align, scale=width_scale)
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True)]
                channels, kept, unit_convs = out, kept + 1, unit_convs + 1
            if unit_convs:
                layers.append(nn.MaxPool2d(kernel, stride, padding=1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(flat_features(self.features, self.in_channels, height, width),
                              num_classes * fold)
        init_weights(self)


def efficientnet_game_cnn(height: int, width: int, num_classes: int, *, n_units: int = 1,
                          depth_divisor: float = EFFNET_DEPTH_RELEASED, channel_align: int = 1,
                          image_channels: int = 3, pad_input: bool = False) -> GameCNN:
    """EfficientNet-style phi = -1 scaling of the original game CNN (not folded).

    Widths x 1/1.1, resolution x 1/1.15, conv count x 1/``depth_divisor`` (1.1 as in the
    released code and its FLOP table, 1.2 as the paper's alpha says), all rounded down.
    """
    n_convs = sum(len(w) for w, _ in game_units(n_units))
    model = GameCNN(int(height / EFFNET_RESOLUTION), int(width / EFFNET_RESOLUTION), num_classes,
                    1, image_channels=image_channels, n_units=n_units, channel_align=channel_align,
                    pad_input=pad_input, width_scale=1 / EFFNET_WIDTH,
                    conv_layers=int(n_convs / depth_divisor))
    return model
