#!/usr/bin/env python3
"""Inference throughput (images/sec) of an original, folded or EfficientNet-style CNN.

The released code's command line works here with the same meaning::

    python3 infer.py MODEL FOLD [--do_fold] [--fold F] [--batch_size B] [--num_iteration N]
        [--num_warmup W] [--depth_mult D] [--width_mult W] [--res_mult R] [--trt 0|1] [--fp16 0|1]

MODEL is a benchmark name: ``game_<task>`` (e.g. game_lol/goldnumber-fraction),
``noscope_<name>`` (noscope_coral) or ``efficientnet-game_<task>``. FOLD 1 is the original
CNN. FOLD > 1 with ``--do_fold`` is the FoldedCNN (each input holds f images); without it, as
released, the original's interface with the folded widths (one image per input, K logits).
For ``efficientnet-*`` models FOLD 2 with ``--do_fold`` is the compound-scaled CNN (phi = -1,
one image per input; ``--width_mult``/``--res_mult`` default to the paper's 1.1 / 1.15,
which the released run_inference.sh passed); without ``--do_fold`` the original CNN.
``--fold F`` sets FOLD too (the later one on the command line wins, as released).
``--batch_size`` counts model inputs, as released: a folded batch of B inputs holds B x f
images (``--batch-images N`` instead gives the images, N // f inputs). ``--trt 1`` is TensorRT
(an error when torch_tensorrt is missing), ``--trt 0`` plain PyTorch unless ``--backend`` says
otherwise; ``--fp16 1|0`` is fp16 or fp32 on every backend (released: only TensorRT honoured
it; its PyTorch path always ran fp32). ``--depth_mult`` is accepted and, as released, unused.

Examples::

    python3 infer.py game_lol/goldnumber-fraction 1                    # original, auto backend
    python3 infer.py game_lol/goldnumber-fraction 4 --do_fold --batch_size 256 --channels_last
    python3 infer.py noscope_coral 2 --do_fold --channel-align 8 --pad-input --backend cudagraph
    python3 infer.py efficientnet-game_sot/timer3 2 --do_fold --backend compile --json
    python3 infer.py noscope_coral 4 --do_fold --batch-images 1024 --end-to-end
    python3 infer.py noscope_coral 4 --do_fold --device cpu --trt 0 --fp16 0 \\
        --batch_size 4 --num_warmup 1 --num_iteration 3 --trials 1       # CPU smoke test
    python3 infer.py noscope_coral 1 --band-limit 50 --backend cudagraph   # band-limited CNN

``--band-limit CR`` benchmarks the band-limited CNN (Dziedzic et al., ICML 2019;
models/bandlimit.py): every conv larger than 1x1 runs in the Fourier domain and discards CR% of
its spectrum (0 = all kept); ``--band-algorithm`` fft (rfft2/irfft2) or dft (truncated DFT as
dense matrix products; auto picks it). Its FLOPs are those its convs execute (ai.py --band-limit).

Backends (``--backend``):
  eager      plain PyTorch (cuDNN, cudnn.benchmark on)
  cudagraph  the forward captured in a CUDA graph on a static input; replays are timed
  compile    torch.compile with max-autotune; on CUDA the compiled forward is replayed in our
             own CUDA graph (inductor's own graphs cost 130-190 us of host time per call);
             compile/autotune time is reported, not timed
  triton     every 3x3 conv + bias + ReLU (+ a following 2x2 max-pool) as one autotuned Triton
             kernel (util/bench/triton_conv.py), the rest compiled by inductor, all replayed in our
             CUDA graph, checked against eager once before timing; the fastest on an H100
             for every game and NoScope model, original and folded (CUDA only)
  fused      the whole network (convs, pools, classifier) in one persistent Triton kernel
             (util/bench/fused_net.py) replayed in our CUDA graph, checked against eager once
             before timing; game and NoScope CNNs only; with --end-to-end it also reads the
             uint8 frames itself (normalise + fold on load) (CUDA only; not probed by auto)
  tensorrt   Torch-TensorRT (dynamo), when torch_tensorrt is installed
  auto       (default) on CUDA: prepare tensorrt (if installed), triton, compile, cudagraph and
             eager, probe each (the full warm-up, then the best of two 500-iteration loops),
             and run the fastest; on CPU: eager.
             The chosen backend and every probe result are printed.

Timing: device-resident random normal input; --num_warmup iterations; --trials loops of
--num_iteration iterations (released: one loop), each timed with CUDA events; the median is reported,
under torch.inference_mode(). FLOPs/sec use config/model_map.json (paper widths); with
--channel-align > 1 they come from a thop count of the model actually built. Utilization
divides by the GPU's peak measured once with an 8192^3 matmul in the same dtype (cached in
~/.cache/folded-cnns/, see util/bench/peak.py). On a GPU the result also gives the share of the
layer roofline reached: images/sec over what the model would do with every layer at
max(FLOPs / peak, bytes / measured bandwidth) (roofline_fraction; ai.py --roofline).
"""
from __future__ import annotations

