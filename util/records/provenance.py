"""Provenance of a result: the command, git commit, library versions and device that made it."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


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
