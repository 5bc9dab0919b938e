#!/usr/bin/env python3
"""Make a synthetic fixed-camera video and its NoScope-style label CSV, for offline use.

The real NoScope videos (coral, night, roundabout, taipei) are not redistributable here,
so this draws a stand-in: a static scene (reef, night street, roundabout, city street)
with lighting drift and sensor noise, where the task's object (coral: person, night and
roundabout: car, taipei: bus; from the task registry) enters, moves across and leaves at
random times, in roughly 20-35% of the frames, among distractor objects of other kinds.
Every stretch of ``frames // 16`` frames gets at least one object of the task's kind, so
each split of ``util/noscope_split.py`` has positives. Deterministic for a given seed.

The CSV has NoScope's columns ``frame,object_name,confidence,xmin,ymin,xmax,ymax``: one
row per visible object per frame (an object counts as visible when at least a quarter of
its box is inside the frame).

Examples::

    python3 util/make_noscope_video.py coral data/coral.mp4 data/coral.csv
    python3 util/make_noscope_video.py taipei data/taipei.mp4 data/taipei.csv --frames 20000 --seed 1
    # then: util/noscope_video_save.py -> util/noscope_split.py -> train (reads
    # data/noscope-<name>-subset/{train,val,test} by default)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # keep ffmpeg's chatter off stderr
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402

from config.tasks import TaskError  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.noscope.tasks import noscope_names  # noqa: E402
from util.synth.noscope_video import make_video  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=noscope_names(), help="NoScope task (its object comes from the registry)")
    p.add_argument("video", type=Path, help="output video (.mp4, codec mp4v)")
    p.add_argument("csv", type=Path, help="output label CSV (NoScope format)")
    p.add_argument("--frames", type=int, default=4000, help="number of frames (default 4000, ~2 min at 30 fps)")
    p.add_argument("--resolution", type=int, nargs=2, default=(320, 240), metavar=("W", "H"),
                   help="video resolution, width then height (default 320 240)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same video (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(args: argparse.Namespace) -> dict:
    stats = make_video(args.name, args.video, args.csv, args.frames, tuple(args.resolution), args.seed,
                       not args.quiet)
    w, h = args.resolution
    print(f"wrote {args.video} ({args.frames} frames, {w}x{h}) and {args.csv} ({stats['rows']} rows); "
          f"'{stats['object']}' visible in {stats['positive_frames']} frames "
          f"({100 * stats['positive_fraction']:.1f}%)")
    return stats


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError, ValueError, OSError))
