"""Inference and arithmetic-intensity sections of ``util/report.py``.

Inference numbers are medians over trials of one configuration (model, mode, fold, batch,
backend, precision, channel alignment, GPU); a speedup is the ratio of two medians
(``util/report_data.summarize_inference``). Arithmetic intensity comes from ``ai.py``
(paper section 2: FLOPs / bytes of conv and linear layers, batch 1024 images, FP16).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from util.reporting.markdown import DASH, fmt, md_table
from util.reporting.paper import paper_fact, paper_inference_setting, paper_speedup
from util.reporting.data import best_vs_best, known_task, task_order

HOW_TO_RUN = ("Produce it on a GPU machine with `./run_inference.sh results.csv` (medians over "
              "its trials are used), then run `python3 util/report.py SAVEDIR --results "
              "results.csv`.")


def _range(values: list[float]) -> str:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return DASH
    return f"{min(vals):.2f}–{max(vals):.2f}"


def _paper_speedup(task_name: str, mode: str, fold: int) -> str:
    task = known_task(task_name) if task_name else None
    if task is None:
        return DASH
    if mode == "EfficientNet":
        eff = paper_fact("efficientnet_baseline")
        return (f"{_range(eff['speedup_range'])} ({eff['table']}, range)"
                if task.paper_id in eff["paper_ids"] else DASH)
    return fmt(paper_speedup(task.name, 1 if mode == "Original" else fold))


def _label(row: pd.Series) -> str:
    task = known_task(row["task"]) if row["task"] else None
    return task.paper_id if task else str(row["Model"])


def inference_section(summary: pd.DataFrame | None, results: Path | None, fig_dir: Path,
                      rel: str) -> str:
    setting = paper_inference_setting()
    out = ["## 3. Inference throughput", "",
           f"Images per second (median over trials), speedup over the original of the same "
           f"configuration (ratio of medians), achieved FLOP/s and utilization as reported by the "
           f"benchmark. The paper measured on {setting['gpu']} with {setting['backend']} "
           f"{setting['precision']}, batch {setting['batch_size_images']}.", ""]
    if summary is None:
        missing = f"`{results}` does not exist. " if results is not None else "No inference CSV was given. "
        return "\n".join(out + [missing + HOW_TO_RUN])
    if summary.empty:
        return "\n".join(out + [f"`{results}` has no rows. " + HOW_TO_RUN])
    from util.reporting.figures import plot_speedups

    group_keys = ["GPU", "Backend", "Precision", "ChannelAlign", "PadInput", "Batch Size"]
    has_flops = summary["flops"].notna().any()
    has_util = summary["utilization"].notna().any()
    for n, (key, grp) in enumerate(summary.groupby(group_keys, sort=False, dropna=False)):
        gpu, backend, precision, align, pad, batch = key
        title = (f"{gpu} · {backend or 'backend ?'} · {precision or 'precision ?'} · "
                 f"batch {int(batch)}" + (f" · channel align {align}" if align else "")
                 + (" · padded input" if pad == "1" else ""))
        out += [f"### {title}", ""]
        if gpu == "CPU":
            out += ["**Measured on CPU** (the GPU column is CPU or empty): these throughputs say "
                    "nothing about GPU speedups and are not comparable to the paper's.", ""]
        has_band = (grp["BandLimit"] != "").any()
        headers = ["model", "paper", "mode", "f", *(["band limit"] if has_band else []), "trials",
                   "images/s", "speedup", "paper speedup"]
        if has_flops:
            headers.append("TFLOP/s")
        if has_util:
            headers.append("utilization")
        rows = []
        for _, r in grp.iterrows():
            band = [f"{r['BandLimit']}%" if r["BandLimit"] else DASH] if has_band else []
            row = [f"`{r['Model']}`", _label(r) if r["task"] else DASH, r["Mode"], r["Fold"], *band,
                   r["trials"], f"{r['throughput']:,.0f}", fmt(r["speedup"]),
                   _paper_speedup(r["task"], r["Mode"], r["Fold"]) if not r["BandLimit"] else DASH]
            if has_flops:
                row.append(DASH if pd.isna(r["flops"]) else f"{r['flops'] / 1e12:.3g}")
            if has_util:
                row.append(DASH if pd.isna(r["utilization"]) else f"{r['utilization']:.3g}")
            rows.append(row)
        out += [md_table(headers, rows, align="lllr" + "r" * (len(headers) - 4)), ""]
        if has_band:
            out += ["Band-limited rows (`BAND_LIMIT`): speedup over the band-limited original at "
                    "the same band limit; against the ordinary original see section 5.", ""]
        folded = grp[(grp["Mode"] == "Folded") & grp["task"].astype(bool) & (grp["BandLimit"] == "")]
        if not folded.empty:
            labels = list(dict.fromkeys(_label(r) for _, r in
                                        folded.sort_values("task", key=lambda s: s.map(task_order))
                                        .iterrows()))
            folds = sorted(folded["Fold"].unique().tolist())
            ours = {(_label(r), r["Fold"]): r["speedup"] for _, r in folded.iterrows()}
            paper = {(_label(r), r["Fold"]): paper_speedup(r["task"], r["Fold"])
                     for _, r in folded.iterrows()}
            name = f"speedup_{n}.png"
            plot_speedups(f"FoldedCNN speedup over the original\nours: {title}\npaper: "
                          f"{setting['gpu']}, {setting['backend']} {setting['precision']}",
                          labels, folds, ours, paper, fig_dir / name)
            out += [f"![speedups on {title}]({rel}/{name})", ""]
            for f in folds:
                sel = folded[folded["Fold"] == f]
                out.append(f"* f = {f}: our speedups {_range(sel['speedup'].tolist())}, paper's "
                           f"{_range([paper_speedup(t, f) or float('nan') for t in sel['task']])} "
                           f"for the same models.")
            out.append("")
    out += best_original_section(summary)
    return "\n".join(out).rstrip()


def best_original_section(summary: pd.DataFrame) -> list[str]:
    """Each folded model's fastest configuration against the fastest original."""
    best = best_vs_best(summary)
    if best.empty:
        return []
    out = ["### Folded vs the fastest original", "",
           "Per model: the original at its fastest backend and channel alignment among all rows "
           "of the CSV above, and each fold at its fastest alignment on that backend (folds not "
           "measured on it are left out); speedup = ratio of the two medians (same GPU, "
           "precision and batch).", ""]
    has_bound = best["bound"].notna().any()
    if has_bound:
        out += ["**Roofline bound**: the same ratio if every layer of both models ran at the GPU's "
                "measured roofline (max of FLOPs / peak and bytes / bandwidth per conv or linear "
                "layer, activations and pools fused; `python3 ai.py --roofline`). A measured "
                "speedup above it means the original's kernels are further from the hardware's "
                "limit than the folded model's.", ""]
    rows = []
    for _, r in best.sort_values("task", key=lambda s: s.map(task_order), kind="stable").iterrows():
        rows.append([f"`{r['Model']}`", _label(r) if r["task"] else DASH, r["GPU"],
                     f"{r['orig_throughput']:,.0f}", r["orig_config"], r["Fold"],
                     f"{r['throughput']:,.0f}", r["config"], fmt(r["speedup"]),
                     *([fmt(r["bound"])] if has_bound else []),
                     _paper_speedup(r["task"], "Folded", r["Fold"])])
    out += [md_table(["model", "paper", "GPU", "fastest original images/s", "original config", "f",
                      "fastest folded images/s", "folded config", "speedup",
                      *(["roofline bound"] if has_bound else []), "paper speedup"],
                     rows, align="lllrlrrlrr" + ("r" if has_bound else "")), ""]
    for f in sorted(best["Fold"].unique().tolist()):
        sel = best[best["Fold"] == f]
        bound = (f"; roofline bound {_range(sel['bound'].tolist())}" if has_bound else "")
        out.append(f"* f = {f}: {_range(sel['speedup'].tolist())} over the fastest original "
                   f"({len(sel)} model{'s' if len(sel) != 1 else ''}){bound}.")
    return out + [""]


