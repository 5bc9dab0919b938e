#!/usr/bin/env python3
"""Train every (task, fold) pair of the paper, resumably; ``fold_trainer.py`` trains one.

Examples::

    python3 train.py runs/paper                                  # every task in config/ x folds 1 2 3 4
    python3 train.py runs/v1 --tasks lol/goldnumber-fraction --folds 1 2 4
    python3 train.py runs/v1 --tasks lol/goldnumber-fraction --synthetic   # make missing game data first
    python3 train.py runs/quick --quick                          # small CPU smoke run, a few minutes
    python3 train.py runs/paper                                  # again: resumes, skips finished runs
    python3 train.py runs/paper --jobs 4 --devices cuda:0 cuda:1 # 4 runs at once, two per GPU
    python3 train.py runs/effnet --efficientnet                  # the EfficientNet-style baselines (Table 5)
    python3 train.py runs/band --tasks noscope-coral --folds 1 4 --band-limit none 0 25 50 75

Layout (``util/training/layout.py`` owns it): ``SAVEDIR/<task>/fold<f>/`` (``SAVEDIR/<task>/efficientnet/``)
holds ``current.pth``, ``best.pth``, ``stats.csv``, ``<metric>.txt``, ``config.json`` (resolved
settings, git commit, versions, device) and, once finished, ``done.json``. ``SAVEDIR/results.csv``
has one row per finished run and is rewritten (atomically) after each run, so it never holds
duplicates.

``--band-limit CR...`` trains band-limited CNNs (``models/bandlimit.py``: each conv larger than
1x1 discards CR% of its spectrum, forward and backward; ``none`` = ordinary convs), every task x
fold x CR, each in its own folder ``SAVEDIR/<task>/fold<f>-band<CR>/`` and results row (columns
``band_limit``, ``kept_fraction``).

Folded runs of a task whose recipe distils (CIFAR-10) need the f=1 model as teacher:
the released teacher ``model_files/cifar10/resnet18/model.t7`` when present, else
``model_files/cifar10/resnet18/best.pth``, else this savedir's fold-1 run, which is then
trained first.

``--jobs N`` runs up to N runs at once, each as ``fold_trainer.py`` in its own process with
its output in ``<run folder>/train.log``; data is prepared first, and a run that distils from
this savedir's fold-1 run starts only once that run has finished. Ctrl-C or SIGTERM stops
every run; each keeps its last completed epoch. On ONE GPU, small runs are latency-bound, so running
several at once helps only with NVIDIA MPS (``nvidia-cuda-mps-control -d`` before,
``echo quit | nvidia-cuda-mps-control`` after); without MPS, processes time-slice the GPU.
Measured on an H100: two f=1 lol/goldnumber-fraction runs at batch 32 under MPS took 2.5 s
per epoch each vs 1.93 s for one run alone (1.55x the images per second in total).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from config.tasks import REPO_ROOT, check_fold, get_task, task_names
from fold_trainer import finished_result, train_one
from util.cli import run_command
from util.training.errors import USER_ERRORS, TrainError
from util.training.interrupt import sigterm_as_ctrl_c
from util.training.layout import LOG, band_label, last_log_line, run_dir, run_label, write_results
from util.training.plan import Run, distils_from_this_savedir, plan_runs, run_config
from util.training.run_config import add_config_arguments, check_band_limit, check_overrides, config_argv
from util.training.run_pool import Job, Outcome, run_pool

# --quick: a small smoke run of the whole training path on a CPU.
QUICK = {"tasks": ["lol/goldnumber-fraction", "noscope-coral"], "folds": [1, 2], "epochs": 4,
         "game_scale": 0.02, "noscope_frames": 2400}


def make_synthetic(task: str, data_root: str | None, scale: float, frames: int, seed: int) -> None:
    """Generate the offline synthetic data of a game or NoScope task (other tasks: error)."""
    t = get_task(task)
    target = get_task(task).data_dir(data_root)
    if t.family == "game":
        game_root = target.parents[len(Path(t.name).parts) - 1]  # strip <game>/<task>
        cmd = [sys.executable, _tool("make_game_data.py"), str(game_root), "--tasks", t.name,
               "--scale", str(scale), "--seed", str(seed)]
        _run_tool(cmd)
    elif t.family == "noscope":
        name = t.short_name
        work = target.parent / f".{target.name}-work"
        video, labels, frames_dir = work / f"{name}.mp4", work / f"{name}.csv", work / "frames"
        _run_tool([sys.executable, _tool("make_noscope_video.py"), name, str(video), str(labels),
                   "--frames", str(frames), "--seed", str(seed)])
        _run_tool([sys.executable, _tool("noscope_video_save.py"), str(video), str(frames_dir)])
        _run_tool([sys.executable, _tool("noscope_split.py"), name, str(target), "--infile", str(labels),
                   "--indir", str(frames_dir), "--print_stats"])
    else:
        raise TrainError(f"{task}: no synthetic data exists for this task; see data/README.md")


def _tool(name: str) -> str:
    """A data tool of ``util/`` by its full path: tools and child runs start in the caller's folder,
    where the user's relative paths (savedir, ``--data-root``) mean what they meant to train.py."""
    return str(REPO_ROOT / "util" / name)


