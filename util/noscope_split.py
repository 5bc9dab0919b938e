#!/usr/bin/env python3
"""Label NoScope frames and split them into train/val/test image folders.

Label rule (paper section 5): a frame is class 1 when any row of the label CSV for that
frame names the task's object (coral: person, night and roundabout: car, taipei: bus),
else class 0. The frames in FRAMES_DIR (``<frame_no>.png``, consecutive numbers, as
written by ``util/noscope_video_save.py``) are cut into ``chunks`` equal contiguous
chunks; three consecutive chunks, starting at chunk ``first_chunk``, become train, val
and test. Object, chunks and first chunk come from ``config/noscope-<name>/``.

Output: ``OUTDIR/{train,val,test}/{0,1}/<frame_no>.png``, built in a temporary folder and
renamed when complete. Training reads ``data/noscope-<name>-subset/`` by default, so
use that as OUTDIR unless you pass the path to training.

The CSV needs the columns ``frame`` and ``object_name`` (NoScope's files have
``frame,object_name,confidence,xmin,ymin,xmax,ymax``; other columns are ignored).

Examples::

    python3 util/noscope_split.py coral data/noscope-coral-subset \\
        --infile data/coral.csv --indir data/coral-frames --print_stats
    python3 util/noscope_split.py taipei data/noscope-taipei-subset \\
        --infile taipei.csv --indir taipei-frames --force
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from config.tasks import TaskError, get_task, task_names  # noqa: E402

SPLITS = ("train", "val", "test")
LABEL_COLUMNS = ("frame", "object_name")
COMPLETE_MARKER = ".complete"  # written by util/noscope_video_save.py


class SplitError(ValueError):
    """Bad CSV or frames folder; one line for the user."""


def positive_frames(csv: Path, obj: str) -> set[int]:
    """Frame numbers with at least one row naming ``obj``."""
    try:
        df = pd.read_csv(csv, skipinitialspace=True)
    except FileNotFoundError:
        raise SplitError(f"label CSV {csv} not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SplitError(f"cannot parse label CSV {csv} ({str(exc).splitlines()[0]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise SplitError(f"label CSV {csv} lacks column(s) {', '.join(missing)} (has: "
                         f"{', '.join(df.columns)}); NoScope CSVs have frame,object_name,confidence,"
                         "xmin,ymin,xmax,ymax")
    names = df["object_name"].astype(str).str.strip()
    frames = pd.to_numeric(df.loc[names == obj, "frame"], errors="coerce")
    if frames.isna().any():
        raise SplitError(f"label CSV {csv}: non-numeric values in column 'frame'")
    return set(frames.astype(int).tolist())


def list_frames(frames_dir: Path) -> list[int]:
    """Sorted frame numbers in ``frames_dir``; they must be consecutive."""
    if not frames_dir.is_dir():
        raise SplitError(f"frames folder {frames_dir} not found; make it with util/noscope_video_save.py")
    nums = sorted(int(p.stem) for p in frames_dir.glob("*.png") if p.stem.isdigit())
    if not nums:
        raise SplitError(f"no <frame_no>.png files in {frames_dir}; make them with util/noscope_video_save.py")
    gaps = [a for a, b in zip(nums, nums[1:]) if b != a + 1]
    if gaps:
        raise SplitError(f"frames in {frames_dir} are not consecutive (frame {gaps[0] + 1} is missing); "
                         "rerun util/noscope_video_save.py to complete them")
    if not (frames_dir / COMPLETE_MARKER).exists():
        print(f"warning: {frames_dir} has no {COMPLETE_MARKER} marker; if util/noscope_video_save.py "
              "was interrupted, rerun it first", file=sys.stderr)
    return nums


def split_frames(frames: list[int], chunks: int, first_chunk: int) -> dict[str, list[int]]:
    """Three consecutive chunks of ``len(frames) // chunks`` frames from chunk ``first_chunk``."""
    size = len(frames) // chunks
    if size == 0:
        raise SplitError(f"{len(frames)} frames cannot be cut into {chunks} chunks; save more frames")
    return {s: frames[(first_chunk + i) * size:(first_chunk + i + 1) * size] for i, s in enumerate(SPLITS)}


def _place(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # frames never change after writing, so a hard link is a safe copy
    except OSError:
        shutil.copyfile(src, dst)


def make_split(name: str, out_dir: Path, csv: Path, frames_dir: Path, force: bool = False,
               progress: bool = True) -> dict[str, tuple[int, int]]:
    """Write the split; returns {split: (frames, positive frames)}."""
    facts = get_task("noscope-" + name).data["noscope"]
    chunks, first = int(facts["chunks"]), int(facts["first_chunk"])
    if first + len(SPLITS) > chunks:
        raise TaskError(f"noscope-{name}: first_chunk {first} + 3 splits exceeds {chunks} chunks")
    if out_dir.exists() and not force:
        raise SplitError(f"{out_dir} already exists; delete it or pass --force to replace it")
    positives = positive_frames(csv, facts["object"])
    parts = split_frames(list_frames(frames_dir), chunks, first)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    stats = {}
    try:
        for split, frames in parts.items():
            for label in ("0", "1"):
                (tmp / split / label).mkdir(parents=True)
            for f in tqdm(frames, desc=f"{name} {split}", unit="frame", disable=not progress, leave=False):
                _place(frames_dir / f"{f}.png", tmp / split / ("1" if f in positives else "0") / f"{f}.png")
            for label in ("0", "1"):  # an empty class folder is not a class
                d = tmp / split / label
                if not any(d.iterdir()):
                    d.rmdir()
            stats[split] = (len(frames), sum(f in positives for f in frames))
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stats


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=[n.removeprefix("noscope-") for n in task_names("noscope")],
                   help="NoScope task; its object and chunking come from config/noscope-<name>/")
    p.add_argument("out_dir", type=Path, metavar="OUTDIR", help="output folder (training default: data/noscope-<name>-subset)")
    p.add_argument("--infile", type=Path, required=True, metavar="LABELS.csv", help="label CSV (frame,object_name,...)")
    p.add_argument("--indir", type=Path, required=True, metavar="FRAMES_DIR", help="folder of <frame_no>.png frames")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--print_stats", action="store_true", help="print the fraction of positive frames per split")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    stats = make_split(args.name, args.out_dir, args.infile, args.indir, args.force, not args.quiet)
    print(f"wrote {args.out_dir} ({', '.join(f'{s}: {n}' for s, (n, _) in stats.items())} frames)")
    if args.print_stats:
        for split, (n, pos) in stats.items():
            print(f"{split}: {pos}/{n} positive ({100 * pos / n:.1f}%)")
    return stats


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (TaskError, SplitError, OSError) as exc:
        sys.exit(f"error: {exc}")
