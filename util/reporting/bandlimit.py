"""The report's section on band-limited CNNs (Dziedzic et al., ICML 2019) against folding.

Two tables, each next to the original and the FoldedCNNs of the same task:

* accuracy: test top-1 of every ``train.py`` run of a task that has band-limited runs (or a
  band-limited result in the paper, i.e. CIFAR), with the share of the spectrum kept, the
  change from the ordinary f = 1 model, and the band-limited paper's number at the nearest
  compress rate (within ``PAPER_RATE_SLACK`` points);
* speed and memory: the CSV of ``util/bandlimit_bench.py``, inference images/s and peak memory,
  training step time and peak memory, each band-limited and folded CNN also as a ratio to the
  original measured in the same CSV.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from util.bench.bandlimit_results import TABLE as BAND_TABLE
from util.bench.results import ResultsError
from util.reporting.markdown import DASH, fmt, fmt_signed, md_table
from util.reporting.paper import band_limited_source, paper_band_limited
from util.reporting.data import ReportError, band_or_none, known_task, task_order

PAPER_RATE_SLACK = 3.0  # a paper compress rate (24, 49, 77.8) stands beside ours (25, 50, 75)
HOW_TO_TRAIN = ("`python3 train.py SAVEDIR --tasks apex/squad_count_v2 noscope-coral --folds 1 4 "
                "--band-limit none 0 25 50 75 --synthetic`")
HOW_TO_BENCH = ("`python3 util/bandlimit_bench.py band.csv --tasks ...` on the GPU machine, then "
                "`python3 util/report.py SAVEDIR --band-results band.csv`")


def _paper_at(task: str, band: float | None, fold: int) -> str:
    """The band-limited paper's top-1 at the compress rate nearest ``band`` (f = 1 only)."""
    paper = paper_band_limited(task) if known_task(task) else None
    if paper is None or band is None or fold != 1:
        return DASH
    rate = min(paper["accuracy"], key=lambda r: abs(r - band))
    if abs(rate - band) > PAPER_RATE_SLACK:
        return DASH
    return f"{paper['accuracy'][rate]:.2f} ({rate:g}%, {paper['network']})"


def accuracy_table(train: pd.DataFrame) -> list[str]:
    banded = set(train.loc[train["band_limit"].notna(), "task"])
    shown = [t for t in dict.fromkeys(train["task"])
             if t in banded or (known_task(t) and paper_band_limited(t) is not None)]
    if not shown:
        return [f"No band-limited run in this folder; train some with {HOW_TO_TRAIN}."]
    rows = []
    for task in sorted(shown, key=task_order):
        runs = train[train["task"] == task].copy()
        runs["_band"] = runs["band_limit"].fillna(-1.0)
        base = runs[(runs["fold"] == 1) & runs["band_limit"].isna()]["test_top1"]
        base = float(base.iloc[0]) if len(base) else None
        t = known_task(task)
        for r in runs.sort_values(["fold", "_band"]).itertuples():
            band = band_or_none(r.band_limit)
            recipe = t.recipe(r.fold).epochs if t else None
            rows.append([f"`{task}`", t.paper_id if t else DASH, r.fold,
                         "direct" if band is None else f"band {band:g}%",
                         DASH if band is None else fmt(100 * r.kept_fraction, 1),
                         fmt(r.test_top1), fmt_signed(r.test_top1 - base if base is not None else None),
                         _paper_at(task, band, r.fold),
                         f"{DASH if pd.isna(r.epochs) else int(r.epochs)} / {recipe or DASH}"])
    out = [md_table(["task", "paper", "f", "convs", "kept %", "test top-1", "vs direct f = 1",
                     "band-limited paper", "epochs / recipe"], rows, align="llrlrrrlr")]
    notes = [paper_band_limited(t)["note"] for t in shown
             if known_task(t) and paper_band_limited(t) and paper_band_limited(t)["note"]]
    src = band_limited_source()
    out += ["", f"Band-limited paper: {src.get('citation', DASH)} Recipe there: "
            f"{src.get('recipe', DASH)}; ours is each task's recipe (`config/`)."]
    out += [f"* {n}." for n in notes]
    return out


def _key(r: Any) -> tuple:
    band = r["band_limit"]
    return (r["task"], r["fold"], None if band is None or pd.isna(band) else float(band),
            r["algorithm"] or "")


