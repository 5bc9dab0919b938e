"""The machine a benchmark ran on: measured peak tensor FLOPs/sec, GPU name, library versions.

Utilization (``util/benchmark.py``) = achieved FLOPs/sec / the peak measured here. The peak
is not a datasheet number: it is the best of a few timed ``N x N x N`` matrix multiplies
(``N`` = 8192) in the benchmark's dtype, i.e. the dense tensor-core rate this GPU, driver
and torch actually reach. FP32 is measured with TF32 allowed, because cuDNN convolutions
use TF32 by default (``torch.backends.cudnn.allow_tf32``). One measurement per
(GPU, dtype) is cached in ``~/.cache/folded-cnns/peak_<gpu>_<dtype>.json`` (directory
overridable with ``$FOLDED_CNNS_CACHE``); delete the file to re-measure.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import torch

from util.io import atomic_write_text, device_name

PEAK_N = 8192
REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return Path(os.environ.get("FOLDED_CNNS_CACHE", "~/.cache/folded-cnns")).expanduser()


def measure_matmul_flops(dtype: torch.dtype, device: torch.device, n: int = PEAK_N,
                         iters: int = 50) -> float:
    """Dense matmul FLOPs/sec (2 n^3 per product) on a CUDA device, timed with events."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        for _ in range(5):  # warm-up: cuBLAS heuristics, clocks
            torch.mm(a, b)
        best = 0.0
        for _ in range(3):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                torch.mm(a, b)
            end.record()
            end.synchronize()
            best = max(best, 2 * n ** 3 * iters / (start.elapsed_time(end) / 1e3))
        return best
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32


def peak_flops(dtype: torch.dtype, device: torch.device) -> float | None:
    """Measured peak dense FLOPs/sec of ``device`` in ``dtype`` (cached); None on CPU."""
    if device.type != "cuda":
        return None
    name = device_name(device)
    dtype_name = str(dtype).replace("torch.", "")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    path = cache_dir() / f"peak_{slug}_{dtype_name}.json"
    if path.exists():
        try:
            return float(json.loads(path.read_text())["flops_per_sec"])
        except (ValueError, KeyError, TypeError):
            pass  # a corrupt cache file is re-measured and overwritten
    value = measure_matmul_flops(dtype, device)
    atomic_write_text(path, json.dumps({
        "gpu": name, "dtype": dtype_name, "n": PEAK_N, "flops_per_sec": value,
        "torch": torch.__version__, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    return value


