"""Tiny Markdown helpers for the report: tables, number formatting and atomic writes.

Why not ``DataFrame.to_markdown``: it needs ``tabulate``, which is not a requirement of
this repository. Example::

    >>> print(md_table(["task", "top-1"], [["V1", fmt(97.6431)]], align="lr"))
    | task | top-1 |
    |:---|---:|
    | V1 | 97.64 |
"""
from __future__ import annotations

import math
from typing import Any, Sequence

DASH = "—"


def fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    """A number with ``digits`` decimals (or DASH for None/NaN/empty); strings pass through."""
    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        return value
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return DASH
    return f"{x:.{digits}f}{suffix}"


def fmt_signed(value: Any, digits: int = 2) -> str:
    """A difference with an explicit sign (``+0.12``, ``-1.30``), DASH for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{float(value):+.{digits}f}"


def _cell(value: Any) -> str:
    text = DASH if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds one of ``l``/``r``/``c`` per column
    (default left)."""
    align = align.ljust(len(headers), "l")
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join(rule[a] for a in align[:len(headers)]) + "|"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, table has {len(headers)} columns: {row}")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)
