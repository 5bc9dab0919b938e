#!/usr/bin/env python3
"""Label NoScope frames and split them into train/val/test image folders.

Label rule (paper section 5): a frame is class 1 when any row of the label CSV for that
frame names the task's object (coral: person, night and roundabout: car, taipei: bus),
else class 0. The frames in FRAMES_DIR (``<frame_no>.png``, consecutive numbers, as
written by ``util/noscope_video_save.py``) are cut into ``chunks`` equal contiguous
chunks; three consecutive chunks, starting at chunk ``first_chunk``, become train, val
and test. Object, chunks and first chunk come from ``config/noscope-<name>/``.

Output: ``OUTDIR/{train,val,test}/{0,1}/<frame_no>.png``, built in a temporary folder and
swapped in when complete (rule and layout: ``util/noscope/split.py``). Training reads
``data/noscope-<name>-subset/`` by default, so use that as OUTDIR unless you pass the path
to training.

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

from config.tasks import TaskError  # noqa: E402
from util.cli import run_command  # noqa: E402
from util.noscope.split import make_split  # noqa: E402
from util.noscope.tasks import NoScopeError, noscope_names  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=noscope_names(),
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
    run_command(main, get_args_parser, errors=(TaskError, NoScopeError, OSError))
