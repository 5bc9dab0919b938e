"""Where a training run's files live and what their rows hold; train.py, fold_trainer.py, the
report reader and tests ask this module instead of spelling paths and columns themselves.

``SAVEDIR/<task>/fold<f>/`` (``SAVEDIR/<task>/efficientnet/`` for the EfficientNet-style
baseline; ``-band<CR>`` appended for a band-limited CNN) holds:

* ``current.pth``: the resumable checkpoint, written after every epoch;
* ``best.pth``: the model at the best validation epoch once every class is active;
* ``stats.csv`` (``STATS_FIELDS``) and one ``<metric>.txt`` per metric, one line per epoch;
* ``config.json``: resolved settings, recipe, git commit, library versions, device;
* ``done.json``: ``{"result": <results row>}``, once the run has trained all its epochs;
* ``train.log``: the run's output when ``train.py --jobs`` (or ``util/train_throughput.py``) started
  it in its own process; ``last_log_line`` says why such a run failed.

``SAVEDIR/results.csv`` has one row (``RESULT_FIELDS``) per finished run, rebuilt from every
``done.json``, so it never holds duplicates. Every file is written atomically.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from util.records.atomic import atomic_write_json, atomic_write_text

CURRENT, BEST, STATS, CONFIG = "current.pth", "best.pth", "stats.csv", "config.json"
DONE, LOG, RESULTS = "done.json", "train.log", "results.csv"

STATS_FIELDS = ["epoch", "classes", "train_loss", "train_top1", "train_top5", "val_loss", "val_top1",
                "val_top5", "test_loss", "test_top1", "test_top5", "seconds", "train_seconds"]
METRIC_FIELDS = STATS_FIELDS[2:-2]  # each also in <metric>.txt, as the released trainer wrote them

RESULT_FIELDS = ["task", "fold", "scaling", "best_val_top1", "test_top1", "test_top5", "best_epoch", "epochs",
                 "wall_seconds", "device", "order_agreement", "band_limit", "kept_fraction"]
# columns added after the first results.csv files were written: a reader must not require them
LATER_RESULT_FIELDS = ("scaling", "order_agreement", "band_limit", "kept_fraction")
REQUIRED_RESULT_FIELDS = [f for f in RESULT_FIELDS if f not in LATER_RESULT_FIELDS]


def band_tag(band_limit: float) -> str:
    """A band limit in folder and run names: 50 -> 'band50', 77.8 -> 'band77.8'."""
    return f"band{band_limit:g}"


def band_label(band_limit: float | None) -> str:
    """' band50' in log tags and summaries; empty for ordinary convs."""
    return "" if band_limit is None else f" {band_tag(band_limit)}"


def run_label(task: str, fold: int, band_limit: float | None = None) -> str:
    """How logs and summaries name a run: ``noscope-coral f=2 band50``."""
    return f"{task} f={fold}{band_label(band_limit)}"


def run_dir(savedir: Path | str, task: str, fold: int, efficientnet: bool = False,
            band_limit: float | None = None) -> Path:
    """A run's folder: ``SAVEDIR/<task>/fold<f>``, or ``SAVEDIR/<task>/efficientnet``, with
    ``-band<CR>`` appended for a band-limited CNN."""
    name = "efficientnet" if efficientnet else f"fold{fold}"
    return Path(savedir) / task / (name + ("" if band_limit is None else f"-{band_tag(band_limit)}"))


def epoch_row(history: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    """The stats row of ``epoch`` ({} if absent): by its number, since a run continued from the
    released trainer's checkpoint keeps no rows of the epochs trained before it."""
    return next((row for row in history if int(row["epoch"]) == epoch), {})


def write_stats(run: Path, history: list[dict[str, Any]]) -> None:
    """``stats.csv`` and the per-metric ``<metric>.txt`` files of a run's epochs so far."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=STATS_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(run / STATS, buf.getvalue())
    for key in METRIC_FIELDS:
        atomic_write_text(run / f"{key}.txt", "".join(f"{r[key]:.4f}\n" for r in history))


def last_log_line(run: Path | str) -> str:
    """The last non-blank line of a run's ``train.log``: why a child run failed."""
    log = Path(run) / LOG
    lines = [l.strip() for l in log.read_text(errors="replace").splitlines() if l.strip()] if log.exists() else []
    return lines[-1] if lines else f"no output in {log}"


def read_done(run: Path | str) -> dict[str, Any] | None:
    """The results row in a run's ``done.json``, or None when the run has not finished."""
    done = Path(run) / DONE
    return json.loads(done.read_text())["result"] if done.exists() else None


def write_done(run: Path, result: dict[str, Any]) -> None:
    atomic_write_json(run / DONE, {"result": result})


def collect_results(savedir: Path) -> list[dict[str, Any]]:
    """Every finished run's results row under ``savedir``, by task, scaling, fold, band limit."""
    rows = [json.loads(done.read_text())["result"] for done in sorted(Path(savedir).rglob(DONE))]
    for r in rows:
        r.setdefault("scaling", "fold")  # rows written before EfficientNet runs existed
    rows.sort(key=lambda r: (r["task"], r["scaling"] != "fold", r["fold"],
                             -1 if r.get("band_limit") is None else r["band_limit"]))
    return rows


def write_results(savedir: Path) -> list[dict[str, Any]]:
    """Rewrite ``SAVEDIR/results.csv`` from the finished runs; returns its rows."""
    rows = collect_results(savedir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(Path(savedir) / RESULTS, buf.getvalue())
    return rows
