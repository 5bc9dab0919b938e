"""Share of pre-ReLU outputs <= 0 per layer of trained networks, and the MACs and energy an
accelerator that predicts and skips them would save (ZigZag's per-layer energy from the
accelerator table, scaled by the measured share; see ``util/accel/relu_density.py``).

Each checkpoint (``fold_trainer.py``'s ``best.pth``: ``model`` state dict, ``task``, ``fold``,
``channel_align``) is evaluated on a data split; its layers are matched with the accelerator
table's rows of the same network: the FoldedCNN of fold f on one input, the original at batch
``--original-batch`` (the images of the fold it is compared with), fusion off.

    python3 util/relu_density.py --checkpoint runs/v1/lol/goldnumber-fraction/fold1/best.pth \\
        runs/v1/lol/goldnumber-fraction/fold4/best.pth --split test --csv relu_density.csv
    python3 util/accel_report.py --report-only --relu-density relu_density.csv
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from config.tasks import TaskError, get_task  # noqa: E402
from datasets.errors import DatasetError  # noqa: E402
from util.accel.hardware import DEFAULT_HARDWARE, AccelError  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.records.atomic import atomic_write_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = REPO / "model_files" / "accel" / "accel_table.csv"
COLUMNS = ["checkpoint", "task", "model", "variant", "fold", "split", "images", "hardware",
           "layer_index", "layer", "zigzag_layer", "share_nonpositive", "macs_per_image",
           "macs_saved_per_image", "energy_per_image_pJ", "energy_saved_per_image_pJ"]


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, nargs="+", required=True,
                   help="checkpoints written by fold_trainer.py (best.pth)")
    p.add_argument("--split", default="test", help="data split to measure on (default test)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="stands in for the repository's data/ folder (default: the task's path)")
    p.add_argument("--table", type=Path, default=DEFAULT_TABLE,
                   help=f"accelerator table of util/accel_report.py (default {DEFAULT_TABLE})")
    p.add_argument("--hardware", nargs="+", default=list(DEFAULT_HARDWARE),
                   help=f"accelerators of the table to scale (default {' '.join(DEFAULT_HARDWARE)})")
    p.add_argument("--original-batch", type=int, default=4,
                   help="the original's table rows at this batch (= the fold it is compared "
                        "with; default 4)")
    p.add_argument("--batch-size", type=int, default=256, help="inputs per forward pass (default 256)")
    p.add_argument("--csv", type=Path, default=None, help="write every row here (atomic)")
    return p


def load_network(path: Path) -> tuple[torch.nn.Module, str, int]:
    """The trained network of a checkpoint, its task name and fold."""
    from util.training.errors import TrainError
    from util.training.run_eval import load_trained_model

    try:
        model, ckpt = load_trained_model(path)
    except TrainError as exc:
        raise AccelError(str(exc)) from None
    if ckpt.get("channel_align", 1) != 1:
        raise AccelError(f"{path} has channel_align {ckpt['channel_align']}: the accelerator table "
                         "holds the paper's widths (channel_align 1)")
    return model, ckpt["task"], int(ckpt["fold"])


def table_layers(table: list[dict], model: str, variant: str, batch: int, hardware: str) -> list[dict]:
    rows = [r for r in table if r["model"] == model and r["variant"] == variant
            and r["batch"] == batch and r["hardware"] == hardware and r["fuse"] == 0
            and r["layer_index"] != "total"]
    if not rows:
        raise AccelError(f"no rows for {model} {variant} batch {batch} on {hardware} (fusion off) "
                         "in the accelerator table; run util/accel_report.py first")
    return sorted(rows, key=lambda r: int(r["layer_index"]))


def main(args: argparse.Namespace) -> int:
    from datasets import load_split
    from util.accel.relu_density import folded_inputs, prerelu_shares, skipping_savings
    from util.accel.table import read_csv

    if not args.table.exists():
        raise AccelError(f"accelerator table {args.table} is missing; run util/accel_report.py "
                         "(or pass --table)")
    table = read_csv(args.table)
    out = []
    for path in args.checkpoint:
        model, task_name, fold = load_network(path)
        task = get_task(task_name)
        if not task.bench_name:
            raise AccelError(f"{task_name} is not in the accelerator table (no benchmark name)")
        data = load_split(task, args.split, task.data_dir(args.data_root), fold=fold, progress=False)
        inputs = folded_inputs(data.images, task, fold)
        if inputs.shape[0] == 0:
            raise AccelError(f"{task_name} {args.split} has fewer than {fold} images")
        shares = prerelu_shares(model, inputs, args.batch_size)
        variant, batch = ("original", args.original_batch) if fold == 1 else (f"fold{fold}", 1)
        for hw in args.hardware:
            rows = skipping_savings(shares, table_layers(table, task.bench_name, variant, batch, hw))
            for r in rows:
                out.append({"checkpoint": str(path), "task": task_name, "model": task.bench_name,
                            "variant": variant, "fold": fold, "split": args.split,
                            "images": inputs.shape[0] * fold, "hardware": hw, **r})
            macs = sum(r["macs_per_image"] for r in rows)
            energy = sum(r["energy_per_image_pJ"] for r in rows)
            print(f"{task_name} f={fold} {args.split} ({inputs.shape[0] * fold} images) on {hw}: "
                  f"skipping pre-ReLU outputs <= 0 saves "
                  f"{100 * sum(r['macs_saved_per_image'] for r in rows) / macs:.1f}% of MACs, "
                  f"{100 * sum(r['energy_saved_per_image_pJ'] for r in rows) / energy:.1f}% of energy")
        for s in shares:
            share = "no ReLU" if s.share is None else f"{100 * s.share:.1f}% <= 0"
            print(f"  {s.name:<24} {share}")
    if args.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(out)
        atomic_write_text(args.csv, buf.getvalue())
        print(f"wrote {len(out)} rows to {args.csv}")
    return 0


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(AccelError, TaskError, DatasetError), returns_status=True,
                prog="relu_density.py")
