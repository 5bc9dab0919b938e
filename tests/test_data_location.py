"""Where game data is found: the one rule of config/tasks.py (Task.data_candidates).

The released code's README puts the un-tarred archive at ``export DATA_ROOT=/path/to/game_data``
and its Docker mount at the repository's ``data_root/``; ours at ``data/game_data/`` or under
``--data-root``. Every one of them must work.
"""
from __future__ import annotations

import pytest

import config.tasks as tasks
from config.tasks import get_task
from datasets import load_split
from fakes import write_image_folder

from conftest import run_cli

V1 = "lol/goldnumber-fraction"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """An un-tarred archive: <game>/<task>/{train,val,test}/<class>/*.png directly inside."""
    root = tmp_path_factory.mktemp("game_data")
    write_image_folder(root / V1, V1, per_class=(2, 1, 1))
    return root


def test_data_root_variable_is_the_archive(archive, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", str(archive))
    assert get_task(V1).data_dir() == archive / V1
    assert len(load_split(V1, "train", progress=False)) == 2 * 11


def test_repository_data_root_folder_as_the_docker_mount(archive, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "REPO_ROOT", tmp_path)  # a fresh clone: no data/game_data
    monkeypatch.setattr(tasks, "RELEASED_DATA_DIR", archive)
    assert get_task(V1).data_dir() == archive / V1
    assert len(load_split(V1, "test", progress=False)) == 11


def test_data_root_flag_takes_our_layout_or_the_archive(archive, tmp_path):
    assert get_task(V1).data_dir(archive) == archive / V1  # the archive itself
    ours = tmp_path / "game_data" / V1
    write_image_folder(ours, V1, per_class=(1, 1, 1))
    assert get_task(V1).data_dir(tmp_path) == ours  # stands in for data/
    assert get_task("cifar10").data_candidates(tmp_path) == [tmp_path / "cifar10"]


def test_order_and_where_missing_data_is_made(tmp_path, monkeypatch):
    t = get_task(V1)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "env"))
    assert t.data_candidates() == [tmp_path / "env" / V1, t.data_path, tasks.RELEASED_DATA_DIR / V1]
    assert t.data_dir(tmp_path / "flag") == tmp_path / "flag" / "game_data" / V1  # the flag wins
    monkeypatch.delenv("DATA_ROOT")
    assert t.data_candidates()[0] == t.data_path
    assert get_task("noscope-coral").data_candidates() == [get_task("noscope-coral").data_path]


@pytest.mark.slow
def test_train_reads_data_root_from_the_environment(archive, tmp_path):
    p = run_cli("fold_trainer.py", V1, "1", str(tmp_path / "run"), "--device", "cpu", "--epochs", "1",
                "--batch-size", "8", "--no-progress", env={"DATA_ROOT": str(archive)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "run" / "done.json").exists()


def test_missing_data_names_every_place_looked(tmp_path):
    p = run_cli("train.py", str(tmp_path / "runs"), "--tasks", V1, "--folds", "1", "--device", "cpu",
                env={"DATA_ROOT": str(tmp_path / "nowhere")})
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert str(tmp_path / "nowhere" / V1) in p.stderr and "data_root" in p.stderr
