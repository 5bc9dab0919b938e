"""util/compare_curves.py: runs' curves side by side at the same epochs."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from conftest import assert_one_line_error
from util.compare_curves import best_epoch, compare, load_curve, parse_run
from util.training.layout import STATS, STATS_FIELDS

ROOT = Path(__file__).resolve().parent.parent


def _stats(run: Path, rows: list[tuple[int, int, float, float, float]]) -> Path:
    """rows: (epoch, classes, train_top1, val_top1, test_top1)."""
    run.mkdir(parents=True)
    with open(run / STATS, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=STATS_FIELDS, lineterminator="\n", restval="0")
        w.writeheader()
        for e, c, tr, va, te in rows:
            w.writerow({"epoch": e, "classes": c, "train_top1": tr, "val_top1": va, "test_top1": te})
    return run


def test_rows_at_epochs_last_and_best(tmp_path):
    a = _stats(tmp_path / "a" / "fold4", [(0, 2, 10, 90, 11), (1, 4, 20, 30, 21), (2, 4, 30, 40, 31), (3, 4, 35, 39, 36)])
    b = _stats(tmp_path / "b" / "fold4", [(0, 2, 5, 5, 6), (1, 4, 6, 7, 8)])
    t = compare([("A", a), ("B", b)], [1, 3], ["test_top1"])
    assert list(t.index) == ["1", "3", "last", "best"]
    assert t.at["1", "A test_top1"] == "21.00" and t.at["1", "B test_top1"] == "8.00"
    assert t.at["3", "B test_top1"] == "-"  # B has not reached epoch 3
    assert t.at["last", "A test_top1"] == "36.00 (ep 3)"
    # epoch 0's val 90 does not count: only 2 of 4 classes were active
    assert t.at["best", "A test_top1"] == "31.00 (ep 2)"
    assert best_epoch(load_curve(a, ["test_top1"])) == 2


def test_labels(tmp_path):
    assert parse_run("x=runs/s/t/fold4") == ("x", Path("runs/s/t/fold4"))
    assert parse_run("runs/s/t/fold4")[0] == "t/fold4"


def test_cli_prints_table_and_writes_csv(tmp_path):
    a = _stats(tmp_path / "a" / "fold2", [(0, 3, 10, 20, 30), (1, 3, 11, 21, 31)])
    out = tmp_path / "c.csv"
    p = subprocess.run([sys.executable, "util/compare_curves.py", f"run={a}", "--epochs", "1", "--csv", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "run test_top1" in p.stdout and "31.00" in p.stdout
    assert "31.00" in out.read_text()


def test_cli_missing_stats_and_bad_metric_are_one_line(tmp_path):
    p = subprocess.run([sys.executable, "util/compare_curves.py", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert_one_line_error(p, "no stats.csv", "train.py")
    a = _stats(tmp_path / "a" / "fold1", [(0, 3, 10, 20, 30)])
    p = subprocess.run([sys.executable, "util/compare_curves.py", str(a), "--metrics", "nope"], cwd=ROOT,
                       capture_output=True, text=True)
    assert_one_line_error(p, "nope", "--metrics")
