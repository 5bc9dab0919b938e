"""The aggregate training throughput of N concurrent training runs: starting and watching the
runs (optionally under an NVIDIA MPS daemon), timing their epochs from their ``stats.csv``, one
result row per (runs, mps, task, fold) and the CSV of those rows; ``util/train_throughput.py``
is the command, and its ``--help`` the manual.

Timing: a run's ``stats.csv`` row says how long the epoch took (``seconds``); the file's mtime,
polled every ``POLL_S``, says when it ended (``note_epoch_ends``). Only epochs after the first
that ran while every run was training count (``concurrent_window``, ``timed_epochs``); a run's
rate is the median of images trained / seconds over them, and the aggregate is N x the mean
rate of the runs (``summarize``).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from config.tasks import REPO_ROOT, get_task
from util.training.layout import CONFIG, LOG, STATS, last_log_line, run_dir
from util.training.run_pool import stop_all

if TYPE_CHECKING:
    from util.training.run_config import RunConfig

MPS_CONTROL = "nvidia-cuda-mps-control"
POLL_S = 0.1
WINDOW_SLACK_S = 0.25          # epoch ends are file times polled every POLL_S; allow this much
CSV_FIELDS = ["task", "fold", "runs", "mps", "mps_server", "epochs_per_run", "epochs_timed",
              "median_s_per_epoch", "median_train_s_per_epoch", "images_per_epoch", "imgs_per_s_per_run",
              "aggregate_imgs_per_s", "speedup_vs_n1", "speedup_base", "batch_size", "batch_images", "amp", "step",
              "device", "torch", "date"]
INT_FIELDS = {"fold", "runs", "epochs_per_run", "epochs_timed", "images_per_epoch", "batch_size", "batch_images"}
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


def parse_stats(text: str, where: str = STATS) -> list[Epoch]:
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


def row_batch(row: dict[str, Any]) -> int:
    """The batch (images, before trimming to a multiple of f) a row's runs were asked for; rows
    measured before the ``batch_size`` column existed ran their task's recipe batch."""
    return int(row.get("batch_size") or get_task(row["task"]).recipe(int(row["fold"])).batch_size)


def setting_of(row: dict[str, Any]) -> tuple[int, str, str, int, str]:
    """What a row's runs shared besides task and fold: (runs, mps, amp, batch, step); step is
    ``graph`` (the CUDA-graph step; rows from before the column) or ``compiled`` (--compile-step)."""
    return int(row["runs"]), row["mps"], row.get("amp") or "none", row_batch(row), row.get("step") or "graph"


def row_key(row: dict[str, Any]) -> tuple:
    return (row["task"], int(row["fold"]), *setting_of(row))


