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
``best.pth`` when validation top-1 improves, ``stats.csv`` and one ``<metric>.txt`` per
metric, each written atomically. Re-running the same command resumes after the last
completed epoch; a finished run has ``done.json`` and is not retrained.

Images are decoded once and kept as one uint8 tensor on the training device, so an epoch
never touches the disk. On CUDA the whole training step (gather, augment, fold, forward,
backward, optimizer) is captured in one CUDA graph and replayed, in channels_last: these CNNs
are so small that launch overhead, not arithmetic, bounds a step. Arithmetic is fp32 by
default, as in the released code (``--amp none``: TF32 off too, the V100's fp32); ``--amp
tf32|bf16|fp16`` are faster and less exact.

``--band-limit CR`` trains the band-limited CNN (``models/bandlimit.py``: every conv larger
than 1x1 discards CR% of its spectrum in the forward and the backward pass); a distilling run
still learns from the ordinary f=1 teacher.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from config.tasks import Task, TaskError, TrainRecipe, check_fold, get_task
from datasets import (CurriculumSchedule, DatasetError, ImageSet, augment, load_split, resize_u8,
                      teacher_logits, to_float)
from models import CompoundScaling, FoldableNet, build_model, fold_images, kept_fraction, unfold_logits
from models.bandlimit import BandLimitError, band_tag, check_band_settings
from util.records.atomic import atomic_torch_save, atomic_write_json, atomic_write_text
from util.records.provenance import device_name, provenance

STATS_FIELDS = ["epoch", "classes", "train_loss", "train_top1", "train_top5", "val_loss", "val_top1",
                "val_top5", "test_loss", "test_top1", "test_top5", "seconds", "train_seconds"]
AMP_MODES = ("none", "tf32", "bf16", "fp16")
RELEASED_CHECKPOINT_KEYS = {"epoch", "best_val_acc", "model", "opt"}  # the released trainer's files
EFFNET_RESIZES = ("released", "aspect")
EVAL_SEED = 1234  # fixed groups for val/test: the same in every epoch and every run


class TrainError(RuntimeError):
    """A user-facing training problem (corrupt checkpoint, missing teacher...); one line."""


@dataclass
class RunConfig:
    """Everything one run needs; saved as ``config.json`` next to its checkpoints."""
    task: str
    fold: int
    outdir: str
    epochs: int | None = None          # None: the recipe's epochs
    batch_size: int | None = None      # None: the recipe's batch (images, before trimming to f)
    device: str = "auto"
    channel_align: int = 1
    seed: int = 0
    data_root: str | None = None       # None: the task's default data path
    teacher: str | None = None         # f=1 checkpoint for distillation
    continue_from_file: str | None = None
    eval_orders: int = 0
    cuda_graph: bool = True
    amp: str = "none"                  # CUDA numerics: none (fp32), tf32, or bf16 / fp16 autocast
    scale_curriculum: bool = True      # shrink the curriculum's period with --epochs
    progress: bool = True              # tqdm bars (the one-line-per-epoch prints are always on)
    efficientnet: bool = False         # the EfficientNet-style baseline (game tasks, fold 1)
    effnet_resize: str = "released"    # its training images: "released" or "aspect" orientation
    band_limit: float | None = None    # band-limited CNN: % of each conv's spectrum discarded
    band_algorithm: str = "auto"       # fft, dft or auto (models/bandlimit.py)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise TrainError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device(name)


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


def effective_recipe(task: Task, cfg: RunConfig) -> TrainRecipe:
    """The task's recipe for ``cfg.fold`` with the command-line overrides applied."""
    r = task.recipe(cfg.fold)
    return replace(r, batch_size=cfg.batch_size or r.batch_size, epochs=cfg.epochs or r.epochs)


def make_optimizer(model: torch.nn.Module, recipe: TrainRecipe, capturable: bool) -> torch.optim.Optimizer:
    params = model.parameters()
    lr = torch.tensor(recipe.lr) if capturable else recipe.lr
    common = dict(lr=lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, capturable=capturable, **common)
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, capturable=capturable, **common)
    return torch.optim.SGD(params, momentum=0.9, **common)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()