def _run_tool(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode:
        raise TrainError(f"data tool failed (exit {proc.returncode}): {' '.join(cmd)}")


def has_data(task: str, data_root: str | None) -> bool:
    t = get_task(task)
    if t.data.source != "image_folder":
        return True  # archive-based sets (CIFAR) report what is missing themselves
    root = get_task(task).data_dir(data_root)
    return all((root / s).is_dir() for s in ("train", "val", "test"))


def ensure_data(task: str, args: argparse.Namespace) -> None:
    """Missing game/NoScope data: generate it with --synthetic, offer it on a terminal, else explain."""
    if has_data(task, args.data_root):
        return
    fam = get_task(task).family
    if fam not in ("game", "noscope"):
        return
    ok = args.synthetic
    if not ok and sys.stdin.isatty():
        reply = input(f"No data for {task} under {get_task(task).data_dir(args.data_root)}. "
                      "Generate the synthetic set now? [y/N] ")
        ok = reply.strip().lower() in ("y", "yes")
    if not ok:
        places = " or ".join(map(str, get_task(task).data_candidates(args.data_root)))
        raise TrainError(f"no data for {task} (looked in {places}): pass --synthetic to generate the "
                         "offline synthetic set, or see data/README.md for the real data")
    make_synthetic(task, args.data_root, args.synthetic_scale, args.noscope_frames, args.seed)


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Test top-1 at the best-validation epoch: folded (and EfficientNet) vs original, per task."""
    by_task: dict[str, dict[str, dict]] = {}
    for r in rows:
        col = "EfficientNet" if r.get("scaling") == "efficientnet" else f"f={int(r['fold'])}"
        by_task.setdefault(r["task"] + band_label(r.get("band_limit")), {})[col] = r
    cols = sorted({c for t in by_task.values() for c in t}, key=lambda c: (c == "EfficientNet", c))
    head = f"{'task':32s}" + "".join(f"{c:>16s}" for c in cols)
    lines = [head, "-" * len(head)]
    for task, runs in by_task.items():
        base = runs.get("f=1", {}).get("test_top1")
        cells = []
        for f in cols:
            r = runs.get(f)
            if r is None:
                cells.append(f"{'-':>16s}")
            elif f == "f=1" or base is None:
                cells.append(f"{r['test_top1']:>15.2f}%")
            else:
                cells.append(f"{r['test_top1']:>7.2f}% ({r['test_top1'] - base:+.1f})")
        lines.append(f"{task:32s}" + "".join(cells))
    return "\n".join(lines)


def train_in_process(runs: list[Run], args: argparse.Namespace, savedir: Path, device: str) -> list[str]:
    """--jobs 1: the runs one after another in this process; returns the failures."""
    failures: list[str] = []
    for task, fold, band in runs:
        try:
            ensure_data(task, args)
            train_one(run_config(args, savedir, task, fold, device, band))
        except USER_ERRORS as exc:
            failures.append(f"{run_label(task, fold, band)}: {exc}")
            print(f"error: {run_label(task, fold, band)}: {exc}", file=sys.stderr, flush=True)
        write_results(savedir)
    return failures


def child_env(jobs: int) -> dict[str, str]:
    """A child run's environment: unbuffered output, and (unless OMP_NUM_THREADS is set) its share
    of the CPU cores for PyTorch's CPU threads, so N runs do not start N x cores spinning threads."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": threads}


def train_parallel(runs: list[Run], args: argparse.Namespace, savedir: Path,
                   devices: list[str]) -> list[str]:
    """--jobs N: every unfinished run as its own ``fold_trainer.py`` process, N at a time;
    returns the failures. Data is made here first, so no two processes generate the same set."""
    failures: list[str] = []
    no_data: dict[str, str] = {}
    for task in dict.fromkeys(t for t, _, _ in runs):
        try:
            ensure_data(task, args)
        except USER_ERRORS as exc:
            no_data[task] = str(exc)
    jobs = []
    for task, fold, band in runs:
        if task in no_data:
            failures.append(f"{run_label(task, fold, band)}: {no_data[task]}")
            print(f"error: {run_label(task, fold, band)}: {no_data[task]}", file=sys.stderr, flush=True)
        elif finished_result(run_config(args, savedir, task, fold, devices[0], band)) is None:
            teacher = (task, 1, None) if distils_from_this_savedir(savedir, task, fold) else None
            jobs.append(Job((task, fold, band), teacher))

    def launch(job: Job, device: str) -> subprocess.Popen:
        task, fold, band = job.key
        cfg = run_config(args, savedir, task, fold, device, band)
        cfg.progress = False  # no bars in a log file; the per-epoch lines stay
        log = run_dir(savedir, task, fold, args.efficientnet, band) / LOG
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"[start] {run_label(task, fold, band)} on {device} (log: {log})", flush=True)
        with open(log, "a") as fh:  # append: a resumed run keeps its earlier log
            return subprocess.Popen([sys.executable, str(REPO_ROOT / "fold_trainer.py"), *config_argv(cfg)],
                                    stdout=fh, stderr=subprocess.STDOUT,
                                    env=child_env(args.jobs))

    def ended(out: Outcome) -> None:
        task, fold, band = out.key
        result = finished_result(run_config(args, savedir, task, fold, out.device or devices[0], band))
        name = run_label(task, fold, band)
        if out.ok and result is not None:
            print(f"[done] {name}: test top-1 {result['test_top1']:.2f}% in {out.seconds:.0f} s", flush=True)
        else:
            why = ("teacher run failed" if out.blocked else out.error
                   or last_log_line(run_dir(savedir, task, fold, args.efficientnet, band)))
            failures.append(f"{name}: {why}")
            print(f"[fail] {name}: {why}", flush=True)
        write_results(savedir)

    run_pool(jobs, launch, devices, args.jobs, on_end=ended)
    return failures


