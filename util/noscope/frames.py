"""The NoScope frame folder: ``FRAMES_DIR/<frame_no>.png``, one per video frame, numbered from 0
in video order, at the NoScope CNNs' input size (50 x 50, from the registry), plus the marker
``FRAMES_DIR/.complete`` once a run has written every frame of its range.

``save_frames`` writes it (command ``util/noscope_video_save.py``); ``list_frames`` reads it
(``util/noscope/split.py``). Each PNG is written atomically, so a half run leaves only whole
frames and no marker: running again resumes it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from config.tasks import TaskError, get_task, task_names
from util.records.atomic import atomic_write_bytes, atomic_write_json

from .tasks import NoScopeError

COMPLETE_MARKER = ".complete"
FRAME_SUFFIX = ".png"
SAVE_COMMAND = "util/noscope_video_save.py"


def frame_size() -> tuple[int, int]:
    """(H, W) of the NoScope CNNs' input, from the registry (all NoScope tasks share it)."""
    sizes = {(get_task(n).height, get_task(n).width) for n in task_names("noscope")}
    if len(sizes) != 1:
        raise TaskError(f"NoScope tasks disagree on the input size {sorted(sizes)}; pass --size")
    return sizes.pop()


def frame_path(frames_dir: Path, frame_no: int) -> Path:
    return frames_dir / f"{frame_no}{FRAME_SUFFIX}"


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(FRAME_SUFFIX, image)
    if not ok:
        raise OSError(f"cannot encode frame {path.name} as PNG")
    atomic_write_bytes(path, buf.tobytes())


def save_frames(video: Path, out_dir: Path, start: int = 0, end: int | None = None,
                size: tuple[int, int] | None = None, progress: bool = True) -> int:
    """Write frames ``[start, end)`` of ``video``, resized with nearest-neighbour interpolation
    (as NoScope did) to ``size`` (H, W; default ``frame_size()``); frames already on disk are
    kept. Returns how many frames the range held."""
    if not video.is_file():
        raise OSError(f"video {video} not found; give the path of an .mp4 (or any video OpenCV reads)")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise OSError(f"cannot read video {video} (not a video, or a codec OpenCV lacks); "
                      "re-encode it, e.g. ffmpeg -i IN -c:v mpeg4 OUT.mp4")
    h, w = size or frame_size()
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
            path = frame_path(out_dir, frame_no)
            if not path.exists():  # resume: frames of an earlier run are complete files
                _write_png(path, cv2.resize(frame, (w, h), interpolation=cv2.INTER_NEAREST))
            saved += 1
            frame_no += 1
            bar.update(1)
    finally:
        bar.close()
        cap.release()
    if saved == 0:
        raise OSError(f"no frames read from {video} in [{start}, {end if end is not None else 'end'}): "
                      "the video is empty, unreadable, or --start is past its end")
    atomic_write_json(out_dir / COMPLETE_MARKER, {"video": str(video), "start": start, "end": start + saved,
                                                  "frames": saved, "size": [h, w]})
    return saved


def list_frames(frames_dir: Path) -> list[int]:
    """Sorted frame numbers in ``frames_dir``; they must be consecutive. A folder without the
    marker is used with a warning (it may be the output of an interrupted run)."""
    if not frames_dir.is_dir():
        raise NoScopeError(f"frames folder {frames_dir} not found; make it with {SAVE_COMMAND}")
    nums = sorted(int(p.stem) for p in frames_dir.glob(f"*{FRAME_SUFFIX}") if p.stem.isdigit())
    if not nums:
        raise NoScopeError(f"no <frame_no>{FRAME_SUFFIX} files in {frames_dir}; "
                           f"make them with {SAVE_COMMAND}")
    gaps = [a for a, b in zip(nums, nums[1:]) if b != a + 1]
    if gaps:
        raise NoScopeError(f"frames in {frames_dir} are not consecutive (frame {gaps[0] + 1} is missing); "
                           f"rerun {SAVE_COMMAND} to complete them")
    if not (frames_dir / COMPLETE_MARKER).exists():
        print(f"warning: {frames_dir} has no {COMPLETE_MARKER} marker; if {SAVE_COMMAND} "
              "was interrupted, rerun it first", file=sys.stderr)
    return nums
