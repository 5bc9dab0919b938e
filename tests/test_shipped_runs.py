"""The trained runs shipped under model_files/paper-h200/ are complete and agree with the registry."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from config.tasks import get_task
from util.training.layout import CONFIG, DONE, RESULT_FIELDS, STATS, run_dir

SHIPPED = Path(__file__).resolve().parent.parent / "model_files" / "paper-h200"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _band(row: dict[str, str]) -> float | None:
    return float(row["band_limit"]) if row.get("band_limit") else None


RESULTS = _rows(SHIPPED / "results.csv")


def test_results_have_the_layout_columns_and_every_noscope_fold():
    with open(SHIPPED / "results.csv", newline="") as fh:
        assert next(csv.reader(fh)) == RESULT_FIELDS
    plain = {(r["task"], int(r["fold"])) for r in RESULTS if _band(r) is None}
    want = {(f"noscope-{c}", f) for c in ("coral", "night", "roundabout", "taipei") for f in (1, 2, 3, 4)}
    assert want <= plain


@pytest.mark.parametrize("row", RESULTS, ids=lambda r: f"{r['task']}-f{r['fold']}-b{r['band_limit'] or 'none'}")
def test_every_shipped_run_finished_its_recipe(row):
    task, fold = get_task(row["task"]), int(row["fold"])
    run = run_dir(SHIPPED, task.name, fold, row["scaling"] == "efficientnet", _band(row))
    config = json.loads((run / CONFIG).read_text())
    done = json.loads((run / DONE).read_text())["result"]
    epochs = [int(r["epoch"]) for r in _rows(run / STATS)]
    recipe = task.recipe(fold)
    assert config["recipe"]["epochs"] == recipe.epochs == int(row["epochs"]) == done["epochs"]
    assert config["recipe"]["batch_size"] == recipe.batch_size and config["run"]["amp"] == "none"
    assert epochs == list(range(recipe.epochs))  # every epoch once, in order: nothing resumed twice
    assert abs(float(row["test_top1"]) - done["test_top1"]) < 1e-3
    assert 0 <= int(row["best_epoch"]) < recipe.epochs
