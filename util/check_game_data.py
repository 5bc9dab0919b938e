#!/usr/bin/env python3
"""Sanity check of the synthetic game data: train the original CNN briefly on CPU, print accuracy.

A generator whose data a small CNN learns to 100% in a few epochs is too easy to stand in for
the paper's (89.7-98.5% test accuracy); one it cannot learn at all is broken. This script
makes (or reuses) a small data set with ``util/make_game_data.py`` and trains
``build_model(task, 1)`` with Adam for a few epochs (not the paper's 1500-epoch recipe).

Examples::

    python3 util/check_game_data.py                                   # lol/goldnumber-fraction, scale 0.05
    python3 util/check_game_data.py --task sot/timer3 --scale 0.2 --epochs 8
    python3 util/check_game_data.py --root /tmp/gd_check --lr 1e-3 --batch-size 64
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from config.tasks import Task, TaskError  # noqa: E402
from datasets import SPLITS, DatasetError, load_split, to_float  # noqa: E402
from models import build_model  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.synth.game_data import GameDataError, game_task, generate_task  # noqa: E402


def load_float_split(task: Task, task_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as training reads it (``datasets.load_split``, then ``to_float``): (N, 3, H, W)
    floats and class indices."""
    data = load_split(task, split, task_dir, progress=False)
    return to_float(data.images, task), data.labels


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                  for i in range(0, len(x), batch))
    return 100.0 * correct / len(x)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="lol/goldnumber-fraction", help="game task (default lol/goldnumber-fraction)")
    p.add_argument("--root", default="/tmp/game_data_check", help="data root (made if missing)")
    p.add_argument("--scale", type=float, default=0.05, help="data scale for make_game_data (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    return p


def main(args: argparse.Namespace) -> float:
    task = game_task(args.task)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    task_dir = generate_task(task, args.root, args.scale, args.seed)
    (xtr, ytr), (xva, yva), (xte, yte) = (load_float_split(task, task_dir, s) for s in SPLITS)
    print(f"{task.name}: {len(xtr)} train, {len(xva)} val, {len(xte)} test images, "
          f"{task.num_classes} classes (chance {100 / task.num_classes:.1f}%)")
    model = build_model(task, 1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    test_acc = 0.0
    for epoch in range(args.epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(xtr))
        total = 0.0
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_acc, val_acc, test_acc = (accuracy(model, x, y) for x, y in
                                        ((xtr, ytr), (xva, yva), (xte, yte)))
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(xtr):.3f}  train {train_acc:.1f}%  "
              f"val {val_acc:.1f}%  test {test_acc:.1f}%  ({time.time() - t0:.0f}s)")
    return test_acc


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(GameDataError, DatasetError, TaskError, OSError))
