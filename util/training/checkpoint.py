"""A run's checkpoints: what ``current.pth`` and ``best.pth`` hold, resuming from ours or from
the released trainer's, and loading the f=1 teacher of a distilled run.

``current.pth``: ``model``, ``optimizer``, ``scheduler``, ``epoch`` (epochs completed),
``best_val``, ``best_epoch``, ``history`` (stats.csv rows), ``rng``, ``wall_seconds``, ``task``,
``fold``, ``channel_align``, ``scaling``, ``curriculum_epochs``, ``band_limit``.
``best.pth``: ``model``, ``epoch``, ``val_top1``, ``task``, ``fold``, ``scaling``,
``channel_align``, ``band_limit``. The released trainer's files hold ``epoch`` (the last epoch
finished), ``best_val_acc``, ``model`` (its layer names) and ``opt`` (its parameter order).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from config.tasks import Task
from models import FoldableNet, build_model
from util.cli import exception_line
from util.records.atomic import atomic_torch_save

from .errors import TrainError
from .layout import CURRENT

RELEASED_CHECKPOINT_KEYS = {"epoch", "best_val_acc", "model", "opt"}
# How an optimizer runs its update, not what it computes: this run's settings, not the saved ones
OPTIMIZER_IMPLEMENTATION = ("capturable", "fused", "foreach", "differentiable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Load ``saved`` (an optimizer ``state_dict``) but keep ``optimizer``'s implementation.

    ``Optimizer.load_state_dict`` replaces every param-group setting with the saved one, so a
    run saved without ``--compile-step`` would resume with a plain Adam in place of the fused one,
    and one saved on a CPU (not capturable, a float lr) could not be captured in a CUDA graph.
    The hyperparameters (lr, betas, weight decay) are the saved ones; lr takes this optimizer's
    form (a tensor for a capturable one), and the per-parameter ``step`` counters follow
    (``load_state_dict`` puts them on the parameters' device for a fused or capturable group).
    """
    groups = []
    for now, old in zip(optimizer.param_groups, saved["param_groups"]):
        group = {**old, **{k: now[k] for k in OPTIMIZER_IMPLEMENTATION if k in now}}
        if torch.is_tensor(now["lr"]) != torch.is_tensor(old["lr"]):
            group["lr"] = torch.tensor(float(old["lr"])) if torch.is_tensor(now["lr"]) else float(old["lr"])
        groups.append(group)
    optimizer.load_state_dict({**saved, "param_groups": groups + saved["param_groups"][len(groups):]})


@dataclass
class RunState:
    """Where a run stands, besides its weights; saved in every ``current.pth``."""
    epoch: int = 0                  # epochs completed: training continues at this (0-based) epoch
    best_val: float = -1.0          # best validation top-1 once every class was active
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)  # one stats.csv row per epoch
    wall_seconds: float = 0.0
    curriculum_epochs: int | None = None  # the run length the curriculum was laid out over


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a one-line error for a corrupt file (left in place)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise TrainError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}); "
                         "delete it to restart that run, or restore it from a backup") from None


def model_weights(ckpt: dict[str, Any]) -> tuple[dict[str, torch.Tensor], int]:
    """The model weights in a checkpoint and the channel alignment they were built with.

    Reads this project's checkpoints (``{"model": ..., "channel_align": ...}``), the released
    trainer's (``{"epoch", "best_val_acc", "model", "opt"}``) and a bare state dict, the format
    of the released CIFAR-10 teacher ``model.t7`` (its ResNet-18 names are ours).
    """
    if not isinstance(ckpt, dict):
        raise TrainError(f"a checkpoint must hold a dict, not {type(ckpt).__name__}")
    if isinstance(ckpt.get("model"), dict):
        return ckpt["model"], int(ckpt.get("channel_align", 1))
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt, 1
    raise TrainError(f"unknown checkpoint layout (keys {sorted(ckpt)[:6]}): expected a 'model' entry "
                     "or a bare state dict")


def save_current(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any, state: RunState, meta: dict[str, Any]) -> None:
    """``current.pth`` after ``state.epoch`` epochs; ``meta``: task, fold, channel_align, scaling,
    band_limit."""
    atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict() if scheduler else None,
                       "epoch": state.epoch, "best_val": state.best_val, "best_epoch": state.best_epoch,
                       "history": state.history, "rng": torch.get_rng_state(), "wall_seconds": state.wall_seconds,
                       "curriculum_epochs": state.curriculum_epochs, **meta}, path)


