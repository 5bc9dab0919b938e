#!/usr/bin/env python3
"""Arithmetic intensity (AI) of the original, folded and EfficientNet-style CNNs.

AI = FLOPs / bytes over a model's conv and linear layers (paper section 2; formula in
``models/costs.py``), at a batch of ``--batch_size`` images (a folded model gets
``batch_size // f`` inputs) and ``--bytes_per_elt`` bytes per element.

Examples::

    python3 ai.py                       # FP16 (2 bytes), batch 1024, all groups
    python3 ai.py --bytes_per_elt 4     # FP32
    python3 ai.py --groups game --folds 2 4 8
    python3 ai.py --count-bias          # FLOPs with bias adds, as the released ai.py counted

The game CNNs' original AI at FP16 and batch 1024 is 87.0-102.0 (87.3-102.3 with
``--count-bias``, as the released ai.py prints for V1-V4); the paper quotes 88-102.
The released ai.py evaluated its EfficientNet row at 512 inputs (it divided the batch by its
"fold" 2); here every model sees ``--batch_size`` images.

CSV columns: ``model,batch_size,original_AI,tformed_AI_2,tformed_AI_3,tformed_AI_4`` (one
``tformed_AI_<f>`` per ``--folds``). In the ``efficientnet`` group, ``tformed_AI_2`` is the
compound-scaled model (the original benchmarked it as "fold 2"); other columns stay empty.

``--roofline`` prints instead what AI means on a given GPU: each model's time per batch at the
layer roofline (``models/costs.py``: every layer at max(FLOPs / peak, bytes / bandwidth)) and
the speedup folding gives there, ``bound_speedup_<f>`` = original time / folded time. Peak
and bandwidth are measured on this machine's GPU (cached, ``util/bench/peak.py``) unless given::

    python3 ai.py --roofline --channel-align 8 --pad-input            # on the GPU machine
    python3 ai.py --roofline --peak-tflops 730 --bandwidth-tbs 3.0     # anywhere

Columns: ``model,batch_size,original_us,tformed_us_<f>...,bound_speedup_<f>...``.

``--band-limit CR`` prints, per model and fold (1 and ``--folds``), the band-limited CNN that
discards CR% of each conv's spectrum (``models/bandlimit.py``) beside the same CNN with direct
convolutions: the FLOPs and bytes its FFT or DFT convolutions really execute (transforms,
complex multiply-adds over the kept band, the spectra read and written; ``models/costs.py``)
next to the direct convolution's, and both AIs::

    python3 ai.py --band-limit 50                      # the GPU default algorithm (dft)
    python3 ai.py --band-limit 50 --band-algorithm fft --groups noscope

Columns: ``model,fold,band_limit,algorithm,kept_fraction,direct_GFLOPs,band_GFLOPs,
direct_MB,band_MB,direct_AI,band_AI`` (GFLOPs and MB per batch of ``--batch_size`` images).
"""
from __future__ import annotations

import argparse
import csv
import sys
from typing import Sequence

import torch
from torch import nn

from config.tasks import BENCH_GROUPS, BenchEntry, TaskError, bench_entries
from models import kept_fraction, model_input_shape
from models.costs import LayerCost, arithmetic_intensity, layer_costs
from util.bench.roofline import Roofline, layer_roofline
from util.bench.variants import build_variant, variant_costs
from util.cli import run_command


def model_costs(entry: BenchEntry, fold: int, batch_size: int, channel_align: int = 1,
                pad_input: bool = False, **band) -> list[LayerCost]:
    """Layer costs of ``entry`` at ``fold`` (``BenchEntry.variant``: fold 2 of an EfficientNet
    entry is its compound-scaled model) for a batch of ``batch_size`` images; ``band``:
    ``band_limit`` and ``band_algorithm`` of ``build_model``."""
    return variant_costs(entry, entry.variant(fold), batch_size, channel_align=channel_align,
                         pad_input=pad_input, **band)


def model_ai(entry: BenchEntry, fold: int, batch_size: int, bytes_per_elt: int,
             channel_align: int = 1, count_bias: bool = False) -> float:
    """AI of ``entry`` at ``fold`` for a batch of ``batch_size`` images."""
    return arithmetic_intensity(model_costs(entry, fold, batch_size, channel_align), bytes_per_elt,
                                count_bias)


