#!/usr/bin/env python3
"""Plots and a markdown summary of a ``run_inference.sh`` CSV.

For every setting in the CSV (backend asked, precision, channel alignment, input padding,
batch size) it writes, into OUTDIR:

* ``tputnorm_<setting>.png``: paper-style grouped bars of normalised throughput (TputNorm,
  median over trials) per model, one bar per fold / EfficientNet;
* ``flops_<setting>.png``: the same bars for achieved TFLOP/s;
* ``util_vs_ai_<setting>.png``: utilization of the measured GPU peak vs arithmetic
  intensity (``ai.model_ai``, batch and bytes per element of the run), when the CSV has
  utilization (GPU runs);
* ``summary.md``: per setting, the median speedups per model and fold, and for ``auto``
  runs the probe throughput of every backend on the original CNN (which one is fastest).

Rows with an ``Error`` are left out (and counted in the summary).

Examples::

    python3 util/plot_results.py results.csv plots/
    python3 util/plot_results.py quick.csv aligned.csv plots/     # several CSVs at once
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from config.tasks import BenchEntry, TaskError, find_bench_entry  # noqa: E402
from util.bench.results import BENCH, ResultsError  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_savefig, atomic_write_text  # noqa: E402

SETTING = ["BackendRequested", "Precision", "ChannelAlign", "PadInput", "Batch Size"]
UNKNOWN = "?"  # a setting the CSV does not record (the released script's 9 columns)


def bar_label(mode: str, fold: int) -> str:
    return {"Original": "Original", "EfficientNet": "EfficientNet"}.get(mode, f"f={fold}")


def load(paths: list[Path]) -> tuple[pd.DataFrame, int]:
    """All CSVs in one frame without error rows; also the number of error rows."""
    try:
        df = BENCH.read_frame(paths)
    except ResultsError as exc:
        raise TaskError(str(exc)) from None
    for col in ("BackendRequested", "Precision"):
        df[col] = df[col].replace("", UNKNOWN)
    errors = df["Error"] != ""
    df = df[~errors].copy()
    if df.empty:
        raise TaskError("no successful rows in the CSV(s): nothing to plot")
    for col in ("ChannelAlign", "PadInput", "Batch Size", "Fold", "Trial"):
        df[col] = df[col].astype(int)
    df["Label"] = [bar_label(m, int(f)) for m, f in zip(df["Mode"], df["Fold"])]
    return df, int(errors.sum())


def setting_slug(key: tuple) -> str:
    backend, precision, align, pad, batch = key
    return re.sub(r"[^A-Za-z0-9_.-]+", "-",
                  f"{backend}_{precision}_align{align}{'pad' if int(pad) else ''}_b{batch}")


def setting_title(df: pd.DataFrame, key: tuple) -> str:
    backend, precision, align, pad, batch = key
    used = sorted(set(df["Backend"]) - {""})
    gpu = ", ".join(sorted(set(df["GPU"]) - {""})) or UNKNOWN
    shown = backend if not used or used == [backend] else f"{backend} -> {'/'.join(used)}"
    return (f"{gpu} | backend {shown} | {precision} | batch {batch} | channel align {align}"
            f"{' + padded input' if int(pad) else ''}")


def medians(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """Model x bar label table of the median of ``value`` over trials."""
    order = [l for l in ("Original", "f=2", "f=3", "f=4", "EfficientNet") if l in set(df["Label"])]
    order += sorted(set(df["Label"]) - set(order))
    models = list(dict.fromkeys(df["Model"]))
    table = df.groupby(["Model", "Label"])[value].median().unstack("Label")
    return table.reindex(index=models, columns=order)


def grouped_bars(table: pd.DataFrame, ylabel: str, title: str, path: Path,
                 hline: float | None = None) -> None:
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(table) + 3), 5.5))
    n = len(table.columns)
    width = 0.8 / max(n, 1)
    xs = range(len(table))
    for i, col in enumerate(table.columns):
        ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], table[col].fillna(0), width, label=col)
    if hline is not None:
        ax.axhline(hline, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([m.replace("/", "/\n") for m in table.index], rotation=0, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    top = float(table.max().max()) if table.notna().any().any() else 1.0
    ax.set_ylim(0, 1.25 * top)  # headroom so the legend does not cover bars
    ax.legend(title="CNN", fontsize=8, ncol=min(n, 5), loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def entry_for(csv_name: str, mode: str) -> BenchEntry | None:
    try:
        return find_bench_entry(csv_name, mode)
    except TaskError:
        return None


def util_vs_ai(df: pd.DataFrame, key: tuple, title: str, path: Path) -> bool:
    """Scatter of median utilization vs AI; False when the rows have no utilization."""
    from ai import model_ai
    from util.bench.config import BYTES_PER_ELEMENT

    if df["Utilization"].isna().all():
        return False
    _, precision, align, _, batch = key
    size = BYTES_PER_ELEMENT.get(precision, BYTES_PER_ELEMENT["fp16"])  # unknown: the paper's fp16
    fig, ax = plt.subplots(figsize=(8, 5.5))
    med = df.groupby(["Model", "Mode", "Fold", "Label"], sort=False)["Utilization"].median()
    for label in dict.fromkeys(df["Label"]):
        pts = [(model_ai(e, int(fold), int(batch), size, int(align)), 100 * u)
               for (model, mode, fold, lab), u in med.items()
               if lab == label and (e := entry_for(model, mode)) is not None]
        if pts:
            ax.scatter(*zip(*pts), label=label, s=40)
    ax.set_xlabel(f"arithmetic intensity (FLOPs/byte, batch {batch}, {size} B/element)")
    ax.set_ylabel("utilization (% of measured peak dense FLOPs/sec)")
    ax.set_title(title, fontsize=10)
    ax.legend(title="CNN")
    ax.grid(alpha=0.3)
    _save(fig, path)
    return True


def summary_section(df: pd.DataFrame, key: tuple, title: str,
                    paper_df: pd.DataFrame | None = None) -> list[str]:
    """Speedups of one setting; with ``paper_df`` (the align-1 rows of the same backend,
    precision and batch) also throughput / that paper-width original."""
    lines = [f"## {title}", ""]
    speed = medians(df, "TputNorm")
    tput = medians(df, "Throughput")
    orig_backend = df[df["Mode"] == "Original"].groupby("Model")["Backend"].agg(
        lambda s: "/".join(sorted(set(s))) or UNKNOWN)
    cols = [c for c in speed.columns if c != "Original"]
    lines += ["| model | original img/s | original backend | " + " | ".join(cols) + " |",
              "|---|---|---|" + "---|" * len(cols)]
    for model in speed.index:
        o = tput.loc[model].get("Original")
        cells = [f"{speed.loc[model, c]:.2f}x" if pd.notna(speed.loc[model, c]) else "-" for c in cols]
        lines.append(f"| {model} | {o:,.0f} | {orig_backend.get(model, '?')} | " if pd.notna(o)
                     else f"| {model} | - | - | ")
        lines[-1] += " | ".join(cells) + " |"
    if paper_df is not None and not paper_df.empty:
        base = paper_df[paper_df["Mode"] == "Original"].groupby("Model")["Throughput"].median()
        lines += ["", "Throughput / the paper-width original (channel align 1, same backend):", "",
                  "| model | " + " | ".join(tput.columns) + " |", "|---|" + "---|" * len(tput.columns)]
        for model in tput.index:
            b = base.get(model)
            cells = [f"{tput.loc[model, c] / b:.2f}x" if b and pd.notna(tput.loc[model, c]) else "-"
                     for c in tput.columns]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    if (df["Probe"] != "").any():
        probes = df[(df["Mode"] == "Original") & (df["Probe"] != "")].drop_duplicates("Model")
        names = sorted({kv.split("=")[0] for p in probes["Probe"] for kv in str(p).split(";")})
        lines += ["", "Backend probe on the original CNN (images/sec; the fastest is used):", "",
                  "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for _, r in probes.iterrows():
            kv = dict(x.split("=", 1) for x in str(r["Probe"]).split(";"))
            lines.append(f"| {r['Model']} | " + " | ".join(kv.get(n, "-") for n in names) + " |")
    return lines + [""]


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="CSV... OUTDIR",
                   help="one or more run_inference.sh CSVs, then the output directory")
    return p


def main(args: argparse.Namespace) -> list[Path]:
    if len(args.inputs) < 2:
        raise TaskError("give CSV(s) and an output directory: plot_results.py results.csv OUTDIR")
    *csvs, outdir = args.inputs
    df, n_errors = load([Path(c) for c in csvs])
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    summary = ["# Inference benchmark summary", "",
               "Speedup = median TputNorm (throughput / the Original row of the same model, trial "
               "and setting).", f"Rows with errors left out: {n_errors}.", ""]
    for key, part in df.groupby(SETTING, sort=False):
        slug, title = setting_slug(key), setting_title(part, key)
        grouped_bars(medians(part, "TputNorm"), "throughput / original (median over trials)",
                     "Normalised throughput\n" + title, out / f"tputnorm_{slug}.png", hline=1.0)
        grouped_bars(medians(part, "FLOPs/sec") / 1e12, "achieved TFLOP/s (median over trials)",
                     "FLOPs/sec\n" + title, out / f"flops_{slug}.png")
        written += [out / f"tputnorm_{slug}.png", out / f"flops_{slug}.png"]
        if util_vs_ai(part, key, "Utilization vs arithmetic intensity\n" + title,
                      out / f"util_vs_ai_{slug}.png"):
            written.append(out / f"util_vs_ai_{slug}.png")
        backend, precision, align, pad, batch = key
        paper = None
        if align != 1 or pad:
            paper = df[(df["BackendRequested"] == backend) & (df["Precision"] == precision)
                       & (df["ChannelAlign"] == 1) & (df["PadInput"] == 0) & (df["Batch Size"] == batch)]
        summary += summary_section(part, key, title, paper)
    atomic_write_text(out / "summary.md", "\n".join(summary))
    written.append(out / "summary.md")
    print("\n".join(summary))
    print("wrote: " + ", ".join(str(p) for p in written), file=sys.stderr)
    return written


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError,))
