"""model_files/paper-h200/game_table.sh, the script that trains the game rows on the GPU in pieces,
run on the CPU with tiny data: runs land in the caller's folder, the state is packed, and the next
piece in a fresh folder resumes from the packed state rather than from zero."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

SCRIPT = REPO / "model_files" / "paper-h200" / "game_table.sh"
V3 = "sot/coin_count-digits_3_4-v2"


def piece(cwd: Path, out: Path, tmp: Path, budget: int, resume: Path | None = None,
          **extra: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "OUT": str(out), "DATA_ROOT": str(tmp / "gd"), "WORK": str(tmp / f"w-{cwd.name}"),
           "DEVICE": "cpu", "AMP": "none", "SCALE": "0.005", "BUDGET": str(budget),
           "TASKS": V3, "FOLDS": "2", "EFF": "", "B32_TASKS": "", "LR_TASKS": V3, "LRS": "8e-4", "LR_FOLDS": "2",
           "B64_TASKS": V3, "B64_FOLDS": "2", "BANDS": "50", "BAND_TASKS": V3, "BAND_FOLDS": "1 2", **extra}
    if resume:
        env["RESUME_FROM"] = str(resume)
    return subprocess.run(["bash", str(SCRIPT)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def epochs(run: Path) -> int:
    with open(run / "stats.csv", newline="") as fh:
        return len(list(csv.DictReader(fh)))


def test_pieces_train_pack_and_resume(tmp_path):
    first = piece(tmp_path / "a", tmp_path / "out1", tmp_path, budget=35)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    runs = {"recipe": Path("runs/paper-h200") / V3 / "fold2", "lr": Path("runs/paper-h200-lr8e-4") / V3 / "fold2",
            "batch64": Path("runs/paper-h200-batch64") / V3 / "fold2",
            "band f=1": Path("runs/paper-h200") / V3 / "fold1-band50",
            "band f=2": Path("runs/paper-h200-batch32") / V3 / "fold2-band50"}
    done1 = {k: epochs(tmp_path / "a" / r) for k, r in runs.items()}
    assert all(n >= 1 for n in done1.values()), done1
    # each run at its batch: the folded band-limited run at the recipe's 32, as the folded runs
    batch = {k: json.loads((tmp_path / "a" / r / "config.json").read_text())["recipe"]["batch_size"]
             for k, r in runs.items()}
    assert batch == {"recipe": 256, "lr": 256, "batch64": 64, "band f=1": 256, "band f=2": 32}, batch
    assert "data ready at" in first.stdout and "total" in first.stdout
    assert not (REPO / "runs" / "paper-h200-lr8e-4").exists()  # nothing written into the repository
    parts = sorted((tmp_path / "out1").glob("game_runs.tgz.*"))
    assert parts, first.stdout[-2000:]

    # the next piece resumes them with the compiled step (COMPILE=1: fold_trainer.py --compile-step)
    second = piece(tmp_path / "b", tmp_path / "out2", tmp_path, budget=30, resume=tmp_path / "out1", COMPILE="1")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"runs resumed from {tmp_path / 'out1'}" in second.stdout
    done2 = {k: epochs(tmp_path / "b" / r) for k, r in runs.items()}
    assert all(done2[k] > done1[k] for k in runs), (done1, done2)
    compiled = {d: {json.loads((tmp_path / d / r / "config.json").read_text())["run"]["compile_step"]
                    for r in runs.values()} for d in "ab"}
    assert compiled == {"a": {False}, "b": {True}}, compiled
    assert sorted((tmp_path / "out2").glob("game_runs.tgz.*"))

    # a finished run keeps only done.json, stats.csv and config.json in the packed state once the
    # repository ships its best.pth (SHIPPED); one not shipped yet keeps its best.pth to be shipped
    third = tmp_path / "c"
    third.mkdir()
    subprocess.run(f"cat {tmp_path / 'out2'}/game_runs.tgz.* | tar xzf -", shell=True, cwd=third, check=True)
    shipped_root = tmp_path / "shipped"
    for rel, ship in (("runs/paper-h200/sot/timer3/fold1", "sot/timer3/fold1"),
                      ("runs/paper-h200-batch32/sot/timer3/fold4", "batch32/sot/timer3/fold4"),
                      ("runs/paper-h200/apex/squad_count_v2/fold1", None)):
        for folder in [third / rel] + ([shipped_root / ship] if ship else []):
            folder.mkdir(parents=True)
            for name in ("done.json", "best.pth", "stats.csv", "config.json"):
                (folder / name).write_text("{}")
    third_run = subprocess.run(["bash", str(SCRIPT)], cwd=third, capture_output=True, text=True, timeout=300, env={
        **os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OUT": str(tmp_path / "out3"),
        "DATA_ROOT": str(tmp_path / "gd"), "WORK": str(tmp_path / "w-c"), "DEVICE": "cpu", "AMP": "none",
        "SCALE": "0.005", "BUDGET": "5", "TASKS": "", "EFF": "", "B32_TASKS": "", "SHIPPED": str(shipped_root)})
    assert third_run.returncode == 0, third_run.stdout[-3000:] + third_run.stderr[-3000:]
    listing = subprocess.run(f"cat {tmp_path / 'out3'}/game_runs.tgz.* | tar tzf -", shell=True,
                             capture_output=True, text=True, check=True).stdout.split()
    assert "runs/paper-h200/sot/timer3/fold1/done.json" in listing
    assert "runs/paper-h200/sot/timer3/fold1/best.pth" not in listing
    assert "runs/paper-h200-batch32/sot/timer3/fold4/best.pth" not in listing
    assert "runs/paper-h200/apex/squad_count_v2/fold1/best.pth" in listing  # not shipped yet
    assert f"runs/paper-h200/{V3}/fold2/current.pth" in listing  # unfinished: all of it
