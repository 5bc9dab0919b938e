"""What the paper's accuracy table (44 training runs) costs at measured training throughputs.

The table, all from the task registry: the six game CNNs V1-V6 at f = 1, 2, 3, 4 (1500 epochs;
V6 at f=4: 3000), NoScope N1-N4 at f = 1..4 (50 epochs) and the EfficientNet-style baselines of
V1-V4 (``paper_table_runs``). A run's work is the images it trains over its epochs, fewer while
the curriculum holds classes back (``run_images``). At one measured (runs, mps) setting,

    GPU-hours = sum over the table's runs of images / rate,

where a run's rate is the measured aggregate rate of its task and fold, else the mean over the
measured folds of its task, else the mean over every measured task (an assumption, reported);
an EfficientNet-style run takes its task's f=1 rate. Wall-clock on G GPUs is at least
GPU-hours / G and at least the longest run at the per-run rate, rate / N (``Projection``).
Rows are those of ``util.training.throughput`` (``aggregate_imgs_per_s`` per task, fold, runs, mps).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from config.tasks import get_task, task_names
from util.training.throughput import ThroughputError, setting_of, trained_images

NOSCOPE_FRAMES = 20000         # train.py --noscope-frames default: the synthetic video's length
EFFNET_PAPER_IDS = ("V1", "V2", "V3", "V4")  # the EfficientNet-style rows of the paper's Table 5
TABLE_FOLDS = (1, 2, 3, 4)


@dataclass(frozen=True)
class TableRun:
    """One run of the paper's accuracy table and the images it trains over its epochs."""
    label: str
    task: str
    fold: int
    efficientnet: bool
    epochs: int
    images: int


