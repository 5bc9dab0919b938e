#!/usr/bin/env python3
"""Set runs' training curves side by side at chosen epochs: one table row per epoch.

A cause experiment asks whether a changed setting (batch, learning rate) trains a run as another
setting does; the answer is the two curves at the same epochs, not only the final figure. Each
RUN is a run folder holding ``stats.csv`` (``SAVEDIR/<task>/fold<f>/``, as train.py writes it),
optionally named ``LABEL=FOLDER``. Epochs are ``stats.csv``'s own, counted from 0 (``--epochs 299`` is the row after 300 epochs of
training). A run that has not reached an epoch shows ``-`` there; the
last row (``last``) is each run's latest epoch, and ``best`` the epoch of best validation top-1
among epochs with the most classes active so far (for a finished run, every class: the epoch of
its ``best.pth``), with its test top-1.

Examples::

    python3 util/compare_curves.py b32=runs/paper-h200-batch32/sot/coin_count-digits_3_4-v2/fold4 \\
        lr8e-4=runs/paper-h200-lr8e-4/sot/coin_count-digits_3_4-v2/fold4 \\
        b256=model_files/paper-h200/sot/coin_count-digits_3_4-v2/fold4 --epochs 299 599 885 1499
    python3 util/compare_curves.py RUN... --metrics test_top1 --csv curves.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_write_text  # noqa: E402
from util.training.layout import STATS, STATS_FIELDS  # noqa: E402

DEFAULT_METRICS = ["train_top1", "test_top1"]


class CurveError(ValueError):
    """A run folder or metric that cannot be compared (the message says which and how to fix it)."""


def parse_run(spec: str) -> tuple[str, Path]:
    """``LABEL=FOLDER`` or ``FOLDER`` (labelled by its last two path parts)."""
    label, sep, folder = spec.partition("=")
    if not sep:
        folder = spec
        label = "/".join(Path(spec).parts[-2:])
    return label, Path(folder)


def load_curve(folder: Path, metrics: list[str]) -> pd.DataFrame:
    """A run's ``stats.csv`` indexed by epoch, with the asked metrics and ``classes``."""
    path = folder / STATS
    if not path.is_file():
        raise CurveError(f"no {STATS} in {folder}: give a run folder written by train.py "
                         f"(SAVEDIR/<task>/fold<f>)")
    df = pd.read_csv(path)
    missing = [m for m in metrics + ["epoch", "classes", "val_top1"] if m not in df.columns]
    if missing:
        raise CurveError(f"{path} lacks column(s) {', '.join(missing)}: choose --metrics from {STATS_FIELDS}")
    return df.set_index("epoch")


def best_epoch(df: pd.DataFrame) -> int:
    """Epoch of best validation top-1 among epochs with the most classes active (the first on ties)."""
    full = df[df["classes"] == df["classes"].max()]
    return int(full["val_top1"].idxmax())


def compare(runs: list[tuple[str, Path]], epochs: list[int], metrics: list[str]) -> pd.DataFrame:
    """Rows: each asked epoch, then ``last`` and ``best``; columns: ``<label> <metric>``."""
    curves = {label: load_curve(folder, metrics) for label, folder in runs}
    rows: dict[str, dict[str, str]] = {}
    for e in epochs:
        rows[str(e)] = {f"{label} {m}": (f"{df.at[e, m]:.2f}" if e in df.index else "-")
                        for label, df in curves.items() for m in metrics}
    rows["last"] = {f"{label} {m}": f"{df[m].iloc[-1]:.2f} (ep {df.index[-1]})"
                    for label, df in curves.items() for m in metrics}
    rows["best"] = {}
    for label, df in curves.items():
        b = best_epoch(df)
        for m in metrics:
            rows["best"][f"{label} {m}"] = f"{df.at[b, m]:.2f} (ep {b})"
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "epoch"
    return table


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder, or LABEL=FOLDER")
    p.add_argument("--epochs", nargs="+", type=int, default=[], help="epochs to show (default: none, "
                   "only the last and best rows)")
    p.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS,
                   help=f"stats.csv columns to show (default {' '.join(DEFAULT_METRICS)})")
    p.add_argument("--csv", default=None, help="also write the table here (atomic)")
    return p


def main(args: argparse.Namespace) -> pd.DataFrame:
    table = compare([parse_run(r) for r in args.runs], args.epochs, args.metrics)
    print(table.to_markdown() if _has_tabulate() else table.to_string())
    if args.csv:
        atomic_write_text(Path(args.csv), table.to_csv())
    return table


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(CurveError, OSError))
