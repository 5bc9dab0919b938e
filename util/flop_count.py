#!/usr/bin/env python3
"""Print the FLOP table (thop, FLOPs = 2 x MACs, per ONE input) as JSON.

Examples::

    ./flop_count.sh                          # same as: python3 -m util.flop_count
    ./flop_count.sh > config/model_map.json  # regenerate the committed table
    ./flop_count.sh --channel-align 8        # widths rounded up to multiples of 8

See ``util/flops.py`` for the table's shape. A folded count covers ``f`` images.
"""
from __future__ import annotations

import argparse
import json
import sys

from config.tasks import TaskError
from util.flops import flop_table


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channel-align", type=int, default=1,
                   help="round internal widths up to a multiple of this (default 1 = paper widths)")
    return p


def main(args: argparse.Namespace) -> None:
    print(json.dumps(flop_table(args.channel_align), indent=2))


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except TaskError as exc:
        sys.exit(f"error: {exc}")
