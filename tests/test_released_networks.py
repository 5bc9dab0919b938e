"""Every registry network, layer by layer, as the released FoldedCNNs code builds it.

The literals below were derived by building each network with the released code
(msr-fiddle/folded-cnns: models/game.py, noscope.py, resnet.py, efficientnet_game.py, with the
arguments its train.py / inference.py pass) and writing its layers in forward order:

    C<in>><out>k<kernel>s<stride>p<padding>[b = has bias]@<output H>x<output W>   conv
    M<kernel>s<stride>p<padding>@HxW  max-pool     A<kernel>s<stride>p<padding>@HxW  avg-pool
    L<in>><out>  linear

``fold`` is the FoldedCNN (released ``do_fold=True``; f = 1 is the original), ``widen`` the
released model at FOLD > 1 without ``do_fold`` (folded widths, one image in), ``efficientnet``
the released ``efficientnet_game.ConvN(fold=2, width_mult=1.1, res_mult=1.15)``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from config.tasks import get_task, task_names
from models import build_model, model_input_shape


def layer_signature(model: nn.Module) -> str:
    """The model's conv, pool and linear layers in forward order, in the format above."""
    rec: list[str] = []

    def hook(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        one = lambda v: v if isinstance(v, int) else v[0]  # noqa: E731
        if isinstance(m, nn.Conv2d):
            rec.append(f"C{m.in_channels}>{m.out_channels}k{m.kernel_size[0]}s{m.stride[0]}"
                       f"p{m.padding[0]}{'b' if m.bias is not None else ''}@{out.shape[2]}x{out.shape[3]}")
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "M" if isinstance(m, nn.MaxPool2d) else "A"
            rec.append(f"{kind}{one(m.kernel_size)}s{one(m.stride)}p{one(m.padding)}"
                       f"@{out.shape[2]}x{out.shape[3]}")
        elif isinstance(m, nn.Linear):
            rec.append(f"L{m.in_features}>{m.out_features}")

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *model_input_shape(model), device=device))
    finally:
        for h in handles:
            h.remove()
    return " ".join(rec)


