"""The layer roofline of a benchmark model: one owner for the benchmark
(``roofline_fraction``), ``ai.py --roofline`` and the report's bound (bytes per element:
``util.bench.config.bytes_per_element``).

Roofline time of a batch: every conv and linear layer takes max(FLOPs / peak, bytes /
bandwidth) and the layers add up (``models.costs.roofline_seconds``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.tasks import BenchEntry, BenchVariant
from models.costs import roofline_seconds
from util.bench.variants import variant_costs


@dataclass(frozen=True)
class Roofline:
    """A batch at the layer roofline: its seconds and the images it classifies."""
    seconds: float
    images: int

    @property
    def images_per_sec(self) -> float:
        return self.images / self.seconds


def layer_roofline(entry: BenchEntry, variant: BenchVariant, batch_images: int, peak_flops: float,
                   bytes_per_sec: float, bytes_per_elt: int, **build: Any) -> Roofline:
    """``variant`` of ``entry`` at a batch of ``batch_images`` images (a folded model gets
    ``batch_images // f`` inputs, so ``(batch_images // f) * f`` images) with every layer at
    the roofline of ``peak_flops`` and ``bytes_per_sec`` (``build``: as
    ``util.bench.variants.build_variant``: channel_align, pad_input, multipliers, band)."""
    costs = variant_costs(entry, variant, batch_images, **build)
    f = variant.images_per_input
    return Roofline(roofline_seconds(costs, peak_flops, bytes_per_sec, bytes_per_elt),
                    (batch_images // f) * f)
