#!/usr/bin/env python3
"""Ship the finished runs of a train.py savedir into a reference folder such as model_files/paper-h200/.

Every run under ``SAVEDIR`` with a ``done.json`` that ``DEST`` does not hold yet is copied to the
same ``<task>/fold<f>/`` (or ``efficientnet/``, ``-band<CR>``) folder of ``DEST`` with its
``best.pth``, ``stats.csv``, ``config.json`` and ``done.json`` (never ``current.pth``), and its
results row is added to ``DEST/results.csv``. Runs already shipped are left as they are, so the
command can be repeated after every training piece. Unfinished runs are listed and skipped.

Examples::

    # after a piece of model_files/paper-h200/game_table.sh, its unpacked runs
    python3 util/ship_runs.py /tmp/state/runs/paper-h200 model_files/paper-h200 --dry-run
    python3 util/ship_runs.py /tmp/state/runs/paper-h200 model_files/paper-h200
    python3 -m pytest -q tests/test_shipped_runs.py
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from util.cli import run_command  # noqa: E402
from util.training.errors import USER_ERRORS  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("savedir", help="train.py output folder whose finished runs to ship")
    p.add_argument("dest", help="the reference folder (it holds results.csv and one folder per run)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be shipped")
    return p


def main(args: argparse.Namespace) -> list:
    from util.training.ship import ship_finished

    shipped = ship_finished(args.savedir, args.dest, dry_run=args.dry_run)
    verb = "would ship" if args.dry_run else "shipped"
    for s in shipped:
        print(f"{verb if s.new else 'already in':>10s}  {s.dest}")
    print(f"{sum(s.new for s in shipped)} of {len(shipped)} finished runs {verb}")
    return shipped


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=USER_ERRORS + (OSError,))
