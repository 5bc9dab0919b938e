#!/usr/bin/env python3
"""Generate the game-scraping data sets offline: synthetic HUD crops in the real archive's layout.

The paper's game-scraping training data is itself synthetic (text following each task's
template, rendered with random fonts, locations and backgrounds); this script makes it::

    ROOT/<game>/<task>/{train,val,test}/<class>/<n>.png      (3-channel, task H x W)

with the paper's images per class (``data.images_per_class`` of each task JSON) times
``--scale`` (at least 3 per class). Templates and labels: ``util/synth/game_text.py``; drawing:
``util/synth/game_render.py``.

Examples::

    python3 util/make_game_data.py                              # all six game tasks -> data/game_data
    python3 util/make_game_data.py /tmp/gd --tasks lol/goldnumber-fraction
    python3 util/make_game_data.py /tmp/gd --scale 0.01 --seed 1 --workers 2
    python3 util/make_game_data.py /tmp/gd --tasks sot/timer3 --force   # regenerate
    python3 util/make_game_data.py /tmp/gd --sheet /tmp/gen_samples     # contact sheets only

Output is deterministic for a given ``--seed`` and ``--scale`` whatever ``--workers`` is
(each chunk of images has its own seeded RNG). Each split is written to a hidden sibling
folder and renamed when complete; a finished task gets ``ROOT/<task>/.complete`` (JSON:
seed, scale, counts, generator version) and is skipped on reruns unless ``--force``.
A task folder holding data without that marker (e.g. the real archive) is left alone
unless ``--force``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402

from config.tasks import TaskError, task_names  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.synth.game_data import GameDataError, contact_sheet, game_task, generate_task  # noqa: E402

def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", nargs="?", default=None,
                   help="output folder (default: $DATA_ROOT when set, else data/game_data)")
    p.add_argument("--tasks", nargs="+", default=None, metavar="T",
                   help="game tasks to make (default: all: " + ", ".join(task_names("game")) + ")")
    p.add_argument("--scale", type=float, default=1.0,
                   help="fraction of the paper's images per class (default 1; at least 3 per class)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true",
                   help="regenerate finished tasks and replace data without a marker")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: all CPU cores)")
    p.add_argument("--sheet", default=None, metavar="DIR",
                   help="only write a contact sheet PNG per task to DIR (no data set)")
    return p


def main(args: argparse.Namespace) -> None:
    tasks = [game_task(t) for t in (args.tasks or task_names("game"))]
    if not args.scale > 0:
        raise GameDataError(f"bad --scale {args.scale}: use a number > 0 (1 = the paper's counts)")
    if args.workers is not None and args.workers < 1:
        raise GameDataError(f"bad --workers {args.workers}: use an integer >= 1")
    if args.sheet:
        for t in tasks:
            print(contact_sheet(t, args.sheet, seed=args.seed))
        return
    for t in tasks:
        path = generate_task(t, args.root, args.scale, args.seed, args.workers, args.force)
        print(f"{t.name}: {path}")


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(GameDataError, TaskError, OSError))