def ai_rows(groups: Sequence[str] = BENCH_GROUPS, folds: Sequence[int] = (2, 3, 4),
            batch_size: int = 1024, bytes_per_elt: int = 2, channel_align: int = 1,
            count_bias: bool = False) -> list[dict[str, object]]:
    """Per model: arithmetic intensity of the original and of each fold of ``folds``."""
    rows = []
    for entry in bench_entries(groups):
        def ai(fold: int) -> float:
            return model_ai(entry, fold, batch_size, bytes_per_elt, channel_align, count_bias)

        row: dict[str, object] = {"model": entry.name, "batch_size": batch_size,
                                  "original_AI": ai(1)}
        kept = entry.bench_folds(folds)
        for f in folds:
            row[f"tformed_AI_{f}"] = ai(f) if f in kept else ""
        rows.append(row)
    return rows


def roofline_rows(peak_flops: float, bytes_per_sec: float, groups: Sequence[str] = BENCH_GROUPS,
                  folds: Sequence[int] = (2, 3, 4), batch_size: int = 1024,
                  bytes_per_elt: int = 2, channel_align: int = 1, pad_input: bool = False) -> list[dict[str, object]]:
    """Per model: microseconds per batch at the layer roofline, and original / folded."""
    rows = []
    for entry in bench_entries(groups):
        def roof(fold: int) -> Roofline:
            return layer_roofline(entry, entry.variant(fold), batch_size, peak_flops, bytes_per_sec,
                                  bytes_per_elt, channel_align=channel_align, pad_input=pad_input)

        original = roof(1)
        row: dict[str, object] = {"model": entry.name, "batch_size": batch_size,
                                  "original_us": 1e6 * original.seconds}
        kept = entry.bench_folds(folds)
        # compare per image: a folded batch holds (batch_size // f) * f images (1023 at f = 3)
        times = {f: roof(f) for f in folds if f in kept}
        for f in folds:
            row[f"tformed_us_{f}"] = 1e6 * times[f].seconds if f in times else ""
        for f in folds:
            row[f"bound_speedup_{f}"] = (times[f].images_per_sec / original.images_per_sec
                                         if f in times else "")
        rows.append(row)
    return rows