import argparse
import json

from config.tasks import TaskError
from models import CompoundScaling, FoldError
from util.bench.backends import BenchError, tensorrt_available
from util.bench.config import BenchConfig, add_config_arguments, config_from_args, default_of
from util.bench.runner import describe, resolve_target, run_benchmark
from util.cli import run_command

# Settings with the flags of their BenchConfig field (released spellings too: --num_warmup);
# the batch, backend and precision have their released flags below.
MEASUREMENT = ("num_warmup", "num_iteration", "trials", "channels_last", "channel_align", "pad_input",
               "device", "end_to_end", "seed", "band_limit", "band_algorithm")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="benchmark model, e.g. game_lol/goldnumber-fraction, noscope_coral, "
                                 "efficientnet-game_sot/timer3")
    p.add_argument("fold", type=int, help="1 = original; 2.. = folded with --do_fold (EfficientNet: 2 = scaled)")
    p.add_argument("--fold", dest="fold", type=int, default=argparse.SUPPRESS,
                   help="FOLD again, as in the released script (the later one wins)")
    p.add_argument("--do_fold", action="store_true",
                   help="fold the model (FOLD > 1); without it FOLD only widens the layers, as released")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--batch_size", type=int, default=None,
                      help=f"model inputs per batch, as released (default {default_of('batch_images')}): "
                           "B x f images when folded")
    add_config_arguments(size, ("batch_images",))
    add_config_arguments(p, MEASUREMENT, underscore_aliases=True)
    p.add_argument("--depth_mult", type=float, default=None,
                   help="EfficientNet: accepted and unused, as released (the conv count follows --width_mult)")
    p.add_argument("--width_mult", type=float, default=None,
                   help="EfficientNet: width multiplier beta (default 1.1): widths x (1/beta)^(FOLD-1)")
    p.add_argument("--res_mult", type=float, default=None,
                   help="EfficientNet: resolution multiplier gamma (default 1.15)")
    p.add_argument("--trt", type=int, choices=[0, 1], default=None,
                   help="1 = TensorRT (needs torch_tensorrt), 0 = not TensorRT (plain PyTorch unless "
                        "--backend says otherwise); default: --backend")
    p.add_argument("--fp16", type=int, choices=[0, 1], default=None,
                   help="1 = fp16, 0 = fp32 (same as --precision fp16 / fp32)")
    add_config_arguments(p, ("backend", "precision"))
    p.add_argument("--json", action="store_true", help="print one JSON result row instead of text")
    return p


def resolve_backend(args: argparse.Namespace) -> str:
    """--backend and the released --trt flag, which must agree."""
    if args.trt is None:
        return args.backend or default_of("backend")
    if args.trt == 1:
        if args.backend not in (None, "auto", "tensorrt"):
            raise BenchError(f"--trt 1 (TensorRT) contradicts --backend {args.backend}; drop one of them")
        if not tensorrt_available():
            raise BenchError("--trt 1 asks for TensorRT, but torch_tensorrt is not installed here; "
                             "install torch-tensorrt, or use --trt 0 or --backend compile/triton")
        return "tensorrt"
    if args.backend == "tensorrt":
        raise BenchError("--trt 0 contradicts --backend tensorrt; drop one of them")
    return args.backend or "eager"


def resolve_precision(args: argparse.Namespace) -> str:
    """--precision and the released --fp16 flag, which must agree."""
    if args.fp16 is None:
        return args.precision or default_of("precision")
    wanted = "fp16" if args.fp16 else "fp32"
    if args.precision not in (None, wanted):
        raise BenchError(f"--fp16 {args.fp16} contradicts --precision {args.precision}; drop one of them")
    return wanted


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """The BenchConfig of infer.py's command line (released flags resolved)."""
    default = CompoundScaling()
    compound = CompoundScaling(width=args.width_mult or default.width,
                               resolution=args.res_mult or default.resolution)
    target = resolve_target(args.model, args.fold, args.do_fold, compound)
    if args.batch_images is not None:
        images = args.batch_images
    else:
        inputs = default_of("batch_images") if args.batch_size is None else args.batch_size
        if inputs < 1:
            raise BenchError(f"--batch_size must be >= 1, got {inputs}")
        images = inputs * target.images_per_input
    return config_from_args(args, model=args.model, fold=args.fold, do_fold=args.do_fold,
                            batch_images=images, backend=resolve_backend(args),
                            precision=resolve_precision(args), compound=compound)


def main(args: argparse.Namespace) -> dict:
    row = run_benchmark(bench_config(args))
    print(json.dumps(row) if args.json else describe(row), flush=True)
    return row


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError, BenchError, FoldError))
