#!/usr/bin/env python3
"""Train ONE (task, fold) with the paper's recipe (PAPER_NOTES section 4); ``train.py`` runs many.

Examples::

    python3 fold_trainer.py lol/goldnumber-fraction 4 runs/v1/lol/goldnumber-fraction/fold4
    python3 fold_trainer.py noscope-coral 2 runs/n1 --epochs 5 --device cpu
    python3 fold_trainer.py lol/goldnumber-fraction 4 runs/x --eval-orders 10   # order agreement
    python3 fold_trainer.py noscope-coral 1 runs/n1-band50 --band-limit 50   # band-limited CNN

What a run does, per epoch: random groups of ``f`` training images (new groups every epoch;
each batch trimmed to a multiple of ``f``), loss and top-1/top-5 per image after unfolding
the logits; curriculum for folded runs whose recipe has one; MSE on the f=1 teacher's logits
for distilled runs (CIFAR-10); then val and test evaluation on fixed, seeded groups; then
``current.pth`` (model, optimizer, scheduler, epoch, best accuracy, history, RNG state),
``best.pth`` when validation top-1 improves once every class is active, ``stats.csv`` and one
``<metric>.txt`` per metric, each written atomically. Re-running the same command resumes after the last
completed epoch; a finished run has ``done.json`` and is not retrained.

Images are decoded once and kept as one uint8 tensor on the training device, so an epoch
never touches the disk. On CUDA the whole training step (gather, augment, fold, forward,
backward, optimizer) is captured in one CUDA graph and replayed, in channels_last: these CNNs
are so small that launch overhead, not arithmetic, bounds a step. ``--compile-step`` also
runs fewer kernels per step (forward and loss through ``torch.compile``, the fused optimizer,
``cudnn.benchmark``); same arithmetic, up to rounding. Arithmetic is fp32 by
default, as in the released code (``--amp none``: TF32 off too, the V100's fp32); ``--amp
tf32|bf16|fp16`` are faster and less exact.

``--band-limit CR`` trains the band-limited CNN (``models/bandlimit.py``: every conv larger
than 1x1 discards CR% of its spectrum in the forward and the backward pass); a distilling run
still learns from the ordinary f=1 teacher.

Where the pieces live (``util/training/``): the settings and this script's options
(``run_config.py``), the run folder's files and columns (``layout.py``), checkpoints and resuming
(``checkpoint.py``), the (CUDA-graph) training step (``step.py``), evaluation (``evaluate.py``).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from config.tasks import TrainRecipe, check_fold, get_task
from datasets import CurriculumSchedule, ImageSet, load_split, resize_u8, teacher_logits
from models import CompoundScaling, FoldableNet, build_model, kept_fraction
from util.cli import run_command
from util.records.atomic import atomic_write_json
from util.records.provenance import device_name, provenance
from util.training.checkpoint import (RunState, load_checkpoint, load_teacher, resume, resume_source, save_best,
                                      save_current)
from util.training.errors import USER_ERRORS, TrainError
from util.training.evaluate import Evaluator
from util.training.interrupt import sigterm_as_ctrl_c
from util.training.layout import (BEST, CONFIG, CURRENT, DONE, STATS_FIELDS, epoch_row, read_done, run_label, write_done,
                                  write_stats)
from util.training.run_config import (EFFNET_RESIZES, RunConfig, add_config_arguments, check_band_limit,
                                      check_overrides, config_from_args, effective_recipe)
from util.training.step import TrainStep


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise TrainError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device(name)


def make_optimizer(model: torch.nn.Module, recipe: TrainRecipe, capturable: bool,
                   fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimizer; ``capturable`` for CUDA-graph steps, ``fused`` (Adam, SGD: one
    kernel for every parameter's update, where the default runs one per elementwise op)."""
    params = model.parameters()
    lr = torch.tensor(recipe.lr) if capturable else recipe.lr
    common = dict(lr=lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, capturable=capturable, fused=fused or None, **common)
    if recipe.optimizer == "rmsprop":  # no fused RMSprop in torch
        return torch.optim.RMSprop(params, capturable=capturable, **common)
    return torch.optim.SGD(params, momentum=0.9, fused=fused or None, **common)


