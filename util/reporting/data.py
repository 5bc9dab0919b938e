"""Readers for what training and the inference benchmark write, for ``util/report.py``.

Formats:

* training (``util/training/layout.py`` owns the folders, file names and columns):
  ``SAVEDIR/results.csv`` (one row per run, accuracies in percent; columns added later, such as
  ``band_limit,kept_fraction``, may be absent in older files), and per run ``stats.csv`` and
  ``config.json`` (resolved config with versions, git, device, command);
* the benchmark CSV (its columns: ``util/bench/results.py``), several trials per
  configuration, summarised here by medians.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from config.tasks import FAMILIES, MODES, Task, TaskError, find_bench_entry, get_task, task_names
from util.bench.results import BENCH, ResultsError
from util.cli import exception_line
from util.training.layout import CONFIG, REQUIRED_RESULT_FIELDS, RESULTS, STATS, run_dir

STATS_COLUMNS = ["epoch", "val_top1"]  # the ones the report needs
INFER_CONFIG = ["Backend", "Precision", "ChannelAlign", "PadInput", "GPU", "BandLimit"]  # part of a config key


class ReportError(ValueError):
    """A bad or missing report input; the message is one line meant for the user."""


def _read_csv(path: Path, required: list[str], fix: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"device": str, "GPU": str, "Backend": str, "Precision": str})
    except pd.errors.EmptyDataError:
        raise ReportError(f"{path} is empty; {fix}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path} is not a readable CSV ({exception_line(exc)}); {fix}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(f"{path} lacks column(s) {missing} (has {list(df.columns)}); {fix}")
    return df


def task_order(name: str) -> tuple[int, str]:
    """Sort key: registry order (game, NoScope, CIFAR by paper id), unknown names last."""
    names = task_names()
    if name not in names:
        return (len(names), name)
    t = get_task(name)
    return (FAMILIES.index(t.family), t.paper_id.rjust(12))


def load_training(savedir: Path) -> pd.DataFrame:
    """``SAVEDIR/results.csv`` sorted by task (registry order) and fold."""
    path = Path(savedir) / RESULTS
    if not path.is_file():
        raise ReportError(f"{savedir} is not a training output folder (no {path}): "
                          f"run `python3 train.py {savedir}` first")
    df = _read_csv(path, REQUIRED_RESULT_FIELDS, "it must be the results.csv written by train.py")
    for col in ("fold", "best_epoch", "epochs"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if df["fold"].isna().any():
        raise ReportError(f"{path}: the 'fold' column holds non-numbers; it must be written by train.py")
    df["fold"] = df["fold"].astype(int)
    for col in ("band_limit", "kept_fraction"):  # band-limited runs; absent in older files
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else float("nan")
    df["scaling"] = df["scaling"].fillna("fold") if "scaling" in df.columns else "fold"
    df = df.assign(_key=df["task"].map(task_order)).sort_values(["_key", "fold"], kind="stable")
    return df.drop(columns="_key").reset_index(drop=True)


def band_or_none(value: Any) -> float | None:
    """A results row's band limit: None for ordinary convs (an empty cell)."""
    return None if value is None or pd.isna(value) else float(value)


def is_efficientnet(row: Any) -> bool:
    """Whether a results row (a namedtuple or Series) is an EfficientNet-style baseline run."""
    return getattr(row, "scaling", "fold") == "efficientnet"


def load_stats(savedir: Path, task: str, fold: int, band_limit: float | None = None,
               efficientnet: bool = False) -> pd.DataFrame | None:
    """Per-epoch stats of one run, or None when absent or without the needed columns."""
    path = run_dir(savedir, task, fold, efficientnet, band_limit) / STATS
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    if any(c not in df.columns for c in STATS_COLUMNS) or df.empty:
        return None
    return df


def load_run_config(savedir: Path, task: str, fold: int, band_limit: float | None = None,
                    efficientnet: bool = False) -> dict[str, Any] | None:
    path = run_dir(savedir, task, fold, efficientnet, band_limit) / CONFIG
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def known_task(name: str) -> Task | None:
    try:
        return get_task(name)
    except TaskError:
        return None


