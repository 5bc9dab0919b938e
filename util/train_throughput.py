#!/usr/bin/env python3
"""Measure the aggregate training throughput of N concurrent training runs on one GPU.

Runs N copies of the real training path at once -- ``fold_trainer.py`` processes with the
same command line ``train.py --jobs`` gives them, each training a few epochs into its own
folder of a temporary savedir -- for each N of ``--runs``, each task of ``--tasks`` and each
fold of ``--folds``, optionally under NVIDIA MPS, and reports the images per second summed
over all N runs. Then it projects the GPU-hours of the paper's whole accuracy table (44 runs)
from the measured rates.

Examples::

    # V1 at f=1, N = 1 4 8 concurrent runs, 4 epochs each (the data must exist: see below)
    python3 util/train_throughput.py --data-root /tmp/gd --csv tp.csv
    # V1 at f=1 and f=4, without MPS and then under MPS, N = 1 4 8 16
    python3 util/train_throughput.py --data-root /tmp/gd --folds 1 4 --runs 1 4 8 16 --mps both \\
        --epochs 5 --csv tp.csv
    # more settings later, merged into the same CSV (rows of the same key are replaced)
    python3 util/train_throughput.py --data-root /tmp/gd --mps --runs 12 --csv tp.csv --append
    # no measuring: reprint the table and the projection of CSVs measured before (merged)
    python3 util/train_throughput.py --from-csv tp.csv more.csv
    # a CPU smoke run of the whole path on tiny data
    python3 util/make_game_data.py /tmp/gd-small --tasks lol/goldnumber-fraction --scale 0.01
    python3 util/train_throughput.py --data-root /tmp/gd-small --device cpu --runs 1 2 --epochs 2

Data: game tasks read ``DATA_ROOT/<game>/<task>`` (``--data-root`` as in train.py); make the
synthetic set with ``python3 util/make_game_data.py DATA_ROOT --tasks <task>`` first. The split
is decoded once here (filling the loader's cache) before any run starts, so the N processes
only read the cache.

Timing: each run records, per epoch, ``seconds`` (train + val + test evaluation) and the
active classes in its ``stats.csv``. A run's rate is the median over its timed epochs of
(images trained in the epoch) / seconds, where the images trained follow the curriculum's
active classes and the trimming of batches to a multiple of f. Timed epochs: never the first
(CUDA-graph capture, warm-up), and only epochs that ran while ALL N runs were training: after
the last run finished its first epoch and before the first run finished its last one (an
epoch's end is the time its row appeared in stats.csv, polled every 0.1 s; its start is that
minus its seconds). The aggregate rate is N x the mean rate of the runs; the speedup is the
aggregate over the N=1 run without MPS of the same task and fold (with MPS if only that was
measured). Runs get seeds 0..N-1, the recipe's batch (or --batch-size), the given --amp and
--compile-step (column ``step``: compiled; else graph).

MPS (``--mps`` or ``--mps on``; ``--mps both`` measures every N without and then with it):
``nvidia-cuda-mps-control -d`` is started before those runs, with private pipe and log
folders under the workdir, and ``echo quit | nvidia-cuda-mps-control`` stops it after. The
column ``mps_server`` says whether an MPS server was running while the runs trained (``yes``:
they really shared the GPU through MPS).

Output: ``--csv`` (written atomically after every measured setting, so an interrupted command
keeps what it measured) with one row per (runs, mps, task, fold): runs, epochs_timed (over all
runs), median_s_per_epoch (over all timed epochs), imgs_per_s_per_run, aggregate_imgs_per_s,
speedup_vs_n1 and provenance (GPU, torch, date). The table is printed too.

Projection: the paper's accuracy table is 44 runs, all from the task registry: the six game
CNNs V1-V6 at f = 1, 2, 3, 4 (1500 epochs; V6 at f=4: 3000), NoScope N1-N4 at f = 1..4 (50
epochs) and the EfficientNet-style baselines of V1-V4 (1500 epochs). Each run's work is the
images it trains: its train set (game: images per class x classes; NoScope: --noscope-frames
/ chunks, the synthetic video's split, since the registry holds no NoScope size) per epoch,
fewer while the curriculum holds classes back. For every measured (runs, mps) setting the
GPU-hours = sum over the 44 runs of images / rate, where a run's rate is the measured
aggregate rate of the same task and fold, else the mean over the measured folds of its task,
else the mean over every measured task (an ASSUMPTION, printed with the tasks it covers: those
CNNs train at the measured rate per image; EfficientNet-style runs take their task's f=1
rate where that was measured). Wall-clock on G GPUs is at least GPU-hours / G and at least the longest
single run at the per-run rate of that setting.

Code: measuring and the CSV rows in ``util/training/throughput.py``, the projection in
``util/training/projection.py``; this file is the command line.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from typing import Any  # noqa: E402

from config.tasks import TaskError, check_fold, get_task  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_write_text  # noqa: E402
from util.training.interrupt import sigterm_as_ctrl_c  # noqa: E402
from util.training.projection import NOSCOPE_FRAMES, format_projection, paper_table_runs, projections  # noqa: E402
from util.training.throughput import (ThroughputError, add_speedups, check_mps_control, format_rows_csv,  # noqa: E402
                                      format_table, measure, merge_rows, mps_daemon, prepare_data, read_rows_csv)

DEFAULT_TASK = "lol/goldnumber-fraction"
DEFAULT_RUNS = (1, 4, 8)
DEFAULT_EPOCHS = 4
MPS_MODES = ("off", "on", "both")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=[DEFAULT_TASK], metavar="T",
                   help=f"tasks to measure (default {DEFAULT_TASK}, the paper's V1)")
    p.add_argument("--folds", nargs="+", type=int, default=[1], metavar="F", help="fold factors (default 1)")
    p.add_argument("--runs", nargs="+", type=int, default=list(DEFAULT_RUNS), metavar="N",
                   help="concurrent runs on the GPU, one measurement each (default 1 4 8)")
    p.add_argument("--mps", nargs="?", choices=MPS_MODES, const="on", default="off",
                   help="NVIDIA MPS: off (default), on (--mps alone), or both (every N without, then with)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"epochs of each run, >= 2 since the first is not timed (default {DEFAULT_EPOCHS})")
    p.add_argument("--device", default="cuda", help="device of every run: cuda, cuda:N, or cpu for a smoke run")
    p.add_argument("--amp", choices=("none", "tf32", "bf16", "fp16"), default="none",
                   help="numerics of the runs (default none = fp32, the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="training batch in images of every run (default: each recipe's, 32 for the game and "
                        "NoScope CNNs); each batch size is its own row and projection")
    p.add_argument("--compile-step", action="store_true",
                   help="runs train with fold_trainer.py --compile-step (compiled forward and loss, fused "
                        "optimizer, cudnn.benchmark); column step = compiled, else graph: its own rows")
    p.add_argument("--data-root", default=None, metavar="ROOT",
                   help="data folder as in train.py (game data: ROOT/<game>/<task>)")
    p.add_argument("--csv", default=None, metavar="PATH",
                   help="output CSV, rewritten atomically after every setting (default train_throughput.csv; "
                        "with --from-csv: none unless given)")
    p.add_argument("--append", action="store_true",
                   help="merge into the rows already in --csv (a row of the same task/fold/N/mps/amp/batch/step is replaced)")
    p.add_argument("--from-csv", nargs="+", default=None, metavar="PATH",
                   help="measure nothing: merge these CSVs, print their table and projection "
                        "(and write them to --csv if it is given explicitly)")
    p.add_argument("--workdir", default=None, metavar="DIR",
                   help="folder of the runs' temporary savedirs (default: a new temporary folder, removed)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the runs' folders (logs, stats.csv)")
    p.add_argument("--group-timeout", type=float, default=900.0, metavar="S",
                   help="stop a setting's runs after S seconds with an error (default 900)")
    p.add_argument("--noscope-frames", type=int, default=NOSCOPE_FRAMES, metavar="N",
                   help=f"frames of the NoScope videos in the projection (default {NOSCOPE_FRAMES}, the "
                        "synthetic video's train.py default)")
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    """Validate everything before any work; returns the MPS modes to measure, in order."""
    for t in args.tasks:
        get_task(t)  # unknown names: one line listing the valid ones
    for f in args.folds:
        check_fold(f)
    bad = [n for n in args.runs if n < 1]
    if bad:
        raise ThroughputError(f"--runs values must be >= 1 (got {bad[0]}): N is the number of concurrent runs")
    if args.epochs < 2:
        raise ThroughputError(f"--epochs must be >= 2 (got {args.epochs}): the first epoch is not timed")
    if args.batch_size is not None and args.batch_size < 1:
        raise ThroughputError(f"--batch-size must be >= 1 (got {args.batch_size})")
    if args.group_timeout <= 0 or args.noscope_frames < 1:
        raise ThroughputError("--group-timeout and --noscope-frames must be > 0")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise ThroughputError(f"unknown --device {args.device!r}; use cuda, cuda:N or cpu")
    modes = {"off": ["off"], "on": ["on"], "both": ["off", "on"]}[args.mps]
    if "on" in modes:
        check_mps_control()
    return modes


def report(rows: list[dict[str, Any]], noscope_frames: int) -> None:
    devices = sorted({r.get("device") or "?" for r in rows})
    torches = sorted({r.get("torch") or "?" for r in rows})
    dates = sorted(r.get("date") or "?" for r in rows)
    print(f"\nAggregate training throughput ({'; '.join(devices)}; torch {', '.join(torches)}; "
          f"{dates[0]}{' to ' + dates[-1] if dates[-1] != dates[0] else ''}):")
    print(format_table(rows))
    table = paper_table_runs(noscope_frames)
    print()
    print(format_projection(projections(rows, table), table, rows))


def main(args: argparse.Namespace) -> int:
    csv_path = Path(args.csv or "train_throughput.csv")
    if args.from_csv:
        rows: list[dict[str, Any]] = []
        for p in args.from_csv:
            rows = merge_rows(rows, read_rows_csv(Path(p)))
        rows = add_speedups(rows)
        if args.csv:
            atomic_write_text(csv_path, format_rows_csv(rows))
        report(rows, args.noscope_frames)
        return 0
    modes = check_args(args)
    old = read_rows_csv(csv_path) if args.append and csv_path.exists() else []
    counts = {t: prepare_data(t, args.data_root) for t in args.tasks}
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="train-throughput-"))
    workdir.mkdir(parents=True, exist_ok=True)
    new: list[dict[str, Any]] = []
    print(f"{len(args.runs) * len(modes) * len(args.tasks) * len(args.folds)} settings, {args.epochs} epochs "
          f"per run, workdir {workdir}", flush=True)
    try:
        for mode in modes:
            with (mps_daemon(workdir) if mode == "on" else nullcontext()) as probe:
                for task in args.tasks:
                    for fold in args.folds:
                        for n in args.runs:
                            new.append(measure(task, fold, n, mode, counts[task], args, workdir, probe))
                            rows = add_speedups(merge_rows(old, new))
                            atomic_write_text(csv_path, format_rows_csv(rows))
    finally:
        if not args.workdir and not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = add_speedups(merge_rows(old, new))
    report(rows, args.noscope_frames)
    print(f"\nCSV: {csv_path}")
    return 0


def user_errors() -> tuple[type[Exception], ...]:
    """The one-line error types: ours, the registry's and, once the training code is loaded
    (torch is imported lazily), its data set and training errors."""
    extra = sys.modules["fold_trainer"].USER_ERRORS if "fold_trainer" in sys.modules else ()
    data = (sys.modules["datasets"].DatasetError,) if "datasets" in sys.modules else ()
    return (ThroughputError, TaskError, *extra, *data)


if __name__ == "__main__":
    sigterm_as_ctrl_c()  # SIGTERM ends the command as Ctrl-C does: runs stopped, MPS quit, CSV kept
    run_command(main, get_args_parser, errors=user_errors, returns_status=True,
                interrupted="\ninterrupted: the settings measured so far are in the CSV")
