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
measured). Runs get seeds 0..N-1, the recipe's batch and the given --amp.

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
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from typing import Any, Callable, Iterator, Sequence  # noqa: E402

from config.tasks import REPO_ROOT, TaskError, check_fold, get_task, task_names  # noqa: E402
from util.records.atomic import atomic_write_text  # noqa: E402

DEFAULT_TASK = "lol/goldnumber-fraction"
DEFAULT_RUNS = (1, 4, 8)
DEFAULT_EPOCHS = 4
MPS_CONTROL = "nvidia-cuda-mps-control"
MPS_MODES = ("off", "on", "both")
POLL_S = 0.1
WINDOW_SLACK_S = 0.25          # epoch ends are file times polled every POLL_S; allow this much
NOSCOPE_FRAMES = 20000         # train.py --noscope-frames default: the synthetic video's length
EFFNET_PAPER_IDS = ("V1", "V2", "V3", "V4")  # the EfficientNet-style rows of the paper's Table 5
TABLE_FOLDS = (1, 2, 3, 4)
CSV_FIELDS = ["task", "fold", "runs", "mps", "mps_server", "epochs_per_run", "epochs_timed",
              "median_s_per_epoch", "median_train_s_per_epoch", "images_per_epoch", "imgs_per_s_per_run",
              "aggregate_imgs_per_s", "speedup_vs_n1", "speedup_base", "batch_images", "amp", "device",
              "torch", "date"]
INT_FIELDS = {"fold", "runs", "epochs_per_run", "epochs_timed", "images_per_epoch", "batch_images"}
FLOAT_FIELDS = {"median_s_per_epoch", "median_train_s_per_epoch", "imgs_per_s_per_run",
                "aggregate_imgs_per_s", "speedup_vs_n1"}


class ThroughputError(ValueError):
    """A user mistake or a failed measurement; one line that names the fix."""


# ------------------------------------------------------------------ stats.csv and timing
@dataclass(frozen=True)
class Epoch:
    """One row of a run's stats.csv; ``end`` is when the row appeared (None: not watched)."""
    epoch: int
    classes: int
    seconds: float
    train_seconds: float
    end: float | None = None

    @property
    def start(self) -> float | None:
        return None if self.end is None else self.end - self.seconds


def parse_stats(text: str, where: str = "stats.csv") -> list[Epoch]:
    """The epochs of a stats.csv written by fold_trainer.py (columns epoch, classes, seconds,
    train_seconds among others)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    try:
        return [Epoch(int(r["epoch"]), int(r["classes"]), float(r["seconds"]), float(r["train_seconds"]))
                for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise ThroughputError(f"{where} is not a fold_trainer.py stats.csv ({type(exc).__name__}: {exc}); "
                              "delete the workdir and measure again") from None


def read_stats(path: Path) -> tuple[list[Epoch], float]:
    """(epochs, modification time) of one stats.csv, read through one file descriptor so the
    time belongs to the content (the file is replaced atomically after every epoch)."""
    with open(path) as fh:
        mtime = os.fstat(fh.fileno()).st_mtime
        return parse_stats(fh.read(), str(path)), mtime


def note_epoch_ends(known: list[Epoch], rows: list[Epoch], mtime: float) -> list[Epoch]:
    """``known`` epochs (with end times) extended by the new ones in ``rows``: the last new row
    ended at ``mtime``; a row that appeared in the same poll as a later one ended when that
    later one started."""
    out = list(known)
    new = rows[len(known):]
    ends: list[float] = []
    t = mtime
    for r in reversed(new):
        ends.append(t)
        t -= r.seconds
    for r, end in zip(new, reversed(ends)):
        out.append(Epoch(r.epoch, r.classes, r.seconds, r.train_seconds, end))
    return out


def concurrent_window(runs: Sequence[Sequence[Epoch]], skip: int = 1) -> tuple[float, float]:
    """(start, end) of the time when every run was past its first ``skip`` epochs and none had
    finished: from the latest end of a run's epoch ``skip - 1`` to the earliest end of a run's
    last epoch. Runs without end times (not watched) give (-inf, inf)."""
    if not runs or any(not r for r in runs) or any(e.end is None for r in runs for e in r):
        return -math.inf, math.inf
    starts = [r[skip - 1].end if skip > 0 and len(r) >= skip else r[0].start for r in runs]
    return max(starts), min(r[-1].end for r in runs)


def timed_epochs(run: Sequence[Epoch], window: tuple[float, float], skip: int = 1,
                 slack: float = WINDOW_SLACK_S) -> list[Epoch]:
    """The epochs of ``run`` that count: not among the first ``skip``, and inside ``window``."""
    lo, hi = window
    return [e for e in run if e.epoch >= skip
            and (e.end is None or (e.start >= lo - slack and e.end <= hi + slack))]


def batch_images(batch: int, fold: int) -> int:
    """The training batch in images: the recipe's batch trimmed to a multiple of f (>= f)."""
    return max(fold, batch - batch % fold)


