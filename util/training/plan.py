"""Which runs a savedir trains, in which order, and the settings of each: ``train.py`` trains
them, ``util/training/throughput.py`` launches the same children to time them.

A folded CIFAR-10 run distils from an f=1 teacher: the released code's ``model.t7``, else a shipped
``best.pth`` under ``model_files/<task>/<arch>/``, else this savedir's fold-1 run, which is then
planned (and trained) first.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from config.tasks import REPO_ROOT, get_task
from util.training.layout import BEST, run_dir
from util.training.run_config import RunConfig, config_from_args

TEACHER_FILES = REPO_ROOT / "model_files"
TEACHER_NAMES = ("model.t7", "best.pth")  # the released code's teacher file, then ours


def teacher_path(savedir: Path, task: str) -> Path:
    """The f=1 model a distilled run learns from: a shipped one (the released code's
    ``model.t7``, then ours), else this savedir's fold-1 run."""
    shipped = TEACHER_FILES / task / get_task(task).arch
    for name in TEACHER_NAMES:
        if (shipped / name).exists():
            return shipped / name
    return run_dir(savedir, task, 1) / BEST


def distils(task: str, fold: int) -> bool:
    """Whether the (task, fold) run learns from the task's f=1 model (CIFAR-10 folded runs)."""
    return fold > 1 and get_task(task).recipe(fold).distill_folded


def distils_from_this_savedir(savedir: Path, task: str, fold: int) -> bool:
    """Whether the run needs this savedir's fold-1 model (no shipped teacher), so waits for it."""
    return distils(task, fold) and teacher_path(savedir, task) == run_dir(savedir, task, 1) / BEST


Run = tuple[str, int, float | None]  # (task, fold, band limit or None)


def plan_runs(tasks: list[str], folds: list[int], savedir: Path,
              band_limits: tuple[float | None, ...] | list[float | None] = (None,)) -> list[Run]:
    """(task, fold, band limit) in training order: the ordinary fold-1 run first whenever a
    folded run distils from it (band-limited runs distil from it too)."""
    runs: list[Run] = []
    bands = list(dict.fromkeys(band_limits))
    for task in tasks:
        need_teacher = any(distils(task, f) for f in folds)
        task_runs = [(task, f, b) for f in sorted(set(folds)) for b in bands]
        if need_teacher and (task, 1, None) not in task_runs and not teacher_path(savedir, task).exists():
            task_runs = [(task, 1, None)] + task_runs
        runs += task_runs
    return runs


def run_config(args: argparse.Namespace, savedir: Path, task: str, fold: int, device: str,
               band_limit: float | None = None) -> RunConfig:
    """One run's settings, the same whether it trains in this process or in a child."""
    outdir = run_dir(savedir, task, fold, args.efficientnet, band_limit)
    return config_from_args(args, task=task, fold=fold, outdir=str(outdir), device=device,
                            teacher=str(teacher_path(savedir, task)), band_limit=band_limit)
