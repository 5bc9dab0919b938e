"""Game-scraping data sets made offline: synthetic HUD crops in the real archive's layout.

``ROOT/<game>/<task>/{train,val,test}/<class>/<n>.png`` with the paper's images per class times a
scale; each split is written to a hidden sibling and renamed when complete, and a finished task
gets a ``.complete`` marker, so a half-written set never looks complete. The command is
``util/make_game_data.py``.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from config.tasks import Task, TaskError, get_task, task_names
from util.records.atomic import atomic_write_json
from util.synth.game_render import find_fonts, make_image


GENERATOR_VERSION = 1
SPLITS = ("train", "val", "test")
MARKER = ".complete"
IN_PROGRESS = ".generating"
CHUNK = 250           # images per work item (fixed, so output does not depend on --workers)
MIN_PER_CLASS = 3


class GameDataError(ValueError):
    """A user mistake (bad task, scale, or a folder we must not overwrite); one line."""


def game_task(name: str | Task) -> Task:
    """A game-scraping task by name; a one-line error lists the valid ones."""
    valid = task_names("game")
    task_name = name.name if isinstance(name, Task) else name
    if task_name not in valid:
        raise GameDataError(f"unknown game task {task_name!r}; valid game tasks: {', '.join(valid)}")
    return get_task(task_name)


def default_root() -> Path:
    """The folder holding every game task's data, from the registry: where a missing task's
    data is made (``$DATA_ROOT`` when set, else ``data/game_data``) is ``<root>/<task name>``."""
    roots = set()
    for name in task_names("game"):
        p = get_task(name).data_candidates()[0]
        depth = len(Path(name).parts)
        if p.parts[-depth:] != Path(name).parts:
            raise TaskError(f"{name}: data path {p} does not end with the task name")
        roots.add(p.parents[depth - 1])
    if len(roots) != 1:
        raise TaskError(f"game tasks disagree on their data root: {sorted(map(str, roots))}")
    return roots.pop()


def class_counts(task: Task, scale: float = 1.0) -> dict[str, int]:
    """Images per class for each split: the paper's count times ``scale``, at least 3."""
    if not scale > 0:
        raise GameDataError(f"bad --scale {scale}: use a number > 0 (1 = the paper's counts)")
    per = task.data.images_per_class
    return {s: max(MIN_PER_CLASS, int(round(per[s] * scale))) for s in SPLITS}


def is_complete(task_dir: Path) -> bool:
    """True if ``task_dir`` holds a finished generated data set (marker and every split)."""
    try:
        json.loads((task_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all((task_dir / s).is_dir() for s in SPLITS)


# --- workers ---------------------------------------------------------------------------------
_W: dict = {}


def _init_worker(task_name: str, fonts: tuple[str, ...]) -> None:
    cv2.setNumThreads(1)
    t = get_task(task_name)
    _W.update(task=t, fonts=fonts)


def _chunk_seed(seed: int, task_name: str, split: str, cls_index: int, start: int
                ) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(task_name.encode()), SPLITS.index(split),
                                   cls_index, start])


def _work(job: tuple) -> tuple[str, int]:
    """Render and write one chunk: (split, class index, first index, count, folder, seed)."""
    split, ci, start, count, folder, seed = job
    t: Task = _W["task"]
    cls = t.classes[ci]
    rng = np.random.default_rng(_chunk_seed(seed, t.name, split, ci, start))
    out = Path(folder) / cls
    for n in range(start, start + count):
        img = make_image(t.name, cls, t.height, t.width, rng, _W["fonts"])
        if not cv2.imwrite(str(out / f"{n}.png"), img):
            raise OSError(f"could not write {out / f'{n}.png'}")
    return split, count


# --- one task --------------------------------------------------------------------------------
def _tmp(task_dir: Path, split: str) -> Path:
    return task_dir / f".{split}.tmp"


