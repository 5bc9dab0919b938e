#!/usr/bin/env python3
"""FLOPs/sec achieved at a measured throughput, from the FLOP table (the released command).

    python3 util/flops_from_tput.py TPUT MODEL MODE [--config_dir DIR]

TPUT is images/sec; MODEL a benchmark name (``game_lol/goldnumber-fraction``, its table key
``lol/goldnumber-fraction``, ``noscope_coral``, ``efficientnet-game_sot/timer3``); MODE one of
``og``, ``fold2``, ``fold3``, ``fold4``. Prints ``MODE_ops / f x TPUT`` with two decimals, where
``f`` is the images one input holds (1 for ``og`` and for EfficientNet entries, whose ``fold2``
is the compound-scaled CNN), as the released run_inference.sh used it. Example::

    python3 util/flops_from_tput.py 3970000 game_lol/goldnumber-fraction og
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config.tasks import TaskError, find_bench_entry  # noqa: E402
from util.bench.flops import MODEL_MAP, flops_from_tput, load_model_map  # noqa: E402
from util.cli import run_command  # noqa: E402

MODES = ("og", "fold2", "fold3", "fold4")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tput", type=float, help="throughput in images/sec")
    p.add_argument("model", help="benchmark model or FLOP-table key")
    p.add_argument("mode", choices=MODES, help="og (original) or foldF")
    p.add_argument("--config_dir", default=str(MODEL_MAP.parent),
                   help="folder holding model_map.json (default: config)")
    return p


def main(args: argparse.Namespace) -> float:
    fold = 1 if args.mode == "og" else int(args.mode[len("fold"):])
    table = load_model_map(Path(args.config_dir) / MODEL_MAP.name)
    flops = flops_from_tput(find_bench_entry(args.model), fold, args.tput, table)
    print(f"{flops:.2f}")
    return flops


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError,))