RELEASED = {
    ("lol/goldnumber-fraction", "fold", 1):
        "C3>32k3s1p1b@22x52 M3s2p0@10x25 C32>32k3s1p1b@10x25 C32>32k3s1p1b@10x25 "
        "C32>32k3s1p1b@10x25 M3s1p0@8x23 C32>8k3s1p1b@8x23 M3s2p0@3x11 L264>11",
    ("lol/goldnumber-fraction", "fold", 2):
        "C6>45k3s1p1b@22x52 M3s2p0@10x25 C45>45k3s1p1b@10x25 C45>45k3s1p1b@10x25 "
        "C45>45k3s1p1b@10x25 M3s1p0@8x23 C45>11k3s1p1b@8x23 M3s2p0@3x11 L363>22",
    ("lol/goldnumber-fraction", "widen", 2):
        "C3>45k3s1p1b@22x52 M3s2p0@10x25 C45>45k3s1p1b@10x25 C45>45k3s1p1b@10x25 "
        "C45>45k3s1p1b@10x25 M3s1p0@8x23 C45>11k3s1p1b@8x23 M3s2p0@3x11 L363>11",
    ("lol/goldnumber-fraction", "fold", 3):
        "C9>55k3s1p1b@22x52 M3s2p0@10x25 C55>55k3s1p1b@10x25 C55>55k3s1p1b@10x25 "
        "C55>55k3s1p1b@10x25 M3s1p0@8x23 C55>13k3s1p1b@8x23 M3s2p0@3x11 L429>33",
    ("lol/goldnumber-fraction", "widen", 3):
        "C3>55k3s1p1b@22x52 M3s2p0@10x25 C55>55k3s1p1b@10x25 C55>55k3s1p1b@10x25 "
        "C55>55k3s1p1b@10x25 M3s1p0@8x23 C55>13k3s1p1b@8x23 M3s2p0@3x11 L429>11",
    ("lol/goldnumber-fraction", "fold", 4):
        "C12>64k3s1p1b@22x52 M3s2p0@10x25 C64>64k3s1p1b@10x25 C64>64k3s1p1b@10x25 "
        "C64>64k3s1p1b@10x25 M3s1p0@8x23 C64>16k3s1p1b@8x23 M3s2p0@3x11 L528>44",
    ("lol/goldnumber-fraction", "widen", 4):
        "C3>64k3s1p1b@22x52 M3s2p0@10x25 C64>64k3s1p1b@10x25 C64>64k3s1p1b@10x25 "
        "C64>64k3s1p1b@10x25 M3s1p0@8x23 C64>16k3s1p1b@8x23 M3s2p0@3x11 L528>11",
    ("lol/goldnumber-fraction", "efficientnet", 1):
        "C3>29k3s1p1b@19x45 M3s2p0@9x22 C29>29k3s1p1b@9x22 C29>29k3s1p1b@9x22 C29>29k3s1p1b@9x22 "
        "M3s1p0@7x20 L4060>11",
    ("apex/squad_count_v2", "fold", 1):
        "C3>32k3s1p1b@19x25 M3s2p0@9x12 C32>32k3s1p1b@9x12 C32>32k3s1p1b@9x12 C32>32k3s1p1b@9x12 "
        "M3s1p0@7x10 C32>8k3s1p1b@7x10 M3s2p0@3x4 L96>22",
    ("apex/squad_count_v2", "fold", 2):
        "C6>45k3s1p1b@19x25 M3s2p0@9x12 C45>45k3s1p1b@9x12 C45>45k3s1p1b@9x12 C45>45k3s1p1b@9x12 "
        "M3s1p0@7x10 C45>11k3s1p1b@7x10 M3s2p0@3x4 L132>44",
    ("apex/squad_count_v2", "widen", 2):
        "C3>45k3s1p1b@19x25 M3s2p0@9x12 C45>45k3s1p1b@9x12 C45>45k3s1p1b@9x12 C45>45k3s1p1b@9x12 "
        "M3s1p0@7x10 C45>11k3s1p1b@7x10 M3s2p0@3x4 L132>22",
    ("apex/squad_count_v2", "fold", 3):
        "C9>55k3s1p1b@19x25 M3s2p0@9x12 C55>55k3s1p1b@9x12 C55>55k3s1p1b@9x12 C55>55k3s1p1b@9x12 "
        "M3s1p0@7x10 C55>13k3s1p1b@7x10 M3s2p0@3x4 L156>66",
    ("apex/squad_count_v2", "widen", 3):
        "C3>55k3s1p1b@19x25 M3s2p0@9x12 C55>55k3s1p1b@9x12 C55>55k3s1p1b@9x12 C55>55k3s1p1b@9x12 "
        "M3s1p0@7x10 C55>13k3s1p1b@7x10 M3s2p0@3x4 L156>22",
    ("apex/squad_count_v2", "fold", 4):
        "C12>64k3s1p1b@19x25 M3s2p0@9x12 C64>64k3s1p1b@9x12 C64>64k3s1p1b@9x12 C64>64k3s1p1b@9x12 "
        "M3s1p0@7x10 C64>16k3s1p1b@7x10 M3s2p0@3x4 L192>88",
    ("apex/squad_count_v2", "widen", 4):
        "C3>64k3s1p1b@19x25 M3s2p0@9x12 C64>64k3s1p1b@9x12 C64>64k3s1p1b@9x12 C64>64k3s1p1b@9x12 "
        "M3s1p0@7x10 C64>16k3s1p1b@7x10 M3s2p0@3x4 L192>22",
    ("apex/squad_count_v2", "efficientnet", 1):
        "C3>29k3s1p1b@16x21 M3s2p0@7x10 C29>29k3s1p1b@7x10 C29>29k3s1p1b@7x10 C29>29k3s1p1b@7x10 "
        "M3s1p0@5x8 L1160>22",
    ("sot/coin_count-digits_3_4-v2", "fold", 1):
        "C3>32k3s1p1b@17x40 M3s2p0@8x19 C32>32k3s1p1b@8x19 C32>32k3s1p1b@8x19 C32>32k3s1p1b@8x19 "
        "M3s1p0@6x17 C32>8k3s1p1b@6x17 M3s2p0@2x8 L128>15",
    ("sot/coin_count-digits_3_4-v2", "fold", 2):
        "C6>45k3s1p1b@17x40 M3s2p0@8x19 C45>45k3s1p1b@8x19 C45>45k3s1p1b@8x19 C45>45k3s1p1b@8x19 "
        "M3s1p0@6x17 C45>11k3s1p1b@6x17 M3s2p0@2x8 L176>30",
    ("sot/coin_count-digits_3_4-v2", "widen", 2):
        "C3>45k3s1p1b@17x40 M3s2p0@8x19 C45>45k3s1p1b@8x19 C45>45k3s1p1b@8x19 C45>45k3s1p1b@8x19 "
        "M3s1p0@6x17 C45>11k3s1p1b@6x17 M3s2p0@2x8 L176>15",
    ("sot/coin_count-digits_3_4-v2", "fold", 3):
        "C9>55k3s1p1b@17x40 M3s2p0@8x19 C55>55k3s1p1b@8x19 C55>55k3s1p1b@8x19 C55>55k3s1p1b@8x19 "
        "M3s1p0@6x17 C55>13k3s1p1b@6x17 M3s2p0@2x8 L208>45",
    ("sot/coin_count-digits_3_4-v2", "widen", 3):
        "C3>55k3s1p1b@17x40 M3s2p0@8x19 C55>55k3s1p1b@8x19 C55>55k3s1p1b@8x19 C55>55k3s1p1b@8x19 "
        "M3s1p0@6x17 C55>13k3s1p1b@6x17 M3s2p0@2x8 L208>15",
    ("sot/coin_count-digits_3_4-v2", "fold", 4):
        "C12>64k3s1p1b@17x40 M3s2p0@8x19 C64>64k3s1p1b@8x19 C64>64k3s1p1b@8x19 C64>64k3s1p1b@8x19 "
        "M3s1p0@6x17 C64>16k3s1p1b@6x17 M3s2p0@2x8 L256>60",
    ("sot/coin_count-digits_3_4-v2", "widen", 4):
        "C3>64k3s1p1b@17x40 M3s2p0@8x19 C64>64k3s1p1b@8x19 C64>64k3s1p1b@8x19 C64>64k3s1p1b@8x19 "
        "M3s1p0@6x17 C64>16k3s1p1b@6x17 M3s2p0@2x8 L256>15",
    ("sot/coin_count-digits_3_4-v2", "efficientnet", 1):
        "C3>29k3s1p1b@14x34 M3s2p0@6x16 C29>29k3s1p1b@6x16 C29>29k3s1p1b@6x16 C29>29k3s1p1b@6x16 "
        "M3s1p0@4x14 L1624>15",
    ("sot/timer3", "fold", 1):
        "C3>32k3s1p1b@22x30 M3s2p0@10x14 C32>32k3s1p1b@10x14 C32>32k3s1p1b@10x14 "
        "C32>32k3s1p1b@10x14 M3s1p0@8x12 C32>32k3s1p1b@8x12 C32>32k3s1p1b@8x12 C32>32k3s1p1b@8x12 "
        "M3s1p0@6x10 C32>8k3s1p1b@6x10 M3s2p0@2x4 L64>27",
    ("sot/timer3", "fold", 2):
        "C6>45k3s1p1b@22x30 M3s2p0@10x14 C45>45k3s1p1b@10x14 C45>45k3s1p1b@10x14 "
        "C45>45k3s1p1b@10x14 M3s1p0@8x12 C45>45k3s1p1b@8x12 C45>45k3s1p1b@8x12 C45>45k3s1p1b@8x12 "
        "M3s1p0@6x10 C45>11k3s1p1b@6x10 M3s2p0@2x4 L88>54",
    ("sot/timer3", "widen", 2):
        "C3>45k3s1p1b@22x30 M3s2p0@10x14 C45>45k3s1p1b@10x14 C45>45k3s1p1b@10x14 "
        "C45>45k3s1p1b@10x14 M3s1p0@8x12 C45>45k3s1p1b@8x12 C45>45k3s1p1b@8x12 C45>45k3s1p1b@8x12 "
        "M3s1p0@6x10 C45>11k3s1p1b@6x10 M3s2p0@2x4 L88>27",
    ("sot/timer3", "fold", 3):
        "C9>55k3s1p1b@22x30 M3s2p0@10x14 C55>55k3s1p1b@10x14 C55>55k3s1p1b@10x14 "
        "C55>55k3s1p1b@10x14 M3s1p0@8x12 C55>55k3s1p1b@8x12 C55>55k3s1p1b@8x12 C55>55k3s1p1b@8x12 "
        "M3s1p0@6x10 C55>13k3s1p1b@6x10 M3s2p0@2x4 L104>81",
    ("sot/timer3", "widen", 3):
        "C3>55k3s1p1b@22x30 M3s2p0@10x14 C55>55k3s1p1b@10x14 C55>55k3s1p1b@10x14 "
        "C55>55k3s1p1b@10x14 M3s1p0@8x12 C55>55k3s1p1b@8x12 C55>55k3s1p1b@8x12 C55>55k3s1p1b@8x12 "
        "M3s1p0@6x10 C55>13k3s1p1b@6x10 M3s2p0@2x4 L104>27",
    ("sot/timer3", "fold", 4):
        "C12>64k3s1p1b@22x30 M3s2p0@10x14 C64>64k3s1p1b@10x14 C64>64k3s1p1b@10x14 "
        "C64>64k3s1p1b@10x14 M3s1p0@8x12 C64>64k3s1p1b@8x12 C64>64k3s1p1b@8x12 C64>64k3s1p1b@8x12 "
        "M3s1p0@6x10 C64>16k3s1p1b@6x10 M3s2p0@2x4 L128>108",
    ("sot/timer3", "widen", 4):
        "C3>64k3s1p1b@22x30 M3s2p0@10x14 C64>64k3s1p1b@10x14 C64>64k3s1p1b@10x14 "
        "C64>64k3s1p1b@10x14 M3s1p0@8x12 C64>64k3s1p1b@8x12 C64>64k3s1p1b@8x12 C64>64k3s1p1b@8x12 "
        "M3s1p0@6x10 C64>16k3s1p1b@6x10 M3s2p0@2x4 L128>27",
    ("sot/timer3", "efficientnet", 1):
        "C3>29k3s1p1b@19x26 M3s2p0@9x12 C29>29k3s1p1b@9x12 C29>29k3s1p1b@9x12 C29>29k3s1p1b@9x12 "
        "M3s1p0@7x10 C29>29k3s1p1b@7x10 C29>29k3s1p1b@7x10 C29>29k3s1p1b@7x10 M3s1p0@5x8 L1160>27",
    ("lol/goldnumber-int", "fold", 1):
        "C3>32k3s1p1b@22x52 M3s2p0@10x25 C32>32k3s1p1b@10x25 C32>32k3s1p1b@10x25 "
        "C32>32k3s1p1b@10x25 M3s1p0@8x23 C32>8k3s1p1b@8x23 M3s2p0@3x11 L264>111",
    ("lol/goldnumber-int", "fold", 2):
        "C6>45k3s1p1b@22x52 M3s2p0@10x25 C45>45k3s1p1b@10x25 C45>45k3s1p1b@10x25 "
        "C45>45k3s1p1b@10x25 M3s1p0@8x23 C45>11k3s1p1b@8x23 M3s2p0@3x11 L363>222",
    ("lol/goldnumber-int", "widen", 2):
        "C3>45k3s1p1b@22x52 M3s2p0@10x25 C45>45k3s1p1b@10x25 C45>45k3s1p1b@10x25 "
        "C45>45k3s1p1b@10x25 M3s1p0@8x23 C45>11k3s1p1b@8x23 M3s2p0@3x11 L363>111",
    ("lol/goldnumber-int", "fold", 3):
        "C9>55k3s1p1b@22x52 M3s2p0@10x25 C55>55k3s1p1b@10x25 C55>55k3s1p1b@10x25 "
        "C55>55k3s1p1b@10x25 M3s1p0@8x23 C55>13k3s1p1b@8x23 M3s2p0@3x11 L429>333",
    ("lol/goldnumber-int", "widen", 3):
        "C3>55k3s1p1b@22x52 M3s2p0@10x25 C55>55k3s1p1b@10x25 C55>55k3s1p1b@10x25 "
        "C55>55k3s1p1b@10x25 M3s1p0@8x23 C55>13k3s1p1b@8x23 M3s2p0@3x11 L429>111",
    ("lol/goldnumber-int", "fold", 4):
        "C12>64k3s1p1b@22x52 M3s2p0@10x25 C64>64k3s1p1b@10x25 C64>64k3s1p1b@10x25 "
        "C64>64k3s1p1b@10x25 M3s1p0@8x23 C64>16k3s1p1b@8x23 M3s2p0@3x11 L528>444",
    ("lol/goldnumber-int", "widen", 4):
        "C3>64k3s1p1b@22x52 M3s2p0@10x25 C64>64k3s1p1b@10x25 C64>64k3s1p1b@10x25 "
        "C64>64k3s1p1b@10x25 M3s1p0@8x23 C64>16k3s1p1b@8x23 M3s2p0@3x11 L528>111",
    ("lol/goldnumber-int", "efficientnet", 1):
        "C3>29k3s1p1b@19x45 M3s2p0@9x22 C29>29k3s1p1b@9x22 C29>29k3s1p1b@9x22 C29>29k3s1p1b@9x22 "
        "M3s1p0@7x20 L4060>111",
    ("lol/timer-minutes", "fold", 1):
        "C3>32k3s1p1b@15x35 M3s2p0@7x17 C32>32k3s1p1b@7x17 C32>32k3s1p1b@7x17 C32>32k3s1p1b@7x17 "
        "M3s1p0@5x15 C32>8k3s1p1b@5x15 M3s2p0@2x7 L112>62",
    ("lol/timer-minutes", "fold", 2):
        "C6>45k3s1p1b@15x35 M3s2p0@7x17 C45>45k3s1p1b@7x17 C45>45k3s1p1b@7x17 C45>45k3s1p1b@7x17 "
        "M3s1p0@5x15 C45>11k3s1p1b@5x15 M3s2p0@2x7 L154>124",
    ("lol/timer-minutes", "widen", 2):
        "C3>45k3s1p1b@15x35 M3s2p0@7x17 C45>45k3s1p1b@7x17 C45>45k3s1p1b@7x17 C45>45k3s1p1b@7x17 "
        "M3s1p0@5x15 C45>11k3s1p1b@5x15 M3s2p0@2x7 L154>62",
    ("lol/timer-minutes", "fold", 3):
        "C9>55k3s1p1b@15x35 M3s2p0@7x17 C55>55k3s1p1b@7x17 C55>55k3s1p1b@7x17 C55>55k3s1p1b@7x17 "
        "M3s1p0@5x15 C55>13k3s1p1b@5x15 M3s2p0@2x7 L182>186",
    ("lol/timer-minutes", "widen", 3):
        "C3>55k3s1p1b@15x35 M3s2p0@7x17 C55>55k3s1p1b@7x17 C55>55k3s1p1b@7x17 C55>55k3s1p1b@7x17 "
        "M3s1p0@5x15 C55>13k3s1p1b@5x15 M3s2p0@2x7 L182>62",
    ("lol/timer-minutes", "fold", 4):
        "C12>64k3s1p1b@15x35 M3s2p0@7x17 C64>64k3s1p1b@7x17 C64>64k3s1p1b@7x17 C64>64k3s1p1b@7x17 "
        "M3s1p0@5x15 C64>16k3s1p1b@5x15 M3s2p0@2x7 L224>248",
    ("lol/timer-minutes", "widen", 4):
        "C3>64k3s1p1b@15x35 M3s2p0@7x17 C64>64k3s1p1b@7x17 C64>64k3s1p1b@7x17 C64>64k3s1p1b@7x17 "
        "M3s1p0@5x15 C64>16k3s1p1b@5x15 M3s2p0@2x7 L224>62",
    ("lol/timer-minutes", "efficientnet", 1):
        "C3>29k3s1p1b@13x30 M3s2p0@6x14 C29>29k3s1p1b@6x14 C29>29k3s1p1b@6x14 C29>29k3s1p1b@6x14 "
        "M3s1p0@4x12 L1392>62",
    ("noscope-coral", "fold", 1):
        "C3>16k3s1p1b@50x50 C16>16k3s1p1b@50x50 M2s2p0@25x25 L10000>128 L128>2",
    ("noscope-coral", "fold", 2):
        "C6>22k3s1p1b@50x50 C22>22k3s1p1b@50x50 M2s2p0@25x25 L13750>181 L181>4",
    ("noscope-coral", "widen", 2):
        "C3>22k3s1p1b@50x50 C22>22k3s1p1b@50x50 M2s2p0@25x25 L13750>181 L181>2",
    ("noscope-coral", "fold", 3):
        "C9>27k3s1p1b@50x50 C27>27k3s1p1b@50x50 M2s2p0@25x25 L16875>221 L221>6",
    ("noscope-coral", "widen", 3):
        "C3>27k3s1p1b@50x50 C27>27k3s1p1b@50x50 M2s2p0@25x25 L16875>221 L221>2",
    ("noscope-coral", "fold", 4):
        "C12>32k3s1p1b@50x50 C32>32k3s1p1b@50x50 M2s2p0@25x25 L20000>256 L256>8",
    ("noscope-coral", "widen", 4):
        "C3>32k3s1p1b@50x50 C32>32k3s1p1b@50x50 M2s2p0@25x25 L20000>256 L256>2",
    ("noscope-night", "fold", 1):
        "C3>16k3s1p1b@50x50 C16>16k3s1p1b@50x50 M2s2p0@25x25 L10000>128 L128>2",
    ("noscope-night", "fold", 2):
        "C6>22k3s1p1b@50x50 C22>22k3s1p1b@50x50 M2s2p0@25x25 L13750>181 L181>4",
    ("noscope-night", "widen", 2):
        "C3>22k3s1p1b@50x50 C22>22k3s1p1b@50x50 M2s2p0@25x25 L13750>181 L181>2",
    ("noscope-night", "fold", 3):
        "C9>27k3s1p1b@50x50 C27>27k3s1p1b@50x50 M2s2p0@25x25 L16875>221 L221>6",
    ("noscope-night", "widen", 3):
        "C3>27k3s1p1b@50x50 C27>27k3s1p1b@50x50 M2s2p0@25x25 L16875>221 L221>2",
    ("noscope-night", "fold", 4):
        "C12>32k3s1p1b@50x50 C32>32k3s1p1b@50x50 M2s2p0@25x25 L20000>256 L256>8",
    ("noscope-night", "widen", 4):
        "C3>32k3s1p1b@50x50 C32>32k3s1p1b@50x50 M2s2p0@25x25 L20000>256 L256>2",
    ("noscope-taipei", "fold", 1):
        "C3>64k3s1p1b@50x50 C64>64k3s1p1b@50x50 M2s2p0@25x25 L40000>32 L32>2",
    ("noscope-taipei", "fold", 2):
        "C6>90k3s1p1b@50x50 C90>90k3s1p1b@50x50 M2s2p0@25x25 L56250>45 L45>4",
    ("noscope-taipei", "widen", 2):
        "C3>90k3s1p1b@50x50 C90>90k3s1p1b@50x50 M2s2p0@25x25 L56250>45 L45>2",
    ("noscope-taipei", "fold", 3):
        "C9>110k3s1p1b@50x50 C110>110k3s1p1b@50x50 M2s2p0@25x25 L68750>55 L55>6",
    ("noscope-taipei", "widen", 3):
        "C3>110k3s1p1b@50x50 C110>110k3s1p1b@50x50 M2s2p0@25x25 L68750>55 L55>2",
    ("noscope-taipei", "fold", 4):
        "C12>128k3s1p1b@50x50 C128>128k3s1p1b@50x50 M2s2p0@25x25 L80000>64 L64>8",
    ("noscope-taipei", "widen", 4):
        "C3>128k3s1p1b@50x50 C128>128k3s1p1b@50x50 M2s2p0@25x25 L80000>64 L64>2",
    ("noscope-roundabout", "fold", 1):
        "C3>32k3s1p1b@50x50 C32>32k3s1p1b@50x50 M2s2p0@25x25 C32>64k3s1p1b@25x25 "
        "C64>64k3s1p1b@25x25 M2s2p0@12x12 L9216>32 L32>2",
    ("noscope-roundabout", "fold", 2):
        "C6>45k3s1p1b@50x50 C45>45k3s1p1b@50x50 M2s2p0@25x25 C45>90k3s1p1b@25x25 "
        "C90>90k3s1p1b@25x25 M2s2p0@12x12 L12960>45 L45>4",
    ("noscope-roundabout", "widen", 2):
        "C3>45k3s1p1b@50x50 C45>45k3s1p1b@50x50 M2s2p0@25x25 C45>90k3s1p1b@25x25 "
        "C90>90k3s1p1b@25x25 M2s2p0@12x12 L12960>45 L45>2",
    ("noscope-roundabout", "fold", 3):
        "C9>55k3s1p1b@50x50 C55>55k3s1p1b@50x50 M2s2p0@25x25 C55>110k3s1p1b@25x25 "
        "C110>110k3s1p1b@25x25 M2s2p0@12x12 L15840>55 L55>6",
    ("noscope-roundabout", "widen", 3):
        "C3>55k3s1p1b@50x50 C55>55k3s1p1b@50x50 M2s2p0@25x25 C55>110k3s1p1b@25x25 "
        "C110>110k3s1p1b@25x25 M2s2p0@12x12 L15840>55 L55>2",
    ("noscope-roundabout", "fold", 4):
        "C12>64k3s1p1b@50x50 C64>64k3s1p1b@50x50 M2s2p0@25x25 C64>128k3s1p1b@25x25 "
        "C128>128k3s1p1b@25x25 M2s2p0@12x12 L18432>64 L64>8",
    ("noscope-roundabout", "widen", 4):
        "C3>64k3s1p1b@50x50 C64>64k3s1p1b@50x50 M2s2p0@25x25 C64>128k3s1p1b@25x25 "
        "C128>128k3s1p1b@25x25 M2s2p0@12x12 L18432>64 L64>2",
    ("cifar10", "fold", 1):
        "C3>64k3s1p1@32x32 C64>64k3s1p1@32x32 C64>64k3s1p1@32x32 C64>64k3s1p1@32x32 "
        "C64>64k3s1p1@32x32 C64>128k3s2p1@16x16 C128>128k3s1p1@16x16 C64>128k1s2p0@16x16 "
        "C128>128k3s1p1@16x16 C128>128k3s1p1@16x16 C128>256k3s2p1@8x8 C256>256k3s1p1@8x8 "
        "C128>256k1s2p0@8x8 C256>256k3s1p1@8x8 C256>256k3s1p1@8x8 C256>512k3s2p1@4x4 "
        "C512>512k3s1p1@4x4 C256>512k1s2p0@4x4 C512>512k3s1p1@4x4 C512>512k3s1p1@4x4 A4s4p1@1x1 "
        "L512>10",
    ("cifar10", "fold", 2):
        "C6>90k3s1p1@32x32 C90>90k3s1p1@32x32 C90>90k3s1p1@32x32 C90>90k3s1p1@32x32 "
        "C90>90k3s1p1@32x32 C90>181k3s2p1@16x16 C181>181k3s1p1@16x16 C90>181k1s2p0@16x16 "
        "C181>181k3s1p1@16x16 C181>181k3s1p1@16x16 C181>362k3s2p1@8x8 C362>362k3s1p1@8x8 "
        "C181>362k1s2p0@8x8 C362>362k3s1p1@8x8 C362>362k3s1p1@8x8 C362>724k3s2p1@4x4 "
        "C724>724k3s1p1@4x4 C362>724k1s2p0@4x4 C724>724k3s1p1@4x4 C724>724k3s1p1@4x4 A4s4p0@1x1 "
        "L724>20",
    ("cifar10", "fold", 3):
        "C9>110k3s1p1@32x32 C110>110k3s1p1@32x32 C110>110k3s1p1@32x32 C110>110k3s1p1@32x32 "
        "C110>110k3s1p1@32x32 C110>221k3s2p1@16x16 C221>221k3s1p1@16x16 C110>221k1s2p0@16x16 "
        "C221>221k3s1p1@16x16 C221>221k3s1p1@16x16 C221>443k3s2p1@8x8 C443>443k3s1p1@8x8 "
        "C221>443k1s2p0@8x8 C443>443k3s1p1@8x8 C443>443k3s1p1@8x8 C443>886k3s2p1@4x4 "
        "C886>886k3s1p1@4x4 C443>886k1s2p0@4x4 C886>886k3s1p1@4x4 C886>886k3s1p1@4x4 A4s4p0@1x1 "
        "L886>30",
    ("cifar10", "fold", 4):
        "C12>128k3s1p1@32x32 C128>128k3s1p1@32x32 C128>128k3s1p1@32x32 C128>128k3s1p1@32x32 "
        "C128>128k3s1p1@32x32 C128>256k3s2p1@16x16 C256>256k3s1p1@16x16 C128>256k1s2p0@16x16 "
        "C256>256k3s1p1@16x16 C256>256k3s1p1@16x16 C256>512k3s2p1@8x8 C512>512k3s1p1@8x8 "
        "C256>512k1s2p0@8x8 C512>512k3s1p1@8x8 C512>512k3s1p1@8x8 C512>1024k3s2p1@4x4 "
        "C1024>1024k3s1p1@4x4 C512>1024k1s2p0@4x4 C1024>1024k3s1p1@4x4 C1024>1024k3s1p1@4x4 "
        "A4s4p0@1x1 L1024>40",
    ("cifar100", "fold", 1):
        "C3>64k3s1p1@32x32 C64>64k3s1p1@32x32 C64>64k3s1p1@32x32 C64>64k3s1p1@32x32 "
        "C64>64k3s1p1@32x32 C64>128k3s2p1@16x16 C128>128k3s1p1@16x16 C64>128k1s2p0@16x16 "
        "C128>128k3s1p1@16x16 C128>128k3s1p1@16x16 C128>256k3s2p1@8x8 C256>256k3s1p1@8x8 "
        "C128>256k1s2p0@8x8 C256>256k3s1p1@8x8 C256>256k3s1p1@8x8 C256>512k3s2p1@4x4 "
        "C512>512k3s1p1@4x4 C256>512k1s2p0@4x4 C512>512k3s1p1@4x4 C512>512k3s1p1@4x4 A4s4p1@1x1 "
        "L512>100",
    ("cifar100", "fold", 2):
        "C6>90k3s1p1@32x32 C90>90k3s1p1@32x32 C90>90k3s1p1@32x32 C90>90k3s1p1@32x32 "
        "C90>90k3s1p1@32x32 C90>181k3s2p1@16x16 C181>181k3s1p1@16x16 C90>181k1s2p0@16x16 "
        "C181>181k3s1p1@16x16 C181>181k3s1p1@16x16 C181>362k3s2p1@8x8 C362>362k3s1p1@8x8 "
        "C181>362k1s2p0@8x8 C362>362k3s1p1@8x8 C362>362k3s1p1@8x8 C362>724k3s2p1@4x4 "
        "C724>724k3s1p1@4x4 C362>724k1s2p0@4x4 C724>724k3s1p1@4x4 C724>724k3s1p1@4x4 A4s4p0@1x1 "
        "L724>200",
    ("cifar100", "fold", 3):
        "C9>110k3s1p1@32x32 C110>110k3s1p1@32x32 C110>110k3s1p1@32x32 C110>110k3s1p1@32x32 "
        "C110>110k3s1p1@32x32 C110>221k3s2p1@16x16 C221>221k3s1p1@16x16 C110>221k1s2p0@16x16 "
        "C221>221k3s1p1@16x16 C221>221k3s1p1@16x16 C221>443k3s2p1@8x8 C443>443k3s1p1@8x8 "
        "C221>443k1s2p0@8x8 C443>443k3s1p1@8x8 C443>443k3s1p1@8x8 C443>886k3s2p1@4x4 "
        "C886>886k3s1p1@4x4 C443>886k1s2p0@4x4 C886>886k3s1p1@4x4 C886>886k3s1p1@4x4 A4s4p0@1x1 "
        "L886>300",
    ("cifar100", "fold", 4):
        "C12>128k3s1p1@32x32 C128>128k3s1p1@32x32 C128>128k3s1p1@32x32 C128>128k3s1p1@32x32 "
        "C128>128k3s1p1@32x32 C128>256k3s2p1@16x16 C256>256k3s1p1@16x16 C128>256k1s2p0@16x16 "
        "C256>256k3s1p1@16x16 C256>256k3s1p1@16x16 C256>512k3s2p1@8x8 C512>512k3s1p1@8x8 "
        "C256>512k1s2p0@8x8 C512>512k3s1p1@8x8 C512>512k3s1p1@8x8 C512>1024k3s2p1@4x4 "
        "C1024>1024k3s1p1@4x4 C512>1024k1s2p0@4x4 C1024>1024k3s1p1@4x4 C1024>1024k3s1p1@4x4 "
        "A4s4p0@1x1 L1024>400",
}