def add_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``speedup_vs_n1``: aggregate over the N=1 row of the same task, fold, amp, batch and step,
    without MPS if measured, else with it; ``speedup_base`` names that row's mps (empty: no N=1 row)."""
    base = {row_key(r): r for r in rows if int(r["runs"]) == 1}
    for r in rows:
        task, fold, _, _, amp, batch, step = row_key(r)
        ref = base.get((task, fold, 1, "off", amp, batch, step)) or base.get((task, fold, 1, "on", amp, batch, step))
        r["speedup_vs_n1"] = (r["aggregate_imgs_per_s"] / ref["aggregate_imgs_per_s"]) if ref else math.nan
        r["speedup_base"] = ref["mps"] if ref else ""
    return rows


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` with every row of the same key replaced by the one in ``new``, new keys appended."""
    merged = {row_key(r): r for r in old}
    merged.update({row_key(r): r for r in new})
    def order(r: dict[str, Any]) -> tuple:
        runs, mps, amp, batch, step = setting_of(r)
        return r["task"], int(r["fold"]), batch, amp, step, mps != "off", runs
    return sorted(merged.values(), key=order)


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
    head = (f"{'task':26s} {'f':>2s} {'batch':>5s} {'amp':>4s} {'step':>8s} {'N':>3s} {'mps':>4s} {'epochs':>7s} {'s/epoch/run':>12s} "
            f"{'img/s/run':>11s} {'aggregate img/s':>16s} {'speedup':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        runs, mps, amp, batch, step = setting_of(r)
        sp = r.get("speedup_vs_n1", math.nan)
        mps += "?" if mps == "on" and r.get("mps_server") == "no" else ""
        lines.append(f"{r['task']:26s} {int(r['fold']):2d} {batch:5d} {amp:>4s} {step:>8s} {runs:3d} {mps:>4s} "
                     f"{int(r['epochs_timed']):7d} {r['median_s_per_epoch']:12.2f} "
                     f"{r['imgs_per_s_per_run']:11,.0f} {r['aggregate_imgs_per_s']:16,.0f} "
                     f"{'' if math.isnan(sp) else f'{sp:.2f}x':>8s}")
    return "\n".join(lines)


# ------------------------------------------------------------------ running and watching N runs
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
        path = self.folder / STATS
        try:
            if path.stat().st_mtime == self.mtime:
                return
            rows, mtime = read_stats(path)
        except FileNotFoundError:
            return
        self.mtime = mtime
        if len(rows) > len(self.epochs):
            self.epochs = note_epoch_ends(self.epochs, rows, mtime)


def child_config(task: str, fold: int, k: int, group_dir: Path, args: argparse.Namespace) -> "RunConfig":
    """Run k's settings: what ``train.py --jobs`` gives a child (RunConfig's defaults, which its
    options are generated from; no progress bars), with seed k."""
    from util.training.plan import teacher_path  # lazily, as below: they import torch
    from util.training.run_config import RunConfig

    savedir = group_dir / f"run{k}"
    return RunConfig(task=task, fold=fold, outdir=str(run_dir(savedir, task, fold)), epochs=args.epochs,
                     device=args.device, seed=k, data_root=args.data_root, amp=args.amp,
                     batch_size=args.batch_size, compile_step=args.compile_step,
                     teacher=str(teacher_path(savedir, task)), progress=False)


def launch_runs(task: str, fold: int, n: int, group_dir: Path, args: argparse.Namespace) -> list[Watched]:
    """Start N fold_trainer.py runs (``child_config``), each logging to its run folder."""
    from util.training.run_config import config_argv

    out = []
    for k in range(n):
        cfg = child_config(task, fold, k, group_dir, args)
        folder = Path(cfg.outdir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOG, "w") as fh:
            proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "fold_trainer.py"), *config_argv(cfg)],
                                    cwd=REPO_ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        out.append(Watched(proc, folder))
    return out


def watch(runs: list[Watched], timeout: float, probe: Callable[[], bool] | None = None) -> bool | None:
    """Poll the runs until all exit; a failed run, a timeout or Ctrl-C stops them all. Returns
    the probe's answer, asked once while every run was past its first epoch (None: no probe)."""
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
        cfg = json.loads((folder / CONFIG).read_text())
        return {"device": cfg.get("device", ""), "torch": cfg.get("versions", {}).get("torch", "")}
    except (OSError, ValueError):
        return {"device": "", "torch": ""}


def measure(task: str, fold: int, n: int, mps: str, counts: list[int], args: argparse.Namespace,
            workdir: Path, probe: Callable[[], bool] | None) -> dict[str, Any]:
    """One row: N concurrent runs of (task, fold), timed from their stats.csv. ``args`` are
    util/train_throughput.py's (epochs, amp, batch_size, compile_step, device, data_root, group_timeout,
    keep_workdir)."""
    group = workdir / f"{task.replace('/', '_')}-f{fold}-n{n}-mps{mps}"
    t0 = time.monotonic()
    runs = launch_runs(task, fold, n, group, args)
    server = watch(runs, args.group_timeout, probe)
    if len({len(w.epochs) for w in runs}) != 1 or len(runs[0].epochs) < args.epochs:
        raise ThroughputError(f"runs of {task} f={fold} ended with {[len(w.epochs) for w in runs]} epochs, "
                              f"expected {args.epochs} each; see {group}/*/{LOG}")
    batch = args.batch_size or get_task(task).recipe(fold).batch_size
    row = {"task": task, "fold": fold, "mps": mps, "epochs_per_run": args.epochs, "amp": args.amp,
           "batch_size": batch, "step": "compiled" if args.compile_step else "graph",
           "mps_server": "" if mps == "off" else ("yes" if server else "no"),
           **summarize([w.epochs for w in runs], counts, batch, fold),
           **run_provenance(runs[0].folder), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    print(f"[N={n} mps={mps} {task} f={fold}] {time.monotonic() - t0:.0f} s: {row['epochs_timed']} epochs timed, "
          f"{row['median_s_per_epoch']:.2f} s/epoch per run, {row['aggregate_imgs_per_s']:,.0f} img/s in all"
          + (f", MPS server running: {row['mps_server']}" if mps != "off" else ""), flush=True)
    if not args.keep_workdir:
        shutil.rmtree(group, ignore_errors=True)
    return row


