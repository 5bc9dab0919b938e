#!/usr/bin/env python3
"""Write a Markdown report that puts one run of this repository next to the paper.

It reads what ``python3 train.py SAVEDIR`` wrote (``SAVEDIR/results.csv``, per-run
``stats.csv`` and ``config.json``) and, optionally, the CSV of ``./run_inference.sh``, and
compares them with the paper's tables (``config/paper_results.json``, Kosaian et al., ICML
2021). Sections: accuracy per task and fold; training curves (PNG); inference throughput,
speedup, FLOPs/sec and utilization (medians over trials); arithmetic intensity (``ai.py``);
band-limited CNNs against folding (accuracy of ``train.py --band-limit`` runs, and images/s,
step time and memory from the CSV of ``util/bandlimit_bench.py``); the commands and versions
that produced the numbers.

Examples::

    python3 util/report.py runs                               # -> runs/report.md
    python3 util/report.py runs --results results.csv         # with the inference benchmark
    python3 util/report.py runs --results results.csv --out report/report.md \\
        --command "./run_inference.sh results.csv"            # note how the CSV was made
    python3 util/report.py runs --band-results band.csv       # with util/bandlimit_bench.py's CSV

Figures go to a folder beside the report named after it (``runs/report_files/``); the
report and the folder are replaced atomically. Missing inputs degrade gracefully: without
``--results`` the inference section says how to produce the CSV; runs without
``stats.csv`` have no curve.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as ``python3 util/report.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from config.tasks import TaskError  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_dir, atomic_write_text  # noqa: E402
from util.records.provenance import git_hash  # noqa: E402
from util.reporting.markdown import DASH, fmt, fmt_signed, md_table  # noqa: E402
from util.reporting.paper import paper_accuracy, paper_citation, paper_fact, paper_inference_setting  # noqa: E402
from util.reporting.data import (ReportError, band_or_none, is_efficientnet, known_task,  # noqa: E402
                                 load_inference, load_run_config, load_stats, load_training,
                                 summarize_inference)
from util.reporting.inference import ai_section, inference_section  # noqa: E402
from util.reporting.bandlimit import band_section  # noqa: E402

SHORT_RUN = 0.5  # flag runs that trained fewer than this fraction of the recipe's epochs


def _hms(seconds: float) -> str:
    try:
        s = int(round(float(seconds)))
    except (TypeError, ValueError):
        return DASH
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _pid(task: str) -> str:
    t = known_task(task)
    return t.paper_id if t else DASH


def accuracy_section(train: pd.DataFrame) -> str:
    """Our test top-1 (at the best-validation epoch) next to the paper's, per task and fold."""
    ours_f1 = {r.task: r.test_top1 for r in train.itertuples() if r.fold == 1}
    rows, notes = [], []
    for r in train.itertuples():
        task = known_task(r.task)
        paper = paper_accuracy(r.task, r.fold) if task else None
        recipe = task.recipe(r.fold).epochs if task else None
        delta = r.test_top1 - paper if paper is not None else None
        drop_ours = r.test_top1 - ours_f1[r.task] if r.fold > 1 and r.task in ours_f1 else None
        p1 = paper_accuracy(r.task, 1) if task else None
        drop_paper = paper - p1 if r.fold > 1 and paper is not None and p1 is not None else None
        note = ""
        epochs = DASH if pd.isna(r.epochs) else int(r.epochs)
        if recipe and not pd.isna(r.epochs) and r.epochs < SHORT_RUN * recipe:
            note = f"short run: {int(r.epochs)} of {recipe} epochs"
        if task is None:
            note = "not a task of config/ (no paper number)"
        rows.append([f"`{r.task}`", _pid(r.task), r.fold, fmt(r.test_top1), fmt(paper),
                     fmt_signed(delta),
                     f"{fmt_signed(drop_ours)} / {fmt_signed(drop_paper)}" if r.fold > 1 else DASH,
                     fmt(r.best_val_top1), fmt(r.test_top5),
                     DASH if pd.isna(r.best_epoch) else int(r.best_epoch),
                     f"{epochs} / {recipe if recipe else DASH}", _hms(r.wall_seconds), note])
        if note.startswith("short"):
            notes.append(r)
    devices = ", ".join(sorted({str(d) for d in train["device"].fillna("?")}))
    out = ["## 1. Accuracy", "",
           "Test top-1 (%) of the checkpoint with the best validation top-1, ours next to the "
           "paper's table. *vs f = 1* is the change from the original CNN of the same task "
           f"(ours / paper). Trained on: {devices}.", "",
           md_table(["task", "paper", "f", "test top-1", "paper top-1", "Δ paper",
                     "vs f = 1 (ours / paper)", "best val top-1", "test top-5", "best epoch",
                     "epochs / recipe", "train time", "note"],
                    rows, align="llrrrrrrrrrrl")]
    if notes:
        out += ["", f"**{len(notes)} run(s) trained fewer than {SHORT_RUN:.0%} of the paper's "
                "recipe epochs** (`get_task(task).recipe(fold).epochs`); their accuracy is not "
                "expected to match the paper's."]
    if train.empty:
        out += ["", "results.csv has no run with ordinary convolutions yet: training has not "
                "finished one (band-limited runs are in section 5)."]
    return "\n".join(out)