def _prepare(task_dir: Path, force: bool) -> None:
    """Clear what a previous (interrupted or forced) run left, refusing foreign data."""
    ours = (task_dir / MARKER).exists() or (task_dir / IN_PROGRESS).exists() or any(
        _tmp(task_dir, s).exists() for s in SPLITS)
    present = [s for s in SPLITS if (task_dir / s).exists()]
    if present and not ours and not force:
        raise GameDataError(f"{task_dir} already holds {'/'.join(present)} without a {MARKER} "
                            "marker (real or foreign data?); move it away or pass --force to replace it")
    for p in [task_dir / MARKER] + [task_dir / s for s in SPLITS] + [_tmp(task_dir, s) for s in SPLITS]:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def generate_task(task: str | Task, root: str | Path | None = None, scale: float = 1.0,
                  seed: int = 0, workers: int | None = None, force: bool = False,
                  progress: bool = True) -> Path:
    """Make ``task``'s synthetic data under ``root`` (default: the registry's game data root)
    and return the task folder ``root/<task name>``; a finished one is reused unless ``force``."""
    task = game_task(task)
    counts = class_counts(task, scale)
    task_dir = (Path(root) if root is not None else default_root()) / task.name
    if is_complete(task_dir) and not force:
        info = json.loads((task_dir / MARKER).read_text())
        if progress and (info.get("seed"), info.get("scale")) != (seed, scale):
            print(f"{task.name}: kept existing data (seed {info.get('seed')}, scale "
                  f"{info.get('scale')}); pass --force to regenerate", file=sys.stderr)
        return task_dir
    task_dir.mkdir(parents=True, exist_ok=True)
    _prepare(task_dir, force)
    atomic_write_json(task_dir / IN_PROGRESS, {"pid": os.getpid(), "seed": seed, "scale": scale})
    jobs, left = [], {}
    for split in ("test", "val", "train"):  # small splits first: they finish early
        tmp = _tmp(task_dir, split)
        for ci, cls in enumerate(task.classes):
            (tmp / cls).mkdir(parents=True, exist_ok=True)
            for start in range(0, counts[split], CHUNK):
                jobs.append((split, ci, start, min(CHUNK, counts[split] - start), str(tmp), seed))
        left[split] = counts[split] * task.num_classes
    fonts = find_fonts()
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = tqdm(total=sum(left.values()), desc=task.name, unit="img", disable=not progress)

    def done(split: str, n: int) -> None:
        bar.update(n)
        left[split] -= n
        if left[split] == 0:  # the split is whole: publish it
            os.replace(_tmp(task_dir, split), task_dir / split)

    if workers == 1:
        _init_worker(task.name, fonts)
        for job in jobs:
            done(*_work(job))
    else:
        # spawn, not fork: a forked child inherits OpenCV's/torch's thread pools mid-state
        # and can deadlock (seen under pytest); workers only need numpy, cv2 and Pillow.
        with mp.get_context("spawn").Pool(workers, _init_worker, (task.name, fonts)) as pool:
            for res in pool.imap_unordered(_work, jobs):
                done(*res)
    bar.close()
    atomic_write_json(task_dir / MARKER, {
        "task": task.name, "generator_version": GENERATOR_VERSION, "seed": seed, "scale": scale,
        "image_size": [task.height, task.width],
        "counts": {s: {c: counts[s] for c in task.classes} for s in SPLITS},
        "fonts": [Path(f).name for f in fonts]})
    (task_dir / IN_PROGRESS).unlink()
    return task_dir


def contact_sheet(task: str | Task, out_dir: str | Path, per_class: int = 8, max_classes: int = 14,
                  seed: int = 0, zoom: int = 4) -> Path:
    """Write a PNG grid of samples (one row per class) to ``out_dir``, to look at the data."""
    task = game_task(task)
    fonts = find_fonts()
    rng = np.random.default_rng(seed)
    step = max(1, len(task.classes) // max_classes)
    classes = list(task.classes[::step][:max_classes - 1]) + ["other"]
    rows = []
    for cls in dict.fromkeys(classes):
        tiles = [np.pad(make_image(task.name, cls, task.height, task.width, rng, fonts),
                        ((1, 1), (1, 1), (0, 0)), constant_values=255) for _ in range(per_class)]
        rows.append(np.concatenate(tiles, axis=1))
    sheet = cv2.resize(np.concatenate(rows, axis=0), None, fx=zoom, fy=zoom,
                       interpolation=cv2.INTER_NEAREST)
    out = Path(out_dir) / (task.name.replace("/", "_") + ".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    return out
