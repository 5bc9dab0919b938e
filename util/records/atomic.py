"""Atomic file and folder writes, shared by every script that saves results or data.

A crash or Ctrl-C mid-write must never leave a half file that looks finished, so every
result is written to a temporary hidden sibling and renamed over the target (atomic on
POSIX); a folder is built as a hidden sibling and swapped in with renames (``atomic_dir``).
A file gets the permissions an ordinary ``open(target, "w")`` would give it (0666 less the
umask), unless ``mode`` says otherwise.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def _new_sibling(target: Path, make: Callable[[Path], None], tag: str = "tmp",
                 keep_suffix: bool = False) -> Path:
    """A hidden sibling of ``target`` with a fresh random name ending in ``.tag`` (or in ``.tag``
    and the target's suffix), created by ``make`` (which must fail with FileExistsError when the
    name is taken)."""
    stem, suffix = (target.stem, target.suffix) if keep_suffix else (target.name, "")
    for _ in range(100):
        path = target.with_name(f".{stem}.{secrets.token_hex(4)}.{tag}{suffix}")
        try:
            make(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {target}")


def _new_file(path: Path) -> None:
    # 0o666 and the umask, as open() does (mkstemp would make every result private, 0600)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextmanager
def atomic_path(target: Path | str, mode: int | None = None,
                keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success (and
    ``chmod`` it to ``mode`` first when given); on an exception the temporary file goes.

    The temporary name ends in ``.tmp`` so that nothing reading ``*.png`` or ``*.csv`` picks it
    up; ``keep_suffix`` ends it in the target's suffix instead, for writers that choose the
    format from it (``cv2.VideoWriter``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(target, _new_file, keep_suffix=keep_suffix)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(target: Path | str, obj: Any) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, target: Path | str, mode: int | None = None) -> None:
    import torch

    with atomic_path(target, mode) as tmp:
        torch.save(obj, tmp)


def atomic_savefig(fig: Any, target: Path | str, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def swap_dir(new: Path | str, dest: Path | str) -> None:
    """Put folder ``new`` at ``dest`` with renames, replacing an existing ``dest`` (moved aside
    first, removed afterwards): ``dest`` is never a mix of old and new files."""
    new, dest = Path(new), Path(dest)
    if not dest.exists():
        new.rename(dest)
        return
    old = _new_sibling(dest, os.mkdir, tag="old")
    dest.rename(old)  # rename() replaces an empty folder
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(target: Path | str) -> Iterator[Path]:
    """Yield a new empty hidden sibling folder of ``target`` to fill; on success it replaces
    ``target`` (``swap_dir``), on an exception it is removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(target, os.mkdir)
    try:
        yield tmp
        swap_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful swap
