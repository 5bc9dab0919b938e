"""Atomic file writes and run provenance, shared by every script that saves results.

A crash or Ctrl-C mid-write must never leave a half file that looks finished, so every
result is written to a temporary sibling and renamed over the target (atomic on POSIX).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def atomic_write_json(target: Path | str, obj: Any) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, target: Path | str) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def atomic_savefig(fig: Any, target: Path | str, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


@lru_cache(maxsize=1)
def git_hash() -> str | None:
    """Short commit of the code that produced a result, ``-dirty`` when tracked files changed."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name(device: Any) -> str:
    """GPU name (e.g. ``NVIDIA H100 80GB HBM3``) or a description of the CPU."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    """Versions that change results (read from package metadata: nothing heavy is imported)."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": _version("numpy"),
        "torch_tensorrt": _version("torch_tensorrt") or _version("torch-tensorrt"),
        "tensorrt": _version("tensorrt"),
        "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if cuda else None,
        "triton": _version("triton"),
    }


def provenance(device: Any = "cpu") -> dict[str, Any]:
    """What produced a result: command, git commit, library versions, device."""
    return {"command": " ".join([Path(sys.executable).name] + sys.argv), "git": git_hash(),
            "versions": {k: v for k, v in library_versions().items() if v is not None},
            "device": device_name(device)}
