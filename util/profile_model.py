#!/usr/bin/env python3
"""Where one batch's time goes: per-kernel time of the original vs folded CNNs, side by side.

The benchmark (``infer.py``) says how fast; this says why. For each fold it runs the model as
``infer.py`` builds it (same batch of images, dtype, layout, alignment), profiles
``--iters`` forward passes with ``torch.profiler`` and prints, per batch of images:

* wall time (between CUDA events; ``perf_counter`` on CPU),
* the summed time of the device kernels (CUDA) or operators (CPU, self time),
* the rest, wall minus kernels: launch gaps, host overhead, idle GPU,
* the top kernels by time, with calls per batch.

Folding shrinks the convolutions' time per image; what it does not shrink (kernel count,
pooling and pointwise kernels, gaps) is what caps the speedup at a given batch.

Backends: ``eager``; ``compile`` is profiled as ``torch.compile(mode="max-autotune-no-cudagraphs")``
(the same autotuned kernels as the benchmark's max-autotune, launched without a CUDA graph so
the profiler sees each one; the graph removes launch gaps only). The benchmark's ``cudagraph``
backend replays exactly the eager kernels, so profile it as ``eager``.

``--layers`` prints instead the per-layer scoreboard (``util/bench/scoreboard.py``): every
conv (with its ReLU), pool and linear layer of each fold side by side, each timed in isolation
on its real input (a CUDA-graph replay on the GPU, so no launch cost), with its FLOPs and bytes
(``models/costs.py``), achieved TFLOP/s and GB/s, their share of the measured peak and
bandwidth (``util/bench/peak.py``; or ``--peak-tflops`` / ``--bandwidth-tbs``), its roofline
time max(FLOPs / peak, bytes / bandwidth) and gap (measured / roofline); then the sum of the
layers beside the whole network's time, the layer that loses the most microseconds, and the
speedup if both networks ran every layer at the roofline (``ai.py --roofline``'s
``bound_speedup``). ``--backend triton`` times the layers of the fused-conv network
(``util/bench/triton_conv.py``; on CPU its op runs ``F.conv2d``). ``--backend fused`` (CUDA
only) splits the whole-network kernel's time over its layers by the cycles each spends in them
(``util/bench/scoreboard.py``). ``--csv`` then writes one row per (fold, layer), columns
``util.bench.scoreboard.COLUMNS``.

Examples::

    python3 util/profile_model.py game_apex/squad_count_v2 --folds 1 4 --backend compile
    python3 util/profile_model.py noscope_coral --folds 1 2 4 --channel-align 8 --pad-input --csv prof.csv
    python3 util/profile_model.py noscope_coral --folds 1 2 --device cpu --precision fp32 --batch-images 16 --iters 2
    python3 util/profile_model.py game_apex/squad_count_v2 --folds 1 4 --layers --csv layers.csv
    python3 util/profile_model.py noscope_coral --folds 1 4 --layers --backend triton --channel-align 8 --pad-input
    python3 util/profile_model.py game_lol/goldnumber-fraction --folds 1 4 --layers --backend fused
    python3 util/profile_model.py noscope_coral --folds 1 2 --layers --device cpu --precision fp32 \\
        --batch-images 8 --iters 3 --peak-tflops 1 --bandwidth-tbs 0.05
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler library's own log lines: errors only
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from config.tasks import TaskError  # noqa: E402
from models import FoldError  # noqa: E402
from util.bench.backends import BenchError, sync  # noqa: E402
from util.bench.config import BenchConfig, add_config_arguments, config_from_args  # noqa: E402
from util.bench.runner import build_bench_model, check_config, time_loop  # noqa: E402
from util.bench.scoreboard import (LAYER_BACKENDS, format_scoreboard, scoreboard_csv,  # noqa: E402
                                   scoreboard_fold)
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_write_text  # noqa: E402

BACKENDS = ("eager", "compile")
# The benchmark's settings this profiles with (their BenchConfig flags), and where its defaults
# differ: NHWC on the GPU as run_inference.sh runs, and a short warm-up (compile, autotune).
PROFILE_SETTINGS = ("precision", "batch_images", "channels_last", "channel_align", "pad_input",
                    "device", "num_warmup")
PROFILE_DEFAULTS = {"channels_last": True, "device": "cuda", "num_warmup": 20}
CSV_COLUMNS = ["model", "fold", "backend", "device", "images_per_batch", "kernel", "calls_per_batch",
               "us_per_batch", "share"]


def profile_fold(cfg: BenchConfig, iters: int) -> dict[str, Any]:
    """Profile ``iters`` forwards of ``cfg``; times are per batch of images."""
    target, device = check_config(cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model, x = build_bench_model(cfg, target, device)
    with torch.inference_mode():
        fn = model
        if cfg.backend == "compile":
            torch._dynamo.reset()
            fn = torch.compile(model, mode="max-autotune-no-cudagraphs")
        for _ in range(max(cfg.num_warmup, 2)):  # compiles, autotunes, picks cuDNN algorithms
            fn(x)
        sync(device)
        wall = time_loop(lambda: fn(x), iters, device) / iters
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(iters):
                fn(x)
            sync(device)
    kernels: dict[str, list[float]] = {}
    for ev in prof.events():
        if device.type == "cuda":
            if ev.device_type != torch.autograd.DeviceType.CUDA:
                continue
            us = ev.time_range.elapsed_us()  # a kernel, memcpy or memset on the GPU
        else:
            if ev.device_type != torch.autograd.DeviceType.CPU or ev.cpu_parent is not None:
                continue  # top-level operators only: their total covers their children
            us = ev.cpu_time_total
        entry = kernels.setdefault(ev.name, [0, 0.0])
        entry[0] += 1
        entry[1] += us
    rows = sorted(({"kernel": k, "calls_per_batch": n / iters, "us_per_batch": t / iters}
                   for k, (n, t) in kernels.items()), key=lambda r: -r["us_per_batch"])
    busy = sum(r["us_per_batch"] for r in rows)
    for r in rows:
        r["share"] = r["us_per_batch"] / busy if busy else 0.0
    return {"model": cfg.model, "fold": cfg.fold, "backend": cfg.backend, "device": device.type,
            "images_per_batch": (cfg.batch_images // target.images_per_input) * target.images_per_input,
            "wall_us": wall * 1e6, "busy_us": busy, "kernels": rows}


def _short(name: str, width: int = 60) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def format_report(results: list[dict[str, Any]], top: int) -> str:
    """Summary table of every fold, then each fold's top kernels."""
    what = "kernels (device)" if results and results[0]["device"] == "cuda" else "operators (CPU)"
    lines = [f"{'fold':>4s} {'images':>7s} {'wall us':>10s} {what:>18s} {'rest us':>9s} "
             f"{'us/image':>9s} {'kernels':>8s} {'x wall f=' + str(results[0]['fold']):>12s}"]
    base = results[0]["wall_us"] / results[0]["images_per_batch"]
    for r in results:
        per_image = r["wall_us"] / r["images_per_batch"]
        calls = sum(k["calls_per_batch"] for k in r["kernels"])
        rest = f"{r['wall_us'] - r['busy_us']:>9.1f}" if r["device"] == "cuda" else f"{'-':>9s}"
        lines.append(f"{r['fold']:>4d} {r['images_per_batch']:>7d} {r['wall_us']:>10.1f} {r['busy_us']:>18.1f} "
                     f"{rest} {per_image:>9.4f} {calls:>8.1f} {base / per_image:>11.2f}x")
    lines.append("(x wall: images/sec relative to the first fold, timed without the profiler; rest: wall "
                 "minus the summed kernels, i.e. launch gaps and idle GPU; on CPU, operator times are "
                 "taken under the profiler and are only comparable with each other)")
    for r in results:
        lines += ["", f"{r['model']} f={r['fold']} ({r['backend']}, {r['device']}): top {top} {what} per batch",
                  f"{'us':>9s} {'share':>6s} {'calls':>6s}  name"]
        for k in r["kernels"][:top]:
            lines.append(f"{k['us_per_batch']:>9.1f} {100 * k['share']:>5.1f}% {k['calls_per_batch']:>6.1f}  "
                         f"{_short(k['kernel'])}")
    return "\n".join(lines)


