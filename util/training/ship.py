"""Moving finished runs from a training savedir into a shipped reference folder.

Why a module: a reference folder (``model_files/paper-h200/``) is filled piece by piece, as runs
of a long table finish, and it holds more than one savedir's runs (e.g. ``cause/``), so its
``results.csv`` cannot be rebuilt with ``layout.write_results``. Shipping a run copies the files
a reader needs (``SHIPPED_FILES``: never ``current.pth``, the optimizer state) and merges its
results row into the folder's ``results.csv``, keyed by ``result_key``, so shipping twice adds
nothing. Files are copied atomically; the CSV is rewritten atomically after the copies.
"""
from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from util.records.atomic import atomic_path, atomic_write_text
from util.training.errors import TrainError
from util.training.layout import (BEST, CONFIG, DONE, RESULT_FIELDS, RESULTS, STATS, read_done,
                                  run_dir)

SHIPPED_FILES = (BEST, STATS, CONFIG, DONE)  # DONE last: a run is shipped once it is there


def result_key(row: dict[str, Any]) -> tuple[str, str, int, str]:
    """What makes a results row one run: task, scaling, fold, band limit (as text, '' for none)."""
    band = row.get("band_limit")
    return (str(row["task"]), str(row.get("scaling") or "fold"), int(row["fold"]),
            "" if band in (None, "") else f"{float(band):g}")


@dataclass(frozen=True)
class Shipped:
    """One finished run found in the source savedir and whether it was new to the destination."""
    run: Path          # its folder under the source savedir
    dest: Path         # its folder under the destination
    new: bool


def _run_of(src: Path, done: Path, row: dict[str, Any]) -> Path:
    """The destination-relative run folder of ``row``, checked against where done.json lies."""
    band = row.get("band_limit")
    rel = run_dir("", row["task"], int(row["fold"]), row.get("scaling") == "efficientnet",
                  None if band in (None, "") else float(band))
    if done.parent != src / rel:
        raise TrainError(f"{done} holds the row of {rel}, not of its own folder: fix or remove it")
    return rel


def _read_results(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [f for f in ("task", "fold") if f not in (reader.fieldnames or [])]
        if missing:
            raise TrainError(f"{path} has no {', '.join(missing)} column: it must be a results.csv "
                             "written by train.py")
        return list(reader)


def ship_finished(src: Path | str, dest: Path | str, dry_run: bool = False) -> list[Shipped]:
    """Copy every finished run under ``src`` (its ``done.json``) that ``dest`` does not hold yet
    into the same relative folder of ``dest``, and add its row to ``dest/results.csv``."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise TrainError(f"{src} is not a folder: give the train.py savedir that holds the runs")
    results = _read_results(dest / RESULTS)
    known = {result_key(r) for r in results}
    out: list[Shipped] = []
    for done in sorted(src.rglob(DONE)):
        row = read_done(done.parent)
        rel = _run_of(src, done, row)
        target = dest / rel
        new = result_key(row) not in known or not (target / DONE).exists()
        out.append(Shipped(done.parent, target, new))
        if not new or dry_run:
            continue
        missing = [name for name in SHIPPED_FILES if not (done.parent / name).exists()]
        if missing:
            raise TrainError(f"{done.parent} has finished but has no {', '.join(missing)}: "
                             "copy it from the machine that trained it")
        target.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED_FILES:
            with atomic_path(target / name) as tmp:
                shutil.copyfile(done.parent / name, tmp)
        if result_key(row) not in known:
            results.append({k: ("" if row.get(k) is None else row.get(k)) for k in RESULT_FIELDS})
            known.add(result_key(row))
    if not dry_run and any(s.new for s in out):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(results)
        atomic_write_text(dest / RESULTS, buf.getvalue())
    return out
