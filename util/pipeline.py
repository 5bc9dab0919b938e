#!/usr/bin/env python3
"""The paper's pipeline end to end on the built-in default, then a report beside the paper.

Examples::

    python3 util/pipeline.py runs/default                  # CPU-sized default: a demo, batch 256 on a CPU
    python3 util/pipeline.py runs/gpu --epochs 60 --scale 1 --bench-iters 2000   # larger, on a GPU machine
    python3 util/pipeline.py runs/default                  # again: reuses every finished step

Steps (each skipped when its output exists, so a re-run resumes):

1. data + training: synthetic ``lol/goldnumber-fraction`` (game scraping) and a synthetic
   NoScope ``coral`` video split into frames, each trained at f = 1, 2, 4
   (``train.py SAVEDIR --synthetic ...``; data under ``SAVEDIR/data``); on a CPU at batch 256
   (``--batch-size``), on a GPU at the recipe's batch of 32;
2. the V1 checkpoints shipped in ``model_files/paper-h200/`` (trained to the paper's recipe on
   an H200) evaluated on the test split step 1 generated (``util/evaluate_runs.py``), so the
   report shows real accuracies beside the short demo's; a checkout without them says so;
3. inference benchmark of the same models (``run_inference.sh``; GPU when present, else CPU,
   labelled as such in the CSV and report);
4. FLOP table (``flop_count.sh``) and arithmetic intensity (``ai.py``);
5. ``SAVEDIR/report.md`` (``util/report.py``) with figures beside it.

Why batch 256 on a CPU: the default is a CPU demo of the whole pipeline, not the paper's recipe.
At the recipe's batch of 32 its 12 epochs x f = 1, 2, 4 on two tasks took about 30 minutes on
2 cores (47 s per game epoch at f = 1); batch 256 takes 8x fewer, larger steps per epoch (256 is
also the CPU inference batch below). ``--batch-size 32`` trains at the recipe's batch.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_path, atomic_write_text  # noqa: E402

TASKS = {"lol/goldnumber-fraction": "game_lol/goldnumber-fraction", "noscope-coral": "noscope_coral"}
SHIPPED = REPO / "model_files" / "paper-h200"  # runs trained to the recipe on an H200, shipped
SHIPPED_TASK = "lol/goldnumber-fraction"       # whose checkpoints are evaluated on this run's data
CPU_BATCH = 256  # training batch on a CPU (see the docstring); the recipe's is 32


def step_failed(name: str, code: int) -> SystemExit:
    return SystemExit(f"error: step '{name}' failed (exit {code}); fix it and re-run the same "
                      "command to continue")


def step(name: str, save: Path, cmd: list[str], env: dict[str, str] | None = None,
         stdout_to: Path | None = None) -> None:
    """Run ``cmd`` once: a marker ``SAVEDIR/.done-<name>`` records success, so an interrupted
    step runs again (the tools themselves resume) and a finished one is skipped.
    ``stdout_to`` captures stdout atomically."""
    marker = save / f".done-{name.replace(' ', '-')}"
    if marker.exists():
        print(f"== {name}: done already", flush=True)
        return
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    t0 = time.time()
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if stdout_to is None:
        code = subprocess.run(cmd, cwd=REPO, env=full_env).returncode
    else:
        with atomic_path(stdout_to) as tmp, open(tmp, "w") as fh:
            code = subprocess.run(cmd, cwd=REPO, env=full_env, stdout=fh).returncode
            if code:  # raised inside: a failed step's partial output is discarded, not renamed
                raise step_failed(name, code)
    if code:
        raise step_failed(name, code)
    atomic_write_text(marker, f"{time.time() - t0:.1f}\n")
    print(f"== {name}: {time.time() - t0:.0f} s", flush=True)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("savedir", nargs="?", default="runs/default", help="output folder (default runs/default)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs per run (default 12)")
    p.add_argument("--scale", type=float, default=0.1,
                   help="share of the paper's image counts to generate for the game task (default 0.1)")
    p.add_argument("--noscope-frames", type=int, default=6000, help="frames of the synthetic NoScope video")
    p.add_argument("--folds", nargs="+", type=int, default=[1, 2, 4], help="fold factors (default 1 2 4)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"training batch in images (default: {CPU_BATCH} when training on a CPU, a CPU "
                        "demo; on a GPU the recipe's batch, 32)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--bench-iters", type=int, default=None,
                   help="timed inference iterations (default: 30 on CPU, 1000 on a GPU)")
    p.add_argument("--bench-trials", type=int, default=3, help="inference trials (default 3)")
    return p


def main(args: argparse.Namespace) -> None:
    import torch

    save = Path(args.savedir)
    save.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    folds = [str(f) for f in args.folds]
    batch = args.batch_size or (None if cuda else CPU_BATCH)
    step("train", save,
         [py, "train.py", str(save), "--tasks", *TASKS, "--folds", *folds, "--epochs", str(args.epochs),
          "--synthetic", "--synthetic-scale", str(args.scale), "--noscope-frames", str(args.noscope_frames),
          "--data-root", str(save / "data"), "--device", args.device,
          *(["--batch-size", str(batch)] if batch else [])])
    step("shipped checkpoints", save,
         [py, "util/evaluate_runs.py", str(SHIPPED), "--tasks", SHIPPED_TASK, "--folds", *folds,
          "--data-root", str(save / "data"), "--csv", str(save / "shipped_eval.csv")])
    iters = args.bench_iters or (1000 if cuda else 30)
    bench_env = {"MODELS": " ".join(TASKS.values()), "FOLDS": " ".join(folds), "TRIALS": str(args.bench_trials),
                 "ITERS": str(iters), "WARMUP": str(max(5, iters // 10)), "DEVICE": "cuda" if cuda else "cpu"}
    if not cuda:
        bench_env.update({"BATCH": "256", "BACKEND": "eager", "PRECISION": "fp32"})
    step("inference benchmark", save,
         ["bash", "run_inference.sh", str(save / "inference.csv")], env=bench_env)
    step("FLOP table", save, ["bash", "flop_count.sh"], stdout_to=save / "model_map.json")
    step("arithmetic intensity", save, [py, "ai.py"], stdout_to=save / "ai.csv")
    report = save / "report.md"
    (save / ".done-report").unlink(missing_ok=True)  # cheap; always reflects everything above
    step("report", save, [py, "util/report.py", str(save), "--results", str(save / "inference.csv"),
                            "--checkpoint-eval", str(save / "shipped_eval.csv"), "--out", str(report)])
    print(f"\nreport: {report}")


if __name__ == "__main__":
    run_command(main, get_args_parser)
