"""NoScope's label CSV and the label rule (paper section 5).

The CSV has one row per detected object per frame, columns ``CSV_COLUMNS`` (NoScope's
``frame,object_name,confidence,xmin,ymin,xmax,ymax``); only ``LABEL_COLUMNS`` are read, other
columns are ignored. A frame is positive when any of its rows names the task's object.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from util.cli import exception_line
from util.records.atomic import atomic_write_text

from .tasks import NoScopeError

CSV_COLUMNS = ("frame", "object_name", "confidence", "xmin", "ymin", "xmax", "ymax")
LABEL_COLUMNS = ("frame", "object_name")


def write_labels(rows: list[tuple], path: Path) -> None:
    """Write ``rows`` (tuples in ``CSV_COLUMNS`` order) as a label CSV, atomically."""
    atomic_write_text(path, pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(index=False))


def positive_frames(csv: Path, obj: str) -> set[int]:
    """Frame numbers with at least one row naming ``obj``."""
    try:
        df = pd.read_csv(csv, skipinitialspace=True)
    except FileNotFoundError:
        raise NoScopeError(f"label CSV {csv} not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise NoScopeError(f"cannot parse label CSV {csv} ({exception_line(exc)})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise NoScopeError(f"label CSV {csv} lacks column(s) {', '.join(missing)} (has: "
                           f"{', '.join(df.columns)}); NoScope CSVs have {','.join(CSV_COLUMNS)}")
    names = df["object_name"].astype(str).str.strip()
    frames = pd.to_numeric(df.loc[names == obj, "frame"], errors="coerce")
    if frames.isna().any():
        raise NoScopeError(f"label CSV {csv}: non-numeric values in column 'frame'")
    return set(frames.astype(int).tolist())
