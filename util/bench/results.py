"""The benchmark's CSV files: one owner for their columns, cell formats and types.

A ``CsvTable`` is a schema (column names in order, each with a kind and a cell format, and
which columns a reader needs). Rows are dicts keyed by column: ``append`` formats and
appends them (header once, each call one flushed write, so an interrupted run keeps its
rows), ``read_rows`` and ``read_frame`` give them back typed. Two tables live on it:

* ``BENCH``: the CSV of ``run_inference.sh`` (``util/run_inference.py``). Its first nine
  columns are the released script's, so its CSVs and the released ones read alike; a CSV of
  an older version (a prefix of today's columns) gets the new columns, empty, when a run
  appends to it. ``plot_results.py`` and ``util/report.py`` read it.
* ``util/bench/bandlimit_results.py``'s table, written by ``util/bandlimit_bench.py``; the
  per-layer scoreboard's (``util/bench/scoreboard.py``); ``util/training/run_eval.py``'s, the
  shipped checkpoints evaluated on new data (written whole with ``text``).
"""
from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from util.records.atomic import atomic_write_text

if TYPE_CHECKING:  # pandas is imported where it is used
    import pandas as pd

KINDS = ("text", "int", "float")


class ResultsError(ValueError):
    """A CSV that is not the expected benchmark's; the message is one line for the user."""


@dataclass(frozen=True)
class Column:
    """One column: ``kind`` text, int or float; ``spec`` the format() spec of its cells
    ('' = str); ``absent``: the value a CSV without this column means (None = unknown)."""
    name: str
    kind: str = "text"
    spec: str = ""
    absent: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind {self.kind!r} is not one of {KINDS}")

    def cell(self, value: Any) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, bool):
            value = int(value)
        return format(value, self.spec) if self.spec else str(value)

    def parse(self, text: str | None) -> Any:
        """The cell's value: None for an empty numeric cell, '' for an empty text cell."""
        if self.kind == "text":
            return text or ""
        if text in (None, ""):
            return None
        number = float(text)  # ValueError for a non-number: the caller names the line
        return int(number) if self.kind == "int" else number


