"""The accelerator table: one row per (network, accelerator, fusion, layer) plus a total row.

This module owns the CSV's columns. Energy is split by memory class of the accelerator
(``hardware.memory_classes``: per-PE registers, on-chip SRAM, DRAM) and compute (MACs);
``energy_by_memory`` keeps the split per named memory; ``energy_<W|I|O>_pJ`` and
``dram_<W|I|O>_bytes`` split memory energy and DRAM traffic by operand (weights, input
activations, outputs). Per-image columns divide by the images
a run processes; ratio columns compare a network per image with the original running the
same images on the same accelerator with the same fusion setting (< 1: the network is cheaper).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable

from util.records.atomic import atomic_write_text

from .hardware import MEMORY_CLASSES, memory_classes
from .network import NetworkSpec, original_for
from .runs import RunResult

TOTAL = "total"
KEY_COLUMNS = ["model", "variant", "fold", "batch", "images", "hardware", "fuse", "opt",
               "lpf_limit", "layer_index", "layer", "op_type", "loop_sizes"]
OPERANDS = ("W", "I", "O")  # ZigZag's layer operands: weights, input activations, outputs
METRIC_COLUMNS = ["macs", "latency_cycles", "ideal_cycles", "energy_pJ", "energy_compute_pJ",
                  *[f"energy_{c}_pJ" for c in MEMORY_CLASSES],
                  *[f"energy_{op}_pJ" for op in OPERANDS], "dram_bytes",
                  *[f"dram_{op}_bytes" for op in OPERANDS], "util_spatial", "util"]
PER_IMAGE = {"macs": "macs_per_image", "latency_cycles": "cycles_per_image",
             "energy_pJ": "energy_per_image_pJ", "dram_bytes": "dram_bytes_per_image"}
RATIO_COLUMNS = ["energy_ratio", "latency_ratio", "dram_ratio"]
DETAIL_COLUMNS = ["top_memory", "energy_by_memory"]
COLUMNS = KEY_COLUMNS + METRIC_COLUMNS + list(PER_IMAGE.values()) + RATIO_COLUMNS + DETAIL_COLUMNS


def _layer_row(result: RunResult, index: int | str, layer: dict[str, Any]) -> dict[str, Any]:
    spec, run = result.run.network, result.run
    classes = memory_classes(run.hardware)
    split = {c: 0.0 for c in MEMORY_CLASSES}
    for name, pj in layer["energy_by_memory"].items():
        split[classes[name]] += pj
    row = {"model": spec.model, "variant": spec.variant, "fold": spec.fold, "batch": spec.batch,
           "images": spec.images, "hardware": run.hardware, "fuse": int(run.fuse),
           "opt": result.search.opt, "lpf_limit": result.search.lpf_limit,
           "layer_index": index, "layer": layer["name"], "op_type": layer["op_type"],
           "loop_sizes": layer["loop_sizes"], "macs": layer["macs"],
           "latency_cycles": layer["latency_cycles"], "ideal_cycles": layer["ideal_cycles"],
           "energy_pJ": layer["energy_pJ"], "energy_compute_pJ": layer["energy_mac_pJ"],
           **{f"energy_{c}_pJ": split[c] for c in MEMORY_CLASSES},
           **{f"energy_{op}_pJ": layer["energy_by_operand"].get(op, 0.0) for op in OPERANDS},
           "dram_bytes": layer["dram_bits"] / 8,
           **{f"dram_{op}_bytes": layer["dram_bits_by_operand"].get(op, 0.0) / 8 for op in OPERANDS},
           "util_spatial": layer["util_spatial"], "util": layer["util"],
           "top_memory": " ".join(f"{k}={v}" for k, v in sorted(layer["top_memory"].items())),
           "energy_by_memory": " ".join(f"{k}={v:.6g}" for k, v in layer["energy_by_memory"].items())}
    for metric, col in PER_IMAGE.items():
        row[col] = row[metric] / spec.images
    return row


def _total_row(result: RunResult, rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = rows[0]
    row = {k: first[k] for k in KEY_COLUMNS}
    row.update(layer_index=TOTAL, layer=TOTAL, op_type="", loop_sizes="")
    for col in METRIC_COLUMNS + list(PER_IMAGE.values()):
        if col not in ("util_spatial", "util"):
            row[col] = sum(r[col] for r in rows)
    # whole-network utilisation: ideal cycles over actual cycles (ZigZag's CumulativeCME rule)
    row["util"] = row["ideal_cycles"] / row["latency_cycles"]
    row["util_spatial"] = row["ideal_cycles"] / sum(r["ideal_cycles"] / r["util_spatial"] for r in rows)
    totals: dict[str, float] = {}
    for layer in result.layers:
        for name, pj in layer["energy_by_memory"].items():
            totals[name] = totals.get(name, 0.0) + pj
    row["energy_by_memory"] = " ".join(f"{k}={v:.6g}" for k, v in totals.items())
    row["top_memory"] = ""
    return row


def _key(spec: NetworkSpec, hardware: str, fuse: bool) -> tuple:
    return (spec.model, spec.variant, spec.batch, hardware, int(fuse))


def table_rows(results: Iterable[RunResult]) -> list[dict[str, Any]]:
    """Rows of every run (layers then total), with per-image ratios against the original."""
    results = list(results)
    per_run: dict[tuple, list[dict[str, Any]]] = {}
    for res in results:
        rows = [_layer_row(res, i, layer) for i, layer in enumerate(res.layers)]
        rows.append(_total_row(res, rows))
        per_run[_key(res.run.network, res.run.hardware, res.run.fuse)] = rows
    out = []
    for res in results:
        rows = per_run[_key(res.run.network, res.run.hardware, res.run.fuse)]
        ref = per_run.get(_key(original_for(res.run.network), res.run.hardware, res.run.fuse))
        for i, row in enumerate(rows):
            ref_row = None
            if ref is not None and len(ref) == len(rows):
                ref_row = ref[i]
            elif ref is not None and row["layer_index"] == TOTAL:
                ref_row = ref[-1]
            for col, metric in zip(RATIO_COLUMNS, ("energy_per_image_pJ", "cycles_per_image",
                                                   "dram_bytes_per_image")):
                row[col] = (row[metric] / ref_row[metric]
                            if ref_row is not None and ref_row[metric] else "")
            out.append(row)
    return out


def write_csv(rows: list[dict[str, Any]], path: Path | str) -> None:
    """Write the table atomically, columns in ``COLUMNS`` order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt_csv(row.get(k, "")) for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


