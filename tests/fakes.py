"""Tiny stand-ins for real archives, written in their real formats, shared by the tests."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _pixel(i: int) -> np.ndarray:
    """A 32x32 RGB image whose channels are distinct per image and whose (0, 1) pixel is marked."""
    img = np.empty((32, 32, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = i, 100 + i, 200 - i
    img[0, 1] = (250, 251, 252)
    return img


def _rows(ids: list[int]) -> np.ndarray:
    # the archive stores each image as 1024 R, 1024 G, 1024 B values, rows top to bottom
    return np.stack([_pixel(i).transpose(2, 0, 1).reshape(-1) for i in ids])


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 10) -> None:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    k = 0
    for b in range(1, 6):
        ids = list(range(k, k + per_batch))
        k += per_batch
        blob = {"batch_label": f"training batch {b} of 5", "labels": [i % 10 for i in ids],
                "data": _rows(ids), "filenames": [f"img_{i}.png" for i in ids]}
        (d / f"data_batch_{b}").write_bytes(pickle.dumps(blob, protocol=2))
    ids = list(range(100, 100 + n_test))
    (d / "test_batch").write_bytes(pickle.dumps(
        {"batch_label": "testing batch 1 of 1", "labels": [i % 10 for i in ids], "data": _rows(ids),
         "filenames": [f"t_{i}.png" for i in ids]}, protocol=2))
    (d / "batches.meta").write_bytes(pickle.dumps(
        {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                         "truck"], "num_cases_per_batch": per_batch, "num_vis": 3072}, protocol=2))


def write_cifar100(root: Path, n_train: int = 25, n_test: int = 7) -> None:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for name, ids in (("train", list(range(n_train))), ("test", list(range(100, 100 + n_test)))):
        (d / name).write_bytes(pickle.dumps(
            {"filenames": [f"{i}.png" for i in ids], "batch_label": name, "fine_labels": [i % 100 for i in ids],
             "coarse_labels": [i % 20 for i in ids], "data": _rows(ids)}, protocol=2))
    (d / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)],
                                           "coarse_label_names": [f"s{i}" for i in range(20)]}, protocol=2))


def write_image_folder(root: Path, task_name: str, per_class: tuple[int, int, int] = (6, 2, 2)) -> None:
    """A learnable tiny image-folder set: each class has a bright stripe at its own column."""
    import cv2

    from config.tasks import get_task
    t = get_task(task_name)
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val", "test"), per_class):
        for ci, c in enumerate(t.classes):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 60, (t.height, t.width, 3), dtype=np.uint8)
                col = (ci * 3) % t.width
                img[:, col:col + 3] = 250
                cv2.imwrite(str(d / f"{i}.png"), img)