def trained_images(class_counts: Sequence[int], classes: int, batch: int, fold: int) -> int:
    """Images one epoch trains when the first ``classes`` classes are active: full batches, plus
    a last partial batch cut to a multiple of f (fold_trainer.py drops the remainder)."""
    n = sum(class_counts[:classes])
    b = batch_images(batch, fold)
    return n // b * b + (n % b) // fold * fold


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def summarize(runs: Sequence[Sequence[Epoch]], class_counts: Sequence[int], batch: int, fold: int,
              skip: int = 1) -> dict[str, Any]:
    """The measured columns of one (runs, mps, task, fold) row from the runs' epochs."""
    window = concurrent_window(runs, skip)
    rates, seconds, train_seconds, images = [], [], [], []
    for run in runs:
        timed = timed_epochs(run, window, skip)
        if timed:
            rates.append(_median([trained_images(class_counts, e.classes, batch, fold) / e.seconds
                                  for e in timed]))
        seconds += [e.seconds for e in timed]
        train_seconds += [e.train_seconds for e in timed]
        images += [trained_images(class_counts, e.classes, batch, fold) for e in timed]
    if not rates:
        raise ThroughputError(f"no epoch of the {len(runs)} run(s) ran while all of them trained "
                              "(epochs too short or runs too far apart): raise --epochs")
    per_run = statistics.fmean(rates)
    return {"runs": len(runs), "epochs_timed": len(seconds), "median_s_per_epoch": _median(seconds),
            "median_train_s_per_epoch": _median(train_seconds), "images_per_epoch": int(_median(images)),
            "imgs_per_s_per_run": per_run, "aggregate_imgs_per_s": per_run * len(runs),
            "batch_images": batch_images(batch, fold)}


def row_key(row: dict[str, Any]) -> tuple:
    return (row["task"], int(row["fold"]), int(row["runs"]), row["mps"], row.get("amp", "none"))