def ai_section() -> str:
    """AI of original and folded CNNs (ai.py, batch 1024 images, FP16) next to the paper's."""
    from ai import ai_rows
    from config.tasks import BENCH_GROUPS, get_bench_entry

    facts = paper_fact("arithmetic_intensity")
    lo, hi = facts["game_original_range"]
    peaks = ", ".join(f"{k} {v}" for k, v in facts["peak_flops_per_byte"].items())
    rows_fold, rows_eff = [], []
    ours_game = []
    for r in ai_rows(groups=BENCH_GROUPS, folds=(2, 3, 4),
                     batch_size=facts["batch_size_images"], bytes_per_elt=facts["bytes_per_elt"]):
        model = str(r["model"])
        group = get_bench_entry(model).group
        if group == "efficientnet":
            rows_eff.append([f"`{model}`", fmt(r["original_AI"], 1), fmt(r["tformed_AI_2"], 1)])
            continue
        game = group == "game"
        if game:
            ours_game.append(float(r["original_AI"]))
        rows_fold.append([f"`{model}`", fmt(r["original_AI"], 1),
                          *(fmt(r[f"tformed_AI_{f}"], 1) for f in (2, 3, 4)),
                          fmt(float(r["tformed_AI_4"]) / float(r["original_AI"]), 2),
                          f"{lo}–{hi}" if game else DASH])
    out = ["## 4. Arithmetic intensity", "",
           f"FLOPs / bytes of the conv and linear layers (paper section 2) at a batch of "
           f"{facts['batch_size_images']} images and {facts['bytes_per_elt']} bytes per element "
           f"(`python3 ai.py`). The paper gives {lo}–{hi} for the original game-scraping CNNs "
           f"(ours: {_range(ours_game)}), and peak FLOPs/byte ratios of {peaks}. Per layer, folding "
           "raises AI by up to sqrt(f) (2 at f = 4); a whole CNN can gain a little more, as its "
           "first and last layers also grow.", "",
           md_table(["model", "original", "f = 2", "f = 3", "f = 4", "f = 4 / original",
                     "paper (original)"], rows_fold, align="lrrrrrr")]
    if rows_eff:
        out += ["", "EfficientNet-style compound-scaled baselines (not folded):", "",
                md_table(["model", "original", "compound-scaled"], rows_eff, align="lrr")]
    return "\n".join(out)
