#!/usr/bin/env python3
"""Save a video's frames as 50 x 50 PNGs (NoScope's input size), one file per frame.

Frames are read with OpenCV, resized with nearest-neighbour interpolation (as NoScope
did) and written as ``FRAMES_DIR/<frame_no>.png``, numbered from 0 in video order. Each
PNG is written atomically, and a finished run leaves the marker ``FRAMES_DIR/.complete``:
a half run is detectable, and running again resumes it (frames already on disk are not
rewritten). The frame size comes from the NoScope tasks in the registry. The folder's
layout is ``util/noscope/frames.py``'s.

Examples::

    python3 util/noscope_video_save.py data/coral.mp4 data/coral-frames
    python3 util/noscope_video_save.py data/coral.mp4 data/coral-frames --start 1000 --end 5000
    # next: python3 util/noscope_split.py coral data/noscope-coral-subset \\
    #         --infile data/coral.csv --indir data/coral-frames
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
from util.noscope.frames import frame_size, save_frames  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", type=Path, metavar="VIDEO", help="input video file")
    p.add_argument("frames_dir", type=Path, metavar="FRAMES_DIR", help="output folder for <frame_no>.png")
    p.add_argument("--start", type=int, default=0, help="first frame to save (default 0)")
    p.add_argument("--end", type=int, default=None, help="stop before this frame (default: end of video)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="frame size (default: the NoScope tasks' input size from config/, %d %d)"
                   % frame_size())
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(args: argparse.Namespace) -> int:
    if args.start < 0 or (args.end is not None and args.end <= args.start):
        raise ValueError(f"bad frame range --start {args.start} --end {args.end}: need 0 <= start < end")
    n = save_frames(args.video, args.frames_dir, args.start, args.end,
                    tuple(args.size) if args.size else None, not args.quiet)
    print(f"saved {n} frames of {args.video} to {args.frames_dir}")
    return n


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError, ValueError, OSError))