def add_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``speedup_vs_n1``: aggregate over the N=1 row of the same task, fold and amp, without MPS
    if measured, else with it; ``speedup_base`` names that row's mps (empty: no N=1 row)."""
    base = {row_key(r): r for r in rows if int(r["runs"]) == 1}
    for r in rows:
        task, fold, _, _, amp = row_key(r)
        ref = base.get((task, fold, 1, "off", amp)) or base.get((task, fold, 1, "on", amp))
        r["speedup_vs_n1"] = (r["aggregate_imgs_per_s"] / ref["aggregate_imgs_per_s"]) if ref else math.nan
        r["speedup_base"] = ref["mps"] if ref else ""
    return rows


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` with every row of the same key replaced by the one in ``new``, new keys appended."""
    merged = {row_key(r): r for r in old}
    merged.update({row_key(r): r for r in new})
    return sorted(merged.values(), key=lambda r: (r["task"], int(r["fold"]), r["mps"] != "off", int(r["runs"])))


def format_rows_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) and not math.isnan(v)
                        else "" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def read_rows_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV this tool wrote, numbers converted."""
    if not path.is_file():
        raise ThroughputError(f"{path} does not exist; give a CSV written by util/train_throughput.py --csv")
    rows = []
    for r in csv.DictReader(io.StringIO(path.read_text())):
        if not {"task", "fold", "runs", "mps", "aggregate_imgs_per_s"} <= r.keys():
            raise ThroughputError(f"{path} is not a util/train_throughput.py CSV (no task/fold/runs/mps/"
                                  "aggregate_imgs_per_s columns)")
        try:
            rows.append({k: (int(v) if k in INT_FIELDS and v != "" else
                             (float(v) if v != "" else math.nan) if k in FLOAT_FIELDS else v)
                         for k, v in r.items()})
        except ValueError as exc:
            raise ThroughputError(f"{path}: bad number in row {r.get('task')} ({exc})") from None
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'task':26s} {'f':>2s} {'N':>3s} {'mps':>4s} {'epochs':>7s} {'s/epoch/run':>12s} "
            f"{'img/s/run':>11s} {'aggregate img/s':>16s} {'speedup':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        sp = r.get("speedup_vs_n1", math.nan)
        mps = r["mps"] + ("?" if r["mps"] == "on" and r.get("mps_server") == "no" else "")
        lines.append(f"{r['task']:26s} {int(r['fold']):2d} {int(r['runs']):3d} {mps:>4s} "
                     f"{int(r['epochs_timed']):7d} {r['median_s_per_epoch']:12.2f} "
                     f"{r['imgs_per_s_per_run']:11,.0f} {r['aggregate_imgs_per_s']:16,.0f} "
                     f"{'' if math.isnan(sp) else f'{sp:.2f}x':>8s}")
    return "\n".join(lines)


# ------------------------------------------------------------------ projection
@dataclass(frozen=True)
class TableRun:
    """One run of the paper's accuracy table and the images it trains over its epochs."""
    label: str
    task: str
    fold: int
    efficientnet: bool
    epochs: int
    images: int


def task_class_counts(task_name: str, noscope_frames: int = NOSCOPE_FRAMES) -> list[int]:
    """Training images per class of a task, from the registry (game: ``images_per_class``;
    NoScope: ``noscope_frames // chunks`` in one bucket, as the registry has no class sizes)."""
    t = get_task(task_name)
    if t.family == "game":
        return [int(t.data.images_per_class["train"])] * t.num_classes
    if t.family == "noscope":
        return [noscope_frames // t.data.noscope.chunks]
    raise ThroughputError(f"{task_name}: the accuracy-table projection covers game and NoScope tasks only")


def run_images(task_name: str, fold: int, epochs: int, class_counts: Sequence[int], batch: int,
               curriculum: bool = True) -> int:
    """Images a run trains over ``epochs`` epochs at the recipe's curriculum (folded runs only)."""
    t = get_task(task_name)
    cur = t.recipe(fold).curriculum if (curriculum and fold > 1) else None
    total = 0
    for e in range(epochs):
        classes = t.num_classes if cur is None else cur.classes_at(e, t.num_classes, fold)
        total += trained_images(class_counts, classes, batch, fold)
    return total


def paper_table_runs(noscope_frames: int = NOSCOPE_FRAMES) -> list[TableRun]:
    """The 44 runs of the accuracy table, each at its recipe's epochs and batch."""
    out = []
    for name in task_names("game") + task_names("noscope"):
        t = get_task(name)
        counts = task_class_counts(name, noscope_frames)
        for f in TABLE_FOLDS:
            r = t.recipe(f)
            out.append(TableRun(f"{t.paper_id} f={f}", name, f, False, r.epochs,
                                run_images(name, f, r.epochs, counts, r.batch_size)))
        if t.efficientnet_baseline and t.paper_id in EFFNET_PAPER_IDS:
            r = t.recipe(1)
            out.append(TableRun(f"{t.paper_id} EfficientNet", name, 1, True, r.epochs,
                                run_images(name, 1, r.epochs, counts, r.batch_size)))
    return out


@dataclass
class Projection:
    """The accuracy table's cost at one measured (runs, mps) setting."""
    runs: int
    mps: str
    gpu_hours: float
    longest_run_hours: float
    longest_run: str
    total_images: int
    exact: list[str] = field(default_factory=list)      # table runs with their own measured rate
    by_task: list[str] = field(default_factory=list)    # rate of another fold of the same task
    assumed: list[str] = field(default_factory=list)    # rate of the other measured tasks

    def wall_hours(self, gpus: int) -> float:
        """Wall-clock lower bound on ``gpus`` GPUs with ``runs`` runs each."""
        return max(self.gpu_hours / gpus, self.longest_run_hours)


def project(table: Sequence[TableRun], rows: Sequence[dict[str, Any]], runs: int, mps: str) -> Projection:
    """GPU-hours of ``table`` at the measured rates of setting (runs, mps); see the module doc."""
    measured = [r for r in rows if int(r["runs"]) == runs and r["mps"] == mps]
    if not measured:
        raise ThroughputError(f"no measured row with N={runs} and mps={mps}")
    exact = {(r["task"], int(r["fold"])): float(r["aggregate_imgs_per_s"]) for r in measured}
    per_task: dict[str, list[float]] = {}
    for (task, _), rate in exact.items():
        per_task.setdefault(task, []).append(rate)
    overall = statistics.fmean(exact.values())
    p = Projection(runs, mps, 0.0, 0.0, "", 0)
    for tr in table:
        key = (tr.task, tr.fold)
        if key in exact and not tr.efficientnet:
            rate = exact[key]
            p.exact.append(tr.label)
        elif tr.efficientnet and key in exact:
            rate = exact[key]
            p.by_task.append(tr.label)
        elif tr.task in per_task:
            rate = statistics.fmean(per_task[tr.task])
            p.by_task.append(tr.label)
        else:
            rate = overall
            p.assumed.append(tr.label)
        p.gpu_hours += tr.images / rate / 3600
        p.total_images += tr.images
        alone = tr.images / (rate / runs) / 3600  # this run's share of the GPU: rate / N
        if alone > p.longest_run_hours:
            p.longest_run_hours, p.longest_run = alone, tr.label
    return p


def projections(rows: Sequence[dict[str, Any]], table: Sequence[TableRun]) -> list[Projection]:
    settings = sorted({(int(r["runs"]), r["mps"]) for r in rows}, key=lambda s: (s[1] != "off", s[0]))
    return [project(table, rows, n, m) for n, m in settings]


def format_projection(projs: Sequence[Projection], table: Sequence[TableRun],
                      rows: Sequence[dict[str, Any]]) -> str:
    measured_tasks = sorted({f"{get_task(r['task']).paper_id} ({r['task']})" for r in rows})
    lines = [f"Projected cost of the accuracy table: {len(table)} runs, "
             f"{sum(t.images for t in table) / 1e9:.3f} G training images at the recipes' epochs "
             "(curriculum included)",
             f"{'N':>3s} {'mps':>4s} {'GPU-hours':>10s} {'wall 1 GPU':>11s} {'wall 2 GPUs':>12s} "
             f"{'longest run at N (h)':>26s}"]
    best = min(projs, key=lambda p: p.gpu_hours) if projs else None
    for p in projs:
        lines.append(f"{p.runs:3d} {p.mps:>4s} {p.gpu_hours:10.2f} {p.wall_hours(1):11.2f} "
                     f"{p.wall_hours(2):12.2f} {p.longest_run_hours:10.2f} ({p.longest_run})"
                     + ("   <- fewest GPU-hours" if p is best else ""))
    if best is not None:
        for gpus in (1, 2):
            w = min(projs, key=lambda p: p.wall_hours(gpus))
            lines.append(f"Shortest wall-clock on {gpus} GPU{'s' if gpus > 1 else ''}: N={w.runs} per GPU, "
                         f"mps {w.mps}: {w.wall_hours(gpus):.2f} h")
        lines.append(f"Rates: {len(best.exact)} run(s) at their own measured rate "
                     f"({', '.join(best.exact) or 'none'}); {len(best.by_task)} at the mean rate of the "
                     f"measured folds of their task; {len(best.assumed)} ASSUMED to train at the mean "
                     f"measured rate per image of {', '.join(measured_tasks) or 'the measured tasks'}"
                     + (f" ({_by_model(best.assumed)})" if best.assumed else "") + ".")
        lines.append("Wall-clock = max(GPU-hours / GPUs, longest run at the per-run rate of N sharing runs). "
                     "Neither term is exact: once fewer than N runs are left the aggregate rate falls "
                     "(GPU-hours / GPUs is optimistic) while the last runs speed up (the longest-run term "
                     "is pessimistic); start the longest runs first.")
    return "\n".join(lines)


def _by_model(labels: Sequence[str]) -> str:
    """'V2 f=1', 'V2 f=2', 'N1 f=1' -> 'V2 (2 runs), N1 (1 run)'."""
    counts: dict[str, int] = {}
    for lbl in labels:
        counts[lbl.split(" ")[0]] = counts.get(lbl.split(" ")[0], 0) + 1
    return ", ".join(f"{m} ({c} run{'s' if c > 1 else ''})" for m, c in counts.items())


# ------------------------------------------------------------------ measuring
def check_mps_control() -> str:
    """Path of nvidia-cuda-mps-control; a one-line error if it is not on PATH."""
    path = shutil.which(MPS_CONTROL)
    if path is None:
        raise ThroughputError(f"--mps needs {MPS_CONTROL} on PATH (it comes with the NVIDIA driver "
                              "utilities); install them or run without --mps")
    return path


@contextmanager
def mps_daemon(workdir: Path) -> Iterator[Callable[[], bool]]:
    """Start an MPS control daemon with private pipe/log folders (the children inherit them);
    yields a probe that says whether an MPS server is running; quits the daemon at the end."""
    control = check_mps_control()
    pipe, log = workdir / "mps-pipe", workdir / "mps-log"
    pipe.mkdir(parents=True, exist_ok=True)
    log.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")}
    os.environ["CUDA_MPS_PIPE_DIRECTORY"], os.environ["CUDA_MPS_LOG_DIRECTORY"] = str(pipe), str(log)
    try:
        proc = subprocess.run([control, "-d"], capture_output=True, text=True, timeout=60)
        if proc.returncode:
            raise ThroughputError(f"{MPS_CONTROL} -d failed (exit {proc.returncode}: "
                                  f"{(proc.stderr or proc.stdout).strip()[:200]}); run without --mps")
        print(f"MPS control daemon started (pipe {pipe})", flush=True)

        def probe() -> bool:
            out = subprocess.run([control], input="get_server_list\n", capture_output=True, text=True, timeout=30)
            return bool(out.stdout.strip())
        try:
            yield probe
        finally:
            subprocess.run([control], input="quit\n", capture_output=True, text=True, timeout=60)
            print("MPS control daemon stopped", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare_data(task: str, data_root: str | None) -> list[int]:
    """Decode the task's splits once (filling the loader's cache, so N runs only read it);
    returns the training images per class in label order."""
    t = get_task(task)
    where = t.data_dir(data_root)
    if t.data.source != "image_folder":
        raise ThroughputError(f"{task}: only image-folder tasks (game, NoScope) can be measured here")
    if not all((where / s).is_dir() for s in ("train", "val", "test")):  # as train.has_data, without torch
        raise ThroughputError(f"no data for {task} at {where}: make it with python3 util/make_game_data.py ROOT "
                              f"--tasks {task} (game tasks) and pass --data-root ROOT")
    import torch
    from datasets import load_split

    splits = {s: load_split(task, s, get_task(task).data_dir(data_root), progress=False)
              for s in ("train", "val", "test")}
    return torch.bincount(splits["train"].labels, minlength=get_task(task).num_classes).tolist()


@dataclass
class Watched:
    """One child run being watched: its process, files and the epochs seen so far."""
    proc: subprocess.Popen
    folder: Path
    epochs: list[Epoch] = field(default_factory=list)
    mtime: float = -1.0

    def poll(self) -> None:
        path = self.folder / "stats.csv"
        try:
            if path.stat().st_mtime == self.mtime:
                return
            rows, mtime = read_stats(path)
        except FileNotFoundError:
            return
        self.mtime = mtime
        if len(rows) > len(self.epochs):
            self.epochs = note_epoch_ends(self.epochs, rows, mtime)


def last_log_line(folder: Path) -> str:
    log = folder / "train.log"
    lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.exists() else []
    return lines[-1] if lines else f"no output in {log}"


def launch_runs(task: str, fold: int, n: int, group_dir: Path, args: argparse.Namespace) -> list[Watched]:
    """Start N fold_trainer.py runs with the command line train.py --jobs gives its children."""
    from util.training.run_config import config_argv
    from train import get_args_parser as train_parser
    from train import run_config

    out = []
    for k in range(n):
        savedir = group_dir / f"run{k}"
        targs = train_parser().parse_args([str(savedir), "--epochs", str(args.epochs), "--amp", args.amp,
                                           "--seed", str(k)]
                                          + (["--data-root", args.data_root] if args.data_root else []))
        cfg = run_config(targs, savedir, task, fold, args.device)
        cfg.progress = False
        folder = Path(cfg.outdir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "train.log", "w") as fh:
            proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "fold_trainer.py"), *config_argv(cfg)],
                                    cwd=REPO_ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        out.append(Watched(proc, folder))
    return out


def watch(runs: list[Watched], timeout: float, probe: Callable[[], bool] | None = None) -> bool | None:
    """Poll the runs until all exit; a failed run, a timeout or Ctrl-C stops them all. Returns
    the probe's answer, asked once while every run was past its first epoch (None: no probe)."""
    from util.training.run_pool import stop_all

    deadline = time.monotonic() + timeout
    answer = None
    try:
        while True:
            for w in runs:
                w.poll()
            if probe is not None and answer is None and all(len(w.epochs) >= 1 for w in runs) \
                    and all(w.proc.poll() is None for w in runs):
                answer = probe()
            failed = [w for w in runs if w.proc.poll() not in (None, 0)]
            if failed:
                raise ThroughputError(f"a run failed (exit {failed[0].proc.returncode}): "
                                      f"{last_log_line(failed[0].folder)}")
            if all(w.proc.poll() == 0 for w in runs):
                for w in runs:
                    w.poll()
                return answer
            if time.monotonic() > deadline:
                raise ThroughputError(f"runs still going after --group-timeout {timeout:.0f} s; "
                                      "raise it or lower --epochs / --runs")
            time.sleep(POLL_S)
    except BaseException:
        stop_all([w.proc for w in runs], wait_s=30)
        raise


def run_provenance(folder: Path) -> dict[str, str]:
    """GPU name and torch version from a run's config.json (the parent never touches CUDA)."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
        return {"device": cfg.get("device", ""), "torch": cfg.get("versions", {}).get("torch", "")}
    except (OSError, ValueError):
        return {"device": "", "torch": ""}


def measure(task: str, fold: int, n: int, mps: str, counts: list[int], args: argparse.Namespace,
            workdir: Path, probe: Callable[[], bool] | None) -> dict[str, Any]:
    """One row: N concurrent runs of (task, fold), timed from their stats.csv."""
    group = workdir / f"{task.replace('/', '_')}-f{fold}-n{n}-mps{mps}"
    t0 = time.monotonic()
    runs = launch_runs(task, fold, n, group, args)
    server = watch(runs, args.group_timeout, probe)
    if len({len(w.epochs) for w in runs}) != 1 or len(runs[0].epochs) < args.epochs:
        raise ThroughputError(f"runs of {task} f={fold} ended with {[len(w.epochs) for w in runs]} epochs, "
                              f"expected {args.epochs} each; see {group}/*/train.log")
    batch = get_task(task).recipe(fold).batch_size
    row = {"task": task, "fold": fold, "mps": mps, "epochs_per_run": args.epochs, "amp": args.amp,
           "mps_server": "" if mps == "off" else ("yes" if server else "no"),
           **summarize([w.epochs for w in runs], counts, batch, fold),
           **run_provenance(runs[0].folder), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    print(f"[N={n} mps={mps} {task} f={fold}] {time.monotonic() - t0:.0f} s: {row['epochs_timed']} epochs timed, "
          f"{row['median_s_per_epoch']:.2f} s/epoch per run, {row['aggregate_imgs_per_s']:,.0f} img/s in all"
          + (f", MPS server running: {row['mps_server']}" if mps != "off" else ""), flush=True)
    if not args.keep_workdir:
        shutil.rmtree(group, ignore_errors=True)
    return row


# ------------------------------------------------------------------ command line
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
    p.add_argument("--data-root", default=None, metavar="ROOT",
                   help="data folder as in train.py (game data: ROOT/<game>/<task>)")
    p.add_argument("--csv", default=None, metavar="PATH",
                   help="output CSV, rewritten atomically after every setting (default train_throughput.csv; "
                        "with --from-csv: none unless given)")
    p.add_argument("--append", action="store_true",
                   help="merge into the rows already in --csv (a row of the same task/fold/N/mps/amp is replaced)")
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
            with (mps_daemon(workdir) if mode == "on" else _no_daemon()) as probe:
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


@contextmanager
def _no_daemon() -> Iterator[None]:
    yield None


def user_errors() -> tuple[type[Exception], ...]:
    """The one-line error types: ours, the registry's and, once the training code is loaded
    (torch is imported lazily), its data set and training errors."""
    extra = sys.modules["fold_trainer"].USER_ERRORS if "fold_trainer" in sys.modules else ()
    data = (sys.modules["datasets"].DatasetError,) if "datasets" in sys.modules else ()
    return (ThroughputError, TaskError, *extra, *data)


def sigterm_as_ctrl_c() -> None:
    """SIGTERM (``timeout``, a scheduler) ends the command as Ctrl-C does: the runs are stopped,
    the MPS daemon quit and the CSV keeps what was measured. Later signals are swallowed."""
    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sigterm_as_ctrl_c()
    try:
        sys.exit(main(get_args_parser().parse_args()))
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: the settings measured so far are in the CSV")