def task_class_counts(task_name: str, noscope_frames: int = NOSCOPE_FRAMES) -> list[int]:
    """Training images per class of a task, from the registry (game: ``images_per_class``;
    NoScope: ``noscope_frames // chunks`` in one bucket, as the registry has no class sizes)."""
    t = get_task(task_name)
    if t.family == "game":
        return [int(t.data.images_per_class["train"])] * t.num_classes
    if t.family == "noscope":
        return [noscope_frames // t.data.noscope.chunks]
    raise ThroughputError(f"{task_name}: the accuracy-table projection covers game and NoScope tasks only")


def run_images(task_name: str, fold: int, epochs: int, class_counts: Sequence[int], batch: int,
               curriculum: bool = True) -> int:
    """Images a run trains over ``epochs`` epochs at the recipe's curriculum (folded runs only)."""
    t = get_task(task_name)
    cur = t.recipe(fold).curriculum if (curriculum and fold > 1) else None
    total = 0
    for e in range(epochs):
        classes = t.num_classes if cur is None else cur.classes_at(e, t.num_classes, fold)
        total += trained_images(class_counts, classes, batch, fold)
    return total


def paper_table_runs(noscope_frames: int = NOSCOPE_FRAMES) -> list[TableRun]:
    """The 44 runs of the accuracy table, each at its recipe's epochs and batch."""
    out = []
    for name in task_names("game") + task_names("noscope"):
        t = get_task(name)
        counts = task_class_counts(name, noscope_frames)
        for f in TABLE_FOLDS:
            r = t.recipe(f)
            out.append(TableRun(f"{t.paper_id} f={f}", name, f, False, r.epochs,
                                run_images(name, f, r.epochs, counts, r.batch_size)))
        if t.efficientnet_baseline and t.paper_id in EFFNET_PAPER_IDS:
            r = t.recipe(1)
            out.append(TableRun(f"{t.paper_id} EfficientNet", name, 1, True, r.epochs,
                                run_images(name, 1, r.epochs, counts, r.batch_size)))
    return out


@dataclass
class Projection:
    """The accuracy table's cost at one measured (runs, mps, amp, batch, step) setting."""
    runs: int
    mps: str
    amp: str
    batch: int
    step: str
    gpu_hours: float
    longest_run_hours: float
    longest_run: str
    total_images: int
    exact: list[str] = field(default_factory=list)      # table runs with their own measured rate
    by_task: list[str] = field(default_factory=list)    # rate of another fold of the same task
    assumed: list[str] = field(default_factory=list)    # rate of the other measured tasks

    def wall_hours(self, gpus: int) -> float:
        """Wall-clock lower bound on ``gpus`` GPUs with ``runs`` runs each."""
        return max(self.gpu_hours / gpus, self.longest_run_hours)


def project(table: Sequence[TableRun], rows: Sequence[dict[str, Any]], runs: int, mps: str,
            amp: str = "none", batch: int = 32, step: str = "graph") -> Projection:
    """GPU-hours of ``table`` at the measured rates of setting (runs, mps, amp, batch, step); see the
    module doc. A run's images are counted at its recipe's batch (a larger batch drops a
    slightly different remainder per epoch; the difference is under one batch per epoch)."""
    measured = [r for r in rows if setting_of(r) == (runs, mps, amp, batch, step)]
    if not measured:
        raise ThroughputError(f"no measured row with N={runs}, mps={mps}, amp={amp}, batch={batch}, step={step}")
    exact = {(r["task"], int(r["fold"])): float(r["aggregate_imgs_per_s"]) for r in measured}
    per_task: dict[str, list[float]] = {}
    for (task, _), rate in exact.items():
        per_task.setdefault(task, []).append(rate)
    overall = statistics.fmean(exact.values())
    p = Projection(runs, mps, amp, batch, step, 0.0, 0.0, "", 0)
    for tr in table:
        key = (tr.task, tr.fold)
        if key in exact and not tr.efficientnet:
            rate = exact[key]
            p.exact.append(tr.label)
        elif tr.efficientnet and key in exact:
            rate = exact[key]
            p.by_task.append(tr.label)
        elif tr.task in per_task:
            rate = statistics.fmean(per_task[tr.task])
            p.by_task.append(tr.label)
        else:
            rate = overall
            p.assumed.append(tr.label)
        p.gpu_hours += tr.images / rate / 3600
        p.total_images += tr.images
        alone = tr.images / (rate / runs) / 3600  # this run's share of the GPU: rate / N
        if alone > p.longest_run_hours:
            p.longest_run_hours, p.longest_run = alone, tr.label
    return p


def projections(rows: Sequence[dict[str, Any]], table: Sequence[TableRun]) -> list[Projection]:
    settings = sorted({setting_of(r) for r in rows}, key=lambda s: (s[3], s[2], s[4], s[1] != "off", s[0]))
    return [project(table, rows, *s) for s in settings]


def format_projection(projs: Sequence[Projection], table: Sequence[TableRun],
                      rows: Sequence[dict[str, Any]]) -> str:
    measured_tasks = sorted({f"{get_task(r['task']).paper_id} ({r['task']})" for r in rows})
    lines = [f"Projected cost of the accuracy table: {len(table)} runs, "
             f"{sum(t.images for t in table) / 1e9:.3f} G training images at the recipes' epochs "
             "(curriculum included)",
             f"{'batch':>5s} {'amp':>4s} {'step':>8s} {'N':>3s} {'mps':>4s} {'GPU-hours':>10s} {'wall 1 GPU':>11s} {'wall 2 GPUs':>12s} "
             f"{'longest run at N (h)':>26s}"]
    best = min(projs, key=lambda p: p.gpu_hours) if projs else None
    for p in projs:
        lines.append(f"{p.batch:5d} {p.amp:>4s} {p.step:>8s} {p.runs:3d} {p.mps:>4s} {p.gpu_hours:10.2f} {p.wall_hours(1):11.2f} "
                     f"{p.wall_hours(2):12.2f} {p.longest_run_hours:10.2f} ({p.longest_run})"
                     + ("   <- fewest GPU-hours" if p is best else ""))
    if best is not None:
        for gpus in (1, 2):
            w = min(projs, key=lambda p: p.wall_hours(gpus))
            lines.append(f"Shortest wall-clock on {gpus} GPU{'s' if gpus > 1 else ''}: N={w.runs} per GPU, "
                         f"mps {w.mps}, amp {w.amp}, batch {w.batch}, step {w.step}: {w.wall_hours(gpus):.2f} h")
        lines.append(f"Rates: {len(best.exact)} run(s) at their own measured rate "
                     f"({', '.join(best.exact) or 'none'}); {len(best.by_task)} at the mean rate of the "
                     f"measured folds of their task; {len(best.assumed)} ASSUMED to train at the mean "
                     f"measured rate per image of {', '.join(measured_tasks) or 'the measured tasks'}"
                     + (f" ({_by_model(best.assumed)})" if best.assumed else "") + ".")
        lines.append("Wall-clock = max(GPU-hours / GPUs, longest run at the per-run rate of N sharing runs). "
                     "Neither term is exact: once fewer than N runs are left the aggregate rate falls "
                     "(GPU-hours / GPUs is optimistic) while the last runs speed up (the longest-run term "
                     "is pessimistic); start the longest runs first.")
    return "\n".join(lines)


def _by_model(labels: Sequence[str]) -> str:
    """'V2 f=1', 'V2 f=2', 'N1 f=1' -> 'V2 (2 runs), N1 (1 run)'."""
    counts: dict[str, int] = {}
    for lbl in labels:
        counts[lbl.split(" ")[0]] = counts.get(lbl.split(" ")[0], 0) + 1
    return ", ".join(f"{m} ({c} run{'s' if c > 1 else ''})" for m, c in counts.items())


