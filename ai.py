#!/usr/bin/env python3
"""Arithmetic intensity (AI) of the original, folded and EfficientNet-style CNNs.

AI = FLOPs / bytes over a model's conv and linear layers (paper section 2; formula in
``models/costs.py``), at a batch of ``--batch_size`` images (a folded model gets
``batch_size // f`` inputs) and ``--bytes_per_elt`` bytes per element.

Examples::

    python3 ai.py                       # FP16 (2 bytes), batch 1024, all groups
    python3 ai.py --bytes_per_elt 4     # FP32
    python3 ai.py --groups game --folds 2 4 8

CSV columns: ``model,batch_size,original_AI,tformed_AI_2,tformed_AI_3,tformed_AI_4`` (one
``tformed_AI_<f>`` per ``--folds``). In the ``efficientnet`` group, ``tformed_AI_2`` is the
compound-scaled model (the original benchmarked it as "fold 2"); other columns stay empty.
"""
from __future__ import annotations

import argparse
import csv
import sys

from config.tasks import BenchEntry, TaskError, bench_entries
from models import build_model, model_input_shape
from models.costs import arithmetic_intensity, layer_costs

GROUPS = ("game", "noscope", "efficientnet")


def model_ai(entry: BenchEntry, fold: int, batch_size: int, bytes_per_elt: int,
             channel_align: int = 1) -> float:
    """AI of ``entry`` at ``fold`` for a batch of ``batch_size`` images."""
    scaling = "efficientnet" if (entry.scaling == "efficientnet" and fold != 1) else "fold"
    f = 1 if scaling == "efficientnet" else fold
    model = build_model(entry.task, f, scaling=scaling, channel_align=channel_align)
    return arithmetic_intensity(layer_costs(model, model_input_shape(model), batch_size // f),
                                bytes_per_elt)


def group_of(entry: BenchEntry) -> str:
    return "efficientnet" if entry.scaling == "efficientnet" else entry.task.family


def ai_rows(groups=GROUPS, folds=(2, 3, 4), batch_size: int = 1024, bytes_per_elt: int = 2,
            channel_align: int = 1) -> list[dict[str, object]]:
    rows = []
    for entry in bench_entries():
        if group_of(entry) not in groups:
            continue
        row: dict[str, object] = {"model": entry.name, "batch_size": batch_size,
                                  "original_AI": model_ai(entry, 1, batch_size, bytes_per_elt,
                                                          channel_align)}
        for f in folds:
            keep = entry.scaling == "fold" or f == 2
            row[f"tformed_AI_{f}"] = (model_ai(entry, f, batch_size, bytes_per_elt, channel_align)
                                      if keep else "")
        rows.append(row)
    return rows


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=1024, help="images per batch (default 1024)")
    p.add_argument("--bytes_per_elt", type=int, default=2, help="bytes per element: 2 = FP16 (default), 4 = FP32")
    p.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS), help="model groups to print")
    p.add_argument("--folds", nargs="+", type=int, default=[2, 3, 4], help="fold factors (default 2 3 4)")
    p.add_argument("--channel-align", type=int, default=1, help="round internal widths up to this multiple")
    return p


def main(args: argparse.Namespace) -> None:
    if args.batch_size < 1 or args.bytes_per_elt < 1 or any(f < 2 for f in args.folds):
        raise TaskError("--batch_size and --bytes_per_elt must be >= 1 and every --folds value >= 2")
    rows = ai_rows(args.groups, args.folds, args.batch_size, args.bytes_per_elt, args.channel_align)
    out = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    out.writeheader()
    for row in rows:
        out.writerow({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in row.items()})


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except TaskError as exc:
        sys.exit(f"error: {exc}")
