"""The NoScope split (paper section 5): labelled frames cut into train/val/test image folders.

The frames of a frame folder (``util/noscope/frames.py``) are cut into ``chunks`` equal
contiguous chunks; three consecutive chunks from chunk ``first_chunk`` become train, val and
test (``Task.data.noscope``). Each frame is linked into
``OUTDIR/<split>/<class>/<frame_no>.png``, class ``1`` when the label CSV names the task's
object in it (``util/noscope/labels.py``), else ``0``; the folder is built aside and swapped in
whole (``atomic_dir``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from tqdm import tqdm

from util.records.atomic import atomic_dir

from .frames import frame_path, list_frames
from .labels import positive_frames
from .tasks import NoScopeError, noscope_task

# the split folders datasets.load_split reads (datasets.SPLITS, not imported: it pulls in torch),
# in chunk order
SPLITS = ("train", "val", "test")


def split_frames(frames: list[int], chunks: int, first_chunk: int) -> dict[str, list[int]]:
    """Three consecutive chunks of ``len(frames) // chunks`` frames from chunk ``first_chunk``."""
    size = len(frames) // chunks
    if size == 0:
        raise NoScopeError(f"{len(frames)} frames cannot be cut into {chunks} chunks; save more frames")
    return {s: frames[(first_chunk + i) * size:(first_chunk + i + 1) * size] for i, s in enumerate(SPLITS)}


def _place(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # frames never change after writing, so a hard link is a safe copy
    except OSError:
        shutil.copyfile(src, dst)


def make_split(name: str, out_dir: Path, csv: Path, frames_dir: Path, force: bool = False,
               progress: bool = True) -> dict[str, tuple[int, int]]:
    """Write the split of NoScope task ``name`` (short name); returns {split: (frames, positive
    frames)}. An existing ``out_dir`` is replaced only with ``force``."""
    task = noscope_task(name)
    facts = task.data.noscope
    negative, positive = task.classes  # "0", "1"
    if out_dir.exists() and not force:
        raise NoScopeError(f"{out_dir} already exists; delete it or pass --force to replace it")
    positives = positive_frames(csv, facts.object)
    parts = split_frames(list_frames(frames_dir), facts.chunks, facts.first_chunk)
    stats = {}
    with atomic_dir(out_dir) as tmp:
        for split, frames in parts.items():
            for label in task.classes:
                (tmp / split / label).mkdir(parents=True)
            for f in tqdm(frames, desc=f"{name} {split}", unit="frame", disable=not progress, leave=False):
                label = positive if f in positives else negative
                _place(frame_path(frames_dir, f), frame_path(tmp / split / label, f))
            for label in task.classes:  # an empty class folder is not a class
                d = tmp / split / label
                if not any(d.iterdir()):
                    d.rmdir()
            stats[split] = (len(frames), sum(f in positives for f in frames))
    return stats