def efficientnet_section(effnet: pd.DataFrame, ordinary: pd.DataFrame) -> str:
    """The EfficientNet-style baselines (compound scaling down, not folded) beside our f = 1 and
    f = 4 of the same task and the paper's Table 5 range."""
    fact = paper_fact("efficientnet_baseline")
    lo, hi = fact["accuracy_range"]
    ours = {(r.task, r.fold): r.test_top1 for r in ordinary.itertuples()}
    rows = []
    for r in effnet.itertuples():
        f1, f4 = ours.get((r.task, 1)), ours.get((r.task, 4))
        rows.append([f"`{r.task}`", _pid(r.task), fmt(r.test_top1), fmt(f1),
                     fmt_signed(r.test_top1 - f1 if f1 is not None else None), fmt(f4),
                     fmt(paper_accuracy(r.task, 1)), fmt(r.best_val_top1),
                     f"{DASH if pd.isna(r.epochs) else int(r.epochs)} / {known_task(r.task).recipe(1).epochs if known_task(r.task) else DASH}"])
    out = [f"### EfficientNet-style baselines ({fact['table']})", "",
           f"{fact['note']}. The paper's {fact['table']} gives their accuracy "
           f"as {lo}–{hi}% over {', '.join(fact['paper_ids'])} (per-model values were not transcribed). "
           "Test top-1 (%) at the best validation epoch.", ""]
    out.append(md_table(["task", "paper", "EfficientNet-style", "ours f = 1", "vs f = 1", "ours f = 4",
                         "paper f = 1", "best val top-1", "epochs / recipe"], rows, align="llrrrrrrr"))
    return "\n".join(out)


def checkpoint_eval_section(path: Path) -> str:
    """The best checkpoints of runs trained elsewhere (``util/evaluate_runs.py``), evaluated on
    this run's data: real accuracies beside a short demo's."""
    from util.training.run_eval import OK, read_eval_csv

    rows = read_eval_csv(path)
    here = {(r["task"], r["fold"]): r["test_top1"] for r in rows if r["status"] == OK}
    table, missing = [], []
    places = any(r.get("top1_by_place") for r in rows)  # evaluate_runs.py --by-position
    for r in rows:
        paper = paper_accuracy(r["task"], r["fold"]) if known_task(r["task"]) else None
        if r["status"] != OK:
            missing.append(f"`{r['task']}` f = {r['fold']}")
            continue
        base, p1 = here.get((r["task"], 1)), paper_accuracy(r["task"], 1) if known_task(r["task"]) else None
        drop = (f"{fmt_signed(r['test_top1'] - base)} / {fmt_signed(paper - p1 if paper is not None and p1 is not None else None)}"
                if r["fold"] > 1 and base is not None else DASH)
        recipe = known_task(r["task"]).recipe(r["fold"]).epochs if known_task(r["task"]) else DASH
        epochs = f"{DASH if r['trained_epochs'] is None else r['trained_epochs']} / {recipe}"
        table.append([f"`{r['task']}`", r["paper_id"], r["fold"], fmt(r["test_top1"]), r["images"],
                      fmt(r["trained_test_top1"]), epochs, fmt(paper), drop]
                     + ([r.get("top1_by_place") or DASH] if places else []))
    out = ["### Trained checkpoints on this run's data", "",
           f"The best checkpoints of `{Path(rows[0]['run']).parents[len(Path(rows[0]['task']).parts)] if rows else '?'}` evaluated on this run's "
           f"{rows[0]['split'] if rows else 'test'} split (`util/evaluate_runs.py`, `{path}`), beside the "
           "accuracy each run measured on its own test split and the paper's.", ""]
    if table:
        out.append(md_table(["task", "paper", "f", "top-1 here", "images", "top-1, own test split",
                             "epochs / recipe", "paper top-1", "vs f = 1 (here / paper)"]
                            + (["top-1 by place in the group"] if places else []), table,
                            align="llrrrrrrr" + ("l" if places else "")))
        if places:
            out += ["", "Top-1 by place: the test images at each place 0..f-1 of their group scored "
                        "on their own; a place at chance (100 / classes) is one the network has not learned."]
    if missing:
        out += ["", f"No `best.pth` in this checkout for {', '.join(missing)}."]
    return "\n".join(out)