def bench_task(model: str, mode: str = "Original") -> str:
    """The task name of a benchmark CSV's Model (any of its names, ``find_bench_entry``), ''
    for a name no benchmark model has."""
    try:
        return find_bench_entry(model, mode).task.name
    except TaskError:
        return ""


def is_cpu(gpu: Any) -> bool:
    text = "" if gpu is None or (isinstance(gpu, float) and math.isnan(gpu)) else str(gpu).strip()
    return text == "" or text.lower() in ("cpu", "none", "nan")


def _key_text(value: Any) -> str:
    """A numeric config cell as the text key the summary groups by ('' when empty)."""
    return "" if value is None or pd.isna(value) else f"{value:g}"


def load_inference(path: Path) -> pd.DataFrame:
    """The benchmark CSV with normalised Mode, optional columns filled, a ``task`` column."""
    try:
        df = BENCH.read_frame(Path(path))
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    for col in ("ChannelAlign", "PadInput", "BandLimit"):
        df[col] = df[col].map(_key_text)
    for col in INFER_CONFIG:
        df[col] = df[col].astype(str).str.strip()
    modes = df["Mode"].astype(str).str.strip().str.lower()
    labels = {m.lower(): m for m in MODES}
    bad = sorted(set(modes) - set(labels))
    if bad:
        raise ReportError(f"{path}: unknown Mode value(s) {bad}; valid: {', '.join(MODES)}")
    df["Mode"] = modes.map(labels)
    if df["Throughput"].isna().any() or df["Fold"].isna().any():
        raise ReportError(f"{path}: non-numeric Throughput or Fold values; re-run the benchmark")
    df["Fold"] = df["Fold"].astype(int)
    df["GPU"] = df["GPU"].map(lambda g: "CPU" if is_cpu(g) else g)
    df["task"] = [bench_task(m, mode) for m, mode in zip(df["Model"], df["Mode"])]
    return df


def summarize_inference(df: pd.DataFrame) -> pd.DataFrame:
    """Medians over trials per configuration, and the speedup = median throughput over the
    median throughput of the Original row with the same model, batch and config.

    When no Original row has the same ChannelAlign (aligned folded models benchmarked against
    the plain original), the Original with the smallest ChannelAlign of that config is used.
    """
    keys = ["Model", "task", "Mode", "Fold", "Batch Size", *INFER_CONFIG]
    agg = (df.groupby(keys, dropna=False, sort=False)
             .agg(trials=("Trial", "nunique"), throughput=("Throughput", "median"),
                  flops=("FLOPs/sec", "median"), utilization=("Utilization", "median"),
                  bandwidth=("Bandwidth", "median"))
             .reset_index())
    agg["peak"] = agg["flops"] / agg["utilization"]  # the measured peak the run divided by
    ref_keys = ["Model", "Batch Size", "Backend", "Precision", "GPU", "BandLimit"]
    orig = agg[agg["Mode"] == "Original"]
    exact = {tuple(r[k] for k in ref_keys + ["ChannelAlign", "PadInput"]): r["throughput"]
             for _, r in orig.iterrows()}
    loose: dict[tuple, float] = {}
    for _, r in orig.sort_values("ChannelAlign", key=lambda s: pd.to_numeric(s, errors="coerce")
                                 .fillna(1)).iterrows():
        loose.setdefault(tuple(r[k] for k in ref_keys), r["throughput"])

    def speedup(r: pd.Series) -> float:
        ref = exact.get(tuple(r[k] for k in ref_keys + ["ChannelAlign", "PadInput"]),
                        loose.get(tuple(r[k] for k in ref_keys)))
        return float("nan") if ref is None or ref == 0 else r["throughput"] / ref

    agg["speedup"] = agg.apply(speedup, axis=1) if len(agg) else pd.Series(dtype=float)
    agg["_k"] = [(task_order(t) if t else (99, m), MODES.index(mo), f)
                 for t, m, mo, f in zip(agg["task"], agg["Model"], agg["Mode"], agg["Fold"])]
    agg = agg.sort_values(["GPU", "Backend", "Precision", "ChannelAlign", "Batch Size", "_k"],
                          kind="stable")
    return agg.drop(columns="_k").reset_index(drop=True)