def band_rows(band_limit: float, algorithm: str = "auto", groups: Sequence[str] = BENCH_GROUPS,
              folds: Sequence[int] = (2, 3, 4), batch_size: int = 1024,
              bytes_per_elt: int = 2, channel_align: int = 1) -> list[dict[str, object]]:
    """Band-limited CNNs beside the same CNNs with direct convolutions (``--band-limit``)."""
    rows = []
    for entry in bench_entries(groups):
        if entry.is_efficientnet:  # band-limited variants of the fold entries only
            continue
        for fold in (1, *folds):
            direct = model_costs(entry, fold, batch_size, channel_align)
            model = build_variant(entry, entry.variant(fold), channel_align=channel_align, meta=True,
                                  band_limit=band_limit, band_algorithm=algorithm)
            band = layer_costs(model, model_input_shape(model), batch_size // fold)  # sets kept_fraction
            rows.append({
                "model": entry.name, "fold": fold, "band_limit": band_limit,
                "algorithm": model_algorithm(model), "kept_fraction": kept_fraction(model),
                "direct_GFLOPs": sum(c.flops for c in direct) / 1e9,
                "band_GFLOPs": sum(c.flops for c in band) / 1e9,
                "direct_MB": sum(c.bytes(bytes_per_elt) for c in direct) / 1e6,
                "band_MB": sum(c.bytes(bytes_per_elt) for c in band) / 1e6,
                "direct_AI": arithmetic_intensity(direct, bytes_per_elt),
                "band_AI": arithmetic_intensity(band, bytes_per_elt)})
    return rows


def model_algorithm(model: nn.Module, device_type: str = "cuda") -> str:
    """The algorithm of a band-limited model's convs on ``device_type`` (the GPU by default)."""
    from models.bandlimit import band_layers

    return ",".join(sorted({m.resolved_algorithm(device_type) for m in band_layers(model)}))


def measured_roofline(bytes_per_elt: int) -> tuple[float, float]:
    """This machine's GPU: measured peak FLOPs/sec for the element size, and bytes/sec."""
    from util.bench.config import PRECISIONS, precision_of_bytes
    from util.bench.peak import peak_bandwidth, peak_flops

    if not torch.cuda.is_available():
        raise TaskError("--roofline needs the GPU's numbers: run it on the GPU machine, or pass "
                        "--peak-tflops and --bandwidth-tbs")
    precision = precision_of_bytes(bytes_per_elt)
    if precision is None:
        raise TaskError("--roofline measures fp16 (--bytes_per_elt 2) or fp32 (4) peaks; pass "
                        "--peak-tflops for other sizes")
    device = torch.device("cuda")
    return peak_flops(PRECISIONS[precision], device), peak_bandwidth(device)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=1024, help="images per batch (default 1024)")
    p.add_argument("--bytes_per_elt", type=int, default=2, help="bytes per element: 2 = FP16 (default), 4 = FP32")
    p.add_argument("--groups", nargs="+", choices=BENCH_GROUPS, default=list(BENCH_GROUPS), help="model groups to print")
    p.add_argument("--folds", nargs="+", type=int, default=[2, 3, 4], help="fold factors (default 2 3 4)")
    p.add_argument("--channel-align", type=int, default=1, help="round internal widths up to this multiple")
    p.add_argument("--pad-input", action="store_true",
                   help="zero-pad the input channels to the alignment too (as infer.py --pad-input)")
    p.add_argument("--count-bias", action="store_true",
                   help="count bias adds as FLOPs, as the released ai.py did (about +0.3%% on the "
                        "game CNNs); the default is the paper's formula, without them")
    p.add_argument("--roofline", action="store_true",
                   help="print roofline times and bound speedups instead of AI (see above)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="--roofline: the GPU's dense peak in TFLOP/s (default: measure this GPU)")
    p.add_argument("--bandwidth-tbs", type=float, default=None,
                   help="--roofline: the GPU's memory bandwidth in TB/s (default: measure this GPU)")
    p.add_argument("--band-limit", type=float, default=None, metavar="CR",
                   help="print band-limited CNNs (CR%% of each spectrum discarded) beside direct "
                        "convolutions instead of AI (see above)")
    p.add_argument("--band-algorithm", choices=["fft", "dft", "auto"], default="auto",
                   help="--band-limit: the convs' algorithm (auto = the GPU default)")
    return p


def main(args: argparse.Namespace) -> None:
    if args.batch_size < 1 or args.bytes_per_elt < 1 or any(f < 2 for f in args.folds):
        raise TaskError("--batch_size and --bytes_per_elt must be >= 1 and every --folds value >= 2")
    if args.band_limit is not None:
        if args.roofline:
            raise TaskError("--band-limit and --roofline print different tables: give one")
        rows = band_rows(args.band_limit, args.band_algorithm, args.groups, args.folds,
                         args.batch_size, args.bytes_per_elt, args.channel_align)
    elif args.roofline:
        if (args.peak_tflops is None) != (args.bandwidth_tbs is None):
            raise TaskError("--roofline: give both --peak-tflops and --bandwidth-tbs, or neither "
                            "(to measure this GPU)")
        if args.peak_tflops is None:
            peak, bw = measured_roofline(args.bytes_per_elt)
        elif args.peak_tflops <= 0 or args.bandwidth_tbs <= 0:
            raise TaskError("--peak-tflops and --bandwidth-tbs must be positive")
        else:
            peak, bw = args.peak_tflops * 1e12, args.bandwidth_tbs * 1e12
        print(f"# layer roofline at {peak / 1e12:.0f} TFLOP/s and {bw / 1e12:.2f} TB/s, "
              f"{args.bytes_per_elt} bytes/element, align {args.channel_align}"
              f"{' +pad input' if args.pad_input else ''}", file=sys.stderr)
        rows = roofline_rows(peak, bw, args.groups, args.folds, args.batch_size,
                             args.bytes_per_elt, args.channel_align, args.pad_input)
    else:
        rows = ai_rows(args.groups, args.folds, args.batch_size, args.bytes_per_elt,
                       args.channel_align, args.count_bias)
    out = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    out.writeheader()
    for row in rows:
        out.writerow({k: (f"{v:.4g}" if k == "kept_fraction" else f"{v:.2f}" if isinstance(v, float)
                          else v) for k, v in row.items()})


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError,))
