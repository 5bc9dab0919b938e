"""``build_model(task, fold)``: the one entry point that builds any model of any task.

Training, ``infer.py``, ``flop_count.sh`` and ``ai.py`` all call it, so FLOPs, arithmetic
intensity and throughput always describe the same network.
"""
from __future__ import annotations

import math
from typing import Callable

from config.tasks import Task, TaskError, check_fold, get_task

from .bandlimit import BandLimitError, band_limit_model
from .game_cnn import CompoundScaling, GameCNN, efficientnet_game_cnn
from .layers import FoldableNet
from .noscope_cnn import NoScopeCNN
from .resnet import ResNet18

# Architecture name in a task JSON ("model": {"arch": ...}) -> constructor.
ARCHITECTURES: dict[str, Callable[..., FoldableNet]] = {
    "game_cnn": GameCNN,
    "noscope_cnn": NoScopeCNN,
    "resnet18": ResNet18,
}
# fold: the FoldedCNN (f images per input); widen: the original's interface (one image, K
# logits) with the folded widths, which the released inference.py times for FOLD > 1 without
# --do_fold; efficientnet: the compound-scaled baseline of a game CNN.
SCALINGS = ("fold", "widen", "efficientnet")


def build_model(task: str | Task, fold: int = 1, *, scaling: str = "fold",
                channel_align: int = 1, pad_input: bool = False,
                compound: CompoundScaling = CompoundScaling(),
                band_limit: float | None = None, band_algorithm: str = "auto",
                band_energy: float | None = None) -> FoldableNet:
    """Build ``task``'s CNN with fold factor ``fold`` (1 = the original CNN).

    scaling: ``"fold"`` (FoldedCNN), ``"widen"`` (every internal width x sqrt(``fold``) but
        one image in and ``K`` logits out) or ``"efficientnet"`` (the compound-scaled
        baseline described by ``compound``, game tasks only, never folded: ``fold`` must be 1).
    channel_align: round every internal width up to a multiple of this (1 = paper widths).
    pad_input: also zero-pad the ``f * C`` input channels up to a multiple of
        ``channel_align`` (the model pads inputs that arrive unpadded).
    band_limit: a band-limited CNN (``models/bandlimit.py``): every conv with a kernel larger
        than 1 x 1 discards this percentage of its spectrum (0 = full spectrum, computed in
        the Fourier domain); None (default) = ordinary convolutions.
    band_algorithm: ``"fft"``, ``"dft"`` or ``"auto"`` (by device), for band-limited convs.
    band_energy: instead of ``band_limit``, keep the smallest band holding this percentage of
        each input batch's spectral energy.
    """
    task = get_task(task)
    check_fold(fold)
    if isinstance(channel_align, bool) or not isinstance(channel_align, int) or channel_align < 1:
        raise TaskError(f"bad channel_align {channel_align!r}: use an integer >= 1 (1 = paper widths)")
    if task.arch not in ARCHITECTURES:
        raise TaskError(f"{task.name}: unknown arch {task.arch!r}; valid: {', '.join(ARCHITECTURES)}")
    model = _build(task, fold, scaling, channel_align, pad_input, compound)
    model.band_limit, model.band_energy = band_limit, band_energy
    if band_limit is not None or band_energy is not None:
        try:
            band_limit_model(model, compress_rate=band_limit, preserve_energy=band_energy,
                             algorithm=band_algorithm)
        except BandLimitError as exc:
            raise TaskError(str(exc)) from None
    return model


def _build(task: Task, fold: int, scaling: str, channel_align: int, pad_input: bool,
           compound: CompoundScaling) -> FoldableNet:
    common = dict(image_channels=task.in_channels, channel_align=channel_align, pad_input=pad_input)
    arch = ARCHITECTURES[task.arch]
    if scaling == "fold":
        return arch(task.height, task.width, task.num_classes, fold, **task.arch_args, **common)
    if scaling == "widen":
        return arch(task.height, task.width, task.num_classes, 1, width_scale=math.sqrt(fold),
                    **task.arch_args, **common)
    if scaling == "efficientnet":
        if not task.efficientnet_baseline:
            raise TaskError(f"{task.name} has no EfficientNet-style baseline "
                            "(only game-scraping tasks do)")
        if fold != 1:
            raise TaskError(f"the EfficientNet-style baseline is not folded: use fold 1, not {fold}")
        return efficientnet_game_cnn(task.height, task.width, task.num_classes, scaling=compound,
                                     **task.arch_args, **common)
    raise TaskError(f"unknown scaling {scaling!r}; valid: {', '.join(SCALINGS)}")


def model_input_shape(model: FoldableNet) -> tuple[int, int, int]:
    """(channels, H, W) of one model input: f stacked images (padded when asked)."""
    return (model.in_channels, *model.input_size)