def best_vs_best(summary: pd.DataFrame) -> pd.DataFrame:
    """Folded CNNs against the FASTEST original: per model, GPU, precision and batch, the
    Original row with the highest throughput over every backend and channel alignment in
    the CSV, and per fold the fastest Folded row on that backend (any alignment), with the
    ratio of the two. Folds with no row on that backend are left out.

    The per-configuration speedups of ``summarize_inference`` can flatter folding when the
    original runs on a weak backend; this one says whether folding beats a well-optimised original.
    ``bound`` is the same ratio at the layer roofline of the GPU's measured peak and bandwidth
    (``models.costs.roofline_seconds``; NaN when the CSV has no Bandwidth), i.e. what folding
    gives once both models' kernels run as fast as the hardware allows.
    """
    keys = ["Model", "task", "GPU", "Precision", "Batch Size"]
    cols = keys + ["Fold", "orig_throughput", "orig_config", "throughput", "config", "speedup",
                   "bound"]
    rows = []
    summary = summary[summary["BandLimit"] == ""]  # band-limited CNNs: util/reporting/bandlimit.py
    # one measured peak and bandwidth per GPU and precision, from any row that has them
    machine = summary.groupby(["GPU", "Precision"], dropna=False)[["peak", "bandwidth"]].median()
    for key, grp in summary.groupby(keys, sort=False, dropna=False):
        orig = grp[grp["Mode"] == "Original"]
        if orig.empty:
            continue
        best_orig = orig.loc[orig["throughput"].idxmax()]
        peak, bandwidth = machine.loc[(key[2], key[3])]
        # same backend as that original (any alignment): a fold measured only on a slower
        # backend says nothing about folding
        folded = grp[(grp["Mode"] == "Folded") & (grp["Backend"] == best_orig["Backend"])]
        orig_roofline = roofline_throughput(best_orig, peak, bandwidth) if len(folded) else None
        for fold, fgrp in folded.groupby("Fold", sort=True):
            best = fgrp.loc[fgrp["throughput"].idxmax()]
            bound = roofline_throughput(best, peak, bandwidth) / orig_roofline
            rows.append([*key, int(fold), best_orig["throughput"], config_label(best_orig),
                         best["throughput"], config_label(best),
                         best["throughput"] / best_orig["throughput"], bound])
    return pd.DataFrame(rows, columns=cols)


def roofline_throughput(row: pd.Series, peak: float, bandwidth: float) -> float:
    """Images/sec of a summary row's model (its fold, alignment, padding and batch) with every
    layer at the roofline (``util.bench.roofline``); NaN when the peak, bandwidth, precision
    or model is unknown."""
    from util.bench.config import BYTES_PER_ELEMENT
    from util.bench.roofline import layer_roofline

    size = BYTES_PER_ELEMENT.get(str(row.get("Precision", "")))
    if not row["task"] or size is None or not (peak > 0 and bandwidth > 0):
        return float("nan")
    entry = find_bench_entry(row["Model"], row["Mode"])
    variant = entry.variant(int(row["Fold"]), do_fold=row["Mode"] != "Widened")
    return layer_roofline(entry, variant, int(row["Batch Size"]), peak, bandwidth, size,
                          channel_align=int(str(row.get("ChannelAlign") or 1)),
                          pad_input=str(row.get("PadInput", "")) == "1").images_per_sec


def config_label(row: pd.Series) -> str:
    """'compile, align 8' for a summary row."""
    align = str(row.get("ChannelAlign", "") or "")
    backend = row.get("Backend", "") or "backend ?"
    pad = " +pad" if str(row.get("PadInput", "")) == "1" else ""
    return backend + (f", align {align}" if align and align != "1" else "") + pad