def curves_section(savedir: Path, train: pd.DataFrame, fig_dir: Path, rel: str,
                   effnet_tasks: frozenset[str] = frozenset()) -> str:
    from util.reporting.figures import plot_curves

    out = ["## 2. Training curves", "",
           "Validation top-1 per epoch, original (black) vs folded; dotted lines are the "
           "paper's test top-1 of the same fold.", ""]
    missing = []
    for task in dict.fromkeys(train["task"]):
        runs = {}
        for fold in train.loc[train["task"] == task, "fold"]:
            stats = load_stats(savedir, task, int(fold))
            if stats is None:
                missing.append(f"`{task}` f = {fold}")
            else:
                runs[int(fold)] = stats
        if not runs:
            continue
        paper = {f: (paper_accuracy(task, f) if known_task(task) else None) for f in runs}
        name = "curves_" + task.replace("/", "_") + ".png"
        effnet = load_stats(savedir, task, 1, efficientnet=True) if task in effnet_tasks else None
        plot_curves(f"{task} ({_pid(task)})", runs, paper, fig_dir / name, effnet)
        out += [f"### `{task}` ({_pid(task)})", "", f"![validation top-1 of {task}]({rel}/{name})", ""]
    if missing:
        out += [f"No readable `stats.csv` for: {', '.join(missing)}.", ""]
    return "\n".join(out).rstrip()


def _versions(cfg: dict) -> str:
    v = cfg.get("versions")
    if isinstance(v, dict):
        return ", ".join(f"{k} {val}" for k, val in v.items())
    return DASH if v is None else str(v)


def _command(cmd) -> str:
    if isinstance(cmd, (list, tuple)):
        return shlex.join(str(c) for c in cmd)
    return DASH if cmd in (None, "") else str(cmd)


def provenance_section(savedir: Path, train: pd.DataFrame, results: Path | None,
                       commands: list[str], argv: list[str]) -> str:
    """Exact commands, git hashes, devices and library versions behind every number."""
    rows, cmds = [], {}
    for r in train.itertuples():
        band = band_or_none(r.band_limit)
        label = ("EfficientNet-style" if is_efficientnet(r) else f"{r.fold}") + (
            "" if band is None else f" (band {band:g}%)")
        cfg = load_run_config(savedir, r.task, r.fold, band, is_efficientnet(r))
        if cfg is None:
            rows.append([f"`{r.task}`", label, DASH, str(r.device), "no config.json"])
            continue
        cmd = _command(cfg.get("command"))
        cmds.setdefault(cmd, []).append(f"{r.task} f={label}")
        rows.append([f"`{r.task}`", label, f"`{str(cfg.get('git', DASH))[:12]}`",
                     str(cfg.get("device", r.device)), _versions(cfg)])
    out = ["## 6. How these numbers were produced", "",
           "This report:", "", "```", shlex.join(["python3", "util/report.py", *argv]), "```", "",
           f"Repository at `{git_hash() or 'unknown (no git checkout)'}`; Python {platform.python_version()}, "
           f"pandas {pd.__version__}.", "", "Training runs (from each run's `config.json`):", ""]
    if cmds:
        out += ["```"] + [f"{c}    # {len(v)} run(s)" for c, v in cmds.items()] + ["```", ""]
    out += [md_table(["task", "f", "git", "device", "versions"], rows, align="lrlll"), ""]
    out += ["Inference: " + (f"`{results}`" if results else "not given (`--results`)") + "."]
    if commands:
        out += ["", "Commands noted with `--command`:", "", "```", *commands, "```"]
    return "\n".join(out)


