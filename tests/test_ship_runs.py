"""util/ship_runs.py: finished runs move into a reference folder once, with their results rows."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from util.training.errors import TrainError
from util.training.layout import (BEST, CONFIG, CURRENT, DONE, RESULT_FIELDS, RESULTS, STATS,
                                  run_dir, write_done)
from util.training.ship import result_key, ship_finished

ROOT = Path(__file__).resolve().parent.parent


def _row(task: str, fold: int, scaling: str = "fold", band: float | None = None, top1: float = 50.0) -> dict:
    return {"task": task, "fold": fold, "scaling": scaling, "best_val_top1": top1, "test_top1": top1,
            "test_top5": 90.0, "best_epoch": 3, "epochs": 5, "wall_seconds": 1.0, "device": "cpu",
            "order_agreement": None, "band_limit": band, "kept_fraction": None}


def _run(savedir: Path, row: dict, finished: bool = True) -> Path:
    run = run_dir(savedir, row["task"], row["fold"], row["scaling"] == "efficientnet", row["band_limit"])
    run.mkdir(parents=True)
    for name in (BEST, STATS, CONFIG, CURRENT):
        (run / name).write_text(f"{name} of {run.name}\n")
    if finished:
        write_done(run, row)
    return run


def _results(dest: Path) -> list[dict[str, str]]:
    with open(dest / RESULTS, newline="") as fh:
        return list(csv.DictReader(fh))


def test_ships_finished_runs_once_and_keeps_other_rows(tmp_path):
    src, dest = tmp_path / "runs", tmp_path / "ref"
    (dest / "cause").mkdir(parents=True)
    with open(dest / RESULTS, "w", newline="") as fh:  # a row of another savedir, not under src
        w = csv.DictWriter(fh, fieldnames=RESULT_FIELDS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerow(_row("noscope-coral", 1, top1=99.0))
    _run(src, _row("apex/squad_count_v2", 1))
    _run(src, _row("apex/squad_count_v2", 1, scaling="efficientnet"))
    _run(src, _row("noscope-coral", 4, band=50.0))
    _run(src, _row("apex/squad_count_v2", 2), finished=False)

    assert all(s.new for s in ship_finished(src, dest, dry_run=True))
    assert len(_results(dest)) == 1  # a dry run writes nothing
    shipped = ship_finished(src, dest)
    assert len(shipped) == 3 and all(s.new for s in shipped)
    rows = _results(dest)
    assert [result_key(r) for r in rows] == [("noscope-coral", "fold", 1, ""),
                                             ("apex/squad_count_v2", "efficientnet", 1, ""),
                                             ("apex/squad_count_v2", "fold", 1, ""),
                                             ("noscope-coral", "fold", 4, "50")]
    eff = dest / "apex/squad_count_v2/efficientnet"
    assert sorted(p.name for p in eff.iterdir()) == sorted([BEST, STATS, CONFIG, DONE])  # no current.pth
    assert (eff / BEST).read_text() == "best.pth of efficientnet\n"
    assert not (dest / "apex/squad_count_v2/fold2").exists()  # unfinished: not shipped
    again = ship_finished(src, dest)
    assert not any(s.new for s in again) and len(_results(dest)) == 4


def test_a_run_missing_its_checkpoint_is_an_error_that_ships_nothing(tmp_path):
    src, dest = tmp_path / "runs", tmp_path / "ref"
    run = _run(src, _row("sot/timer3", 3))
    (run / BEST).unlink()
    with pytest.raises(TrainError, match="best.pth"):
        ship_finished(src, dest)
    assert not (dest / RESULTS).exists() and not (dest / "sot/timer3/fold3" / DONE).exists()


def test_a_done_json_in_the_wrong_folder_is_refused(tmp_path):
    src = tmp_path / "runs"
    run = _run(src, _row("sot/timer3", 3))
    run.rename(src / "sot/timer3/fold2")
    with pytest.raises(TrainError, match="not of its own folder"):
        ship_finished(src, tmp_path / "ref")


def test_command_reports_a_missing_savedir_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "util/ship_runs.py"), str(tmp_path / "nope"),
                        str(tmp_path / "ref")], capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.strip().count("\n") == 0
    assert "is not a folder" in p.stderr
