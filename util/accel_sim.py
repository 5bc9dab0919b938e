"""Energy and latency of a registry network, its FoldedCNNs and baselines on spatial accelerators
(ZigZag: shipped Eyeriss-like and TPU-like descriptions), per layer and per image.

Every fold ``f`` is compared with the original on the same ``f`` images: the FoldedCNN runs one
input, the original a batch of ``f``. ZigZag searches a mapping per layer and reports energy
(compute, per-PE registers, on-chip SRAM, DRAM), latency in cycles, DRAM traffic and array
utilisation; ratios < 1 mean the network is cheaper per image than the original.
``--fuse`` turns on ZigZag's inter-layer data locality (activations that fit stay on chip
between layers; see ``util/accel/evaluate.py`` FUSION_NOTES for what it does not do).

Results are cached per layer under ``--cache-dir``: a rerun is instant, an interrupted run
resumes. Examples::

    python3 util/accel_sim.py game_lol/goldnumber-fraction --folds 1 2 4
    python3 util/accel_sim.py noscope_coral --folds 1 4 --hardware tpu_like --fuse --csv coral.csv
    python3 util/accel_sim.py game_apex/squad_count_v2 --efficientnet --lpf-limit 4 --layers
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.tasks import TaskError  # noqa: E402
from util.accel.evaluate import (FUSION_NOTES, SearchOptions, add_search_args,  # noqa: E402
                                 default_workers, search_options_from_args)
from util.accel.hardware import DEFAULT_HARDWARE, HARDWARE, AccelError  # noqa: E402
from util.accel.network import NetworkSpec, build_network  # noqa: E402
from util.cli import run_command  # noqa: E402

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "runs" / "accel_cache"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="benchmark model (as infer.py): game_<task>, noscope_<name> or "
                                 "efficientnet-game_<task>")
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2, 4],
                   help="fold factors; each f > 1 is compared with the original at batch f "
                        "(default 1 2 4)")
    p.add_argument("--images", type=int, default=None,
                   help="images every network processes (a multiple of every fold); default: "
                        "f images for fold f (the original at batch f, the FoldedCNN on one input)")
    p.add_argument("--band-limit", type=float, default=None, metavar="CR",
                   help="band-limited network with compression ratio CR, costed as its "
                        "truncated-DFT products (util/accel/band_export.py)")
    p.add_argument("--efficientnet", action="store_true",
                   help="add the EfficientNet-style baseline (game tasks; one image per input)")
    p.add_argument("--hardware", nargs="+", default=list(DEFAULT_HARDWARE),
                   help=f"shipped accelerators (default {' '.join(DEFAULT_HARDWARE)}; "
                        f"valid: {', '.join(HARDWARE)})")
    p.add_argument("--fuse", action="store_true",
                   help="ZigZag's inter-layer data locality (layer fusion at the memory level)")
    p.add_argument("--both", action="store_true", help="run with fusion off and on")
    p.add_argument("--csv", type=Path, default=None, help="write every row here (atomic)")
    p.add_argument("--layers", action="store_true", help="also print every layer of every run")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="parallel ZigZag processes (default: CPU count)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"per-layer result cache (default {DEFAULT_CACHE})")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--onnx-dir", type=Path, default=None, help="also save the exported ONNX graphs")
    p.add_argument("--mapping-progress", action="store_true",
                   help="ZigZag's own progress bar over temporal mappings (with --workers 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_search_args(p)
    return p


def check_args(args: argparse.Namespace) -> SearchOptions:
    """Validate what argparse cannot; a one-line AccelError otherwise."""
    for hw in args.hardware:
        if hw not in HARDWARE:
            raise AccelError(f"unknown hardware {hw!r}; valid: {', '.join(HARDWARE)}")
    if any(f < 1 for f in args.folds):
        raise AccelError(f"bad --folds {args.folds}: fold factors are integers >= 1")
    if args.workers < 1:
        raise AccelError("--workers must be >= 1")
    if args.band_limit is not None:  # fails in one line while build_model has no band_limit
        build_network(NetworkSpec(args.model, 1, 1, band_limit=args.band_limit))
    return search_options_from_args(args)


def main(args: argparse.Namespace) -> int:
    from util.accel.runs import comparison_specs, run_all
    from util.accel.table import TOTAL, format_layers, format_summary, table_rows, write_csv

    search = check_args(args)
    specs = comparison_specs(args.model, sorted(set(args.folds)), band_limit=args.band_limit,
                             efficientnet=args.efficientnet, images=args.images)
    fuses = [False, True] if args.both else [args.fuse]
    results = run_all(specs, args.hardware, fuses, search,
                      cache_dir=None if args.no_cache else args.cache_dir, workers=args.workers,
                      progress=not args.quiet, mapping_progress=args.mapping_progress,
                      onnx_dir=args.onnx_dir)
    rows = table_rows(results)
    ignored = sorted({op for r in results for op in r.ignored_ops})
    print(f"ZigZag costs Conv/Gemm/MatMul layers; free (not modelled): {', '.join(ignored) or 'none'}")
    if args.layers:
        for res in results:
            spec = res.run.network
            print(f"\n== {spec.model} {spec.variant} batch {spec.batch} ({spec.images} images) on "
                  f"{res.run.hardware}, fusion {'on' if res.run.fuse else 'off'}")
            print(format_layers([r for r in rows if r["model"] == spec.model
                                 and r["variant"] == spec.variant and r["batch"] == spec.batch
                                 and r["hardware"] == res.run.hardware
                                 and r["fuse"] == int(res.run.fuse)]))
    print(f"\n== per image ({args.model}; ratios against the original on the same images)")
    print(format_summary(rows))
    if any(res.run.fuse for res in results):
        print("\n" + FUSION_NOTES.splitlines()[0])
    if args.csv:
        write_csv(rows, args.csv)
        print(f"\nwrote {sum(r['layer_index'] == TOTAL for r in rows)} runs "
              f"({len(rows)} rows) to {args.csv}")
    return 0


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(AccelError, TaskError), returns_status=True,
                prog="accel_sim.py")