def band_value(text: str) -> float | None:
    """A --band-limit value: 'none' (ordinary convs) or a percentage."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage or 'none'") from None


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("savedir", help="output folder; re-running with the same folder resumes")
    p.add_argument("--tasks", nargs="+", default=None, help="task names (default: every task in config/)")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 2, 3, 4], help="fold factors (default 1 2 3 4)")
    p.add_argument("--synthetic", action="store_true",
                   help="generate missing game-scraping / NoScope data with the offline synthetic tools")
    p.add_argument("--synthetic-scale", type=float, default=1.0,
                   help="image-count scale of generated game data (1.0 = the paper's counts)")
    p.add_argument("--noscope-frames", type=int, default=20000, help="frames of a generated NoScope video")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {', '.join(QUICK['tasks'])}, folds {QUICK['folds']}, {QUICK['epochs']} epochs, "
                        "small synthetic data under SAVEDIR/data")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at once, each in its own process logging to <run folder>/train.log "
                        "(default 1: one after another in this process); e.g. --jobs 4 --devices cuda:0 cuda:1 "
                        "trains two runs on each GPU. On one GPU, only useful under NVIDIA MPS (see above)")
    p.add_argument("--band-limit", nargs="+", type=band_value, default=[None], metavar="CR",
                   help="band-limited CNNs discarding CR%% of each conv's spectrum, one run per value "
                        "and task x fold; 'none' = ordinary convs (default: none)")
    p.add_argument("--devices", nargs="+", default=None, metavar="D",
                   help="devices of the --jobs slots, assigned round-robin (default: the --device value)")
    p.add_argument("--checkpoint_cycle", type=int, default=1, metavar="N",
                   help="accepted from the released command line, where it was stored and never read: "
                        "current.pth is written after every epoch, whatever N is (default 1)")
    add_config_arguments(p, per_run=False)
    return p


def main(args: argparse.Namespace) -> int:
    savedir = Path(args.savedir)
    if args.quick:
        args.tasks = args.tasks or QUICK["tasks"]
        args.folds = QUICK["folds"] if args.folds == [1, 2, 3, 4] else args.folds
        args.epochs = args.epochs or QUICK["epochs"]
        args.synthetic = True
        args.synthetic_scale = QUICK["game_scale"] if args.synthetic_scale == 1.0 else args.synthetic_scale
        args.noscope_frames = QUICK["noscope_frames"] if args.noscope_frames == 20000 else args.noscope_frames
        args.data_root = args.data_root or str(savedir / "data")
    tasks = args.tasks or task_names()
    for t in tasks:
        get_task(t)  # unknown names: one line listing the valid ones
    for f in args.folds:
        check_fold(f)
    check_overrides(args.epochs, args.batch_size, args.lr)
    if args.jobs < 1:
        raise TrainError(f"--jobs must be >= 1 (got {args.jobs})")
    if args.checkpoint_cycle < 1:
        raise TrainError(f"--checkpoint_cycle must be >= 1 (got {args.checkpoint_cycle})")
    for band in args.band_limit:
        if band is not None:
            check_band_limit(band, args.band_algorithm)
    devices = args.devices or [args.device]
    if args.jobs == 1 and len(devices) > 1:
        raise TrainError("--devices with several devices needs --jobs 2 or more")
    if args.efficientnet:  # the baselines are never folded: one fold-1 run per game task
        if args.tasks:
            for t in tasks:
                if not get_task(t).efficientnet_baseline:
                    raise TrainError(f"{t} has no EfficientNet-style baseline (game tasks only)")
        runs = [(t, 1, b) for t in tasks if get_task(t).efficientnet_baseline
                for b in dict.fromkeys(args.band_limit)]
    else:
        runs = plan_runs(tasks, args.folds, savedir, args.band_limit)
    print(f"{len(runs)} runs: " + ", ".join(run_label(*r) for r in runs), flush=True)
    if args.jobs == 1:
        failures = train_in_process(runs, args, savedir, devices[0])
    else:
        failures = train_parallel(runs, args, savedir, devices)
    rows = write_results(savedir)
    if rows:
        print("\nTest top-1 at the best validation epoch (difference to f=1):")
        print(summary_table(rows))
        print(f"\nresults: {savedir / 'results.csv'}")
    if failures:
        print(f"\n{len(failures)} run(s) failed:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sigterm_as_ctrl_c()
    run_command(main, get_args_parser, errors=USER_ERRORS, returns_status=True,
                interrupted="\ninterrupted: completed epochs are saved; re-run the same command to resume")
