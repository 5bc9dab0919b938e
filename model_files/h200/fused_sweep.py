"""Sweep the fused kernel's settings (``FusedConfig``) on a few networks, on a CUDA machine.

Each setting is checked against the eager model (direct call and the benchmark's CUDA-graph
replay, max error relative to the largest logit) and timed as that replay at batch 1024, fp16. One JSON
line per (model, fold, setting). ``--compile-only`` launches each kernel once and times nothing,
so several shards can fill Triton's cache in parallel before one timed pass:

    for i in 0 1 2 3; do python3 model_files/h200/fused_sweep.py --compile-only --shard $i 4 & done; wait
    python3 model_files/h200/fused_sweep.py > sweep.jsonl
    python3 model_files/h200/fused_sweep.py --grid spills --folds 1 4 --resources   # any machine

The defaults of ``FusedConfig`` came from ``--grid full`` on V1, N1 and N3 at f = 1 and 4.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from util.bench.backends import prepare  # noqa: E402
from util.bench.config import BenchConfig  # noqa: E402
from util.bench.fused_net import FusedConfig, FusedNet  # noqa: E402
from util.bench.runner import build_bench_model, check_config  # noqa: E402

GRIDS = {
    # tile x block_m x warps x unrolled taps, each at 1, 2 and 4 programs per SM
    "full": [FusedConfig(tile=t, block_m=m, num_warps=w, unroll_taps=u)
             for t, m, w, u in itertools.product([1, 2], [32, 64, 128], [4, 8], [False, True])],
    # the defaults against the classifier in the kernel, tile 2, channels padded to 16 and
    # larger pixel blocks (the full grid's trend: 128 beat 64 beat 32)
    "small": [FusedConfig(), FusedConfig(head_in_kernel=True), FusedConfig(tile=2),
              FusedConfig(channel_multiple=16), FusedConfig(block_m=256, num_warps=8)],
    # the two settings that helped f = 3 in the small grid, alone and together
    "fold": [FusedConfig(), FusedConfig(channel_multiple=16), FusedConfig(block_m=256, num_warps=8),
             FusedConfig(channel_multiple=16, block_m=256, num_warps=8)],
    # smaller K chunks: ptxas reports 255 registers and 1.2-5.6 KB of spills per thread for the
    # default at f = 4 (--resources), 0-0.3 KB with block_k 16
    # (with --per-sm 2 3: at most 168 registers let three 4-warp programs share an SM)
    "spills": [FusedConfig(), FusedConfig(block_k=32), FusedConfig(block_k=16),
               FusedConfig(block_k=16, channel_multiple=16), FusedConfig(block_k=16, block_m=256, num_warps=8),
               FusedConfig(block_k=16, maxnreg=168)],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["game_lol/goldnumber-fraction", "noscope_coral",
                                                    "noscope_roundabout"], help="benchmark names")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 4])
    p.add_argument("--grid", choices=sorted(GRIDS), default="small")
    p.add_argument("--compile-only", action="store_true", help="launch once per setting, time nothing")
    p.add_argument("--shard", type=int, nargs=2, default=[0, 1], metavar=("I", "N"),
                   help="run every N-th job starting at I")
    p.add_argument("--iters", type=int, default=200, help="graph replays per timing (best of 3)")
    p.add_argument("--per-sm", type=int, nargs="+", default=None,
                   help="programs per SM to time each setting at (default: 1 2 4 for --grid full, else 2)")
    p.add_argument("--resources", action="store_true",
                   help="no GPU needed: each setting's registers per thread, spilled bytes and shared "
                        "memory as Triton compiles it for sm_90 (FusedNet.compiled_resources)")
    a = p.parse_args()
    if a.resources:
        jobs = [(m, f, c) for m in a.models for f in a.folds for c in GRIDS[a.grid]][a.shard[0]::a.shard[1]]
        for m, f, c in jobs:
            cfg = BenchConfig(model=m, fold=f, backend="eager", device="cpu", precision="fp32")
            target, dev = check_config(cfg)
            model, _ = build_bench_model(cfg, target, dev)
            res = FusedNet(model, dtype=torch.float16, config=c).compiled_resources()
            print(json.dumps({"model": m, "fold": f, **asdict(c), **res}), flush=True)
        return
    if not torch.cuda.is_available():
        sys.exit("fused_sweep.py needs a CUDA GPU (or --resources)")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    per_sm = a.per_sm or ([1, 2, 4] if a.grid == "full" else [2])
    jobs = [(m, f, c) for m in a.models for f in a.folds for c in GRIDS[a.grid]][a.shard[0]::a.shard[1]]
    for m, f, c in jobs:
        cfg = BenchConfig(model=m, fold=f, backend="eager", device="cuda", channels_last=True)
        target, dev = check_config(cfg)
        model, x = build_bench_model(cfg, target, dev)
        with torch.no_grad():
            want = model(x).float()
        err = lambda y: ((y.float() - want).abs().max() / want.abs().max()).item()  # noqa: E731
        for k in per_sm[:1] if a.compile_only else per_sm:
            cc = replace(c, programs=k * sms)
            row = {"model": m, "fold": f, **asdict(cc)}
            t0 = time.perf_counter()
            try:
                net = FusedNet(model, dtype=x.dtype, config=cc)
                y = net.folded(x)
                torch.cuda.synchronize()
            except Exception as e:  # a setting that does not fit (shared memory) is reported
                print(json.dumps({**row, "error": f"{type(e).__name__}: {str(e)[:300]}"}), flush=True)
                break
            row["setup_s"] = round(time.perf_counter() - t0, 1)
            if not a.compile_only:
                replay = prepare("cudagraph", net.folded, x).fn  # what the benchmark times
                out = replay(x)
                torch.cuda.synchronize()
                row.update(err=err(y), graph_err=err(out))
                best = float("inf")
                for _ in range(3):
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    for _ in range(a.iters):
                        replay(x)
                    e1.record()
                    torch.cuda.synchronize()
                    best = min(best, e0.elapsed_time(e1) / 1e3 / a.iters)
                row["images_per_sec"] = round(1024 / best)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
