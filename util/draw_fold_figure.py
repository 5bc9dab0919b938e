#!/usr/bin/env python3
"""Draw the FoldedCNN picture used in the README (``util/fold.png``).

``f`` images of ``C x H x W`` are stacked along the channel axis into one ``fC x H x W``
input; a CNN whose internal layers are ``sqrt(f)`` times wider classifies it with ``f * K``
logits, and block ``j`` of ``K`` logits belongs to image ``j`` (paper notes, section 1).
The figure is drawn with matplotlib shapes only, so it needs no data.

Examples::

    python3 util/draw_fold_figure.py                  # -> util/fold.png, f = 4
    python3 util/draw_fold_figure.py --fold 3 --out /tmp/fold3.png
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_savefig  # noqa: E402

OUT = Path(__file__).resolve().parent / "fold.png"
COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")
TEXTS = ("14.7k", "03.2k", "88.0k", "51.9k", "20.4k", "67.1k")
DEPTH = (0.16, 0.12)  # offset of one channel slab, to draw a stack in perspective


def _slab(ax, x: float, y: float, w: float, h: float, color: str, alpha: float = 1.0) -> None:
    """One channel: a front rectangle with a top and side face."""
    dx, dy = DEPTH
    ax.add_patch(Polygon([(x, y + h), (x + dx, y + h + dy), (x + w + dx, y + h + dy), (x + w, y + h)],
                         closed=True, fc=color, ec="white", lw=0.6, alpha=alpha * 0.7))
    ax.add_patch(Polygon([(x + w, y), (x + w + dx, y + dy), (x + w + dx, y + h + dy), (x + w, y + h)],
                         closed=True, fc=color, ec="white", lw=0.6, alpha=alpha * 0.55))
    ax.add_patch(Rectangle((x, y), w, h, fc=color, ec="white", lw=0.8, alpha=alpha))


def _stack(ax, x: float, y: float, w: float, h: float, colors: list[str], text: str | None = None) -> None:
    """Slabs from back to front; the front one may carry a word (the image's content)."""
    dx, dy = DEPTH
    n = len(colors)
    for i, c in enumerate(reversed(colors)):
        k = n - 1 - i
        _slab(ax, x + k * dx, y + k * dy, w, h, c, alpha=0.55 + 0.45 * (k == 0))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", color="white",
                fontsize=11, fontweight="bold", family="monospace")


def _arrow(ax, x0: float, y0: float, x1: float, y1: float, label: str = "") -> None:
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14,
                                 lw=1.4, color="#333333"))
    if label:
        ax.text((x0 + x1) / 2, max(y0, y1) + 0.18, label, ha="center", va="bottom", fontsize=8.5)


def draw(fold: int, out: Path) -> None:
    """Draw the figure for fold factor ``fold`` (2..6) into ``out`` (PNG, atomic)."""
    f = fold
    cols = COLORS[:f]
    fig, ax = plt.subplots(figsize=(13, 5.2))
    ax.set_xlim(0, 20)
    ax.set_ylim(-0.4, 8.2)
    ax.axis("off")

    # 1. f images, each C = 3 channels of H x W
    img_w, img_h, gap = 2.0, 0.9, 0.5
    top = 7.0
    ys = [top - j * (img_h + gap + 0.3) for j in range(f)]
    for j, (y, c) in enumerate(zip(ys, cols)):
        _stack(ax, 0.4, y - img_h, img_w, img_h, [c] * 3, TEXTS[j])
        ax.text(0.4, y + 0.42, f"image {j + 1}: C x H x W", fontsize=8.5, va="bottom")
    mid = (ys[0] + ys[-1] - img_h) / 2

    # 2. one folded input, f*C channels: image j occupies channels [jC, (j+1)C)
    sx, sw, sh = 4.6, 2.0, 2.2
    channels = [c for c in cols for _ in range(3)]
    dx, dy = DEPTH
    _stack(ax, sx, mid - sh / 2, sw, sh, channels, None)
    ax.text(sx + sw / 2 + len(channels) * dx / 2, mid + sh / 2 + len(channels) * dy + 0.15,
            f"one input: fC x H x W\n({f} x 3 = {3 * f} channels)", ha="center", va="bottom",
            fontsize=9)
    for j, y in enumerate(ys):
        _arrow(ax, 2.75, y - img_h / 2, sx - 0.1, mid + 0.5 - j * (1.0 / max(f - 1, 1)))
    ax.text(3.6, ys[-1] - img_h - 0.3, "concatenate\nalong channels", ha="center", va="top", fontsize=8.5)

    # 3. the CNN, internal widths x sqrt(f)
    cx, cw, ch = 9.3, 4.2, 3.0
    ax.add_patch(FancyBboxPatch((cx, mid - ch / 2), cw, ch, boxstyle="round,pad=0.1",
                                fc="#EEEEEE", ec="#555555", lw=1.2))
    wide = int(32 * math.sqrt(f))
    ax.text(cx + cw / 2, mid + 0.75, "CNN, same depth,\nkernels and resolution", ha="center",
            va="center", fontsize=10, fontweight="bold")
    ax.text(cx + cw / 2, mid - 0.55, f"every internal layer √f x wider\n(32 → {wide} channels at f = {f})\n"
            f"first layer: {3 * f} input channels\nlast layer: f x K outputs", ha="center",
            va="center", fontsize=8.5)
    _arrow(ax, sx + sw + len(channels) * dx + 0.15, mid, cx - 0.15, mid)

    # 4. f*K logits, block j = image j
    lx, lw, bh = 15.0, 0.55, 0.62
    total = f * bh
    y0 = mid + total / 2
    for j, c in enumerate(cols):
        yb = y0 - (j + 1) * bh
        ax.add_patch(Rectangle((lx, yb), lw, bh, fc=c, ec="white", lw=1))
        ax.text(lx + lw + 0.2, yb + bh / 2, f"K logits → class of image {j + 1}", va="center", fontsize=8.5)
    ax.text(lx + lw / 2, y0 + 0.15, "f x K logits", ha="center", va="bottom", fontsize=9)
    _arrow(ax, cx + cw + 0.15, mid, lx - 0.1, mid)
    ax.text(lx + 1.6, y0 - total - 0.35, "view(N, K): per-image logits in the original order",
            ha="center", va="top", fontsize=8.5, style="italic")

    ax.set_title(f"FoldedCNN, fold factor f = {f}: {f} images in, {f} predictions out, one "
                 "pass of a wider CNN", fontsize=11)
    fig.tight_layout()
    try:
        atomic_savefig(fig, out)
    finally:
        plt.close(fig)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fold", type=int, default=4, help="fold factor to draw, 2..6 (default 4)")
    p.add_argument("--out", type=Path, default=OUT, help=f"PNG path (default {OUT.name} beside this script)")
    return p


def main(args: argparse.Namespace) -> None:
    if not 2 <= args.fold <= len(COLORS):
        raise ValueError(f"--fold {args.fold}: the figure draws fold factors 2..{len(COLORS)}")
    draw(args.fold, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(ValueError,))