def write_csv(results: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in results:
        for k in r["kernels"]:
            w.writerow({**{c: r[c] for c in CSV_COLUMNS[:5]}, **k})
    atomic_write_text(path, buf.getvalue())


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="benchmark model, e.g. game_lol/goldnumber-fraction or noscope_coral")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 4], help="folds to compare (default 1 4)")
    p.add_argument("--backend", choices=LAYER_BACKENDS, default="eager",
                   help="eager (also what cudagraph replays) or compile (max-autotune kernels, no "
                        "graph); with --layers also triton (the fused-conv network) and fused (the "
                        "whole-network kernel, split by its layers' cycles; CUDA only)")
    add_config_arguments(p, PROFILE_SETTINGS, defaults=PROFILE_DEFAULTS)
    p.add_argument("--iters", type=int, default=50, help="profiled and timed calls (default 50)")
    p.add_argument("--top", type=int, default=8, help="kernels listed per fold (default 8)")
    p.add_argument("--csv", help="also write every kernel (with --layers: every layer) of every "
                                 "fold to this CSV")
    p.add_argument("--layers", action="store_true",
                   help="print the per-layer scoreboard (layer time vs its roofline) instead of the "
                        "kernel profile (see above)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="--layers: the device's dense peak in TFLOP/s (default: measured on CUDA, "
                        "util/bench/peak.py; none on CPU)")
    p.add_argument("--bandwidth-tbs", type=float, default=None,
                   help="--layers: the device's memory bandwidth in TB/s (default: as --peak-tflops)")
    return p


