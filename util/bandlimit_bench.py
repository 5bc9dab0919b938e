#!/usr/bin/env python3
"""Band-limited CNNs (``models/bandlimit.py``) against their originals and FoldedCNNs on one
device: inference images/s and peak memory, training step time and peak memory, one CSV.

Per task, the variants are: the original (``--original-backend``, e.g. triton, or compile for
ResNet-18), the FoldedCNN at each ``--folds`` value > 1 (same backend), and the band-limited
CNN at each ``--rates`` value with each ``--algorithms`` algorithm (``--band-backend``,
default cudagraph: the eager kernels replayed in a CUDA graph; eager if capture fails). Each
variant is measured in both phases:

* ``inference``: a batch of ``--batch-images`` images (``batch_images // f`` inputs), ``--precision``, random
  normal device-resident input under ``inference_mode``; warm-up, then 3 trials of a loop
  sized to take about ``--seconds`` in all, each between CUDA events; the median trial;
* ``train``: forward, loss, backward and an SGD-with-momentum update (the update's cost is a
  few elementwise kernels whatever the recipe's optimizer) on ``--train-batch`` images, fp32
  weights with bf16 autocast on CUDA as ``fold_trainer.py --amp bf16`` trains (its default is
  fp32, as released), eager (no CUDA graph).

Peak memory is the CUDA allocator's peak over the timed steps (``torch.cuda.max_memory_allocated``
after a reset once the model, input and optimizer exist), so it includes them. Rows are
appended as soon as measured (``util/bench/bandlimit_results.py`` owns the columns); a failed
variant becomes a row with ``error`` and the rest continue; with ``--budget-s`` variants that
would start after that many seconds are recorded as skipped, so a long run ends in time.

Examples::

    # the H200 comparison (game and NoScope models with triton, ResNet-18 with compile)
    python3 util/bandlimit_bench.py out.csv --tasks lol/goldnumber-fraction apex/squad_count_v2 \\
        noscope-coral --original-backend triton --channel-align 8 --pad-input
    python3 util/bandlimit_bench.py out.csv --tasks cifar10 --original-backend compile
    # a CPU smoke run
    python3 util/bandlimit_bench.py cpu.csv --device cpu --tasks noscope-coral --batch-images 8 \\
        --rates 50 --original-backend eager --band-backend eager --seconds 0.05
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as ``python3 util/bandlimit_bench.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from config.tasks import Task, TaskError, get_task  # noqa: E402
from models import build_model, kept_fraction, model_input_shape, unfold_logits  # noqa: E402
from models.bandlimit import ALGORITHMS, BandLimitError, check_band_settings  # noqa: E402
from models.costs import layer_costs  # noqa: E402
from util.bench.bandlimit_results import TABLE as BAND_TABLE  # noqa: E402
from util.bench.results import ResultsError  # noqa: E402
from util.bench.backends import BACKENDS, BenchError, check_backend, prepare  # noqa: E402
from util.bench.config import PRECISIONS  # noqa: E402
from util.bench.runner import resolve_device  # noqa: E402
from util.cli import exception_line  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.records.provenance import device_name  # noqa: E402
from util.bench.peak import time_loop  # noqa: E402

TRIALS = 3
WARMUP = 3


@dataclass(frozen=True)
class Variant:
    """One network of the comparison: a fold and, for band-limited CNNs, rate and algorithm."""
    fold: int
    band_limit: float | None = None
    algorithm: str | None = None

    @property
    def kind(self) -> str:
        return "band" if self.band_limit is not None else "original" if self.fold == 1 else "folded"

    def label(self) -> str:
        band = "" if self.band_limit is None else f" band {self.band_limit:g}% {self.algorithm}"
        return f"f={self.fold}{band}"

    def build_args(self) -> dict[str, Any]:
        return ({} if self.band_limit is None else
                {"band_limit": self.band_limit, "band_algorithm": self.algorithm})


def variants(args: argparse.Namespace) -> list[Variant]:
    """The original, then the band-limited CNNs, then the FoldedCNNs (the order they run in)."""
    out = [Variant(1)]
    out += [Variant(f, cr, alg) for f in args.band_folds for cr in args.rates for alg in args.algorithms]
    out += [Variant(f) for f in args.folds if f > 1]
    return out


def measure(step: Callable[[], Any], device: torch.device, seconds: float) -> tuple[list[float], int]:
    """Seconds per call of ``step`` in each of ``TRIALS`` timed loops (after ``WARMUP`` calls),
    and the loop length, chosen so that all trials take about ``seconds``."""
    for _ in range(WARMUP):
        step()
    one = time_loop(step, 1, device)
    iters = max(1, min(10000, int(seconds / TRIALS / max(one, 1e-7))))
    return [time_loop(step, iters, device) / iters for _ in range(TRIALS)], iters


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None


@lru_cache(maxsize=None)
def _flops(task: str, fold: int, images: int, align: int, pad: bool, band_limit: float | None,
           algorithm: str | None) -> float:
    band = {} if band_limit is None else {"band_limit": band_limit, "band_algorithm": algorithm}
    with torch.device("meta"):  # shapes only: no weights, no arithmetic
        model = build_model(task, fold, channel_align=align, pad_input=pad, **band)
    inputs = max(1, images // fold)
    return sum(c.flops for c in layer_costs(model, model_input_shape(model), inputs)) / (inputs * fold)


def pad_input(v: Variant, args: argparse.Namespace) -> bool:
    """--pad-input serves the direct convolutions' tensor-core tiles; Fourier layers gain nothing."""
    return args.pad_input and v.band_limit is None


