#!/usr/bin/env python3
"""Evaluate trained runs' best checkpoints on a data split, e.g. the shipped runs on new data.

``SAVEDIR`` is a ``train.py`` output folder: ``SAVEDIR/<task>/fold<f>/best.pth`` is loaded
(``weights_only=True``) into the registry's network and evaluated on ``--split`` of the data
under ``--data-root`` (the same fixed, seeded groups of f images as training's evaluation).
Each row sets the accuracy measured here beside the one the run measured on its own test split
(``done.json``). A run folder without ``best.pth`` gives a row with status ``no checkpoint``,
not an error, so a checkout without shipped weights still gets a report.

Examples::

    # the shipped V1 runs on the test split the default pipeline generated
    python3 util/evaluate_runs.py model_files/paper-h200 --tasks lol/goldnumber-fraction --folds 1 2 4 \\
        --data-root runs/default/data --csv runs/default/shipped_eval.csv
    python3 util/report.py runs/default --checkpoint-eval runs/default/shipped_eval.csv
    # where V3's mistakes go: top-1 per class and the 6 most frequent confusions
    python3 util/make_game_data.py /tmp/gd --tasks sot/coin_count-digits_3_4-v2
    python3 util/evaluate_runs.py model_files/paper-h200 --tasks sot/coin_count-digits_3_4-v2 \\
        --folds 1 4 --data-root /tmp/gd --confusions 6
    # top-1 at each place of the group: which of the f images a folded network has learned
    python3 util/evaluate_runs.py model_files/paper-h200 --tasks sot/timer3 --folds 4 \\
        --data-root /tmp/gd --by-position
    # the same for a run still in training, at its latest epoch
    python3 util/evaluate_runs.py runs/paper-h200-lr8e-4 --tasks sot/coin_count-digits_3_4-v2 --folds 4 \\
        --data-root /tmp/gd --by-position --checkpoint current

CSV columns (``util/training/run_eval.py``): task, paper_id, fold, split, images, status,
test_top1, test_top5 (here), trained_test_top1, trained_epochs (the run's own), checkpoint_epoch,
top1_by_place (with --by-position: top-1 at places 0..f-1, '74.0/60.5/81.8/76.4'), run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.tasks import TaskError, check_fold, get_task  # noqa: E402
from datasets.errors import DatasetError  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.training.errors import TrainError  # noqa: E402

if TYPE_CHECKING:  # torch is imported when a command needs it (--help stays quick)
    import torch


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("savedir", help="train.py output folder holding <task>/fold<f>/best.pth")
    p.add_argument("--tasks", nargs="+", default=["lol/goldnumber-fraction"], help="tasks (default: V1)")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 2, 4], help="fold factors (default 1 2 4)")
    p.add_argument("--data-root", default=None, help="data folder as in train.py (default: the repository's data/)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default test)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--csv", default=None, help="write the rows here (atomic); they are printed either way")
    p.add_argument("--confusions", type=int, default=0, metavar="K",
                   help="also print each run's top-1 per class and its K most frequent mistakes "
                        "(true -> predicted), to see whether errors spread over classes or concentrate")
    p.add_argument("--by-position", action="store_true",
                   help="also measure each folded run's top-1 at every place 0..f-1 of its groups (the "
                        "top1_by_place column): a place at chance (100 / classes) is one the network "
                        "has not learned")
    p.add_argument("--checkpoint", choices=("best", "current"), default="best",
                   help="best.pth (default: the epoch of best validation top-1) or current.pth (the latest "
                        "epoch: a run in training, before every class is active and best.pth exists)")
    return p


def main(args: argparse.Namespace) -> None:
    import torch

    from util.training.run_eval import CHECKPOINTS, evaluate_runs, format_eval_csv, write_eval_csv

    tasks = [get_task(t).name for t in args.tasks]
    folds = [check_fold(f) for f in args.folds]
    if not Path(args.savedir).is_dir():
        raise TrainError(f"{args.savedir} is not a folder; give a train.py output folder such as model_files/paper-h200")
    rows = evaluate_runs(Path(args.savedir), tasks, folds, Path(args.data_root) if args.data_root else None,
                         args.split, torch.device(args.device), by_place=args.by_position,
                         checkpoint=CHECKPOINTS[args.checkpoint])
    for r in rows:
        here = f"no {CHECKPOINTS[args.checkpoint]} in this checkout" if r["test_top1"] is None else f"{r['test_top1']:.2f}% on {r['images']} images"
        own = "" if r["trained_test_top1"] is None else f" (its own test split: {r['trained_test_top1']:.2f}%)"
        print(f"{r['task']} ({r['paper_id']}) f={r['fold']}: {here}{own}")
        if args.confusions > 0 and r["test_top1"] is not None:
            print(confusions(Path(r["run"]), r["task"], r["fold"], args, torch.device(args.device)))
        if r["top1_by_place"]:
            print(f"  top-1 by place in the group: {r['top1_by_place'].replace('/', ' / ')} "
                  f"(chance {100 / get_task(r['task']).num_classes:.1f})")
    if args.csv:
        write_eval_csv(Path(args.csv), rows)
        print(f"wrote {args.csv}")
    else:
        print(format_eval_csv(rows), end="")


def _split_and_model(run: Path, task: str, args: argparse.Namespace):
    from datasets import load_split
    from util.training.run_eval import CHECKPOINTS, load_trained_model

    t = get_task(task)
    data = load_split(t, args.split, t.data_dir(Path(args.data_root) if args.data_root else None), progress=False)
    return t, data, load_trained_model(run / CHECKPOINTS[args.checkpoint])[0]


def confusions(run: Path, task: str, fold: int, args: argparse.Namespace, device: torch.device) -> str:
    from util.training.run_eval import confusion_matrix, confusion_summary

    t, data, model = _split_and_model(run, task, args)
    return confusion_summary(confusion_matrix(model, task, fold, data, device), t.classes, args.confusions)


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TrainError, TaskError, DatasetError))
