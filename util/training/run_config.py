"""One training run's settings: the ``RunConfig`` dataclass, and its command line derived from it.

Every setting is spelled once, as a field with its default and its option (flag, help) in the
field's metadata. ``add_config_arguments`` builds ``fold_trainer.py``'s options from the
fields (``train.py`` takes the shared ones), ``config_argv`` writes a config back as those
options and ``config_from_args`` reads it: ``train.py --jobs N`` starts each run as
``fold_trainer.py <config_argv(cfg)>``, so a child trains exactly the run the parent planned.
"""
from __future__ import annotations

import argparse
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from config.tasks import TrainRecipe, get_task
from models.bandlimit import ALGORITHMS, BandLimitError, check_band_settings

from .errors import TrainError

AMP_MODES = ("none", "tf32", "bf16", "fp16")
EFFNET_RESIZES = ("released", "aspect")
BAND_ALGORITHMS = ALGORITHMS + ("auto",)


def _arg(help: str, flag: str | None = None, per_run: bool = False, **argparse_kwargs: Any) -> dict[str, Any]:
    """A field's option: ``flag`` (None: positional), ``help``; ``per_run``: set by train.py for
    each run it plans, so only ``fold_trainer.py`` takes it on its command line."""
    return {"flag": flag, "help": help, "per_run": per_run or flag is None, **argparse_kwargs}


@dataclass
class RunConfig:
    """Everything one run needs; saved as ``config.json`` next to its checkpoints."""
    task: str = field(metadata=_arg("task name from config/, e.g. lol/goldnumber-fraction"))
    fold: int = field(metadata=_arg("fold factor f (1 = original CNN)"))
    outdir: str = field(metadata=_arg("run folder (checkpoints, stats, config.json)"))
    epochs: int | None = field(default=None, metadata=_arg("override the recipe's epochs", "--epochs"))
    batch_size: int | None = field(default=None, metadata=_arg(  # images, before trimming to a multiple of f
        "override the recipe's batch (images)", "--batch-size"))
    lr: float | None = field(default=None, metadata=_arg(
        "override the recipe's learning rate, e.g. scaled with a larger --batch-size (a resumed run "
        "keeps the rate its checkpoint was trained with)", "--lr"))
    device: str = field(default="auto", metadata=_arg("auto (CUDA if present), cpu, cuda, cuda:N", "--device"))
    channel_align: int = field(default=1, metadata=_arg(
        "round internal widths up to a multiple of this", "--channel-align"))
    seed: int = field(default=0, metadata=_arg("seed of init, groups and augmentation", "--seed"))
    data_root: str | None = field(default=None, metadata=_arg(
        "folder that replaces the repository's data/ (e.g. data/game_data/... -> ROOT/game_data/...)",
        "--data-root"))
    teacher: str | None = field(default=None, metadata=_arg(
        "f=1 checkpoint to distil from (runs whose recipe distils; default: OUTDIR/../fold1/best.pth)",
        "--teacher", per_run=True))
    continue_from_file: str | None = field(default=None, metadata=_arg(
        "start a run that has no current.pth from this checkpoint: ours, or one the released trainer "
        "wrote (its layer names and optimizer order are mapped)", "--continue_from_file"))
    eval_orders: int = field(default=0, metadata=_arg(
        "after training, check prediction agreement under K in-group permutations", "--eval-orders"))
    cuda_graph: bool = field(default=True, metadata=_arg("run training steps eagerly on CUDA", "--no-cuda-graph"))
    compile_step: bool = field(default=False, metadata=_arg(
        "fewer, fused kernels per training step, which is what bounds these small CNNs at batch 32: "
        "torch.compile the forward and loss (and so their backward), the fused Adam/SGD, "
        "cudnn.benchmark; on CPU the step is only traced (aot_eager), a check, not a speed-up",
        "--compile-step"))
    amp: str = field(default="none", metadata=_arg(
        "CUDA numerics: none = fp32 as released (default, TF32 off), tf32, or bf16 / fp16 autocast",
        "--amp", choices=AMP_MODES))
    scale_curriculum: bool = field(default=True, metadata=_arg(
        "keep the curriculum period even when --epochs shortens the run", "--no-scale-curriculum"))
    progress: bool = field(default=True, metadata=_arg(
        "no progress bars (for logs); the one line per epoch is still printed", "--no-progress"))
    efficientnet: bool = field(default=False, metadata=_arg(
        "train the EfficientNet-style baseline of a game task (paper Table 5) instead of a FoldedCNN: "
        "fold 1, images resized by 1/1.15 as the released code did", "--efficientnet"))
    effnet_resize: str = field(default="released", metadata=_arg(
        "--efficientnet images: 'released' = int(W/1.15) rows x int(H/1.15) columns, as the released "
        "train.py resized them (rows and columns swapped); 'aspect' = int(H/1.15) x int(W/1.15)",
        "--effnet-resize", choices=EFFNET_RESIZES))
    band_limit: float | None = field(default=None, metadata=_arg(
        "train the band-limited CNN discarding CR%% of each conv's spectrum (0 = all kept, in the Fourier "
        "domain); default: ordinary convs", "--band-limit", per_run=True, metavar="CR"))
    band_algorithm: str = field(default="auto", metadata=_arg(
        "algorithm of band-limited convs: fft (rfft2), dft (truncated DFT as matrix products) or auto (dft)",
        "--band-algorithm", choices=BAND_ALGORITHMS))

    def __post_init__(self) -> None:
        if self.teacher is None:  # the fold-1 run beside this one
            self.teacher = str(Path(self.outdir).parent / "fold1" / "best.pth")


