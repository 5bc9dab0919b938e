"""The accelerator table and its report: every game and NoScope network at f = 1, 2, 4 (and the
EfficientNet-style baselines) on ZigZag's Eyeriss-like and TPU-like accelerators, layer fusion
off and on; CSV, Markdown report and plots under ``--out``.

Per fold ``f`` the FoldedCNN runs one input (f images) and the original a batch of f images, so
per-image energy and latency compare like for like. Layers are cached under ``--cache-dir``: a
rerun only rewrites the report. ``run_info.json`` keeps the wall time of the last run that
searched layers, with the command, versions and search options.

    python3 util/accel_report.py                      # the full table (about an hour on 2 cores)
    python3 util/accel_report.py --report-only        # report and plots from the committed CSV
    python3 util/accel_report.py --models noscope_coral --folds 1 4 --out /tmp/accel
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.tasks import TaskError, bench_entries  # noqa: E402
from util.accel.evaluate import (add_search_args, default_workers,  # noqa: E402
                                 search_options_from_args)
from util.accel.hardware import DEFAULT_HARDWARE, HARDWARE, AccelError, zigzag_module  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_write_json  # noqa: E402
from util.records.provenance import provenance  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "model_files" / "accel"
DEFAULT_CACHE = REPO / "runs" / "accel_cache"
TABLE = "accel_table.csv"
RUN_INFO = "run_info.json"


def default_models() -> list[str]:
    """Every game and NoScope network of the benchmark (registry order)."""
    return [e.name for e in bench_entries() if e.scaling == "fold" and e.task.family in ("game", "noscope")]


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=None,
                   help="benchmark models (default: every game_* and noscope_* model)")
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2, 4], help="default 1 2 4")
    p.add_argument("--hardware", nargs="+", default=list(DEFAULT_HARDWARE),
                   help=f"default {' '.join(DEFAULT_HARDWARE)}; valid: {', '.join(HARDWARE)}")
    p.add_argument("--no-efficientnet", dest="efficientnet", action="store_false",
                   help="leave out the EfficientNet-style baselines of the game networks")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the report and plots from OUT/accel_table.csv")
    p.add_argument("--relu-density", type=Path, default=None,
                   help="CSV of util/relu_density.py to add to the report")
    p.add_argument("--band-table", type=Path, default=None,
                   help="CSV of util/accel_sim.py runs of band-limited and direct networks "
                        "(default OUT/band_table.csv when present; model_files/accel/band_table.sh)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="parallel ZigZag processes (default: CPU count)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"default {DEFAULT_CACHE}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_search_args(p)
    return p


def run_table(args: argparse.Namespace) -> None:
    from util.accel.runs import comparison_specs, run_all
    from util.accel.table import table_rows, write_csv

    search = search_options_from_args(args)
    for hw in args.hardware:
        if hw not in HARDWARE:
            raise AccelError(f"unknown hardware {hw!r}; valid: {', '.join(HARDWARE)}")
    models = args.models or default_models()
    specs = [s for m in models for s in comparison_specs(m, sorted(set(args.folds)),
                                                         efficientnet=args.efficientnet)]
    start = time.perf_counter()
    stats: dict[str, int] = {}
    results = run_all(specs, args.hardware, [False, True], search, cache_dir=args.cache_dir,
                      workers=args.workers, progress=not args.quiet, stats=stats)
    wall = time.perf_counter() - start
    write_csv(table_rows(results), args.out / TABLE)
    info_path = args.out / RUN_INFO
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    this = {"wall_s": round(wall, 1), "runs": len(results), "layers_searched": stats["searched"],
            "layers_from_cache": stats["cached"], "workers": args.workers,
            "search": asdict(search), "zigzag": zigzag_module().__version__,
            "models": models, "folds": sorted(set(args.folds)), "hardware": args.hardware,
            **provenance("cpu")}
    info["last"] = this
    if stats["searched"]:
        info["compute"] = this
    atomic_write_json(info_path, info)
    print(f"{len(results)} runs, {stats['searched']} layers searched, {stats['cached']} from cache, "
          f"{wall:.0f} s wall; wrote {args.out / TABLE}")


def main(args: argparse.Namespace) -> int:
    if not args.report_only:
        run_table(args)
    elif not (args.out / TABLE).exists():
        raise AccelError(f"{args.out / TABLE} is missing: run without --report-only first")
    from util.accel.report import write_report

    path = write_report(args.out, relu_density_csv=args.relu_density, band_csv=args.band_table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(AccelError, TaskError), returns_status=True,
                prog="accel_report.py")