def _fmt_csv(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def read_csv(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a table written by ``write_csv`` (numbers back as float/int)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k, v in row.items():
            if k in METRIC_COLUMNS or k in PER_IMAGE.values() or (k in RATIO_COLUMNS and v != ""):
                row[k] = float(v)
            elif k in ("fold", "batch", "images", "fuse", "lpf_limit"):
                row[k] = int(v)
    return rows


# ----------------------------------------------------------------------------- text output
def _si(value: float, unit: str = "") -> str:
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g} {prefix}{unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def format_layers(rows: list[dict[str, Any]]) -> str:
    """One run's layers and total: MACs, cycles, energy split, DRAM traffic, utilisation."""
    head = (f"{'layer':<28} {'MACs':>9} {'cycles':>9} {'energy':>9} {'compute':>8} {'reg':>8} "
            f"{'sram':>8} {'dram':>8} {'DRAM B':>9} {'util':>5}  on chip")
    lines = [head]
    for r in rows:
        name = r["layer"] if len(r["layer"]) <= 28 else "…" + r["layer"][-27:]
        lines.append(
            f"{name:<28} {_si(r['macs']):>9} {_si(r['latency_cycles']):>9} "
            f"{_si(r['energy_pJ'] * 1e-12, 'J'):>9} {_si(r['energy_compute_pJ'] * 1e-12, 'J'):>8} "
            f"{_si(r['energy_reg_pJ'] * 1e-12, 'J'):>8} {_si(r['energy_sram_pJ'] * 1e-12, 'J'):>8} "
            f"{_si(r['energy_dram_pJ'] * 1e-12, 'J'):>8} {_si(r['dram_bytes']):>9} "
            f"{r['util']:>5.2f}  {r['top_memory']}")
    return "\n".join(lines)


def format_summary(rows: list[dict[str, Any]]) -> str:
    """Per image, each network next to the original on the same images, with ratios."""
    totals = [r for r in rows if r["layer_index"] == TOTAL]
    head = (f"{'hardware':<13} {'fuse':>4} {'network':<14} {'images':>6} {'MACs/img':>9} "
            f"{'energy/img':>10} {'cycles/img':>10} {'DRAM B/img':>10} {'util':>5} "
            f"{'energy x':>8} {'cycles x':>8} {'DRAM x':>7}")
    lines = [head]
    for r in sorted(totals, key=lambda r: (r["hardware"], r["fuse"], r["images"],
                                           r["variant"] != "original", r["variant"])):
        ratio = ["-" if r[c] == "" else f"{r[c]:.3f}" for c in RATIO_COLUMNS]
        lines.append(
            f"{r['hardware']:<13} {'on' if r['fuse'] else 'off':>4} {r['variant']:<14} "
            f"{r['images']:>6} {_si(r['macs_per_image']):>9} "
            f"{_si(r['energy_per_image_pJ'] * 1e-12, 'J'):>10} {_si(r['cycles_per_image']):>10} "
            f"{_si(r['dram_bytes_per_image']):>10} {r['util']:>5.2f} "
            f"{ratio[0]:>8} {ratio[1]:>8} {ratio[2]:>7}")
    return "\n".join(lines)
