"""CIFAR ResNet-18 in FoldedCNN form, as the released ``models/resnet.py`` builds it.

BasicBlock [2, 2, 2, 2], 3x3 stem with stride 1 and no max-pool, widths 64/128/256/512 (each
x sqrt(f)), BatchNorm, a 4 x 4 average pool and a final linear of ``K * f`` outputs (paper
section 3). Module names are the released ones (``conv1``, ``bn1``, ``layer1``-``layer4`` with
``downsample`` shortcuts, ``fc``), so a released checkpoint's state dict loads as it is.

The final pool differs between original and folded model, as released: the original
(unfolded) network pools with ``AvgPool2d(4, padding=1)``, whose one window over the 4 x 4
map covers its top-left 3 x 3 values plus zero padding and divides by 16; a folded network
pools with ``AvgPool2d(4)``, the mean of all 16 values. The released CIFAR-10 teacher was
trained with the padded pool, so its logits are only reproduced with it.
"""
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
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(FoldableNet):
    def __init__(self, height: int, width: int, num_classes: int, fold: int = 1, *,
                 image_channels: int = 3, channel_align: int = 1, pad_input: bool = False,
                 blocks: tuple[int, int, int, int] = (2, 2, 2, 2), width_scale: float | None = None) -> None:
        super().__init__(fold, image_channels, num_classes, channel_align, pad_input)
        self.input_size = (height, width)
        w = [folded_width(c, fold, channel_align, scale=width_scale) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(self.in_channels, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.inplanes = w[0]
        self.layer1 = self._stage(w[0], blocks[0], 1)
        self.layer2 = self._stage(w[1], blocks[1], 2)
        self.layer3 = self._stage(w[2], blocks[2], 2)
        self.layer4 = self._stage(w[3], blocks[3], 2)
        self.avgpool = nn.AvgPool2d(4, padding=1) if fold == 1 else nn.AvgPool2d(4)
        self.fc = nn.Linear(w[3], num_classes * fold)
        init_weights(self)

    def _stage(self, cout: int, n: int, stride: int) -> nn.Sequential:
        out = []
        for i in range(n):
            out.append(BasicBlock(self.inplanes, cout, stride if i == 0 else 1))
            self.inplanes = cout
        return nn.Sequential(*out)

    @property
    def head(self) -> nn.Linear:
        """The classifier (``fc``), under the name the other networks use."""
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(self.pad_channels(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