def save_best(path: Path, model: nn.Module, epochs: int, val_top1: float, meta: dict[str, Any]) -> None:
    """``best.pth``: the weights after ``epochs`` epochs and their validation top-1."""
    atomic_torch_save({"model": model.state_dict(), "epoch": epochs, "val_top1": val_top1, **meta}, path)


def resume_source(run: Path, continue_from_file: str | None) -> Path | None:
    """The checkpoint a run continues from: its own ``current.pth``, else ``--continue_from_file``."""
    if (run / CURRENT).exists():
        return run / CURRENT
    if not continue_from_file:
        return None
    src = Path(continue_from_file)
    if not src.exists():
        raise TrainError(f"--continue_from_file {src} does not exist")
    return src


def resume(src: Path, model: FoldableNet, optimizer: torch.optim.Optimizer, scheduler: Any,
           fresh: RunState, name: str) -> RunState:
    """Load ``src`` (ours or the released trainer's) into the model, optimizer and scheduler;
    returns the state to continue from. ``name`` labels messages (``task f=2``)."""
    ckpt = load_checkpoint(src)
    if isinstance(ckpt, dict) and RELEASED_CHECKPOINT_KEYS <= ckpt.keys():
        return _resume_released(ckpt, src, model, optimizer, fresh, name)
    try:
        model.load_state_dict(ckpt["model"])
        load_optimizer_state(optimizer, ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise TrainError(f"checkpoint {src} does not match {name} "
                         f"({type(exc).__name__}); use another --outdir or delete it") from None
    epoch = int(ckpt["epoch"])
    state = RunState(epoch=epoch, best_val=float(ckpt["best_val"]), best_epoch=int(ckpt["best_epoch"]),
                     history=list(ckpt.get("history", []))[:epoch],
                     wall_seconds=float(ckpt.get("wall_seconds", 0.0)),
                     curriculum_epochs=ckpt.get("curriculum_epochs", fresh.curriculum_epochs))
    if "rng" in ckpt:
        torch.set_rng_state(ckpt["rng"])
    print(f"[{name}] resuming after epoch {epoch} from {src}", flush=True)
    return state


def _resume_released(ckpt: dict[str, Any], src: Path, model: FoldableNet, optimizer: torch.optim.Optimizer,
                     fresh: RunState, name: str) -> RunState:
    """Continue from a checkpoint of the released trainer: ``model`` in its layer names,
    ``opt`` the optimizer state over its parameter order, ``epoch`` the last finished epoch.
    Its best validation accuracy was measured on its own data order, so best.pth restarts."""
    released = ckpt["model"]
    key = model.from_released_key
    position = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    try:
        model.load_state_dict({key(k): v for k, v in released.items()})
        # the released state is keyed by its parameter order (its state-dict order)
        order = [key(k) for k in released if key(k) in position]
        state = optimizer.state_dict()
        state["state"] = {position[order[i]]: s for i, s in ckpt["opt"]["state"].items()}
        optimizer.load_state_dict(state)
    except (KeyError, IndexError, RuntimeError, ValueError) as exc:
        raise TrainError(f"released checkpoint {src} does not match {name} "
                         f"({exception_line(exc, typed=True, limit=120)})") from None
    start = int(ckpt["epoch"]) + 1
    print(f"[{name}] continuing the released checkpoint {src} after its epoch {start - 1}", flush=True)
    return replace(fresh, epoch=start)


def load_teacher(path: Path | None, task: Task, fold: int) -> nn.Module:
    """The f=1 model a distilled (task, fold) run learns from, with the weights at ``path``
    (ours, the released trainer's, or the released ``model.t7``'s bare state dict)."""
    if path is None or not path.exists():
        raise TrainError(f"{task.name} f={fold} is trained by distillation and needs the f=1 "
                         f"model as teacher: train fold 1 first or pass --teacher PATH ({path} missing)")
    weights, channel_align = model_weights(load_checkpoint(path))
    teacher = build_model(task, 1, channel_align=channel_align)
    try:
        teacher.load_state_dict(weights)
    except RuntimeError as exc:
        raise TrainError(f"teacher {path} does not fit {task.name}'s f=1 model "
                         f"({exception_line(exc)}); pass the f=1 checkpoint of this task") from None
    return teacher
