"""Trained runs' best checkpoints evaluated on a data split, and the CSV that holds the result.

Why: the default pipeline trains a few epochs only. The runs shipped in ``model_files/paper-h200/``
were trained to the paper's recipe; evaluating their ``best.pth`` on the test split the
pipeline has just generated shows real accuracies on data the runs never saw, next to the
accuracy each run measured on its own test split and the paper's.

A row per asked-for (task, fold): ``status`` is ``ok``, or ``no checkpoint`` when the run
folder holds no ``best.pth`` (a checkout without the shipped weights), which is reported, not
raised. ``TABLE`` is the CSV's schema (``util/bench/results.py``); the report reads it back
with ``read_eval_csv``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from config.tasks import get_task
from datasets import ImageSet, load_split
from models import FoldableNet, build_model
from util.bench.results import Column, CsvTable, ResultsError
from util.cli import exception_line
from util.records.atomic import atomic_write_text

from .checkpoint import load_checkpoint, model_weights
from .errors import TrainError
from .evaluate import Evaluator
from .layout import BEST, CURRENT, read_done, run_dir

EVAL_FIELDS = ["task", "paper_id", "fold", "split", "images", "status", "test_top1", "test_top5",
               "trained_test_top1", "trained_epochs", "checkpoint_epoch", "top1_by_place", "run"]
TABLE = CsvTable(tuple(Column(n, "int") if n in ("fold", "images", "trained_epochs", "checkpoint_epoch")
                       else Column(n, "float") if n in ("test_top1", "test_top5", "trained_test_top1")
                       else Column(n) for n in EVAL_FIELDS),
                 producer="util/evaluate_runs.py",
                 required=tuple(n for n in EVAL_FIELDS if n != "top1_by_place"))  # added later
OK, MISSING = "ok", "no checkpoint"
CHECKPOINTS = {"best": BEST, "current": CURRENT}  # --checkpoint: the best epoch's, or the latest epoch's


def load_trained_model(path: Path) -> tuple[FoldableNet, dict[str, Any]]:
    """The registry network of a checkpoint fold_trainer.py wrote (``best.pth`` or
    ``current.pth``: FoldedCNN, EfficientNet-style or band-limited, as its ``scaling`` and
    ``band_limit`` say), its weights loaded (``weights_only=True``), and the checkpoint itself."""
    if not Path(path).is_file():
        raise TrainError(f"checkpoint {path} does not exist; give a best.pth written by fold_trainer.py")
    ckpt = load_checkpoint(path)
    weights, channel_align = model_weights(ckpt)
    if not {"task", "fold"} <= set(ckpt):
        raise TrainError(f"{path} is not a fold_trainer.py checkpoint (it needs model, task and fold entries)")
    band = {} if ckpt.get("band_limit") is None else {"band_limit": float(ckpt["band_limit"])}
    model = build_model(get_task(ckpt["task"]), int(ckpt["fold"]), scaling=ckpt.get("scaling", "fold"),
                        channel_align=channel_align, **band)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise TrainError(f"{path} does not fit the registry's {ckpt['task']} f={ckpt['fold']} network "
                         f"({exception_line(exc)}); retrain it") from None
    return model.eval(), ckpt


def format_places(top1: list[float]) -> str:
    """The ``top1_by_place`` cell: top-1 (%) at places 0..f-1 of the groups, '74.0/60.5/81.8/76.4'."""
    return "/".join(f"{a:.1f}" for a in top1)


def evaluate_run(savedir: Path, task: str, fold: int, data: ImageSet, split: str,
                 device: torch.device, by_place: bool = False, checkpoint: str = BEST) -> dict[str, Any]:
    """One ``EVAL_FIELDS`` row: run ``SAVEDIR/<task>/fold<f>``'s ``checkpoint`` (``best.pth``, or
    ``current.pth`` for a run in training) on ``data``; with ``by_place``, a folded run's top-1 at
    each place of the group too (one prediction)."""
    t = get_task(task)
    run = run_dir(savedir, t.name, fold)
    done = read_done(run) or {}
    row = {"task": t.name, "paper_id": t.paper_id, "fold": fold, "split": split, "images": len(data),
           "status": MISSING, "test_top1": None, "test_top5": None, "trained_test_top1": done.get("test_top1"),
           "trained_epochs": done.get("epochs"), "checkpoint_epoch": None, "top1_by_place": None,
           "run": str(run)}
    if not (run / checkpoint).is_file():
        return row
    model, ckpt = load_trained_model(run / checkpoint)  # a fold<f> folder: an ordinary FoldedCNN
    if int(ckpt["fold"]) != fold or ckpt["task"] != t.name:
        raise TrainError(f"{run / checkpoint} holds {ckpt['task']} f={ckpt['fold']}, not {t.name} f={fold}")
    ev = Evaluator(model.to(device), t, fold, device)
    predicted = ev.predict(data)
    metrics = ev.evaluate(data, predicted)
    row.update(status=OK, test_top1=round(metrics["top1"], 2), test_top5=round(metrics["top5"], 2),
               checkpoint_epoch=ckpt.get("epoch"))
    if by_place and fold > 1:
        row["top1_by_place"] = format_places(ev.position_top1(data, predicted))
    return row


def confusion_matrix(model: torch.nn.Module, task: str, fold: int, data: ImageSet,
                     device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """``counts[true, predicted]`` of ``model`` (fold ``fold`` of ``task``) on every image of
    ``data``, grouped as evaluation groups them."""
    t = get_task(task)
    logits, labels = Evaluator(model.to(device), t, fold, device).predict(data)
    flat = labels * t.num_classes + logits.argmax(1)
    return torch.bincount(flat, minlength=t.num_classes ** 2).view(t.num_classes, t.num_classes)


def confusion_summary(counts: torch.Tensor, classes: tuple[str, ...], top: int) -> str:
    """Two lines: top-1 (%) per true class, and the ``top`` most frequent mistakes
    (true -> predicted: images), so one sees whether errors spread or concentrate."""
    per_class = 100 * counts.diag().float() / counts.sum(1).clamp(min=1)
    wrong = counts.clone()
    wrong.fill_diagonal_(0)
    worst = [(int(i), int(n)) for n, i in zip(*wrong.flatten().topk(min(top, wrong.numel()))) if n > 0]
    k = len(classes)
    return ("  per class: " + ", ".join(f"{c} {a:.0f}%" for c, a in zip(classes, per_class.tolist())) + "\n"
            + "  most frequent mistakes: " + (", ".join(f"{classes[i // k]} -> {classes[i % k]}: {n}"
                                                      for i, n in worst) or "none"))


def evaluate_runs(savedir: Path, tasks: list[str], folds: list[int], data_root: Path | None, split: str = "test",
                  device: torch.device = torch.device("cpu"), by_place: bool = False,
                  checkpoint: str = BEST) -> list[dict[str, Any]]:
    """``evaluate_run`` for every task x fold, each split loaded once per task."""
    rows = []
    for task in tasks:
        data = load_split(get_task(task), split, get_task(task).data_dir(data_root), progress=False)
        rows += [evaluate_run(Path(savedir), task, f, data, split, device, by_place, checkpoint) for f in folds]
    return rows


def format_eval_csv(rows: list[dict[str, Any]]) -> str:
    return TABLE.text(rows)


def write_eval_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(path), TABLE.text(rows))


def read_eval_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by ``write_eval_csv``: numbers as floats / ints, empty cells None."""
    try:
        return TABLE.read_rows(path)
    except ResultsError as exc:  # the report and evaluate_runs.py report TrainErrors
        raise TrainError(str(exc)) from None
