"""Figures of the report (matplotlib, Agg backend, PNG): training curves and speedups.

Each function writes one PNG and returns nothing; ``util/report.py`` builds all figures in a
temporary folder and renames it into place, so the folder is replaced atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DPI = 110


def _color(i: int) -> str:
    return plt.get_cmap("tab10")(i % 10)


def plot_curves(title: str, runs: dict[int, pd.DataFrame], paper: dict[int, float | None],
                out: Path, efficientnet: pd.DataFrame | None = None) -> None:
    """Validation top-1 per epoch, one line per fold (f = 1 is the original, solid black),
    with the paper's test top-1 of the same fold as a dotted line; the EfficientNet-style
    baseline of the task, when given, dashed grey."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    if efficientnet is not None:
        ax.plot(efficientnet["epoch"], efficientnet["val_top1"], color="gray", ls="--", lw=1.4,
                label="EfficientNet-style baseline")
    for i, (fold, df) in enumerate(sorted(runs.items())):
        color = "black" if fold == 1 else _color(i)
        label = "original (f = 1)" if fold == 1 else f"folded f = {fold}"
        if "classes" in df.columns and df["classes"].nunique() > 1:
            full = df.loc[df["classes"] == df["classes"].max(), "epoch"].min()
            label += f" (curriculum: all classes from epoch {int(full)})"
        ax.plot(df["epoch"], df["val_top1"], color=color, lw=1.6, label=label)
        if paper.get(fold) is not None:
            ax.axhline(paper[fold], color=color, ls=":", lw=1.2)
    if any(v is not None for v in paper.values()):
        ax.plot([], [], color="gray", ls=":", label="paper's test top-1 (same colour = same f)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def plot_speedups(title: str, labels: Sequence[str], folds: Sequence[int],
                  ours: dict[tuple[str, int], float], paper: dict[tuple[str, int], float | None],
                  out: Path) -> None:
    """Grouped bars per model: our speedup (solid) and the paper's (hatched) for each fold."""
    n = len(folds)
    width = 0.8 / (2 * n)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.2))
    for j, fold in enumerate(folds):
        xs = [i - 0.4 + (2 * j + 0.5) * width for i in range(len(labels))]
        ax.bar(xs, [ours.get((m, fold), 0) for m in labels], width, color=_color(j),
               label=f"ours f = {fold}")
        ax.bar([x + width for x in xs], [paper.get((m, fold)) or 0 for m in labels], width,
               color="white", edgecolor=_color(j), hatch="///", label=f"paper f = {fold}")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("speedup over the original")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=n, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
