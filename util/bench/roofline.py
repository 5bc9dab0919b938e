"""The layer roofline of a benchmark model, and bytes per element: one owner for the
benchmark (``roofline_fraction``), ``ai.py --roofline``, the report's bound and the plots.

Roofline time of a batch: every conv and linear layer takes max(FLOPs / peak, bytes /
bandwidth) and the layers add up (``models.costs.roofline_seconds``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.tasks import BenchEntry, BenchVariant

# Bytes of one element of each benchmark precision (weights and activations alike).
BYTES_PER_ELEMENT = {"fp16": 2, "bf16": 2, "fp32": 4}


def bytes_per_element(precision: str) -> int:
    """Bytes per element of ``precision``; a one-line error naming the valid ones."""
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(BYTES_PER_ELEMENT)}") from None


def precision_of_bytes(nbytes: int) -> str | None:
    """The first precision with ``nbytes`` per element (2 -> fp16, 4 -> fp32), else None."""
    return next((p for p, b in BYTES_PER_ELEMENT.items() if b == nbytes), None)


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
    from models.costs import roofline_seconds
    from util.bench.variants import variant_costs

    costs = variant_costs(entry, variant, batch_images, **build)
    f = variant.images_per_input
    return Roofline(roofline_seconds(costs, peak_flops, bytes_per_sec, bytes_per_elt),
                    (batch_images // f) * f)
