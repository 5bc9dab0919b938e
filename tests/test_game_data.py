"""The synthetic game-data generator: labels, layout, determinism, atomicity, CLI errors."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from config.tasks import get_task, task_names
from tests.conftest import assert_one_line_error, run_cli
from util.synth.game_render import find_fonts, make_image
from util.synth.game_text import OTHER, TEXT_SPECS, label_of, sample_text
from util.synth.game_data import (MARKER, GameDataError, class_counts, default_root,
                                 generate_task, is_complete)

SMALL = "apex/squad_count_v2"   # smallest images: fastest to generate
TINY = 0.003                    # -> the minimum of 3 images per class and split


def test_every_game_task_has_a_template():
    assert sorted(TEXT_SPECS) == sorted(task_names("game"))


@pytest.mark.parametrize("task,text,cls", [
    ("lol/goldnumber-fraction", "14.7k", "7"), ("lol/goldnumber-fraction", "07.3k", "3"),
    ("lol/goldnumber-fraction", "1450", OTHER), ("lol/goldnumber-fraction", "14k", OTHER),
    ("lol/goldnumber-int", "14.7k", "14"), ("lol/goldnumber-int", "7.3k", "7"),
    ("lol/goldnumber-int", "07.3k", "07"), ("lol/goldnumber-int", "850", OTHER),
    ("lol/timer-minutes", "07:45", "07"), ("lol/timer-minutes", "60:00", "60"),
    ("lol/timer-minutes", "61:00", OTHER), ("lol/timer-minutes", "--:--", OTHER),
    ("sot/coin_count-digits_3_4-v2", "10,438", "10"), ("sot/coin_count-digits_3_4-v2", "1,005", "1"),
    ("sot/coin_count-digits_3_4-v2", "438", OTHER), ("sot/coin_count-digits_3_4-v2", "15,000", OTHER),
    ("sot/timer3", "17m", "17"), ("sot/timer3", "0m", "0"), ("sot/timer3", "26m", OTHER),
    ("sot/timer3", "45s", OTHER),
    ("apex/squad_count_v2", "12", "12"), ("apex/squad_count_v2", "0", "0"),
    ("apex/squad_count_v2", "21", OTHER), ("apex/squad_count_v2", "--", OTHER),
])
def test_known_values_get_the_right_class(task, text, cls):
    assert label_of(task, text) == cls


@pytest.mark.parametrize("name", sorted(TEXT_SPECS))
def test_sampled_text_reads_back_as_its_class(name):
    rng = np.random.default_rng(0)
    for cls in get_task(name).classes:
        for _ in range(15):
            text = sample_text(name, cls, rng)
            assert label_of(name, text) == cls, (cls, text)


@pytest.mark.parametrize("name", sorted(TEXT_SPECS))
def test_images_have_the_task_size(name):
    t = get_task(name)
    rng = np.random.default_rng(1)
    for cls in (t.classes[0], t.classes[-2], OTHER):
        img = make_image(name, cls, t.height, t.width, rng, find_fonts())
        assert img.shape == (t.height, t.width, 3) and img.dtype == np.uint8
        assert img.std() > 0 or cls == OTHER


def test_default_root_comes_from_the_registry():
    for name in task_names("game"):
        assert default_root() / name == get_task(name).data_path


def test_counts_follow_the_paper_and_scale():
    t = get_task("lol/goldnumber-fraction")
    assert class_counts(t) == {"train": 10000, "val": 100, "test": 100}
    assert class_counts(t, 0.01) == {"train": 100, "val": 3, "test": 3}
    with pytest.raises(GameDataError):
        class_counts(t, 0)


def _files(task_dir):
    return sorted(p.relative_to(task_dir) for p in task_dir.rglob("*.png"))


def test_tiny_run_makes_every_class_with_marker(tmp_path):
    t = get_task(SMALL)
    d = generate_task(SMALL, tmp_path, scale=TINY, seed=0, workers=2, progress=False)
    assert d == tmp_path / SMALL and is_complete(d)
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (d / split).iterdir()) == sorted(t.classes)
        for cls in t.classes:
            pngs = sorted((d / split / cls).glob("*.png"))
            assert [p.name for p in pngs] == ["0.png", "1.png", "2.png"]
    img = cv2.imread(str(d / "train" / "12" / "0.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (t.height, t.width, 3)
    marker = json.loads((d / MARKER).read_text())
    assert marker["seed"] == 0 and marker["scale"] == TINY and marker["task"] == SMALL
    assert marker["counts"]["val"]["12"] == 3
    assert not list(d.glob(".*.tmp")) and not (d / ".generating").exists()


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = generate_task(SMALL, tmp_path / "a", scale=TINY, seed=3, workers=1, progress=False)
    b = generate_task(SMALL, tmp_path / "b", scale=TINY, seed=3, workers=2, progress=False)
    c = generate_task(SMALL, tmp_path / "c", scale=TINY, seed=4, workers=1, progress=False)
    assert _files(a) == _files(b)
    for rel in _files(a)[::25]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert any((a / rel).read_bytes() != (c / rel).read_bytes() for rel in _files(a)[::25])


def test_rerun_skips_and_force_regenerates(tmp_path):
    d = generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1)
    probe = d / "test" / "5" / "1.png"
    os.utime(probe, (1, 1))
    generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1)
    assert probe.stat().st_mtime == 1                      # skipped
    generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1, force=True)
    assert probe.stat().st_mtime != 1 and is_complete(d)   # rewritten


def test_interrupted_split_is_not_complete_and_is_redone(tmp_path):
    d = generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1)
    (d / MARKER).unlink()                                   # killed before the marker ...
    (d / "train").rename(d / ".train.tmp")                  # ... while train was being written
    (d / ".train.tmp" / "3" / "0.png").unlink()
    assert not is_complete(d)
    generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1)
    assert is_complete(d) and not (d / ".train.tmp").exists()
    assert (d / "train" / "3" / "0.png").exists()


def test_foreign_data_is_not_overwritten_without_force(tmp_path):
    d = tmp_path / SMALL
    (d / "train" / "3").mkdir(parents=True)
    (d / "train" / "3" / "real.png").write_bytes(b"x")
    with pytest.raises(GameDataError, match="--force"):
        generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1)
    assert (d / "train" / "3" / "real.png").exists()
    generate_task(SMALL, tmp_path, scale=TINY, progress=False, workers=1, force=True)
    assert is_complete(d) and not (d / "train" / "3" / "real.png").exists()


def test_cli_bad_task_is_one_line(tmp_path):
    proc = run_cli("util/make_game_data.py", str(tmp_path), "--tasks", "lol/nope")
    assert_one_line_error(proc, "lol/nope", "valid game tasks", "lol/goldnumber-fraction")
    proc = run_cli("util/make_game_data.py", str(tmp_path), "--scale", "0")
    assert_one_line_error(proc, "--scale")
    assert not any(tmp_path.iterdir())


def test_cli_tiny_run(tmp_path):
    proc = run_cli("util/make_game_data.py", str(tmp_path), "--tasks", "sot/coin_count-digits_3_4-v2",
                   "--scale", "0.001", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "sot/coin_count-digits_3_4-v2"
    assert is_complete(d) and len(_files(d)) == 15 * 9