class FoldTrainer:
    """Trains one (task, fold) run into ``cfg.outdir``; ``run()`` returns the result row."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.task = get_task(cfg.task)
        self.fold = check_fold(cfg.fold)
        self.out = Path(cfg.outdir)
        self.device = resolve_device(cfg.device)
        self.recipe = effective_recipe(self.task, cfg)
        self.scaling = "efficientnet" if cfg.efficientnet else "fold"
        if cfg.efficientnet and (self.fold != 1 or not self.task.efficientnet_baseline):
            raise TrainError(f"--efficientnet trains the compound-scaled baseline of a game task at "
                             f"FOLD 1 (it is never folded); got {self.task.name} f={self.fold}")
        if cfg.effnet_resize not in EFFNET_RESIZES:
            raise TrainError(f"unknown --effnet-resize {cfg.effnet_resize!r}; valid: {', '.join(EFFNET_RESIZES)}")
        self.distill = self.recipe.distill_folded and self.fold > 1
        self.cuda = self.device.type == "cuda"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if self.cuda else None
        if self.cuda:  # fp32 means fp32: cuDNN would otherwise run convs in TF32 on Ampere and later
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = cfg.amp == "tf32"
        # batch of images trimmed to a multiple of f (paper section 4)
        self.batch = max(self.fold, self.recipe.batch_size - self.recipe.batch_size % self.fold)

    # ---------------------------------------------------------------- data
    def load_data(self) -> None:
        root = self.task.data_dir(self.cfg.data_root)
        splits = {s: load_split(self.task, s, root, fold=self.fold, progress=self.cfg.progress)
                  for s in ("train", "val", "test")}
        if self.scaling == "efficientnet":  # every split, as the released train.py did
            size = CompoundScaling().train_image_size(self.task.height, self.task.width,
                                                      as_released=self.cfg.effnet_resize == "released")
            for data in splits.values():
                data.images = resize_u8(data.images, size)
        self.train_set, self.val_set, self.test_set = splits["train"], splits["val"], splits["test"]
        # curriculum for folded runs only (paper section 4), scaled to this run's length
        schedule = CurriculumSchedule(self.task, self.fold, self.curriculum_epochs)
        self.curriculum = schedule if schedule.enabled else None
        self.gpu_images = self.train_set.images.to(self.device)
        self.gpu_labels = self.train_set.labels.to(self.device)
        self.teacher = None
        if self.distill:
            self.teacher = self._teacher_logits().to(self.device)

    def _teacher_logits(self) -> torch.Tensor:
        path = Path(self.cfg.teacher) if self.cfg.teacher else None
        if path is None or not path.exists():
            raise TrainError(f"{self.task.name} f={self.fold} is trained by distillation and needs the f=1 "
                             f"model as teacher: train fold 1 first or pass --teacher PATH ({path} missing)")
        weights, channel_align = model_weights(load_checkpoint(path))
        teacher = build_model(self.task, 1, channel_align=channel_align)
        try:
            teacher.load_state_dict(weights)
        except RuntimeError as exc:
            raise TrainError(f"teacher {path} does not fit {self.task.name}'s f=1 model "
                             f"({str(exc).splitlines()[0]}); pass the f=1 checkpoint of this task") from None
        return teacher_logits(teacher, self.train_set, self.task, self.device).float()

    # ---------------------------------------------------------------- model
    def build(self) -> None:
        torch.manual_seed(self.cfg.seed)
        self.model: FoldableNet = build_model(self.task, self.fold, scaling=self.scaling,
                                              channel_align=self.cfg.channel_align, **band_args(self.cfg))
        self.model.to(self.device)
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        self.use_graph = self.cuda and self.cfg.cuda_graph and self.recipe.step_lr is None
        self.optimizer = make_optimizer(self.model, self.recipe, capturable=self.use_graph)
        self.scheduler = (torch.optim.lr_scheduler.StepLR(self.optimizer, *self.recipe.step_lr)
                          if self.recipe.step_lr else None)
        self.start_epoch, self.best_val, self.best_epoch, self.history = 0, -1.0, -1, []
        self.wall = 0.0
        # The curriculum is laid out over the run's length when it starts and keeps that layout
        # when the run is later extended (--epochs raised): added epochs never drop classes again.
        self.curriculum_epochs: int | None = self.recipe.epochs if self.cfg.scale_curriculum else None

    def resume(self) -> None:
        src = self.out / "current.pth"
        if not src.exists() and self.cfg.continue_from_file:
            src = Path(self.cfg.continue_from_file)
            if not src.exists():
                raise TrainError(f"--continue_from_file {src} does not exist")
        if not src.exists():
            return
        ckpt = load_checkpoint(src)
        if isinstance(ckpt, dict) and RELEASED_CHECKPOINT_KEYS <= ckpt.keys():
            return self._resume_released(ckpt, src)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.scheduler is not None and ckpt.get("scheduler"):
                self.scheduler.load_state_dict(ckpt["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise TrainError(f"checkpoint {src} does not match {self.task.name} f={self.fold} "
                             f"({type(exc).__name__}); use another --outdir or delete it") from None
        self.start_epoch = int(ckpt["epoch"])
        self.best_val, self.best_epoch = float(ckpt["best_val"]), int(ckpt["best_epoch"])
        self.history = list(ckpt.get("history", []))[: self.start_epoch]
        self.wall = float(ckpt.get("wall_seconds", 0.0))
        self.curriculum_epochs = ckpt.get("curriculum_epochs", self.curriculum_epochs)
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"])
        print(f"[{self.task.name} f={self.fold}] resuming after epoch {self.start_epoch} from {src}", flush=True)

    def _resume_released(self, ckpt: dict[str, Any], src: Path) -> None:
        """Continue from a checkpoint of the released trainer: ``model`` in its layer names,
        ``opt`` the optimizer state over its parameter order, ``epoch`` the last finished epoch.
        Its best validation accuracy was measured on its own data order, so best.pth restarts."""
        released = ckpt["model"]
        key = self.model.from_released_key
        ours = [name for name, _ in self.model.named_parameters()]
        position = {name: i for i, name in enumerate(ours)}
        try:
            self.model.load_state_dict({key(k): v for k, v in released.items()})
            # the released state is keyed by its parameter order (its state-dict order)
            order = [key(k) for k in released if key(k) in position]
            state = self.optimizer.state_dict()
            state["state"] = {position[order[i]]: s for i, s in ckpt["opt"]["state"].items()}
            self.optimizer.load_state_dict(state)
        except (KeyError, IndexError, RuntimeError, ValueError) as exc:
            raise TrainError(f"released checkpoint {src} does not match {self.task.name} f={self.fold} "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
        self.start_epoch = int(ckpt["epoch"]) + 1
        print(f"[{self.task.name} f={self.fold}] continuing the released checkpoint {src} after its "
              f"epoch {self.start_epoch - 1}", flush=True)

    # ---------------------------------------------------------------- steps
    def _forward_loss(self, idx: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image logits and loss of the images ``idx`` (a multiple of f)."""
        x = augment(self.gpu_images.index_select(0, idx), self.task, gen)
        x = fold_images(to_float(x, self.task), self.fold)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None,
                            cache_enabled=False):
            logits = unfold_logits(self.model(x), self.fold).float()
        if self.teacher is not None:
            loss = F.mse_loss(logits, self.teacher.index_select(0, idx))
        else:
            loss = F.cross_entropy(logits, self.gpu_labels.index_select(0, idx))
        return logits, loss

    def _eager_step(self, idx: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        logits, loss = self._forward_loss(idx, gen)
        loss.backward()
        self.optimizer.step()
        return logits.detach(), loss.detach()

    def _capture(self) -> None:
        """Capture gather+augment+forward+backward+step for a fixed batch in one CUDA graph."""
        self.static_idx = torch.zeros(self.batch, dtype=torch.long, device=self.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        params = [t.detach().clone() for t in self.model.state_dict().values()]
        saved = {id(p): {k: v.clone() for k, v in st.items()} for p, st in self.optimizer.state.items()}
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up on a side stream, as CUDA graph capture requires
                self._eager_step(self.static_idx, None)
        torch.cuda.current_stream().wait_stream(side)
        # Undo the warm-up IN PLACE: the graph must see the same tensors later steps update,
        # and optimizer state created now (not inside capture) so replays do not re-zero it.
        with torch.no_grad():
            for t, v in zip(self.model.state_dict().values(), params):
                t.copy_(v)
            for p, st in self.optimizer.state.items():
                for k, v in st.items():
                    if isinstance(v, torch.Tensor):
                        v.copy_(saved[id(p)][k]) if id(p) in saved else v.zero_()
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            logits, loss = self._forward_loss(self.static_idx, None)
            loss.backward()
            self.optimizer.step()
        self.static_logits, self.static_loss = logits.detach(), loss.detach()

    # ---------------------------------------------------------------- epochs
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
        sums = torch.zeros(3, device=self.device)  # loss*n, top1, top5 (no host sync per step)
        seen = 0
        bar = tqdm(total=n_batches + (tail > 0), desc=f"Epoch {epoch}. train", leave=False,
                   disable=not self.cfg.progress, dynamic_ncols=True)
        for b in range(n_batches + (tail > 0)):
            idx = order[b * self.batch: b * self.batch + (self.batch if b < n_batches else tail)]
            if self.use_graph and len(idx) == self.batch:
                self.static_idx.copy_(idx)
                self.graph.replay()
                logits, loss = self.static_logits, self.static_loss
            else:
                logits, loss = self._eager_step(idx, aug_gen)
            labels = self.gpu_labels.index_select(0, idx)
            sums += torch.stack([loss * len(idx), topk_correct(logits, labels, 1).float(),
                                 topk_correct(logits, labels, 5).float()])
            seen += len(idx)
            bar.update()
            if b % 100 == 0 or b == n_batches:  # a host sync; not every step
                s = sums.tolist()
                n = max(seen, 1)
                bar.set_postfix_str(f"Top-1={s[1] / n:.4f}, Top-5={s[2] / n:.4f}, Loss={s[0] / n:.4f}")
        bar.close()
        if self.scheduler is not None:
            self.scheduler.step()
        s = sums.tolist()
        n = max(seen, 1)
        return {"classes": classes, "train_loss": s[0] / n, "train_top1": 100 * s[1] / n,
                "train_top5": 100 * s[2] / n}

    @torch.no_grad()
    def predict(self, data: ImageSet, within_group: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image logits (in ``data``'s order). Images are grouped by a fixed seeded
        shuffle, the last group padded with blank images; ``within_group`` (a seed) permutes
        the images inside every group, for the order-agreement check."""
        self.model.eval()
        n, f = len(data), self.fold
        order = torch.randperm(n, generator=torch.Generator().manual_seed(EVAL_SEED))
        seq = torch.cat([order, torch.full((-n % f,), -1, dtype=torch.long)])  # -1 = padding
        if within_group is not None:
            g = torch.Generator().manual_seed(within_group)
            groups = seq.view(-1, f)
            perms = torch.stack([torch.randperm(f, generator=g) for _ in range(len(groups))])
            seq = groups.gather(1, perms).flatten()
        out = torch.empty(n, self.task.num_classes)
        chunk = 4096 - 4096 % f
        for start in range(0, len(seq), chunk):
            part = seq[start:start + chunk]
            valid = part >= 0
            x = data.images.index_select(0, part.clamp(min=0)).to(self.device)
            x[~valid.to(self.device)] = 0
            x = fold_images(to_float(x, self.task), f)
            if self.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = unfold_logits(self.model(x), f).float().cpu()
            out[part[valid]] = logits[valid]
        return out, data.labels

    def evaluate(self, data: ImageSet) -> dict[str, float]:
        logits, labels = self.predict(data)
        n = max(len(labels), 1)
        return {"loss": float(F.cross_entropy(logits, labels)) if len(labels) else 0.0,
                "top1": 100 * float(topk_correct(logits, labels, 1)) / n,
                "top5": 100 * float(topk_correct(logits, labels, 5)) / n}

    def order_agreement(self, data: ImageSet, orders: int) -> float:
        """Share (%) of images whose prediction is unchanged when the images inside each
        group are permuted, averaged over ``orders`` random permutations (paper: 98.0-98.8%)."""
        base = self.predict(data)[0].argmax(1)
        agree = [float((self.predict(data, within_group=1000 + k)[0].argmax(1) == base).float().mean())
                 for k in range(orders)]
        return 100 * sum(agree) / max(len(agree), 1)

    # ---------------------------------------------------------------- persistence
    def _save(self, epoch: int) -> None:
        ckpt = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "epoch": epoch, "best_val": self.best_val, "best_epoch": self.best_epoch,
                "history": self.history, "rng": torch.get_rng_state(), "wall_seconds": self.wall,
                "task": self.task.name, "fold": self.fold, "channel_align": self.cfg.channel_align,
                "scaling": self.scaling, "curriculum_epochs": self.curriculum_epochs,
                "band_limit": self.cfg.band_limit}
        atomic_torch_save(ckpt, self.out / "current.pth")
        self._write_stats()

    def _write_stats(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=STATS_FIELDS, lineterminator="\n")
        w.writeheader()
        for row in self.history:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write_text(self.out / "stats.csv", buf.getvalue())
        for key in STATS_FIELDS[2:-2]:  # one file per metric, one line per epoch (as the original)
            atomic_write_text(self.out / f"{key}.txt", "".join(f"{r[key]:.4f}\n" for r in self.history))

    def result_row(self) -> dict[str, Any]:
        best = self.history[self.best_epoch] if self.best_epoch >= 0 else {}
        return {"task": self.task.name, "fold": self.fold, "scaling": self.scaling,
                "best_val_top1": round(self.best_val, 4), "test_top1": round(best.get("test_top1", 0.0), 4),
                "test_top5": round(best.get("test_top5", 0.0), 4), "best_epoch": self.best_epoch,
                "epochs": len(self.history), "wall_seconds": round(self.wall, 1),
                "device": device_name(str(self.device)), "band_limit": self.cfg.band_limit,
                "kept_fraction": (None if kept_fraction(self.model) is None
                                  else round(kept_fraction(self.model), 4))}

    # ---------------------------------------------------------------- main loop
    def run(self) -> dict[str, Any]:
        done = self.out / "done.json"
        finished = finished_result(self.cfg)
        if finished is not None:
            return finished  # never retrained
        if done.exists():
            done.unlink()  # asked for more epochs than it has: continue from current.pth
        self.out.mkdir(parents=True, exist_ok=True)
        self.build()
        self.resume()
        atomic_write_json(self.out / "config.json", {"run": asdict(self.cfg), "recipe": asdict(self.recipe),
                                                     "batch_images": self.batch,
                                                     "curriculum_epochs": self.curriculum_epochs,
                                                     **provenance(str(self.device))})
        self.load_data()
        if self.use_graph and self.start_epoch < self.recipe.epochs:
            try:
                self._capture()
            except RuntimeError as exc:  # keep training: eager steps are slower, not wrong
                print(f"warning: CUDA graph capture failed ({exc}); training eagerly", flush=True)
                self.use_graph = False
        tag = f"[{self.task.name} f={self.fold}{band_label(self.cfg.band_limit)}]"
        for epoch in range(self.start_epoch, self.recipe.epochs):
            t0 = time.perf_counter()
            stats = self.train_epoch(epoch)
            if self.cuda:
                torch.cuda.synchronize()
            train_seconds = time.perf_counter() - t0
            val, test = self.evaluate(self.val_set), self.evaluate(self.test_set)
            seconds = time.perf_counter() - t0
            self.wall += seconds
            row = {"epoch": epoch, **stats, **{f"val_{k}": v for k, v in val.items()},
                   **{f"test_{k}": v for k, v in test.items()}, "seconds": seconds,
                   "train_seconds": train_seconds}
            self.history.append({k: row[k] for k in STATS_FIELDS})
            # Only compare validation once every class is active: earlier epochs see fewer classes.
            full = stats["classes"] == self.task.num_classes
            if full and val["top1"] > self.best_val:
                self.best_val, self.best_epoch = val["top1"], epoch
                atomic_torch_save({"model": self.model.state_dict(), "epoch": epoch + 1, "val_top1": val["top1"],
                                   "task": self.task.name, "fold": self.fold, "scaling": self.scaling,
                                   "channel_align": self.cfg.channel_align,
                                   "band_limit": self.cfg.band_limit}, self.out / "best.pth")
            self._save(epoch + 1)
            cur = f" | {self.curriculum.describe(epoch)}" if self.curriculum else ""
            print(f"{tag} epoch {epoch}: train top1 {stats['train_top1']:.2f} loss {stats['train_loss']:.4f}"
                  f" | val top1 {val['top1']:.2f} | test top1 {test['top1']:.2f} | {seconds:.1f}s{cur}",
                  flush=True)
        result = self.result_row()
        if self.best_epoch < 0:
            print(f"{tag} warning: no epoch trained on all classes; the curriculum needs more epochs", flush=True)
        if self.cfg.eval_orders and self.fold > 1 and (self.out / "best.pth").exists():
            self.model.load_state_dict(load_checkpoint(self.out / "best.pth")["model"])
            result["order_agreement"] = round(self.order_agreement(self.test_set, self.cfg.eval_orders), 2)
            print(f"{tag} predictions agree across {self.cfg.eval_orders} in-group orders: "
                  f"{result['order_agreement']:.2f}%")
        atomic_write_json(done, {"result": result})
        return result


def band_args(cfg: RunConfig) -> dict[str, Any]:
    """``build_model`` arguments of a run's band limit (none for ordinary convs)."""
    return ({} if cfg.band_limit is None else
            {"band_limit": cfg.band_limit, "band_algorithm": cfg.band_algorithm})


def check_band_limit(band_limit: float, algorithm: str) -> None:
    """A bad --band-limit is a one-line TrainError before any work."""
    try:
        check_band_settings(band_limit, None, algorithm)
    except BandLimitError as exc:
        raise TrainError(str(exc)) from None


def band_label(band_limit: float | None) -> str:
    """' band50' in log tags and summaries; empty for ordinary convs."""
    return "" if band_limit is None else f" {band_tag(band_limit)}"


def finished_result(cfg: RunConfig) -> dict[str, Any] | None:
    """The results row of a run whose ``done.json`` already has all the epochs asked for, else
    None; train.py asks this before starting a child process, so a finished run costs nothing."""
    done = Path(cfg.outdir) / "done.json"
    if not done.exists():
        return None
    result = json.loads(done.read_text())["result"]
    return result if result["epochs"] >= effective_recipe(get_task(cfg.task), cfg).epochs else None


def train_one(cfg: RunConfig) -> dict[str, Any]:
    """Train (or resume, or just report a finished) run; returns its results row."""
    return FoldTrainer(cfg).run()


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", help="task name from config/, e.g. lol/goldnumber-fraction")
    p.add_argument("fold", type=int, help="fold factor f (1 = original CNN)")
    p.add_argument("outdir", help="run folder (checkpoints, stats, config.json)")
    add_run_options(p)
    p.add_argument("--teacher", default=None,
                   help="f=1 checkpoint to distil from (runs whose recipe distils; default: OUTDIR/../fold1/best.pth)")
    p.add_argument("--band-limit", type=float, default=None, metavar="CR",
                   help="train the band-limited CNN discarding CR%% of each conv's spectrum (0 = all kept, "
                        "in the Fourier domain); default: ordinary convs")
    return p


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared with train.py."""
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch (images)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--channel-align", type=int, default=1, help="round internal widths up to a multiple of this")
    p.add_argument("--seed", type=int, default=0, help="seed of init, groups and augmentation")
    p.add_argument("--data-root", default=None,
                   help="folder that replaces the repository's data/ (e.g. data/game_data/... -> ROOT/game_data/...)")
    p.add_argument("--eval-orders", type=int, default=0,
                   help="after training, check prediction agreement under K in-group permutations")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false",
                   help="run training steps eagerly on CUDA")
    p.add_argument("--amp", choices=AMP_MODES, default="none",
                   help="CUDA numerics: none = fp32 as released (default, TF32 off), tf32, or bf16 / "
                        "fp16 autocast")
    p.add_argument("--no-scale-curriculum", dest="scale_curriculum", action="store_false",
                   help="keep the curriculum period even when --epochs shortens the run")
    p.add_argument("--continue_from_file", default=None,
                   help="start a run that has no current.pth from this checkpoint: ours, or one the "
                        "released trainer wrote (its layer names and optimizer order are mapped)")
    p.add_argument("--workers", type=int, default=None,
                   help="accepted for compatibility: data lives in memory, no loader workers are used")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars (for logs); the one line per epoch is still printed")
    p.add_argument("--efficientnet", action="store_true",
                   help="train the EfficientNet-style baseline of a game task (paper Table 5) instead of "
                        "a FoldedCNN: fold 1, images resized by 1/1.15 as the released code did")
    p.add_argument("--effnet-resize", choices=EFFNET_RESIZES, default="released",
                   help="--efficientnet images: 'released' = int(W/1.15) rows x int(H/1.15) columns, as the "
                        "released train.py resized them (rows and columns swapped); 'aspect' = "
                        "int(H/1.15) x int(W/1.15)")
    p.add_argument("--band-algorithm", choices=["fft", "dft", "auto"], default="auto",
                   help="algorithm of band-limited convs: fft (rfft2), dft (truncated DFT as matrix "
                        "products) or auto (dft)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig this script's command line asks for (inverse of ``config_argv``)."""
    return RunConfig(task=args.task, fold=args.fold, outdir=args.outdir, epochs=args.epochs,
                     batch_size=args.batch_size, device=args.device, channel_align=args.channel_align,
                     seed=args.seed, data_root=args.data_root, eval_orders=args.eval_orders,
                     cuda_graph=args.cuda_graph, amp=args.amp, scale_curriculum=args.scale_curriculum,
                     continue_from_file=args.continue_from_file, progress=args.progress,
                     efficientnet=args.efficientnet, effnet_resize=args.effnet_resize,
                     band_limit=args.band_limit, band_algorithm=args.band_algorithm,
                     teacher=args.teacher or str(Path(args.outdir).parent / "fold1" / "best.pth"))


def config_argv(cfg: RunConfig) -> list[str]:
    """Command-line arguments of this script that train exactly ``cfg``: ``train.py --jobs N``
    starts each run as ``python3 fold_trainer.py <these>``, so both paths train the same run."""
    argv = [cfg.task, str(cfg.fold), cfg.outdir, "--device", cfg.device, "--channel-align", str(cfg.channel_align),
            "--seed", str(cfg.seed), "--eval-orders", str(cfg.eval_orders), "--amp", cfg.amp,
            "--effnet-resize", cfg.effnet_resize, "--band-algorithm", cfg.band_algorithm]
    optional = {"--epochs": cfg.epochs, "--batch-size": cfg.batch_size, "--data-root": cfg.data_root,
                "--teacher": cfg.teacher, "--continue_from_file": cfg.continue_from_file,
                "--band-limit": cfg.band_limit}
    argv += [a for flag, v in optional.items() if v is not None for a in (flag, str(v))]
    switches = {"--no-cuda-graph": not cfg.cuda_graph, "--no-scale-curriculum": not cfg.scale_curriculum,
                "--no-progress": not cfg.progress, "--efficientnet": cfg.efficientnet}
    return argv + [flag for flag, on in switches.items() if on]


def sigterm_as_ctrl_c() -> None:
    """Make SIGTERM (a job scheduler, ``timeout``, ``train.py --jobs`` stopping its children) end a
    run the way Ctrl-C does: KeyboardInterrupt, one line, no traceback, last completed epoch kept.
    Only the first signal raises; later ones are swallowed so they cannot break that clean exit
    (a terminal's Ctrl-C reaches ``train.py --jobs`` children just before its SIGTERM does).
    Swallowed by a no-op, not SIG_IGN: a signal already pending when the disposition becomes
    SIG_IGN makes Python print an "ignored due to race condition" traceback."""
    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def main(args: argparse.Namespace) -> None:
    if args.epochs is not None and args.epochs < 1 or args.batch_size is not None and args.batch_size < 1:
        raise TrainError("--epochs and --batch-size must be >= 1")
    if args.band_limit is not None:
        check_band_limit(args.band_limit, args.band_algorithm)
    print(train_one(config_from_args(args)), flush=True)


USER_ERRORS = (TaskError, DatasetError, TrainError)

if __name__ == "__main__":
    sigterm_as_ctrl_c()
    try:
        main(get_args_parser().parse_args())
    except USER_ERRORS as exc:
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the last completed epoch is saved; re-run the same command to resume")
