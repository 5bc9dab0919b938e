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
