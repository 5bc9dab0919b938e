"""FLOP table of the benchmark models, counted with thop (FLOPs = 2 x MACs) per ONE input.

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
from models import build_model, model_input_shape

MODEL_MAP = CONFIG_DIR / "model_map.json"
FOLDS = (2, 3, 4)


def thop_flops(model: torch.nn.Module) -> int:
    """FLOPs of one input through ``model``: 2 x the MACs thop counts."""
    from thop import profile  # imported here: thop prints on import and patches nothing globally

    with contextlib.redirect_stdout(io.StringIO()):
        macs, _ = profile(model.eval(), inputs=(torch.zeros(1, *model_input_shape(model)),),
                          verbose=False)
    return int(round(2 * macs))


def entry_flops(entry: BenchEntry, channel_align: int = 1) -> dict[str, int]:
    if entry.scaling == "efficientnet":
        return {"og_ops": thop_flops(build_model(entry.task, 1, channel_align=channel_align)),
                "fold2_ops": thop_flops(build_model(entry.task, 1, scaling="efficientnet",
                                                    channel_align=channel_align))}
    row = {"og_ops": thop_flops(build_model(entry.task, 1, channel_align=channel_align))}
    for f in FOLDS:
        row[f"fold{f}_ops"] = thop_flops(build_model(entry.task, f, channel_align=channel_align))
    return row


def flop_table(channel_align: int = 1) -> dict[str, dict[str, int]]:
    """The whole table, in the benchmark's model order."""
    return {e.flop_key: entry_flops(e, channel_align) for e in bench_entries()}


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
    key = "og_ops" if fold == 1 else f"fold{fold}_ops"
    try:
        ops = table[entry.flop_key][key]
    except KeyError:
        raise TaskError(f"no {key} for {entry.flop_key!r} in the FLOP table; "
                        "regenerate it with ./flop_count.sh") from None
    per_input_images = 1 if (entry.scaling == "efficientnet" or fold == 1) else fold
    return ops / per_input_images * images_per_sec
