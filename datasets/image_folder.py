"""Image-folder data sets (game scraping and NoScope): ``<root>/<split>/<class>/*.png``.

Decoding ~110k small PNGs takes a while, so the decoded split is cached in
``<root>/.cache/<split>.pt`` together with a fingerprint of the file listing (relative
names, sizes, modification times) and of the task facts that shape the tensors (class
order, image size). A cache whose fingerprint matches is loaded instead of decoding; a
changed, added or removed file invalidates it; a corrupt cache is rebuilt.
"""
from __future__ import annotations

import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from config.tasks import Task
from util.records.atomic import atomic_torch_save

from .errors import DatasetError
from .hints import how_to_get

CACHE_DIR = ".cache"
CACHE_VERSION = 1
IMAGE_SUFFIX = ".png"
_CHUNK = 256  # images decoded per thread-pool task (amortises the per-task overhead)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def list_files(task: Task, split_dir: Path) -> tuple[list[Path], list[int], list[tuple[str, int, int]]]:
    """PNG paths, their labels (index in ``task.classes``) and (name, size, mtime) records."""
    if not split_dir.is_dir():
        raise DatasetError(f"no {split_dir.name} split for {task.name} at {split_dir}: "
                           + how_to_get(task, split_dir.parent))
    class_dirs = sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{split_dir} has no class folders; expected folders named like "
                           f"{', '.join(task.classes[:5])}...: " + how_to_get(task, split_dir.parent))
    index = {c: i for i, c in enumerate(task.classes)}
    paths, labels, records = [], [], []
    for d in class_dirs:
        if d.name not in index:
            raise DatasetError(f"unknown class folder {d} for task {task.name}; valid classes: "
                               f"{', '.join(task.classes)}")
        with os.scandir(d) as it:
            entries = sorted((e for e in it if e.name.endswith(IMAGE_SUFFIX) and e.is_file()),
                             key=lambda e: e.name)
        if not entries:
            raise DatasetError(f"class folder {d} holds no {IMAGE_SUFFIX} images; add images or remove it")
        for e in entries:
            st = e.stat()
            paths.append(Path(e.path))
            labels.append(index[d.name])
            records.append((f"{d.name}/{e.name}", st.st_size, st.st_mtime_ns))
    return paths, labels, records


def fingerprint(task: Task, records: list[tuple[str, int, int]]) -> str:
    """A hash of the listing and of the task facts that shape the decoded tensors."""
    h = hashlib.sha256()
    h.update(repr((CACHE_VERSION, task.classes, task.height, task.width)).encode())
    for name, size, mtime in records:
        h.update(f"{name}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def decode_pngs(paths: list[Path], height: int, width: int, progress: bool = True,
                desc: str = "decoding") -> np.ndarray:
    """Decode ``paths`` into one (N, 3, H, W) RGB uint8 array with a thread pool (OpenCV
    releases the GIL while decoding)."""
    out = np.empty((len(paths), 3, height, width), dtype=np.uint8)

    def work(start: int) -> int:
        stop = min(start + _CHUNK, len(paths))
        for i in range(start, stop):
            img = cv2.imread(str(paths[i]), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"cannot decode image {paths[i]} (corrupt or not a PNG); "
                                   "delete or replace it")
            if img.shape[:2] != (height, width):
                raise DatasetError(f"image {paths[i]} is {img.shape[0]}x{img.shape[1]} but the task "
                                   f"takes {height}x{width} (H x W); regenerate the data for this task")
            out[i] = img.transpose(2, 0, 1)[::-1]  # HWC BGR -> CHW RGB
        return stop - start

    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool, \
            tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for n in pool.map(work, range(0, len(paths), _CHUNK)):
            bar.update(n)
    return out


def _read_cache(path: Path, fp: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        ok = (isinstance(blob, dict) and blob.get("fingerprint") == fp
              and blob["images"].dtype == torch.uint8 and blob["labels"].dtype == torch.int64)
    except Exception as exc:  # any unreadable cache is rebuilt, never fatal
        _warn(f"ignoring unreadable cache {path} ({type(exc).__name__}); rebuilding it")
        return None
    return (blob["images"], blob["labels"]) if ok else None


def _write_cache(path: Path, fp: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    try:  # 0644: a cache is as readable as the data it was decoded from, whatever the umask
        atomic_torch_save({"fingerprint": fp, "images": images, "labels": labels}, path, mode=0o644)
    except OSError as exc:  # a read-only data set still loads, just slower next time
        _warn(f"could not write cache {path} ({exc.strerror or exc}); continuing without it")


def load_image_folder(task: Task, split: str, root: Path, *, progress: bool = True,
                      use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, H, W), labels int64 (N,)) of ``root/split``, cached."""
    paths, labels, records = list_files(task, root / split)
    fp = fingerprint(task, records)
    cache = root / CACHE_DIR / f"{split}.pt"
    if use_cache:
        hit = _read_cache(cache, fp)
        if hit is not None:
            return hit
    arr = decode_pngs(paths, task.height, task.width, progress, desc=f"decoding {task.name} {split}")
    images = torch.from_numpy(arr)
    label_t = torch.tensor(labels, dtype=torch.int64)
    if use_cache:
        _write_cache(cache, fp, images, label_t)
    return images, label_t
