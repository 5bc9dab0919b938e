#!/usr/bin/env python3
"""Print the paper's accuracy and speedup table (``config/paper_results.json``) as CSV.

Examples::

    python3 util/paper.py                       # every task and fold the paper reports
    python3 util/paper.py --task noscope-coral  # one task
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.tasks import TaskError, get_task, task_names  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.reporting.paper import paper_accuracy, paper_id, paper_speedup  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default=None, help="print one task only (e.g. noscope-coral)")
    return p


def main(args: argparse.Namespace) -> None:
    names = [get_task(args.task).name] if args.task else task_names()
    print("task,paper_id,fold,accuracy,speedup")
    for name in names:
        for fold in (1, 2, 3, 4):
            acc, spd = paper_accuracy(name, fold), paper_speedup(name, fold)
            if acc is None and spd is None:
                continue
            print(f"{name},{paper_id(name)},{fold},{'' if acc is None else acc},"
                  f"{'' if spd is None else spd}")


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError,))