@dataclass(frozen=True)
class CsvTable:
    """A CSV schema; ``required``: the columns a file must have to be read (None = all, in
    order); ``upgradable``: whether appending to a file whose header is a prefix of today's
    adds the missing columns; ``producer``: the command that writes it (for messages)."""
    columns: tuple[Column, ...]
    producer: str
    required: tuple[str, ...] | None = None
    upgradable: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def cells(self, row: dict[str, Any]) -> list[str]:
        """``row`` (keys from the columns; missing ones are empty) as formatted cells."""
        unknown = set(row) - set(self.names)
        if unknown:
            raise ResultsError(f"unknown column(s) {sorted(unknown)}; valid: {self.names}")
        return [c.cell(row.get(c.name)) for c in self.columns]

    def _check_header(self, path: Path, header: list[str]) -> None:
        """Raise unless ``path``'s header is today's; upgrade an older prefix if allowed."""
        if header == self.names:
            return
        if not (self.upgradable and header and header == self.names[:len(header)]):
            raise ResultsError(f"{path} has another header ({','.join(header)[:60]}...); "
                               "write to a new CSV file")
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(
            [self.names] + [r + [""] * (len(self.names) - len(r)) for r in rows])
        atomic_write_text(path, buf.getvalue())
        added = ", ".join(self.names[len(header):])
        print(f"# {path}: added the columns {added} (empty for its {len(rows)} earlier rows)",
              file=sys.stderr)

    def start(self, path: Path) -> None:
        """Make ``path`` ready for appending: a new file gets the header; an existing one must
        have this table's header (or an older prefix of it, upgraded when ``upgradable``)."""
        path = Path(path)
        if path.exists() and path.stat().st_size:
            with open(path, newline="") as fh:
                header = next(csv.reader(fh), [])
            self._check_header(path, header)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write(path, [self.names])

    def text(self, rows: Iterable[dict[str, Any]]) -> str:
        """The whole CSV of ``rows``, header first (for a file written at once, atomically)."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([self.names] + [self.cells(r) for r in rows])
        return buf.getvalue()

    def append(self, path: Path, rows: Iterable[dict[str, Any]]) -> str:
        """Append ``rows`` in one flushed write (header first into a new file); the text of
        the rows written."""
        self.start(path)
        return self._write(Path(path), [self.cells(r) for r in rows])

    @staticmethod
    def _write(path: Path, rows: list[list[str]]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        with open(path, "a") as fh:  # whole rows in one write, flushed to disk
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        return buf.getvalue()

    def read_rows(self, path: Path) -> list[dict[str, Any]]:
        """The rows of ``path`` as dicts of every column, typed (``Column.parse``); a column
        the file lacks holds its ``absent`` value."""
        path = Path(path)
        try:
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                header = list(reader.fieldnames or [])
                raw = list(reader)
        except FileNotFoundError:
            raise ResultsError(f"{path} does not exist; give a CSV written by {self.producer}") from None
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ResultsError(f"cannot read {path} ({type(exc).__name__}); give the CSV "
                               f"written by {self.producer}") from None
        if self.required is None:
            if header != self.names:
                raise ResultsError(f"{path} is not a {self.producer} CSV (header "
                                   f"{','.join(header)[:60]}...)")
        else:
            missing = [c for c in self.required if c not in header]
            if missing:
                raise ResultsError(f"{path} lacks column(s) {missing} (has {header}); give the "
                                   f"CSV written by {self.producer}")
        out = []
        for line, row in enumerate(raw, start=2):
            parsed: dict[str, Any] = {}
            for c in self.columns:
                if c.name not in header:
                    parsed[c.name] = c.absent if c.absent is not None else c.parse(None)
                    continue
                try:
                    parsed[c.name] = c.parse(row[c.name])
                except ValueError:
                    raise ResultsError(f"{path} line {line}: {c.name} = {row[c.name]!r} is not a "
                                       f"number; re-run {self.producer}") from None
            out.append(parsed)
        return out

    def read_frame(self, paths: Path | Iterable[Path]) -> pd.DataFrame:
        """``read_rows`` of one or more files as one pandas DataFrame (columns in order;
        empty numeric cells NaN, empty text cells '')."""
        import pandas as pd

        paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        rows = [r for p in paths for r in self.read_rows(p)]
        df = pd.DataFrame(rows, columns=self.names)
        for c in self.columns:
            if c.kind != "text":
                df[c.name] = pd.to_numeric(df[c.name], errors="coerce").astype(float)
        return df


# The benchmark CSV (util/run_inference.py). ChannelAlign and PadInput came with channel
# alignment: a CSV without them ran the paper's widths on unpadded inputs. E2EH2DBytesPerSec
# (the frames' host-to-device bytes/sec at E2EThroughput) and H2DBandwidth (the measured
# pinned copy bandwidth) came with the double-buffered end-to-end path; empty on CPU (no copy)
# and without --end-to-end.
BENCH = CsvTable(
    columns=(
        Column("Model"), Column("Trial", "int"), Column("Batch Size", "int"), Column("Mode"),
        Column("Fold", "int"), Column("Throughput", "float", ".2f"),
        Column("FLOPs/sec", "float", ".4e"), Column("TputNorm", "float", ".4f"),
        Column("FLOPNorm", "float", ".4f"),
        Column("Backend"), Column("BackendRequested"), Column("Precision"),
        Column("Utilization", "float", ".4f"), Column("ChannelAlign", "int", absent=1),
        Column("PadInput", "int", absent=0), Column("ChannelsLast", "int"),
        Column("E2EThroughput", "float", ".2f"), Column("CompileSeconds", "float", ".1f"),
        Column("Probe"), Column("GPU"), Column("Torch"), Column("Error"),
        Column("Bandwidth", "float", ".4e"), Column("RooflineFraction", "float", ".4f"),
        Column("BandLimit", "float", "g"), Column("BandAlgorithm"),
        Column("KeptFraction", "float", ".4f"),
        Column("E2EH2DBytesPerSec", "float", ".4e"), Column("H2DBandwidth", "float", ".4e")),
    producer="./run_inference.sh",
    required=("Model", "Trial", "Batch Size", "Mode", "Fold", "Throughput", "FLOPs/sec",
              "TputNorm", "FLOPNorm"),  # the released run_inference.sh's columns
    upgradable=True)
COLUMNS = BENCH.names
RELEASED_COLUMNS = list(BENCH.required)
