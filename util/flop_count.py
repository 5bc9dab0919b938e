#!/usr/bin/env python3
"""Print the FLOP table (thop, FLOPs = 2 x MACs, per ONE input) as JSON.

Examples::

    ./flop_count.sh                          # same as: python3 -m util.flop_count
    ./flop_count.sh > config/model_map.json  # regenerate the committed table
    ./flop_count.sh --channel-align 8        # widths rounded up to multiples of 8
    ./flop_count.sh --band-limit 50          # band-limited CNNs: FLOPs their FFT/DFT convs execute

See ``util/bench/flops.py`` for the table's shape. A folded count covers ``f`` images.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # also run as a file

from config.tasks import TaskError  # noqa: E402
from util.bench.flops import flop_table  # noqa: E402
from util.cli import run_command  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channel-align", type=int, default=1,
                   help="round internal widths up to a multiple of this (default 1 = paper widths)")
    p.add_argument("--band-limit", type=float, default=None, metavar="CR",
                   help="band-limited CNNs discarding CR%% of each conv's spectrum (models/bandlimit.py)")
    p.add_argument("--band-algorithm", choices=["fft", "dft", "auto"], default="auto",
                   help="algorithm of the band-limited convs whose FLOPs are counted (auto = GPU default)")
    return p


def main(args: argparse.Namespace) -> None:
    band = ({} if args.band_limit is None else
            {"band_limit": args.band_limit, "band_algorithm": args.band_algorithm})
    print(json.dumps(flop_table(args.channel_align, **band), indent=2))


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError,))