_TYPES = {"int": int, "float": float, "str": str}


def _base_type(f: Field) -> type:
    """``int`` for a field annotated ``int | None`` (annotations are strings here)."""
    return _TYPES[str(f.type).split("|")[0].strip()]


def add_config_arguments(p: argparse.ArgumentParser, per_run: bool = True) -> None:
    """Add an option per RunConfig field; ``per_run=False`` leaves out the per-run ones (task,
    fold, outdir, teacher, band limit), which train.py sets for each run it plans."""
    for f in fields(RunConfig):
        meta = f.metadata
        if meta["per_run"] and not per_run:
            continue
        extra = {k: v for k, v in meta.items() if k not in ("flag", "help", "per_run")}
        if meta["flag"] is None:
            p.add_argument(f.name, type=_base_type(f), help=meta["help"])
        elif f.type == "bool":  # the flag turns the default around
            p.add_argument(meta["flag"], dest=f.name, action="store_false" if f.default else "store_true",
                           help=meta["help"])
        else:
            p.add_argument(meta["flag"], dest=f.name, type=_base_type(f), default=f.default,
                           help=meta["help"], **extra)


def config_from_args(args: argparse.Namespace, **per_run: Any) -> RunConfig:
    """The RunConfig of parsed options (inverse of ``config_argv``); ``per_run`` sets or replaces
    fields, e.g. those train.py plans for each run."""
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if hasattr(args, f.name)}
    return RunConfig(**{**given, **per_run})


def config_argv(cfg: RunConfig) -> list[str]:
    """``fold_trainer.py`` arguments that train exactly ``cfg``."""
    argv: list[str] = []
    for f in fields(RunConfig):
        flag, value = f.metadata["flag"], getattr(cfg, f.name)
        if flag is None:
            argv.append(str(value))
        elif f.type == "bool":
            argv += [flag] if value != f.default else []
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def check_overrides(epochs: int | None, batch_size: int | None, lr: float | None = None) -> None:
    """``--epochs``, ``--batch-size`` and ``--lr`` must be positive when given."""
    if epochs is not None and epochs < 1 or batch_size is not None and batch_size < 1:
        raise TrainError("--epochs and --batch-size must be >= 1")
    if lr is not None and not lr > 0:
        raise TrainError(f"--lr must be a positive learning rate, got {lr}")


def check_band_limit(band_limit: float, algorithm: str) -> None:
    """A bad --band-limit is a one-line TrainError before any work."""
    try:
        check_band_settings(band_limit, None, algorithm)
    except BandLimitError as exc:
        raise TrainError(str(exc)) from None


def effective_recipe(cfg: RunConfig) -> TrainRecipe:
    """The task's recipe for ``cfg.fold`` with the command-line overrides applied."""
    r = get_task(cfg.task).recipe(cfg.fold)
    return replace(r, batch_size=cfg.batch_size or r.batch_size, epochs=cfg.epochs or r.epochs,
                   lr=cfg.lr or r.lr)
