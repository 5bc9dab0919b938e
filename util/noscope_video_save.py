#!/usr/bin/env python3
"""Save a video's frames as 50 x 50 PNGs (NoScope's input size), one file per frame.

Frames are read with OpenCV, resized with nearest-neighbour interpolation (as NoScope
did) and written as ``FRAMES_DIR/<frame_no>.png``, numbered from 0 in video order. Each
PNG is written to a temporary name and renamed, and a finished run leaves the marker
``FRAMES_DIR/.complete``: a half run is detectable, and running again resumes it (frames
already on disk are not rewritten). The frame size comes from the NoScope tasks in the
registry.

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
import json  # noqa: E402

import cv2  # noqa: E402
from tqdm import tqdm  # noqa: E402

from config.tasks import TaskError, get_task, task_names  # noqa: E402

COMPLETE_MARKER = ".complete"


def noscope_frame_size() -> tuple[int, int]:
    """(H, W) of the NoScope CNNs' input, from the registry (all NoScope tasks share it)."""
    sizes = {(get_task(n).height, get_task(n).width) for n in task_names("noscope")}
    if len(sizes) != 1:
        raise TaskError(f"NoScope tasks disagree on the input size {sorted(sizes)}; pass --size")
    return sizes.pop()


def write_png_atomic(path: Path, image) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode frame {path.name} as PNG")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def save_frames(video: Path, out_dir: Path, start: int = 0, end: int | None = None,
                size: tuple[int, int] | None = None, progress: bool = True) -> int:
    """Write frames ``[start, end)`` of ``video``; returns how many frames the range held."""
    if not video.is_file():
        raise OSError(f"video {video} not found; give the path of an .mp4 (or any video OpenCV reads)")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise OSError(f"cannot read video {video} (not a video, or a codec OpenCV lacks); "
                      "re-encode it, e.g. ffmpeg -i IN -c:v mpeg4 OUT.mp4")
    h, w = size or noscope_frame_size()
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    stop = end if end is not None else total
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    frame_no, saved = 0, 0
    bar = tqdm(total=(stop - start) if stop else None, desc=f"frames of {video.name}", unit="frame",
               disable=not progress, leave=False)
    try:
        while end is None or frame_no < end:
            if frame_no < start:
                if not cap.grab():
                    break
                frame_no += 1
                continue
            ok, frame = cap.read()
            if not ok:
                break
            path = out_dir / f"{frame_no}.png"
            if not path.exists():  # resume: frames of an earlier run are complete files
                write_png_atomic(path, cv2.resize(frame, (w, h), interpolation=cv2.INTER_NEAREST))
            saved += 1
            frame_no += 1
            bar.update(1)
    finally:
        bar.close()
        cap.release()
    if saved == 0:
        raise OSError(f"no frames read from {video} in [{start}, {end if end is not None else 'end'}): "
                      "the video is empty, unreadable, or --start is past its end")
    meta = {"video": str(video), "start": start, "end": start + saved, "frames": saved, "size": [h, w]}
    tmp = out_dir / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps(meta) + "\n")
    os.replace(tmp, out_dir / COMPLETE_MARKER)
    return saved


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", type=Path, metavar="VIDEO", help="input video file")
    p.add_argument("frames_dir", type=Path, metavar="FRAMES_DIR", help="output folder for <frame_no>.png")
    p.add_argument("--start", type=int, default=0, help="first frame to save (default 0)")
    p.add_argument("--end", type=int, default=None, help="stop before this frame (default: end of video)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="frame size (default: the NoScope tasks' input size from config/, 50 50)")
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
    try:
        main(get_args_parser().parse_args())
    except (TaskError, ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
