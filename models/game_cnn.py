"""The game-scraping CNN (paper section 3, tasks V1-V6) and its EfficientNet-style baseline,
layer for layer as the released ``models/game.py`` and ``models/efficientnet_game.py`` build them.

Layout of the original (``n_units`` = 1, or 2 for sot/timer3), widths before folding::

    conv3x3(3 -> 32), maxpool(3, s2)
    n_units x [conv3x3(-> 32), conv3x3(32 -> 32), conv3x3(32 -> 32), maxpool(3, s1)]
    conv3x3(-> 8), maxpool(3, s2)
    flatten, linear(-> K)

Every conv has padding 1 and is followed by ReLU; no max-pool has padding. For V1 (22 x 52)
the maps are 22x52 -> 10x25 -> 8x23 -> 3x11, so the classifier reads 8 * 3 * 11 = 264 features.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .layers import FoldableNet, flat_features, folded_width, init_weights


@dataclass(frozen=True)
class CompoundScaling:
    """EfficientNet-style compound scaling *down* by ``steps`` (the paper's phi = -``steps``),
    as the released ``efficientnet_game.ConvN(cfgs, fold=steps + 1, ...)`` does it.

    Widths are multiplied by ``(1 / width) ** steps``, the input resolution by
    ``(1 / resolution) ** steps`` and the conv count by ``(1 / depth) ** steps``, each rounded
    down. ``depth`` None is the released code's choice: it scales the conv count with the
    *width* multiplier (1.1; int(5 / 1.1) = 4 convs for V1-V3, int(8 / 1.1) = 7 for V4), not
    with the paper's alpha = 1.2, and its FLOP table was counted that way. The paper's
    Table 5 baseline is the default: one step with beta = 1.1 and gamma = 1.15.
    """
    steps: int = 1
    width: float = 1.1
    resolution: float = 1.15
    depth: float | None = None

    def factor(self, mult: float) -> float:
        return (1.0 / mult) ** self.steps

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) of the scaled network's input."""
        r = self.factor(self.resolution)
        return int(height * r), int(width * r)

    def train_image_size(self, height: int, width: int, as_released: bool = True) -> tuple[int, int]:
        """(H, W) the training images of a ``height`` x ``width`` task are resized to.

        The released train.py passed ``(width, height)`` to torchvision's ``Resize``, which takes
        ``(height, width)``, so its baselines (the paper's Table 5) trained on images of
        ``int(W / gamma)`` rows and ``int(H / gamma)`` columns: V1's 22 x 52 crops became
        45 x 19, not the 19 x 45 the network and the benchmark use. The classifier's input size
        is the same either way (every pool shrinks rows and columns alike), so it trained without
        error. ``as_released`` (default) reproduces that; False keeps the orientation.
        """
        h, w = self.input_size(height, width)
        return (w, h) if as_released else (h, w)

    def conv_count(self, n_convs: int) -> int:
        return int(n_convs * self.factor(self.width if self.depth is None else self.depth))


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
                layers.append(nn.MaxPool2d(kernel, stride))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(flat_features(self.features, self.in_channels, height, width),
                              num_classes * fold)
        init_weights(self)

    def from_released_key(self, key: str) -> str:
        """Released ``game.ConvN``: ``conv.<i>`` (the same layer list, then a Flatten) and ``lin``."""
        scope, _, rest = key.partition(".")
        return {"conv": "features", "lin": "head"}.get(scope, scope) + "." + rest


def efficientnet_game_cnn(height: int, width: int, num_classes: int, *, n_units: int = 1,
                          scaling: CompoundScaling = CompoundScaling(), channel_align: int = 1,
                          image_channels: int = 3, pad_input: bool = False) -> GameCNN:
    """The compound-scaled game CNN (not folded: one image per input); see ``CompoundScaling``.
    ``scaling.steps`` = 0 is the original CNN."""
    n_convs = sum(len(w) for w, _ in game_units(n_units))
    h, w = scaling.input_size(height, width)
    return GameCNN(h, w, num_classes, 1, image_channels=image_channels, n_units=n_units,
                   channel_align=channel_align, pad_input=pad_input,
                   width_scale=scaling.factor(scaling.width),
                   conv_layers=scaling.conv_count(n_convs))
