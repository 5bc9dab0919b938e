#!/usr/bin/env python3
"""Inference throughput (images/sec) of an original, folded or EfficientNet-style CNN.

MODEL is a benchmark name: ``game_<task>`` (e.g. game_lol/goldnumber-fraction),
``noscope_<name>`` (noscope_coral) or ``efficientnet-game_<task>``. FOLD 1 is the original
CNN; FOLD > 1 the FoldedCNN with that fold (``--do_fold`` is accepted as in the original
and implied by FOLD > 1; ``--do_fold`` with FOLD 1 is an error). For ``efficientnet-*``
models FOLD 2 means the compound-scaled CNN (one image per input), as in the original.
A folded input holds f images and counts as f images.

Examples::

    python3 infer.py game_lol/goldnumber-fraction 1                    # original, auto backend
    python3 infer.py game_lol/goldnumber-fraction 4 --do_fold --channels_last
    python3 infer.py noscope_coral 2 --channel-align 8 --pad-input --backend cudagraph
    python3 infer.py efficientnet-game_sot/timer3 2 --backend compile --json
    python3 infer.py noscope_coral 4 --end-to-end            # also time uint8 frames -> argmax
    python3 infer.py noscope_coral 4 --device cpu --backend eager --precision fp32 \\
        --batch_size 16 --num_warmup 1 --num_iteration 3 --trials 1   # CPU smoke test

Backends (``--backend``):
  eager      plain PyTorch (cuDNN, cudnn.benchmark on)
  cudagraph  the forward captured in a CUDA graph on a static input; replays are timed
  compile    torch.compile with max-autotune; on CUDA the compiled forward is replayed in our
             own CUDA graph (inductor's own graphs cost 130-190 us of host time per call);
             compile/autotune time is reported, not timed
  triton     every 3x3 conv + bias + ReLU (+ a following 2x2 max-pool) as one autotuned Triton
             kernel (util/triton_conv.py), the rest compiled by inductor, all replayed in our
             CUDA graph, checked against eager once before timing; the fastest on an H100
             for every game and NoScope model, original and folded (CUDA only)
  tensorrt   Torch-TensorRT (dynamo), when torch_tensorrt is installed
  auto       (default) on CUDA: prepare tensorrt (if installed), triton, compile, cudagraph and
             eager, probe each (the full warm-up, then the best of two 500-iteration loops),
             and run the fastest; on CPU: eager.
             The chosen backend and every probe result are printed.

Timing: device-resident random normal input; --num_warmup iterations; --trials loops of
--num_iteration iterations, each timed with CUDA events; the median trial is reported,
under torch.inference_mode(). FLOPs/sec use config/model_map.json (paper widths); with
--channel-align > 1 they come from a thop count of the model actually built. Utilization
divides by the GPU's peak measured once with an 8192^3 matmul in the same dtype (cached in
~/.cache/folded-cnns/, see util/peak.py). On a GPU the result also gives the share of the
layer roofline reached: images/sec over what the model would do with every layer at
max(FLOPs / peak, bytes / measured bandwidth) (roofline_fraction; ai.py --roofline).
"""
from __future__ import annotations

import argparse
import json
import sys

from config.tasks import TaskError
from models import FoldError
from util.bench_backends import BACKENDS, BenchError
from util.benchmark import DEVICES, PRECISIONS, BenchConfig, describe, run_benchmark


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="benchmark model, e.g. game_lol/goldnumber-fraction, noscope_coral, "
                                 "efficientnet-game_sot/timer3")
    p.add_argument("fold", type=int, help="1 = original; 2.. = folded (EfficientNet models: 2 = scaled)")
    p.add_argument("--do_fold", action="store_true",
                   help="fold the model (accepted for compatibility; FOLD > 1 already implies it)")
    p.add_argument("--batch_size", type=int, default=1024,
                   help="images per batch; a folded model gets batch_size // f inputs (default 1024)")
    p.add_argument("--num_warmup", type=int, default=100, help="warm-up iterations (default 100)")
    p.add_argument("--num_iteration", type=int, default=10000,
                   help="timed iterations per trial (default 10000)")
    p.add_argument("--trials", type=int, default=5, help="timed trials; the median is reported (default 5)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend (default auto)")
    p.add_argument("--precision", choices=list(PRECISIONS), default="fp16",
                   help="weights and inputs dtype (default fp16)")
    p.add_argument("--channels_last", "--channels-last", action="store_true",
                   help="NHWC memory format for weights and inputs")
    p.add_argument("--channel-align", "--channel_align", dest="channel_align", type=int, default=1,
                   help="round every internal width up to a multiple of this (default 1 = paper widths)")
    p.add_argument("--pad-input", "--pad_input", dest="pad_input", action="store_true",
                   help="zero-pad the f*C input channels up to a multiple of --channel-align")
    p.add_argument("--device", choices=DEVICES, default="cuda",
                   help="cuda (default) or cpu (for smoke tests; eager/compile only)")
    p.add_argument("--end-to-end", "--end_to_end", dest="end_to_end", action="store_true",
                   help="also time uint8 host frames -> GPU -> normalise -> fold -> forward -> unfold -> argmax")
    p.add_argument("--json", action="store_true", help="print one JSON result row instead of text")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and random input (default 0)")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        model=args.model, fold=args.fold, do_fold=args.do_fold, batch_size=args.batch_size,
        num_warmup=args.num_warmup, num_iteration=args.num_iteration, trials=args.trials,
        backend=args.backend, precision=args.precision, channels_last=args.channels_last,
        channel_align=args.channel_align, pad_input=args.pad_input, device=args.device,
        end_to_end=args.end_to_end, seed=args.seed)


def main(args: argparse.Namespace) -> dict:
    row = run_benchmark(config_from_args(args))
    print(json.dumps(row) if args.json else describe(row), flush=True)
    return row


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (TaskError, BenchError, FoldError) as exc:
        sys.exit(f"error: {exc}")