def order_agreement_line(train: pd.DataFrame) -> str:
    """The paper's in-group order agreement next to ours where a run measured it (--eval-orders)."""
    paper = "–".join(map(str, paper_fact("order_agreement")["range_percent"]))
    line = f"Folded predictions agree across the f! orders of a group {paper}% of the time in the paper (V1)"
    col = train["order_agreement"] if "order_agreement" in train.columns else pd.Series(dtype=float)
    measured = [r for r, v in zip(train.itertuples(), col) if pd.notna(v)]
    if not measured:
        return line + "; no run here measured it (`train.py --eval-orders K`)."
    ours = ", ".join(f"`{r.task}` f = {r.fold}: {r.order_agreement:.2f}%" for r in measured)
    return line + f"; ours, on the test set with `--eval-orders`: {ours}."


def build_report(args: argparse.Namespace, train: pd.DataFrame, fig_dir: Path, rel: str,
                 argv: list[str]) -> str:
    savedir = Path(args.savedir)
    plain = train[train["band_limit"].isna()]  # band-limited runs have their own section
    ordinary = plain[plain["scaling"] != "efficientnet"]
    effnet = plain[plain["scaling"] == "efficientnet"]
    infer = None
    results = Path(args.results) if args.results else None
    if results is not None and results.is_file():
        infer = summarize_inference(load_inference(results))
    elif results is not None:
        print(f"warning: {results} does not exist; the report's inference section says how to "
              "make it", file=sys.stderr)
    setting = paper_inference_setting()
    head = ["# FoldedCNNs: this run next to the paper", "",
            f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} from `{savedir}`"
            + (f" and `{results}`" if infer is not None else "") + ".", "",
            f"Paper: {paper_citation()} Its speedups were measured on {setting['gpu']}, "
            f"{setting['backend']} {setting['precision']}, batch {setting['batch_size_images']} "
            "images (`config/paper_results.json`).", "",
            order_agreement_line(ordinary)]
    sections = [
        "\n".join(head),
        accuracy_section(ordinary)
        + ("\n\n" + efficientnet_section(effnet, ordinary) if not effnet.empty else "")
        + ("\n\n" + checkpoint_eval_section(Path(args.checkpoint_eval)) if args.checkpoint_eval else ""),
        curves_section(savedir, ordinary, fig_dir, rel, frozenset(effnet["task"])),
        inference_section(infer, results, fig_dir, rel),
        ai_section(),
        band_section(train, Path(args.band_results) if args.band_results else None),
        provenance_section(savedir, train, results if infer is not None else None,
                           args.command, argv),
    ]
    return "\n\n".join(sections) + "\n"


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("savedir", help="training output folder (written by `python3 train.py SAVEDIR`)")
    p.add_argument("--results", default=None,
                   help="inference CSV of `./run_inference.sh results.csv` (optional)")
    p.add_argument("--band-results", default=None,
                   help="CSV of `util/bandlimit_bench.py` (band-limited CNNs vs originals and "
                        "folding: images/s, step time, memory; optional)")
    p.add_argument("--checkpoint-eval", default=None, metavar="CSV",
                   help="CSV of `util/evaluate_runs.py`: checkpoints trained elsewhere (the shipped runs) "
                        "evaluated on this run's data, shown in the accuracy section (optional)")
    p.add_argument("--out", default=None, help="report path (default SAVEDIR/report.md); figures "
                   "go to a folder beside it named <stem>_files")
    p.add_argument("--command", action="append", default=[],
                   help="a command that produced the inputs, recorded in the report (repeatable)")
    return p


def main(args: argparse.Namespace, argv: list[str] | None = None) -> Path:
    out = Path(args.out) if args.out else Path(args.savedir) / "report.md"
    if out.suffix.lower() != ".md":
        raise ReportError(f"--out {out} must end in .md (the report is Markdown)")
    train = load_training(Path(args.savedir))  # before any writing: a one-line error if absent
    if args.checkpoint_eval and not Path(args.checkpoint_eval).is_file():
        raise ReportError(f"--checkpoint-eval {args.checkpoint_eval} does not exist; write it with "
                          "`python3 util/evaluate_runs.py SAVEDIR --csv PATH`")
    fig_name = out.stem + "_files"
    with atomic_dir(out.parent / fig_name) as tmp:  # figures are swapped in whole, or not at all
        text = build_report(args, train, tmp, fig_name, sys.argv[1:] if argv is None else argv)
    atomic_write_text(out, text)
    print(f"wrote {out} and {out.parent / fig_name}/")
    return out


if __name__ == "__main__":
    from util.training.errors import TrainError  # a --checkpoint-eval CSV of the wrong kind

    run_command(main, get_args_parser, errors=(ReportError, TaskError, TrainError))
