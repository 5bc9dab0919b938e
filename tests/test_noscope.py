"""NoScope tools: synthetic video -> frames -> labelled split -> load_split, plus their
label rule and one-line errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from config.tasks import TaskError, get_task
from datasets import load_split
from tests.conftest import assert_one_line_error, run_cli
from util.noscope.labels import CSV_COLUMNS, positive_frames
from util.noscope.split import make_split
from util.noscope.tasks import NoScopeError, noscope_names, noscope_task

NOSCOPE_CSV_HEADER = "frame,object_name,confidence,xmin,ymin,xmax,ymax"


def test_synthetic_video_to_training_data(tmp_path):
    video, csv, frames, out = tmp_path / "v.mp4", tmp_path / "v.csv", tmp_path / "frames", tmp_path / "subset"
    p = run_cli("util/make_noscope_video.py", "night", str(video), str(csv), "--frames", "300", "--quiet")
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(csv)
    assert list(df.columns) == NOSCOPE_CSV_HEADER.split(",") == list(CSV_COLUMNS)
    assert {"car"} < set(df.object_name)  # the task's object and distractors
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 300
    positive = df.loc[df.object_name == "car", "frame"].nunique() / 300
    assert 0.1 <= positive <= 0.45, positive

    p = run_cli("util/noscope_video_save.py", str(video), str(frames), "--quiet")
    assert p.returncode == 0, p.stderr
    assert len(list(frames.glob("*.png"))) == 300 and (frames / ".complete").is_file()

    p = run_cli("util/noscope_split.py", "night", str(out), "--infile", str(csv), "--indir", str(frames),
                "--print_stats", "--quiet")
    assert p.returncode == 0, p.stderr
    assert "train:" in p.stdout and "positive" in p.stdout
    task = get_task("noscope-night")  # 8 chunks of 37 frames, train/val/test = chunks 1, 2, 3
    train = load_split(task, "train", out, progress=False)
    assert train.images.shape == (37, 3, 50, 50)
    assert set(train.labels.tolist()) == {0, 1}
    names = sorted(int(f.stem) for f in (out / "train").rglob("*.png"))
    assert names == list(range(37, 74))
    for split in ("val", "test"):
        assert len(load_split(task, split, out, progress=False)) == 37
    want_pos = set(df.loc[df.object_name == "car", "frame"])
    for f in (out / "test").rglob("*.png"):
        assert (f.parent.name == "1") == (int(f.stem) in want_pos)


def _tiny_frames(d: Path, n: int) -> None:
    d.mkdir()
    for i in range(n):
        cv2.imwrite(str(d / f"{i}.png"), np.full((50, 50, 3), i, np.uint8))


def test_label_rule_on_a_hand_written_csv(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text(NOSCOPE_CSV_HEADER + ",extra\n"
                   "11,person,0.9,1,2,3,4,x\n"
                   "11,car,0.8,1,2,3,4,x\n"
                   "12,bus,0.9,1,2,3,4,x\n"      # another object only: negative
                   "14, person,0.5,1,2,3,4,x\n"  # spaces as in some exports
                   "15,personal,0.9,1,2,3,4,x\n")  # not the object
    assert positive_frames(csv, "person") == {11, 14}
    _tiny_frames(tmp_path / "frames", 16)
    out = tmp_path / "out"
    # coral: 8 chunks of 2 frames; train/val/test = chunks 5, 6, 7
    stats = make_split("coral", out, csv, tmp_path / "frames", progress=False)
    assert stats == {"train": (2, 1), "val": (2, 0), "test": (2, 1)}
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert files == ["test/0/15.png", "test/1/14.png", "train/0/10.png", "train/1/11.png",
                     "val/0/12.png", "val/0/13.png"]
    with pytest.raises(NoScopeError, match="already exists"):
        make_split("coral", out, csv, tmp_path / "frames", progress=False)
    make_split("coral", out, csv, tmp_path / "frames", force=True, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_split_refuses_gaps_in_frames(tmp_path):
    _tiny_frames(tmp_path / "frames", 16)
    (tmp_path / "frames" / "7.png").unlink()
    csv = tmp_path / "l.csv"
    csv.write_text(NOSCOPE_CSV_HEADER + "\n")
    with pytest.raises(NoScopeError, match="frame 7 is missing"):
        make_split("coral", tmp_path / "out", csv, tmp_path / "frames", progress=False)
    assert not (tmp_path / "out").exists()


def test_csv_without_needed_columns_is_one_line(tmp_path):
    _tiny_frames(tmp_path / "frames", 16)
    csv = tmp_path / "l.csv"
    csv.write_text("frame_id,label\n1,person\n")
    p = run_cli("util/noscope_split.py", "coral", str(tmp_path / "out"), "--infile", str(csv),
                "--indir", str(tmp_path / "frames"))
    assert_one_line_error(p, "lacks column(s) frame, object_name", str(csv))


def test_unreadable_video_is_one_line(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    p = run_cli("util/noscope_video_save.py", str(bad), str(tmp_path / "frames"))
    assert_one_line_error(p, "cannot read video", "bad.mp4")
    p = run_cli("util/noscope_video_save.py", str(tmp_path / "none.mp4"), str(tmp_path / "frames"))
    assert_one_line_error(p, "not found")


def test_video_is_deterministic_and_frames_resume(tmp_path):
    for k in (1, 2):
        p = run_cli("util/make_noscope_video.py", "taipei", str(tmp_path / f"{k}.mp4"), str(tmp_path / f"{k}.csv"),
                    "--frames", "32", "--seed", "3", "--quiet")
        assert p.returncode == 0, p.stderr
    assert (tmp_path / "1.csv").read_text() == (tmp_path / "2.csv").read_text()
    frames = tmp_path / "frames"
    assert run_cli("util/noscope_video_save.py", str(tmp_path / "1.mp4"), str(frames), "--quiet").returncode == 0
    before = (frames / "5.png").read_bytes()
    (frames / "5.png").unlink()
    (frames / ".complete").unlink()  # as after an interrupted run
    assert run_cli("util/noscope_video_save.py", str(tmp_path / "1.mp4"), str(frames), "--quiet").returncode == 0
    assert (frames / "5.png").read_bytes() == before and (frames / ".complete").is_file()
    assert len(list(frames.glob("*.png"))) == 32 and not list(frames.glob(".*.tmp"))


def test_short_names_come_from_the_registry():
    assert noscope_names() == ["coral", "night", "roundabout", "taipei"]
    assert noscope_task("taipei").name == "noscope-taipei"
    with pytest.raises(TaskError, match="unknown NoScope task 'reef'; valid: coral, night"):
        noscope_task("reef")
