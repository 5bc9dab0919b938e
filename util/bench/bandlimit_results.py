"""The CSV of ``util/bandlimit_bench.py``: band-limited CNNs beside their originals and
FoldedCNNs. This module owns the columns; the benchmark writes rows and the report reads them
through it.

One row per (task, phase, variant): ``phase`` is ``inference`` (images/s of a forward at
``batch_images``, under the backend given) or ``train`` (one SGD step: forward, backward,
update); ``variant`` is ``original`` (``fold`` 1), ``folded`` (``fold`` > 1) or ``band``
(``band_limit``% of each conv's spectrum discarded, ``algorithm`` fft or dft, ``kept_fraction``
of the coefficients actually kept). ``peak_mem_mb`` is the CUDA allocator's peak during the
timed steps (weights, inputs, activations, workspaces, optimizer state); empty on CPU.
``flops_per_image`` is what the model executes (``models/costs.py``), ``direct_flops_per_image``
the same network with direct convolutions. A failed or skipped configuration has ``error``.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

COLUMNS = ["task", "paper_id", "phase", "variant", "fold", "band_limit", "algorithm",
           "kept_fraction", "backend", "precision", "channel_align", "pad_input", "batch_images", "images_per_sec",
           "ms_per_batch", "peak_mem_mb", "flops_per_image", "direct_flops_per_image", "trials",
           "gpu", "torch", "error"]
NUMERIC = {"fold": int, "band_limit": float, "kept_fraction": float, "channel_align": int,
           "pad_input": int, "batch_images": int,
           "images_per_sec": float, "ms_per_batch": float, "peak_mem_mb": float,
           "flops_per_image": float, "direct_flops_per_image": float, "trials": int}
PHASES = ("inference", "train")
VARIANTS = ("original", "folded", "band")


class BandResultsError(ValueError):
    """A CSV that is not this benchmark's; the message is one line for the user."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row (keys from ``COLUMNS``), writing the header first into a new file; the
    row is flushed to disk at once, so an interrupted benchmark keeps every finished row."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise BandResultsError(f"unknown column(s) {sorted(unknown)}; valid: {COLUMNS}")
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if header != COLUMNS:
            raise BandResultsError(f"{path} has another header ({','.join(header)[:60]}...); "
                                   "write to a new CSV file")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        w.writerow(COLUMNS)
    w.writerow([_cell(row.get(c)) for c in COLUMNS])
    with open(path, "a") as fh:
        fh.write(buf.getvalue())
        fh.flush()
        os.fsync(fh.fileno())


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a benchmark CSV, numbers parsed (empty cells -> None)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != COLUMNS:
                raise BandResultsError(f"{path} is not a util/bandlimit_bench.py CSV (header "
                                       f"{','.join(reader.fieldnames or [])[:60]}...)")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BandResultsError(f"cannot read {path} ({type(exc).__name__}); give the CSV "
                               "written by util/bandlimit_bench.py") from None
    out = []
    for i, row in enumerate(rows, start=2):
        parsed: dict[str, Any] = {}
        for key, value in row.items():
            if key in NUMERIC:
                try:
                    parsed[key] = NUMERIC[key](float(value)) if value not in ("", None) else None
                except ValueError:
                    raise BandResultsError(f"{path} line {i}: {key} = {value!r} is not a number; "
                                           "re-run util/bandlimit_bench.py") from None
            else:
                parsed[key] = value or ""
        out.append(parsed)
    return out
