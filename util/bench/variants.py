"""The network of a benchmark entry's variant, built the one way that the benchmark, the FLOP
table, ``ai.py``, the roofline and the report share (so FLOPs, AI and throughput describe the
same model). What a FOLD means is ``config.tasks.BenchEntry.variant``'s; this only builds it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from config.tasks import BenchEntry, BenchVariant
from models import CompoundScaling, build_model, model_input_shape
from models.costs import LayerCost, layer_costs

DEFAULT_MULTIPLIERS = CompoundScaling()  # the paper's beta = 1.1, gamma = 1.15


def compound_of(variant: BenchVariant, multipliers: CompoundScaling = DEFAULT_MULTIPLIERS) -> CompoundScaling:
    """The compound scaling of ``variant``: its steps with ``multipliers``' width, resolution
    and depth (the default scaling for variants that are not EfficientNet-style)."""
    if not variant.compound_steps:
        return CompoundScaling()
    return CompoundScaling(variant.compound_steps, multipliers.width, multipliers.resolution,
                           multipliers.depth)


def build_variant(entry: BenchEntry, variant: BenchVariant, *,
                  multipliers: CompoundScaling = DEFAULT_MULTIPLIERS, channel_align: int = 1,
                  pad_input: bool = False, meta: bool = False, **band: Any) -> nn.Module:
    """``build_model`` of ``variant`` (``band``: ``band_limit`` / ``band_algorithm``); with
    ``meta`` on the "meta" device: shapes only, no weights are allocated or initialised."""
    def build() -> nn.Module:
        return build_model(entry.task, variant.build_fold, scaling=variant.scaling,
                           channel_align=channel_align, pad_input=pad_input,
                           compound=compound_of(variant, multipliers), **band)

    if not meta:
        return build()
    with torch.device("meta"):
        return build()


def variant_costs(entry: BenchEntry, variant: BenchVariant, batch_images: int,
                  **build: Any) -> list[LayerCost]:
    """Layer costs (``models/costs.py``) of ``variant`` for a batch of ``batch_images`` images,
    i.e. ``batch_images // images_per_input`` model inputs (``build``: as ``build_variant``)."""
    model = build_variant(entry, variant, meta=True, **build)
    return layer_costs(model, model_input_shape(model), batch_images // variant.images_per_input)