def flops_per_image(task: Task, v: Variant, args: argparse.Namespace, images: int) -> tuple[float, float]:
    """FLOPs per image the variant executes at a batch of ``images`` (a band-limited conv's
    filter transform is shared by the batch), and with direct convolutions (``models/costs.py``)."""
    common = (task.name, v.fold, images, args.channel_align, pad_input(v, args))
    return _flops(*common, v.band_limit, v.algorithm), _flops(*common, None, None)


def inference_row(task: Task, v: Variant, args: argparse.Namespace,
                  device: torch.device) -> dict[str, Any]:
    dtype = PRECISIONS[args.precision]
    # the Fourier-domain layers read NCHW; the originals' kernels are fastest in NHWC
    fmt = (torch.channels_last if args.channels_last and v.band_limit is None
           else torch.contiguous_format)
    torch.manual_seed(0)
    model = build_model(task, v.fold, channel_align=args.channel_align, pad_input=pad_input(v, args),
                        **v.build_args()).eval().to(device=device, dtype=dtype, memory_format=fmt)
    x = torch.randn(args.batch_images // v.fold, *model_input_shape(model), device=device,
                    dtype=dtype).contiguous(memory_format=fmt)
    backend = args.band_backend if v.band_limit is not None else args.original_backend
    note = ""
    with torch.inference_mode():
        try:
            prep = prepare(backend, model, x)
        except Exception as exc:  # e.g. a CUDA graph capture the FFT path does not allow
            if v.band_limit is None or backend == "eager":
                raise
            note = f"{backend} failed ({type(exc).__name__}), eager used"
            prep = prepare("eager", model, x)
        reset_peak(device)
        times, iters = measure(lambda: prep.fn(x), device, args.seconds)
    images = (args.batch_images // v.fold) * v.fold
    sec = statistics.median(times)
    return {"backend": prep.backend, "precision": args.precision, "batch_images": images,
            "images_per_sec": images / sec, "ms_per_batch": 1e3 * sec, "peak_mem_mb": peak_mb(device),
            "kept_fraction": kept_fraction(model), "trials": TRIALS, "error": note}


def train_row(task: Task, v: Variant, args: argparse.Namespace,
              device: torch.device) -> dict[str, Any]:
    batch = task.recipe(v.fold).batch_size if args.train_batch == "recipe" else int(args.train_batch)
    inputs = max(1, batch // v.fold)
    torch.manual_seed(0)
    model = build_model(task, v.fold, channel_align=args.channel_align, pad_input=pad_input(v, args),
                        **v.build_args()).train().to(device)
    fmt = torch.channels_last if args.channels_last and v.band_limit is None else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=task.recipe(v.fold).lr, momentum=0.9)
    x = torch.randn(inputs, *model_input_shape(model), device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, task.num_classes, (inputs * v.fold,), device=device)
    amp = device.type == "cuda"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = unfold_logits(model(x), v.fold).float()
        F.cross_entropy(logits, y).backward()
        opt.step()

    step()  # creates the optimizer state before the memory peak is reset
    reset_peak(device)
    times, _ = measure(step, device, args.seconds)
    sec = statistics.median(times)
    return {"backend": "eager", "precision": "bf16-autocast" if amp else "fp32",
            "batch_images": inputs * v.fold, "images_per_sec": inputs * v.fold / sec,
            "ms_per_batch": 1e3 * sec, "peak_mem_mb": peak_mb(device),
            "kept_fraction": kept_fraction(model), "trials": TRIALS, "error": ""}


def run_one(task: Task, phase: str, v: Variant, args: argparse.Namespace,
            device: torch.device, skip: str) -> dict[str, Any]:
    """One CSV row; failures and skips become rows with ``error``."""
    row: dict[str, Any] = {"task": task.name, "paper_id": task.paper_id, "phase": phase,
                           "variant": v.kind, "fold": v.fold, "band_limit": v.band_limit,
                           "algorithm": v.algorithm or "", "channel_align": args.channel_align,
                           "pad_input": int(pad_input(v, args)), "gpu": device_name(device),
                           "torch": torch.__version__}
    if skip:
        return {**row, "error": skip}
    try:
        row.update((inference_row if phase == "inference" else train_row)(task, v, args, device))
        row["flops_per_image"], row["direct_flops_per_image"] = flops_per_image(
            task, v, args, row["batch_images"])
    except Exception as exc:  # recorded; the next variant still runs
        row["error"] = exception_line(exc, typed=True, limit=250)
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def describe(row: dict[str, Any]) -> str:
    v = Variant(row["fold"], row["band_limit"], row["algorithm"] or None)
    if row.get("images_per_sec") is None:
        return f"{row['task']} {row['phase']} {v.label()}: {row.get('error')}"
    mem = "" if row.get("peak_mem_mb") is None else f", peak {row['peak_mem_mb']:.0f} MiB"
    kept = "" if row.get("kept_fraction") is None else f", kept {100 * row['kept_fraction']:.1f}%"
    note = f" ({row['error']})" if row.get("error") else ""
    return (f"{row['task']} {row['phase']} {v.label()} [{row['backend']}]: "
            f"{row['images_per_sec']:,.0f} images/s, {row['ms_per_batch']:.3f} ms/batch of "
            f"{row['batch_images']}{mem}{kept}{note}")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", help="results CSV (rows are appended)")
    p.add_argument("--tasks", nargs="+", required=True,
                   help="task names from config/, e.g. lol/goldnumber-fraction apex/squad_count_v2 "
                        "noscope-coral cifar10")
    p.add_argument("--rates", nargs="+", type=float, default=[0, 25, 50, 75],
                   help="band limits: %% of each conv's spectrum discarded (default 0 25 50 75)")
    p.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS),
                   help="band-limited algorithms to time (default: fft dft)")
    p.add_argument("--folds", nargs="+", type=int, default=[4],
                   help="FoldedCNNs to time besides the original (default 4)")
    p.add_argument("--band-folds", nargs="+", type=int, default=[1],
                   help="folds at which the band-limited CNNs run (default 1; e.g. 1 4 to combine)")
    p.add_argument("--phases", nargs="+", choices=["inference", "train"], default=["inference", "train"],
                   help="what to measure (default both)")
    p.add_argument("--batch-images", type=int, default=1024,
                   help="images per inference batch (default 1024)")
    p.add_argument("--train-batch", default=None,
                   help="images per training step: a number, or 'recipe' for the task's recipe "
                        "(default: --batch-images)")
    p.add_argument("--original-backend", choices=[b for b in BACKENDS if b != "auto"], default="triton",
                   help="backend of originals and FoldedCNNs (default triton; compile for ResNet-18)")
    p.add_argument("--band-backend", choices=[b for b in BACKENDS if b != "auto"], default="cudagraph",
                   help="backend of band-limited CNNs (default cudagraph, eager when capture fails)")
    p.add_argument("--precision", choices=list(PRECISIONS), default="fp16", help="inference dtype")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC for originals and FoldedCNNs (band-limited CNNs stay NCHW)")
    p.add_argument("--channel-align", type=int, default=1, help="round widths up to this multiple")
    p.add_argument("--pad-input", action="store_true",
                   help="pad the input channels of originals and FoldedCNNs to --channel-align")
    p.add_argument("--seconds", type=float, default=1.0,
                   help="about how long the timed trials of one measurement take (default 1.0)")
    p.add_argument("--budget-s", type=float, default=0.0,
                   help="record variants that would start after this many seconds as skipped (0 = none)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cuda (default) or cpu")
    return p