class FoldTrainer:
    """Trains one (task, fold) run into ``cfg.outdir``; ``run()`` returns the result row.

    ``__init__`` builds everything, in the order each piece needs the one before: settings,
    data, model, optimizer, the resumed state (from ``current.pth`` or ``--continue_from_file``),
    then the curriculum, which keeps the layout the run started with (a resumed state's), then
    the training step and the evaluator. ``run()`` captures the CUDA graph and trains.
    """

    def __init__(self, cfg: RunConfig) -> None:
        # ------------------------------------------------------------ settings
        self.cfg = cfg
        self.task = get_task(cfg.task)
        self.fold = check_fold(cfg.fold)
        self.out = Path(cfg.outdir)
        self.name = run_label(self.task.name, self.fold, cfg.band_limit)  # in every log line: [name]
        self.device = resolve_device(cfg.device)
        self.recipe = effective_recipe(cfg)
        self.scaling = "efficientnet" if cfg.efficientnet else "fold"
        if cfg.efficientnet and (self.fold != 1 or not self.task.efficientnet_baseline):
            raise TrainError(f"--efficientnet trains the compound-scaled baseline of a game task at "
                             f"FOLD 1 (it is never folded); got {self.task.name} f={self.fold}")
        if cfg.effnet_resize not in EFFNET_RESIZES:
            raise TrainError(f"unknown --effnet-resize {cfg.effnet_resize!r}; valid: {', '.join(EFFNET_RESIZES)}")
        self.cuda = self.device.type == "cuda"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if self.cuda else None
        if self.cuda:  # fp32 means fp32: cuDNN would otherwise run convs in TF32 on Ampere and later
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = cfg.amp == "tf32"
            torch.backends.cudnn.benchmark = cfg.compile_step  # the fastest conv algorithm per shape
        # batch of images trimmed to a multiple of f (paper section 4)
        self.batch = max(self.fold, self.recipe.batch_size - self.recipe.batch_size % self.fold)
        # ------------------------------------------------------------ data: decoded once, kept in memory
        self.train_set, self.val_set, self.test_set = self._load_splits()
        images, labels = self.train_set.images.to(self.device), self.train_set.labels.to(self.device)
        distill = self.recipe.distill_folded and self.fold > 1
        targets = self._teacher_logits().to(self.device) if distill else None
        # ------------------------------------------------------------ model
        torch.manual_seed(cfg.seed)
        self.model: FoldableNet = build_model(self.task, self.fold, scaling=self.scaling,
                                              channel_align=cfg.channel_align, **band_args(cfg))
        self.model.to(self.device)
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        # ------------------------------------------------------------ optimizer
        self.use_graph = self.cuda and cfg.cuda_graph and self.recipe.step_lr is None
        self.optimizer = make_optimizer(self.model, self.recipe, capturable=self.use_graph,
                                        fused=cfg.compile_step and self.cuda)
        self.scheduler = (torch.optim.lr_scheduler.StepLR(self.optimizer, *self.recipe.step_lr)
                          if self.recipe.step_lr else None)
        # ------------------------------------------------------------ resume
        # The curriculum is laid out over the run's length when it starts and keeps that layout
        # when the run is later extended (--epochs raised): added epochs never drop classes again.
        fresh = RunState(curriculum_epochs=self.recipe.epochs if cfg.scale_curriculum else None)
        src = resume_source(self.out, cfg.continue_from_file)
        self.state = fresh if src is None else resume(src, self.model, self.optimizer, self.scheduler, fresh,
                                                      self.name)
        # ------------------------------------------------------------ curriculum (folded runs only, paper section 4)
        schedule = CurriculumSchedule(self.task, self.fold, self.state.curriculum_epochs)
        self.curriculum = schedule if schedule.enabled else None
        # ------------------------------------------------------------ step and evaluation
        self.step = TrainStep(self.model, self.optimizer, self.task, self.fold, images, labels, targets,
                              self.amp_dtype, channels_last=self.cuda, full=self.batch,
                              compiled=cfg.compile_step)
        self.evaluator = Evaluator(self.model, self.task, self.fold, self.device, self.amp_dtype,
                                   channels_last=self.cuda)

    def _load_splits(self) -> tuple[ImageSet, ImageSet, ImageSet]:
        root = self.task.data_dir(self.cfg.data_root)
        splits = {s: load_split(self.task, s, root, fold=self.fold, progress=self.cfg.progress)
                  for s in ("train", "val", "test")}
        if self.scaling == "efficientnet":  # every split, as the released train.py did
            size = CompoundScaling().train_image_size(self.task.height, self.task.width,
                                                      as_released=self.cfg.effnet_resize == "released")
            for data in splits.values():
                data.images = resize_u8(data.images, size)
        return splits["train"], splits["val"], splits["test"]

    def _teacher_logits(self) -> torch.Tensor:
        teacher = load_teacher(Path(self.cfg.teacher) if self.cfg.teacher else None, self.task, self.fold)
        return teacher_logits(teacher, self.train_set, self.task, self.device).float()

    # ---------------------------------------------------------------- one epoch
    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        data_idx = torch.arange(len(self.train_set))
        classes = self.task.num_classes
        if self.curriculum is not None:
            classes = self.curriculum.active_classes(epoch)
            data_idx = torch.nonzero(self.train_set.labels < classes).flatten()
        gen = torch.Generator().manual_seed(self.cfg.seed * 100003 + epoch)  # new groups each epoch
        order = data_idx[torch.randperm(len(data_idx), generator=gen)].to(self.device)
        n_batches = len(order) // self.batch  # groups never straddle batches; the remainder is dropped
        tail = (len(order) % self.batch) // self.fold * self.fold
        aug_gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 7919 + epoch)
        self.step.start_epoch(order, aug_gen)
        seen = 0
        bar = tqdm(total=n_batches + (tail > 0), desc=f"Epoch {epoch}. train", leave=False,
                   disable=not self.cfg.progress, dynamic_ncols=True)
        for b in range(n_batches + (tail > 0)):
            size = self.batch if b < n_batches else tail
            self.step.batch(b, size)
            seen += size
            bar.update()
            if self.cfg.progress and (b % 100 == 0 or b == n_batches):  # a host sync; not every step
                s = self.step.sums().tolist()
                n = max(seen, 1)
                bar.set_postfix_str(f"Top-1={s[1] / n:.4f}, Top-5={s[2] / n:.4f}, Loss={s[0] / n:.4f}")
        bar.close()
        if self.scheduler is not None:
            self.scheduler.step()
        s = self.step.sums().tolist()
        n = max(seen, 1)
        return {"classes": classes, "train_loss": s[0] / n, "train_top1": 100 * s[1] / n,
                "train_top5": 100 * s[2] / n}

    # ---------------------------------------------------------------- results
    def _meta(self) -> dict[str, Any]:
        """What every checkpoint of this run says about the model it holds."""
        return {"task": self.task.name, "fold": self.fold, "channel_align": self.cfg.channel_align,
                "scaling": self.scaling, "band_limit": self.cfg.band_limit}

    def result_row(self) -> dict[str, Any]:
        best = epoch_row(self.state.history, self.state.best_epoch)
        kept = kept_fraction(self.model)
        return {"task": self.task.name, "fold": self.fold, "scaling": self.scaling,
                "best_val_top1": round(self.state.best_val, 4), "test_top1": round(best.get("test_top1", 0.0), 4),
                "test_top5": round(best.get("test_top5", 0.0), 4), "best_epoch": self.state.best_epoch,
                "epochs": self.state.epoch, "wall_seconds": round(self.state.wall_seconds, 1),
                "device": device_name(str(self.device)), "band_limit": self.cfg.band_limit,
                "kept_fraction": None if kept is None else round(kept, 4)}

    # ---------------------------------------------------------------- main loop
    def run(self) -> dict[str, Any]:
        """Train the epochs still to do, saving after each; write ``done.json``; return the row."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / DONE).unlink(missing_ok=True)  # asked for more epochs than it has: continue
        atomic_write_json(self.out / CONFIG, {"run": asdict(self.cfg), "recipe": asdict(self.recipe),
                                              "batch_images": self.batch,
                                              "curriculum_epochs": self.state.curriculum_epochs,
                                              **provenance(str(self.device))})
        if self.use_graph and self.state.epoch < self.recipe.epochs:
            try:
                self.step.capture()
            except RuntimeError as exc:  # keep training: eager steps are slower, not wrong
                print(f"warning: CUDA graph capture failed ({exc}); training eagerly", flush=True)
        state, tag = self.state, f"[{self.name}]"
        for epoch in range(state.epoch, self.recipe.epochs):
            t0 = time.perf_counter()
            stats = self.train_epoch(epoch)
            if self.cuda:
                torch.cuda.synchronize()
            train_seconds = time.perf_counter() - t0
            val, test = self.evaluator.evaluate(self.val_set), self.evaluator.evaluate(self.test_set)
            seconds = time.perf_counter() - t0
            state.wall_seconds += seconds
            row = {"epoch": epoch, **stats, **{f"val_{k}": v for k, v in val.items()},
                   **{f"test_{k}": v for k, v in test.items()}, "seconds": seconds,
                   "train_seconds": train_seconds}
            state.history.append({k: row[k] for k in STATS_FIELDS})
            state.epoch = epoch + 1
            # Only compare validation once every class is active: earlier epochs see fewer classes.
            full = stats["classes"] == self.task.num_classes
            if full and val["top1"] > state.best_val:
                state.best_val, state.best_epoch = val["top1"], epoch
                save_best(self.out / BEST, self.model, epoch + 1, val["top1"], self._meta())
            save_current(self.out / CURRENT, self.model, self.optimizer, self.scheduler, state, self._meta())
            write_stats(self.out, state.history)
            cur = f" | {self.curriculum.describe(epoch)}" if self.curriculum else ""
            print(f"{tag} epoch {epoch}: train top1 {stats['train_top1']:.2f} loss {stats['train_loss']:.4f}"
                  f" | val top1 {val['top1']:.2f} | test top1 {test['top1']:.2f} | {seconds:.1f}s{cur}",
                  flush=True)
        result = self.result_row()
        if state.best_epoch < 0:
            print(f"{tag} warning: no epoch trained on all classes; the curriculum needs more epochs", flush=True)
        if self.cfg.eval_orders and self.fold > 1 and (self.out / BEST).exists():
            self.model.load_state_dict(load_checkpoint(self.out / BEST)["model"])
            result["order_agreement"] = round(self.evaluator.order_agreement(self.test_set, self.cfg.eval_orders), 2)
            print(f"{tag} predictions agree across {self.cfg.eval_orders} in-group orders: "
                  f"{result['order_agreement']:.2f}%")
        write_done(self.out, result)
        return result


def band_args(cfg: RunConfig) -> dict[str, Any]:
    """``build_model`` arguments of a run's band limit (none for ordinary convs)."""
    return ({} if cfg.band_limit is None else
            {"band_limit": cfg.band_limit, "band_algorithm": cfg.band_algorithm})


def finished_result(cfg: RunConfig) -> dict[str, Any] | None:
    """The results row of a run whose ``done.json`` already has all the epochs asked for, else
    None; train.py asks this before starting a child process, so a finished run costs nothing."""
    result = read_done(cfg.outdir)
    return result if result is not None and result["epochs"] >= effective_recipe(cfg).epochs else None


def train_one(cfg: RunConfig) -> dict[str, Any]:
    """Train (or resume, or just report a finished) run; returns its results row."""
    return finished_result(cfg) or FoldTrainer(cfg).run()


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    return p


def main(args: argparse.Namespace) -> None:
    check_overrides(args.epochs, args.batch_size, args.lr)
    if args.band_limit is not None:
        check_band_limit(args.band_limit, args.band_algorithm)
    print(train_one(config_from_args(args)), flush=True)


if __name__ == "__main__":
    sigterm_as_ctrl_c()
    run_command(main, get_args_parser, errors=USER_ERRORS,
                interrupted="interrupted: the last completed epoch is saved; re-run the same command to resume")