def speed_table(path: Path) -> list[str]:
    try:
        rows = BAND_TABLE.read_rows(path)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    if not rows:
        return [f"`{path}` has no rows; run {HOW_TO_BENCH}."]
    measured: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:  # the last row of a configuration wins (a CSV may hold repeated runs)
        measured.setdefault(_key(r), {})[r["phase"]] = r
    origin = {k[0]: v for k, v in measured.items() if k[1] == 1 and k[2] is None}
    table, gpus = [], set()
    def order(k: tuple) -> tuple:  # original, band-limited (by fold, rate, algorithm), folded
        rank = 1 if k[2] is not None else 0 if k[1] == 1 else 2
        return (task_order(k[0]), rank, k[1], k[2] or 0.0, k[3])

    for key in sorted(measured, key=order):
        task, fold, band, alg = key
        inf, tr = measured[key].get("inference", {}), measured[key].get("train", {})
        base = origin.get(task, {})
        gpus |= {r["gpu"] for r in measured[key].values()}

        def ratio(phase: dict, ref: dict, col: str) -> str:
            a, b = phase.get(col), ref.get(col)
            return DASH if a is None or not b else f"{a / b:.2f}x"

        errors = "; ".join(f"{ph}: {r['error']}" for ph, r in measured[key].items() if r.get("error"))
        kept = inf.get("kept_fraction") or tr.get("kept_fraction")
        table.append([
            f"`{task}`", fold, "direct" if band is None else f"band {band:g}% {alg}",
            DASH if kept is None else fmt(100 * kept, 1), inf.get("backend") or DASH,
            DASH if inf.get("images_per_sec") is None else f"{inf['images_per_sec']:,.0f}",
            ratio(inf, base.get("inference", {}), "images_per_sec"),
            fmt(inf.get("peak_mem_mb"), 0),
            fmt(tr.get("ms_per_batch"), 3), ratio(tr, base.get("train", {}), "ms_per_batch"),
            fmt(tr.get("peak_mem_mb"), 0),
            DASH if inf.get("flops_per_image") is None and tr.get("flops_per_image") is None else
            f"{(inf.get('flops_per_image') or tr['flops_per_image']) / 1e6:.1f} / "
            f"{(inf.get('direct_flops_per_image') or tr['direct_flops_per_image']) / 1e6:.1f}",
            errors or ""])
    batch = {(r["phase"], r["batch_images"]) for r in rows if r.get("batch_images")}
    batches = ", ".join(f"{ph} {b}" for ph, b in sorted(batch))
    out = [f"Measured on {', '.join(sorted(gpus))}; images per batch: {batches}. Inference ratio = "
           "images/s over the original's; training ratio = step time over the original's (below 1 "
           "is faster). Memory = the allocator's peak over the timed steps, MiB. FLOPs per image: "
           "what the network executes / the same network with direct convolutions (M).", "",
           md_table(["task", "f", "convs", "kept %", "inference backend", "images/s", "vs original",
                     "inference peak MiB", "train ms/step", "vs original", "train peak MiB",
                     "MFLOPs/image (run / direct)", "note"], table, align="lrlrlrrrrrrrl")]
    if any(g == "" or "CPU" in str(g) for g in gpus):
        out += ["", "**Some rows were measured on a CPU**: they show the code running, not GPU speed."]
    return out


def band_section(train: pd.DataFrame, band_csv: Path | None) -> str:
    """Section 5 of the report (module docstring)."""
    out = ["## 5. Band-limited CNNs against folding", "",
           "A band-limited CNN (`models/bandlimit.py`) runs each conv larger than 1x1 in the "
           "Fourier domain on a low-frequency band only, discarding the given share of the "
           "spectrum in the forward and backward pass; f > 1 rows combine it with folding.", "",
           "### Accuracy", ""]
    out += accuracy_table(train)
    out += ["", "### Speed and memory", ""]
    if band_csv is None:
        out.append(f"No benchmark CSV was given (`--band-results`); produce it with {HOW_TO_BENCH}.")
    elif not band_csv.is_file():
        out.append(f"`{band_csv}` does not exist; produce it with {HOW_TO_BENCH}.")
    else:
        out += speed_table(band_csv)
    return "\n".join(out)
