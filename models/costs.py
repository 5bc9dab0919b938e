"""Per-layer FLOPs and bytes for the paper's arithmetic-intensity model (section 2).

For a conv layer with batch ``N``, output ``Ho x Wo``, channels ``Ci -> Co``, kernel
``KH x KW`` and ``B`` bytes per element::

    FLOPs = 2 * N*Ho*Wo * Co*(Ci/groups)*KH*KW
    bytes = B * (input elements + weight elements + output elements)

A linear layer is the 1x1 case. Activations, pooling and BatchNorm are taken as fused into
the preceding layer and count nothing. Bias adds are not counted in FLOPs (as in the paper's
formula and its worked example); ``bias_flops`` keeps them (one per output element), which the
released ``ai.py`` added (``arithmetic_intensity(..., count_bias=True)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerCost:
    name: str
    flops: int
    in_elems: int
    weight_elems: int
    out_elems: int
    bias_flops: int = 0

    def bytes(self, bytes_per_elt: int) -> int:
        return bytes_per_elt * (self.in_elems + self.weight_elems + self.out_elems)


def conv_cost(n: int, cin: int, hin: int, win: int, cout: int, hout: int, wout: int,
              kh: int, kw: int, groups: int = 1, name: str = "conv", bias: bool = False) -> LayerCost:
    """Cost of one conv layer (the paper's formula, real input/output element counts)."""
    out = n * cout * hout * wout
    return LayerCost(name, 2 * out * (cin // groups) * kh * kw, n * cin * hin * win,
                     cout * (cin // groups) * kh * kw, out, out if bias else 0)


def linear_cost(n: int, fin: int, fout: int, name: str = "linear", bias: bool = False) -> LayerCost:
    return LayerCost(name, 2 * n * fin * fout, n * fin, fin * fout, n * fout, n * fout if bias else 0)


def layer_costs(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> list[LayerCost]:
    """Costs of every Conv2d and Linear of ``model`` for a batch of ``batch`` inputs.

    Shapes come from one dry run with batch 1 on the model's device (costs scale linearly in
    N); a model built under ``torch.device("meta")`` gives them without computing anything.
    """
    costs: list[LayerCost] = []

    def hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str) -> None:
        x = args[0]
        if isinstance(mod, nn.Conv2d):
            costs.append(conv_cost(batch, x.shape[1], x.shape[2], x.shape[3], out.shape[1],
                                   out.shape[2], out.shape[3], *mod.kernel_size, mod.groups, name,
                                   mod.bias is not None))
        else:
            costs.append(linear_cost(batch, mod.in_features, mod.out_features, name,
                                     mod.bias is not None))

    handles = [m.register_forward_hook(lambda mod, a, o, n=name: hook(mod, a, o, n))
               for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device  # a model built on "meta" costs no memory
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return costs


def arithmetic_intensity(costs: list[LayerCost], bytes_per_elt: int = 2,
                         count_bias: bool = False) -> float:
    """Whole-CNN AI: sum of FLOPs over sum of bytes of its conv and linear layers
    (``count_bias``: bias adds count as FLOPs too, as the released ``ai.py`` did)."""
    flops = sum(c.flops + (c.bias_flops if count_bias else 0) for c in costs)
    return flops / sum(c.bytes(bytes_per_elt) for c in costs)


def roofline_seconds(costs: list[LayerCost], peak_flops: float, bytes_per_sec: float,
                     bytes_per_elt: int = 2) -> float:
    """Time of a layer-by-layer run at the roofline: each layer takes
    ``max(FLOPs / peak_flops, bytes / bytes_per_sec)`` and the layers add up.

    Why: with the GPU's measured peak and bandwidth this is what ideal kernels (activation and
    pooling fused, every tensor read or written once per layer) would take, so the ratio of
    two models' roofline times is the speedup folding can give once the kernels stop being
    the limit. It is not a hard ceiling on a measured speedup: a slow original kernel makes
    the measured ratio larger.
    """
    if peak_flops <= 0 or bytes_per_sec <= 0:
        raise ValueError("roofline_seconds needs a positive peak FLOPs/sec and bytes/sec")
    return sum(max(c.flops / peak_flops, c.bytes(bytes_per_elt) / bytes_per_sec) for c in costs)