def _given_peaks(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """``--peak-tflops`` and ``--bandwidth-tbs`` in FLOPs/s and bytes/s (None: measure)."""
    if args.peak_tflops is None and args.bandwidth_tbs is None:
        return None, None
    if not args.layers:
        raise BenchError("--peak-tflops and --bandwidth-tbs set the --layers scoreboard's roofline; "
                         "add --layers")
    if (args.peak_tflops is None) != (args.bandwidth_tbs is None):
        raise BenchError("--layers: give both --peak-tflops and --bandwidth-tbs, or neither "
                         "(to measure this GPU)")
    if args.peak_tflops <= 0 or args.bandwidth_tbs <= 0:
        raise BenchError("--peak-tflops and --bandwidth-tbs must be positive")
    return args.peak_tflops * 1e12, args.bandwidth_tbs * 1e12


def layers_main(args: argparse.Namespace) -> str:
    """``--layers``: the scoreboard of every fold, printed (and written with ``--csv``)."""
    peak, bandwidth = _given_peaks(args)
    results = []
    for fold in args.folds:
        # the layer backend is scoreboard_fold's; the config's own is only checked, so eager
        cfg = config_from_args(args, model=args.model, fold=fold, backend="eager")
        results.append(scoreboard_fold(cfg, args.backend, args.iters, peak, bandwidth))
    text = format_scoreboard(results)
    print(text)
    if args.csv:
        atomic_write_text(Path(args.csv), scoreboard_csv(results))
        print(f"\nlayers: {args.csv}")
    return text


def main(args: argparse.Namespace) -> str:
    if args.iters < 1 or args.top < 1:
        raise BenchError("--iters and --top must be >= 1")
    if args.layers:
        return layers_main(args)
    _given_peaks(args)  # refuses the scoreboard's flags without --layers
    if args.backend not in BACKENDS:
        raise BenchError(f"--backend {args.backend}: only with --layers (the kernel profile takes "
                         f"{' or '.join(BACKENDS)})")
    results = []
    for fold in args.folds:
        cfg = config_from_args(args, model=args.model, fold=fold, backend=args.backend)
        results.append(profile_fold(cfg, args.iters))
    text = format_report(results, args.top)
    print(text)
    if args.csv:
        write_csv(results, Path(args.csv))
        print(f"\nkernels: {args.csv}")
    return text


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError, BenchError, FoldError))
