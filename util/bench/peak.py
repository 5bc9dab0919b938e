"""The machine a benchmark ran on: measured peak tensor FLOPs/sec and memory bandwidth.

Utilization (``util/bench/runner.py``) = achieved FLOPs/sec / the peak measured here. The peak
is not a datasheet number: it is the best of a few timed ``N x N x N`` matrix multiplies
(``N`` = 8192) in the benchmark's dtype, i.e. the dense tensor-core rate this GPU, driver
and torch actually reach. FP32 is measured with TF32 allowed, because cuDNN convolutions
use TF32 by default (``torch.backends.cudnn.allow_tf32``). The bandwidth (for the layer
roofline, ``models/costs.py``) is the best of a few timed device-to-device copies of
1 GiB, counting the bytes read plus the bytes written. The host-to-device bandwidth (for
the end-to-end pipeline's frame copies) is the best of a few timed non-blocking copies of
256 MiB from pinned host memory, counting the bytes moved once. One measurement per (GPU,
dtype), and one of each bandwidth per GPU, is cached in ``~/.cache/folded-cnns/`` (directory overridable
with ``$FOLDED_CNNS_CACHE``); delete the file to re-measure.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import torch

from util.records.atomic import atomic_write_text
from util.records.provenance import device_name

PEAK_N = 8192
COPY_BYTES = 1 << 30
H2D_BYTES = 256 << 20
REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    return Path(os.environ.get("FOLDED_CNNS_CACHE", "~/.cache/folded-cnns")).expanduser()


def time_loop(step: Callable[[], Any], iters: int, device: torch.device) -> float:
    """Seconds for ``iters`` calls of ``step``: CUDA events around exactly the loop."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return time.perf_counter() - t0


def _best_rate(op: Callable[[], object], work: float, iters: int, device: torch.device,
               warmup: int = 5) -> float:
    """Best of 3 event-timed loops of ``iters`` calls of ``op``: ``work`` units per call / s."""
    for _ in range(warmup):  # cuBLAS heuristics, clocks, allocator
        op()
    return max(work * iters / time_loop(op, iters, device) for _ in range(3))


def measure_matmul_flops(dtype: torch.dtype, device: torch.device, n: int = PEAK_N,
                         iters: int = 50) -> float:
    """Dense matmul FLOPs/sec (2 n^3 per product) on a CUDA device, timed with events."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        return _best_rate(lambda: torch.mm(a, b), 2 * n ** 3, iters, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old_tf32


def measure_copy_bandwidth(device: torch.device, nbytes: int = COPY_BYTES,
                           iters: int = 20) -> float:
    """Device memory bytes/sec of ``dst.copy_(src)`` (read + write counted), timed with events."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    return _best_rate(lambda: dst.copy_(src), 2 * nbytes, iters, device, warmup=3)


def measure_h2d_bandwidth(device: torch.device, nbytes: int = H2D_BYTES, iters: int = 20) -> float:
    """Bytes/sec of non-blocking copies from pinned host memory to ``device``, timed with events."""
    src = torch.ones(nbytes, dtype=torch.uint8).pin_memory()
    dst = torch.empty(nbytes, dtype=torch.uint8, device=device)
    return _best_rate(lambda: dst.copy_(src, non_blocking=True), nbytes, iters, device, warmup=3)


def _cached(file_name: str, device: torch.device, key: str, measure: Callable[[], float],
            **meta: object) -> float:
    """``key`` of the cache file ``file_name`` (``{gpu}`` = the GPU's name), measured and
    written atomically when the file is missing or corrupt."""
    name = device_name(device)
    path = cache_dir() / file_name.format(gpu=re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-"))
    if path.exists():
        try:
            return float(json.loads(path.read_text())[key])
        except (ValueError, KeyError, TypeError):
            pass  # a corrupt cache file is re-measured and overwritten
    value = measure()
    atomic_write_text(path, json.dumps({
        "gpu": name, **meta, key: value, "torch": torch.__version__,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    return value


def peak_flops(dtype: torch.dtype, device: torch.device) -> float | None:
    """Measured peak dense FLOPs/sec of ``device`` in ``dtype`` (cached); None on CPU."""
    if device.type != "cuda":
        return None
    dtype_name = str(dtype).replace("torch.", "")
    return _cached(f"peak_{{gpu}}_{dtype_name}.json", device, "flops_per_sec",
                   lambda: measure_matmul_flops(dtype, device), dtype=dtype_name, n=PEAK_N)


def peak_bandwidth(device: torch.device) -> float | None:
    """Measured device-memory bytes/sec of ``device`` (cached); None on CPU."""
    if device.type != "cuda":
        return None
    return _cached("bandwidth_{gpu}.json", device, "bytes_per_sec",
                   lambda: measure_copy_bandwidth(device), copy_bytes=COPY_BYTES)


def h2d_bandwidth(device: torch.device) -> float | None:
    """Measured pinned host-to-device bytes/sec of ``device`` (cached); None on CPU."""
    if device.type != "cuda":
        return None
    return _cached("h2d_{gpu}.json", device, "bytes_per_sec",
                   lambda: measure_h2d_bandwidth(device), copy_bytes=H2D_BYTES)
