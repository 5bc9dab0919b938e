"""Synthetic fixed-camera videos with NoScope-style label CSVs, for offline use.

The real NoScope videos (coral, night, roundabout, taipei) are not redistributable, so this
draws a stand-in: a static scene (``util/synth/noscope_scene.py``) with lighting drift and
sensor noise, where the task's object (from the registry) enters, moves across and leaves at
random times, in roughly 20-35% of the frames, among distractor objects of other kinds. Every
stretch of ``frames // 16`` frames gets at least one object of the task's kind, so each split
of ``util/noscope/split.py`` has positives. Deterministic for a given seed. The command is
``util/make_noscope_video.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from tqdm import tqdm

from util.noscope.labels import write_labels
from util.noscope.tasks import noscope_names, noscope_task
from util.records.atomic import atomic_path
from util.synth.noscope_scene import KINDS, SCENES, Scene

FOURCC = "mp4v"
FPS = 30
MIN_VISIBLE = 0.25  # fraction of an object's box inside the frame for it to be labelled
MIN_FRAMES = 16     # the video is cut into chunks


@dataclass
class Track:
    """One object crossing the frame in a straight line from ``start`` for ``duration`` frames."""
    kind: str
    start: int
    duration: int
    x0: float          # box centre at the start and end
    x1: float
    bottom0: float     # box bottom at the start and end
    bottom1: float
    scale: float
    color: tuple
    facing: int

    def box(self, frame: int, h: int) -> tuple[float, float, float, float] | None:
        if not self.start <= frame < self.start + self.duration:
            return None
        p = (frame - self.start) / max(self.duration - 1, 1)
        w, bh = (s * self.scale * h / 240 for s in KINDS[self.kind].size)
        cx, bottom = self.x0 + p * (self.x1 - self.x0), self.bottom0 + p * (self.bottom1 - self.bottom0)
        return cx - w / 2, bottom - bh, cx + w / 2, bottom


def make_tracks(rng: np.random.Generator, scene: Scene, kinds: list[str], n_frames: int, w: int, h: int,
                per_block: float, block: int) -> list[Track]:
    """Objects crossing the frame: ``per_block`` per block of frames on average (at least one
    when ``per_block >= 1``), each starting at a random frame of its block."""
    tracks = []
    for b0 in range(0, n_frames, block):
        count = int(per_block) + int(rng.random() < per_block - int(per_block))
        for _ in range(count):
            kind = kinds[rng.integers(len(kinds))]
            duration = int(rng.integers(max(block // 10, 2), max(block * 7 // 20, 3) + 1))
            g0, g1 = scene.ground
            bottom0 = rng.uniform(g0, g1) * h
            bottom1 = float(np.clip(bottom0 + rng.normal(0, 0.04) * h, g0 * h, g1 * h))
            # perspective: nearer (lower) objects are larger
            near = (bottom0 / h - g0) / max(g1 - g0, 1e-6)
            scale = (scene.scale[0] + near * (scene.scale[1] - scene.scale[0])) * rng.uniform(0.85, 1.15)
            half = KINDS[kind].size[0] * scale * h / 240 / 2
            facing = 1 if rng.random() < 0.5 else -1
            xa, xb = -half * 0.9, w + half * 0.9  # enter and leave through the sides
            if facing < 0:
                xa, xb = xb, xa
            colors = KINDS[kind].colors
            tracks.append(Track(kind, b0 + int(rng.integers(block)), duration, xa, xb, bottom0, bottom1,
                                scale, colors[rng.integers(len(colors))], facing))
    return tracks


def visible_box(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = box
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    if (cx1 - cx0) * (cy1 - cy0) < MIN_VISIBLE * (x1 - x0) * (y1 - y0):
        return None
    return int(cx0), int(cy0), int(cx1), int(cy1)


def render(name: str, n_frames: int, w: int, h: int, seed: int,
           progress: bool = True) -> Iterator[tuple[np.ndarray, list[tuple]]]:
    """Yield (frame BGR uint8, label rows) for every frame of the video."""
    target = noscope_task(name).data.noscope.object
    scene = SCENES[name]
    rng = np.random.default_rng([seed, noscope_names().index(name)])
    bg = scene.background(rng, h, w)
    block = int(np.clip(n_frames // 16, 1, 300))
    tracks = (make_tracks(rng, scene, [target], n_frames, w, h, 1.3, block)
              + make_tracks(rng, scene, list(scene.distractors), n_frames, w, h, 0.6, block))
    # lighting: a slow sinusoid plus a smoothed random walk of the gain
    t = np.arange(n_frames)
    walk = np.cumsum(rng.normal(0, 0.004, n_frames))
    walk -= np.linspace(0, walk[-1], n_frames)  # keep it bounded: end where it started
    gain = 1 + 0.08 * np.sin(2 * np.pi * t / max(n_frames / 3, 50) + rng.uniform(0, 6.3)) + walk
    noise_bank = rng.normal(0, scene.noise, (8, h, w, 3)).astype(np.int16)
    for f in tqdm(range(n_frames), desc=f"rendering {name}", unit="frame", disable=not progress, leave=False):
        frame = bg.copy()
        rows = []
        live = [(tr, tr.box(f, h)) for tr in tracks]
        live = sorted(((tr, b) for tr, b in live if b is not None), key=lambda tb: tb[1][3])  # far first
        for tr, b in live:
            KINDS[tr.kind].draw(frame, b, tr.color, f, tr.facing, scene.night)
            vis = visible_box(b, w, h)
            if vis is not None:
                rows.append((f, tr.kind, round(float(rng.uniform(0.6, 0.99)), 3), *vis))
        frame = cv2.convertScaleAbs(frame, alpha=float(np.clip(gain[f], 0.6, 1.4)))
        frame = np.clip(frame.astype(np.int16) + noise_bank[rng.integers(len(noise_bank))], 0, 255)
        yield frame.astype(np.uint8), rows


def make_video(name: str, video: Path, csv: Path, frames: int, resolution: tuple[int, int], seed: int,
               progress: bool = True) -> dict:
    """Write the video (codec ``FOURCC``) and its label CSV, each atomically; returns counts of
    frames and of frames where the task's object is visible."""
    if frames < MIN_FRAMES:
        raise ValueError(f"--frames {frames}: need at least {MIN_FRAMES} frames "
                         "(the video is cut into chunks)")
    if name not in SCENES:
        raise ValueError(f"no synthetic scene for {name!r}; scenes: {', '.join(SCENES)}")
    w, h = resolution
    rows = []
    with atomic_path(video, keep_suffix=True) as tmp:  # OpenCV picks the container from the suffix
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), FPS, (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {FOURCC} video to {tmp}; check opencv and the folder")
        try:
            for frame, frame_rows in render(name, frames, w, h, seed, progress):
                writer.write(frame)
                rows.extend(frame_rows)
        finally:
            writer.release()
        cap = cv2.VideoCapture(str(tmp))
        ok, _ = cap.read()
        cap.release()
        if not ok:
            raise OSError(f"the {FOURCC} video written to {video} cannot be read back by OpenCV")
        write_labels(rows, csv)  # before the video is renamed into place: a failed render leaves neither
    target = noscope_task(name).data.noscope.object
    positive = len({r[0] for r in rows if r[1] == target})
    return {"frames": frames, "positive_frames": positive, "positive_fraction": positive / frames,
            "rows": len(rows), "object": target}
