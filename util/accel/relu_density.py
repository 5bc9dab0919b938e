"""Share of pre-ReLU outputs <= 0 per layer, and the work an accelerator that skips them saves.

The predictive-fusion accelerator (ICS'21, "Accelerating DNNs Inference with Predictive Layer
Fusion") predicts which outputs of a conv the following ReLU will zero and does not compute
them. Measured on a trained network and a data split, the share ``s_i`` of layer ``i``'s
pre-ReLU outputs that are <= 0 bounds what such skipping can save on that layer (a perfect
predictor, prediction cost not counted):

    MACs saved_i   = MACs_i   x s_i
    energy saved_i = energy_i x s_i      (energy_i: ZigZag's energy of the layer, all memories)

The energy estimate assumes every part of a layer's energy scales with the outputs computed;
it is the ICS'21 paper's first-order model, not a simulation of a sparse dataflow. A layer not
followed by a ReLU (the classifier) saves nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.fold import fold_images


@dataclass
class LayerShare:
    """One Conv2d/Linear layer: its module name and the share of its outputs <= 0 before the
    ReLU that follows it (None when no ReLU follows)."""
    index: int
    name: str
    outputs: int = 0
    nonpositive: int = 0
    has_relu: bool = False

    @property
    def share(self) -> float | None:
        return self.nonpositive / self.outputs if self.has_relu and self.outputs else None


def compute_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d/Linear modules in execution order (ZigZag's costed layers, in the same order)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@torch.no_grad()
def prerelu_shares(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> list[LayerShare]:
    """Count, for every Conv2d/Linear followed by a ReLU, how many of its outputs are <= 0.

    ``inputs`` are model inputs (already folded: N/f x f*C x H x W, float). A ReLU is matched
    to the nearest Conv2d/Linear before it in module order (the layout of every network here).
    """
    leaves = [(n, m) for n, m in model.named_modules() if len(list(m.children())) == 0]
    layers = {id(m): LayerShare(i, n) for i, (n, m) in enumerate(compute_layers(model))}
    owner: dict[int, LayerShare] = {}
    current = None
    for _, m in leaves:
        if id(m) in layers:
            current = layers[id(m)]
        elif isinstance(m, nn.ReLU) and current is not None:
            owner[id(m)] = current
            current.has_relu = True
            current = None

    def count(mod: nn.Module, args: tuple) -> None:
        x = args[0]
        rec = owner[id(mod)]
        rec.outputs += x.numel()
        rec.nonpositive += int((x <= 0).sum())

    handles = [m.register_forward_pre_hook(count) for _, m in leaves if id(m) in owner]
    try:
        model.eval()
        for start in range(0, inputs.shape[0], batch_size):
            model(inputs[start:start + batch_size])
    finally:
        for h in handles:
            h.remove()
    return sorted(layers.values(), key=lambda r: r.index)


def folded_inputs(images_u8: torch.Tensor, task: Any, fold: int) -> torch.Tensor:
    """The split's images as the network's inputs (scaled like training; the last partial
    group of ``f`` dropped, so every input holds ``f`` real images)."""
    from datasets.transforms import to_float

    n = images_u8.shape[0] - images_u8.shape[0] % fold
    return fold_images(to_float(images_u8[:n], task), fold)


def skipping_savings(shares: list[LayerShare], layer_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per layer: share, MACs and energy per image, and what skipping non-positive outputs saves.

    ``layer_rows`` are the accelerator table's layer rows of the same network (same order:
    ZigZag's layers are the Conv2d/Linear modules in execution order).
    """
    if len(shares) != len(layer_rows):
        raise ValueError(f"{len(shares)} Conv2d/Linear layers but {len(layer_rows)} ZigZag layers: "
                         "the checkpoint's network is not the one in the accelerator table")
    out = []
    for s, row in zip(shares, layer_rows):
        share = s.share or 0.0
        out.append({"layer_index": s.index, "layer": s.name, "zigzag_layer": row["layer"],
                    "share_nonpositive": "" if s.share is None else s.share,
                    "macs_per_image": row["macs_per_image"],
                    "macs_saved_per_image": row["macs_per_image"] * share,
                    "energy_per_image_pJ": row["energy_per_image_pJ"],
                    "energy_saved_per_image_pJ": row["energy_per_image_pJ"] * share})
    return out
