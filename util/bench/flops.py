"""FLOP table of the benchmark models, counted with thop (FLOPs = 2 x MACs) per ONE input.

Counted as the released ``config/model_map.json`` was: the thop of 2020 counted a conv's bias
add as one more MAC per output element (today's thop drops it), so a conv with bias counts
``out elements x (Cin / groups x KH x KW + 1)`` MACs; a linear layer counts ``in x out`` MACs
per input, no bias, as then. Its game-CNN rows (original and folded) are larger than this
count by exactly 2 x the classifier's MACs: they took the classifier twice, while the
EfficientNet entries' ``og_ops`` (the same original network) took it once. The table here
reproduces that (``CLASSIFIER_COUNTED_TWICE``) so that it equals the released one on every
entry; the extra is 0.02-0.6% of a row (largest for V5's 111 classes at f = 4).

A folded input holds ``f`` images, so a folded count covers ``f`` images. The table has the
original's shape (``config/model_map.json``)::

    {"lol/goldnumber-fraction": {"og_ops": .., "fold2_ops": .., "fold3_ops": .., "fold4_ops": ..},
     "noscope_coral": {...},
     "efficientnet-game_lol/goldnumber-fraction": {"og_ops": .., "fold2_ops": ..}}

where an EfficientNet entry's ``fold2_ops`` is the compound-scaled model (the original
benchmarked it as "fold 2") and its ``og_ops`` the original CNN.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import torch

from config.tasks import CONFIG_DIR, BenchEntry, TaskError, bench_entries
from models import BandLimitedConv2d, model_input_shape
from models.costs import bandlimited_cost
from util.bench.variants import build_variant

MODEL_MAP = CONFIG_DIR / "model_map.json"
# Architectures whose fold rows the released table counted with the classifier twice.
CLASSIFIER_COUNTED_TWICE = ("game_cnn",)


def _conv_macs_with_bias(m: torch.nn.Conv2d, x: tuple, y: torch.Tensor) -> None:
    """thop hook counting a conv as the released table did: its bias add is one more MAC."""
    per_output = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    m.total_ops += torch.DoubleTensor([y.numel() * (per_output + (m.bias is not None))])


def _count_bandlimited(layer: BandLimitedConv2d, inputs: tuple[torch.Tensor, ...],
                       output: torch.Tensor) -> None:
    """thop counter of a band-limited conv: the MACs (FLOPs / 2) its algorithm executes
    (``models.costs.bandlimited_cost``, bias adds included), not the direct convolution's."""
    x = inputs[0]
    cost = bandlimited_cost(layer, x.shape[0], x.shape[2], x.shape[3], output.shape[2],
                            output.shape[3])
    layer.total_ops += torch.DoubleTensor([(cost.flops + cost.bias_flops) / 2])


def thop_flops(model: torch.nn.Module) -> int:
    """FLOPs of one input through ``model``: 2 x the MACs thop counts (conv bias included)."""
    from thop import profile  # imported here: thop prints on import and patches nothing globally

    with contextlib.redirect_stdout(io.StringIO()):
        x = torch.zeros(1, *model_input_shape(model), device=next(model.parameters()).device)
        macs, _ = profile(model.eval(), inputs=(x,),
                          custom_ops={torch.nn.Conv2d: _conv_macs_with_bias,
                                      BandLimitedConv2d: _count_bandlimited}, verbose=False)
    return int(round(2 * macs))


def flop_column(fold: int) -> str:
    """The table's column of a FOLD: ``og_ops`` for 1, else ``fold<F>_ops``."""
    return "og_ops" if fold == 1 else f"fold{fold}_ops"


def variant_flops(entry: BenchEntry, fold: int, channel_align: int = 1, **band) -> int:
    """``thop_flops`` of ``entry`` at ``fold``, as the released table counted it (module
    docstring: a game CNN's fold rows take the classifier twice); ``band``: ``band_limit`` /
    ``band_algorithm`` of ``build_model`` (band-limited CNNs count the FLOPs of their
    Fourier-domain convolutions)."""
    model = build_variant(entry, entry.variant(fold), channel_align=channel_align, meta=True, **band)
    flops = thop_flops(model)
    if not entry.is_efficientnet and entry.task.arch in CLASSIFIER_COUNTED_TWICE:
        flops += 2 * model.head.in_features * model.head.out_features
    return flops


def entry_flops(entry: BenchEntry, channel_align: int = 1, **band) -> dict[str, int]:
    """The table row of ``entry``: every FOLD of ``entry.flop_folds`` (``band``: as
    ``variant_flops``)."""
    return {flop_column(f): variant_flops(entry, f, channel_align, **band) for f in entry.flop_folds}


def flop_table(channel_align: int = 1, **band) -> dict[str, dict[str, int]]:
    """The whole table, in the benchmark's model order (``band``: as ``entry_flops``)."""
    return {e.flop_key: entry_flops(e, channel_align, **band) for e in bench_entries()}


def load_model_map(path: Path = MODEL_MAP) -> dict[str, dict[str, int]]:
    if not path.exists():
        raise TaskError(f"{path} is missing; regenerate it with ./flop_count.sh > {path}")
    return json.loads(path.read_text())


def flops_from_tput(entry: BenchEntry, fold: int, images_per_sec: float,
                    model_map: dict[str, dict[str, int]] | None = None) -> float:
    """FLOPs/sec achieved at ``images_per_sec``: ``ops / f * tput`` (EfficientNet: ``ops``).

    ``fold`` is the benchmark's fold column: 1 = original, 2..4 = folded, and for an
    EfficientNet entry 2 = the compound-scaled model (one image per input).
    """
    table = model_map if model_map is not None else load_model_map()
    key = flop_column(fold)
    try:
        ops = table[entry.flop_key][key]
    except KeyError:
        raise TaskError(f"no {key} for {entry.flop_key!r} in the FLOP table; "
                        "regenerate it with ./flop_count.sh") from None
    return ops / entry.variant(fold).images_per_input * images_per_sec
