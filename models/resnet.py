"""CIFAR ResNet-18 in FoldedCNN form: BasicBlock [2, 2, 2, 2], 3x3 stem with stride 1 and no
max-pool, widths 64/128/256/512 (each x sqrt(f)), BatchNorm, global average pool, and a
final linear of ``K * f`` outputs (paper section 3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FoldableNet, folded_width, init_weights


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(FoldableNet):
    def __init__(self, height: int, width: int, num_classes: int, fold: int = 1, *,
                 image_channels: int = 3, channel_align: int = 1, pad_input: bool = False,
                 blocks: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__(fold, image_channels, num_classes, channel_align, pad_input)
        self.input_size = (height, width)
        w = [folded_width(c, fold, channel_align) for c in (64, 128, 256, 512)]
        layers: list[nn.Module] = [nn.Conv2d(self.in_channels, w[0], 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True)]
        cin = w[0]
        for stage, (cout, n) in enumerate(zip(w, blocks)):
            for i in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (stage > 0 and i == 0) else 1))
                cin = cout
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes * fold)
        init_weights(self)