@pytest.mark.parametrize("task,scaling,fold", list(RELEASED))
def test_layers_as_released(task, scaling, fold):
    with torch.device("meta"):  # shapes only: no weights are allocated or initialised
        model = build_model(task, fold, scaling=scaling)
    assert layer_signature(model) == RELEASED[(task, scaling, fold)]


def test_every_registry_network_is_covered():
    """A task added to config/ needs its released layer shapes here too."""
    for name in task_names():
        for f in (1, 2, 3, 4):
            assert (name, "fold", f) in RELEASED, (name, f)
        if get_task(name).efficientnet_baseline:
            assert (name, "efficientnet", 1) in RELEASED, name


def test_v1_classifier_reads_264_features():
    """V1 at f = 1: 22x52 -> 10x25 -> 8x23 -> 3x11 maps, so the classifier is 8 * 3 * 11 = 264 -> 11."""
    head = build_model("lol/goldnumber-fraction", 1).head
    assert (head.in_features, head.out_features) == (264, 11)


def test_resnet_pool_differs_between_original_and_folded():
    """Released: AvgPool2d(4, padding=1) unfolded (top-left 3x3 of the 4x4 map, / 16), AvgPool2d(4) folded."""
    with torch.device("meta"):
        original, folded = build_model("cifar10", 1), build_model("cifar10", 4)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert float(original.avgpool(x)) == pytest.approx(float(x[0, 0, :3, :3].sum()) / 16)
    assert float(folded.avgpool(x)) == pytest.approx(float(x.mean()))