def check_args(args: argparse.Namespace) -> tuple[list[Task], torch.device]:
    """Every bad setting as one line, before any measurement."""
    tasks = [get_task(t) for t in args.tasks]
    for cr in args.rates:
        try:
            check_band_settings(cr, None, "auto")
        except BandLimitError as exc:
            raise BenchError(str(exc)) from None
    if min(args.folds + args.band_folds) < 1 or args.batch_images < max(args.folds + args.band_folds):
        raise BenchError("--folds and --band-folds must be >= 1 and --batch-images at least the largest fold")
    if args.train_batch is None:
        args.train_batch = str(args.batch_images)
    if args.train_batch != "recipe" and not (args.train_batch.isdigit() and int(args.train_batch) > 0):
        raise BenchError(f"--train-batch {args.train_batch!r}: give a positive number or 'recipe'")
    if args.seconds <= 0:
        raise BenchError("--seconds must be > 0")
    device = resolve_device(args.device)
    check_backend(args.original_backend, device)
    check_backend(args.band_backend, device)
    return tasks, device


def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    tasks, device = check_args(args)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    start = time.monotonic()
    rows = []
    # both phases of a variant before the next variant: a --budget-s cut drops whole variants,
    # the last (folded) first
    plan = [(t, ph, v) for t in tasks for v in variants(args) for ph in args.phases]
    print(f"# {len(plan)} measurements on {device_name(device)} -> {args.csv}", file=sys.stderr, flush=True)
    for task, phase, v in plan:
        over = args.budget_s and time.monotonic() - start > args.budget_s
        skip = f"skipped: over the --budget-s {args.budget_s:g} s" if over else ""
        row = run_one(task, phase, v, args, device, skip)
        BAND_TABLE.append(Path(args.csv), [row])
        print(describe(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError, BenchError, ResultsError))
