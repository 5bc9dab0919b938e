"""CIFAR-10 / CIFAR-100 through torchvision's loaders.

Where the data comes from, in order: the extracted folder under ``root``; the archive
(``cifar-*-python.tar.gz``) there, extracted in place once; else, when the archive's server
answers, torchvision's download into ``root`` (as the released code did, MD5 checked); else a
one-line error saying where to put the archive.

The validation split (paper section 4) is carved from the official training set by a
fixed seeded permutation: ``n + (f - n % f)`` images for ``n = validation_images`` (5000), the
released code's rule: the next multiple of the fold factor *above* ``n``, so 5001, 5002, 5001
and 5004 images at f = 1, 2, 3, 4. Every fold's validation set holds whole folded inputs and
the sets of different folds are nested. The rest is the training split; the test split is
the official test set.
"""
from __future__ import annotations

import shutil
import socket
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision import datasets as tv_datasets

from config.tasks import Task

from .errors import DatasetError
from .hints import how_to_get

# task.data.source -> torchvision class (which knows the archive's file names)
ARCHIVES = {"cifar10": tv_datasets.CIFAR10, "cifar100": tv_datasets.CIFAR100}
SPLIT_SEED = 20210718  # fixed: the train/val split must not change between runs


def validation_size(task: Task, fold: int = 1, val_images: int | None = None) -> int:
    """Images in the validation split: the next multiple of ``fold`` above the task's count
    (as released: ``n + (f - n % f)``, one more group even when ``f`` divides ``n``)."""
    n = task.data.validation_images if val_images is None else val_images
    return n + (fold - n % fold)


def split_indices(n_total: int, n_val: int, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices into the official training set, each sorted."""
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def network_reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url``'s server accepts a connection within ``timeout`` seconds; probed before a
    download so that an offline machine fails at once instead of waiting on a dead socket."""
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def download_archive(cls: type, root: Path) -> None:
    """torchvision's download (archive, MD5 check, extraction into ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    cls(root=str(root), train=True, download=True)


def _extract_if_needed(cls: type, root: Path, task: Task) -> None:
    folder, archive = root / cls.base_folder, root / cls.filename
    if folder.is_dir():
        return
    hint = how_to_get(task, root, archive=cls.filename, folder=cls.base_folder)
    if not archive.is_file():
        if not network_reachable(cls.url):
            raise DatasetError(f"{task.paper_id} not found under {root} and {urlparse(cls.url).hostname} "
                               f"is not reachable for a download: {hint}")
        print(f"{task.paper_id} not found under {root}: downloading {cls.url}", flush=True)
        try:
            download_archive(cls, root)
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
            raise DatasetError(f"{task.paper_id}: the download of {cls.url} failed ({exc}): {hint}") from None
        if folder.is_dir():
            return
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        if not (tmp / cls.base_folder).is_dir():
            raise DatasetError(f"{archive} does not contain {cls.base_folder}/: {hint}")
        (tmp / cls.base_folder).rename(folder)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"cannot extract {archive} ({exc}); re-download it: {hint}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_cifar(task: Task, split: str, root: Path, *, fold: int = 1,
               val_images: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of one CIFAR split."""
    cls = ARCHIVES[task.data.source]
    _extract_if_needed(cls, root, task)
    try:
        ds = cls(root=str(root), train=split != "test", download=False)
    except (RuntimeError, OSError, EOFError, KeyError, ValueError) as exc:
        hint = how_to_get(task, root, archive=cls.filename, folder=cls.base_folder)
        raise DatasetError(f"{task.paper_id} under {root / cls.base_folder} is incomplete or corrupted "
                           f"({str(exc).split('.')[0]}); delete it and {hint}") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    if labels.numel() and int(labels.max()) >= task.num_classes:
        raise DatasetError(f"{root / cls.base_folder} has label {int(labels.max())} but {task.name} has "
                           f"{task.num_classes} classes; is this the right archive?")
    if split == "test":
        return images, labels
    n_val = validation_size(task, fold, val_images)
    if not 0 < n_val < len(labels):
        raise DatasetError(f"validation split of {n_val} images does not fit a training set of "
                           f"{len(labels)}; lower validation_images")
    train_idx, val_idx = split_indices(len(labels), n_val)
    idx = train_idx if split == "train" else val_idx
    return images[idx].contiguous(), labels[idx].contiguous()
