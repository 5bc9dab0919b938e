"""The datasets package: image folders with their cache, CIFAR in its real archive format,
transforms, the curriculum and distillation targets."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import datasets.image_folder as image_folder
from datasets.cifar import network_reachable as real_network_reachable  # before conftest fakes it
from config.tasks import get_task
from datasets import (CurriculumSchedule, DatasetError, ImageSet, augment, load_split,
                      teacher_logits, to_float)
from datasets.transforms import horizontal_flip, random_crop
from fakes import write_cifar10, write_cifar100
from models import build_model

GAME = "apex/squad_count_v2"  # 19 x 25, classes "0".."20", "other"


def write_folder(root: Path, task_name: str, per_class: dict[str, int], split: str = "train",
                 seed: int = 0) -> None:
    task = get_task(task_name)
    rng = np.random.default_rng(seed)
    for cls, n in per_class.items():
        d = root / split / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 256, (task.height, task.width, 3), dtype=np.uint8)
            assert cv2.imwrite(str(d / f"{i}.png"), img)


# ---------------------------------------------------------------- image folders

def test_image_folder_shapes_labels_and_rgb(tmp_path):
    task = get_task(GAME)
    write_folder(tmp_path, GAME, {"3": 2, "other": 3})
    blue = np.zeros((task.height, task.width, 3), np.uint8)
    blue[..., 0] = 255  # BGR on disk
    cv2.imwrite(str(tmp_path / "train" / "3" / "9.png"), blue)
    data = load_split(GAME, "train", tmp_path, progress=False)
    assert isinstance(data, ImageSet) and len(data) == 6
    assert data.images.dtype == torch.uint8 and data.images.is_contiguous()
    assert data.images.shape == (6, 3, task.height, task.width)
    assert data.labels.dtype == torch.int64
    assert sorted(data.labels.tolist()) == [task.classes.index("3")] * 3 + [task.classes.index("other")] * 3
    assert data.classes == task.classes
    i = next(k for k in range(6) if data.labels[k] == task.classes.index("3")
             and data.images[k, 2].min() == 255)
    assert data.images[i, :2].max() == 0  # blue lands in the RGB blue channel
    sub = data.subset(data.labels == task.classes.index("other"))
    assert len(sub) == 3 and set(sub.labels.tolist()) == {task.classes.index("other")}


def test_cache_written_reused_and_invalidated(tmp_path, monkeypatch):
    write_folder(tmp_path, GAME, {"0": 3, "1": 2})
    first = load_split(GAME, "train", tmp_path, progress=False)
    assert (tmp_path / ".cache" / "train.pt").is_file()

    def no_decode(*a, **k):
        raise AssertionError("decoded although the cache matches")
    monkeypatch.setattr(image_folder, "decode_pngs", no_decode)
    again = load_split(GAME, "train", tmp_path, progress=False)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)

    monkeypatch.undo()
    calls = []
    real = image_folder.decode_pngs
    monkeypatch.setattr(image_folder, "decode_pngs", lambda *a, **k: calls.append(1) or real(*a, **k))
    task = get_task(GAME)
    path = tmp_path / "train" / "1" / "0.png"
    cv2.imwrite(str(path), np.full((task.height, task.width, 3), 7, np.uint8))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = load_split(GAME, "train", tmp_path, progress=False)
    assert calls == [1]
    assert (changed.images == 7).all(dim=(1, 2, 3)).sum() == 1


def test_cache_is_readable_by_all_whatever_the_umask(tmp_path):
    write_folder(tmp_path, GAME, {"0": 2})
    old = os.umask(0o077)
    try:
        load_split(GAME, "train", tmp_path, progress=False)
    finally:
        os.umask(old)
    assert (tmp_path / ".cache" / "train.pt").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in (tmp_path / ".cache").iterdir()] == ["train.pt"]  # no temporary left


def test_corrupt_cache_is_rebuilt(tmp_path, capsys):
    write_folder(tmp_path, GAME, {"0": 2})
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "train.pt").write_bytes(b"not a torch file")
    data = load_split(GAME, "train", tmp_path, progress=False)
    assert len(data) == 2
    err = capsys.readouterr().err
    assert "warning" in err and "train.pt" in err and len(err.strip().splitlines()) == 1
    blob = torch.load(tmp_path / ".cache" / "train.pt", weights_only=True)
    assert torch.equal(blob["images"], data.images)


def test_corrupt_png_names_the_file(tmp_path):
    write_folder(tmp_path, GAME, {"0": 2})
    bad = tmp_path / "train" / "0" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DatasetError, match="broken.png"):
        load_split(GAME, "train", tmp_path, progress=False)


def test_wrong_image_size_names_the_file(tmp_path):
    write_folder(tmp_path, GAME, {"0": 1})
    cv2.imwrite(str(tmp_path / "train" / "0" / "big.png"), np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"big\.png is 50x50 .* 19x25"):
        load_split(GAME, "train", tmp_path, progress=False)


def test_empty_and_unknown_class_folders(tmp_path):
    write_folder(tmp_path, GAME, {"0": 1})
    (tmp_path / "train" / "5").mkdir()
    with pytest.raises(DatasetError, match=r"train/5 holds no \.png"):
        load_split(GAME, "train", tmp_path, progress=False)
    (tmp_path / "train" / "5").rmdir()
    write_folder(tmp_path, GAME, {"0": 1}, split="val")
    (tmp_path / "val" / "cat").mkdir()
    with pytest.raises(DatasetError, match=r"unknown class folder .*cat.*valid classes: 0, 1, 10"):
        load_split(GAME, "val", tmp_path, progress=False)


def test_missing_data_gives_how_to(tmp_path):
    with pytest.raises(DatasetError, match=r"make_game_data\.py") as exc:
        load_split(GAME, "train", tmp_path / "nothing", progress=False)
    assert "\n" not in str(exc.value)
    with pytest.raises(DatasetError, match=r"make_noscope_video\.py taipei .*noscope_split\.py taipei"):
        load_split("noscope-taipei", "test", tmp_path, progress=False)


def test_bad_split_name(tmp_path):
    with pytest.raises(DatasetError, match="unknown split 'valid'; valid splits: train, val, test"):
        load_split(GAME, "valid", tmp_path)


# ---------------------------------------------------------------- CIFAR in its real format

@pytest.fixture
def no_md5(monkeypatch):
    """A tiny archive cannot match the real files' MD5 sums, which torchvision checks."""
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)


def test_cifar10_splits_and_layout(tmp_path, no_md5):
    write_cifar10(tmp_path)
    train = load_split("cifar10", "train", tmp_path, fold=4, val_images=5, progress=False)
    val = load_split("cifar10", "val", tmp_path, fold=4, val_images=5, progress=False)
    test = load_split("cifar10", "test", tmp_path, fold=4, val_images=5, progress=False)
    assert (len(train), len(val), len(test)) == (22, 8, 10)  # the next multiple of 4 above 5
    assert len(load_split("cifar10", "val", tmp_path, fold=3, val_images=5, progress=False)) == 6
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8
    ids = torch.cat([train.images[:, 0, 0, 0], val.images[:, 0, 0, 0]]).tolist()
    assert sorted(ids) == list(range(30))  # disjoint, together the official training set
    for data in (train, val, test):
        i = data.images[:, 0, 0, 0].long()
        assert torch.equal(data.labels, i % 10)
        assert torch.equal(data.images[:, 1, 5, 5].long(), 100 + i)
        assert data.images[:, :, 0, 1].tolist() == [[250, 251, 252]] * len(data)
    again = load_split("cifar10", "val", tmp_path, fold=4, val_images=5, progress=False)
    assert torch.equal(again.images, val.images)  # the split is fixed


def test_cifar_validation_size_is_the_released_rule():
    from datasets.cifar import validation_size
    assert [validation_size(get_task("cifar10"), f) for f in (1, 2, 3, 4)] == [5001, 5002, 5001, 5004]


def test_cifar100_and_tar_archive(tmp_path, no_md5):
    src = tmp_path / "src"
    write_cifar100(src)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-100-python", arcname="cifar-100-python")
    val = load_split("cifar100", "val", root, fold=2, val_images=3, progress=False)
    train = load_split("cifar100", "train", root, fold=2, val_images=3, progress=False)
    assert (root / "cifar-100-python" / "train").is_file()  # extracted in place
    assert (len(train), len(val)) == (21, 4)
    assert len(load_split("cifar100", "test", root, progress=False)) == 7
    assert torch.equal(train.labels, train.images[:, 0, 0, 0].long() % 100)


def test_cifar_downloads_through_torchvision_when_online(tmp_path, monkeypatch, no_md5):
    import datasets.cifar as cifar
    calls = []

    def fake_download(cls, root):  # what torchvision leaves behind: the extracted folder
        calls.append((cls, root))
        write_cifar10(root)

    monkeypatch.setattr(cifar, "network_reachable", lambda url, timeout=5.0: url == cifar.ARCHIVES["cifar10"].url)
    monkeypatch.setattr(cifar, "download_archive", fake_download)
    test = load_split("cifar10", "test", tmp_path / "c10", progress=False)
    assert len(test) == 10 and calls == [(cifar.ARCHIVES["cifar10"], tmp_path / "c10")]
    load_split("cifar10", "test", tmp_path / "c10", progress=False)
    assert len(calls) == 1  # downloaded once


def test_cifar_failed_download_is_one_line(tmp_path, monkeypatch):
    import urllib.error

    import datasets.cifar as cifar

    def broken(cls, root):
        raise urllib.error.URLError("connection reset")

    monkeypatch.setattr(cifar, "network_reachable", lambda url, timeout=5.0: True)
    monkeypatch.setattr(cifar, "download_archive", broken)
    with pytest.raises(DatasetError, match="download of .*cifar-100-python.tar.gz failed") as exc:
        load_split("cifar100", "train", tmp_path)
    assert "\n" not in str(exc.value)


def test_network_probe_is_a_connection_attempt():
    import socket
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert real_network_reachable(f"http://127.0.0.1:{port}/x.tar.gz", timeout=2)
    assert not real_network_reachable(f"http://127.0.0.1:{port}/x.tar.gz", timeout=2)  # closed now


def test_cifar_missing_and_corrupt(tmp_path):
    with pytest.raises(DatasetError) as exc:
        load_split("cifar10", "train", tmp_path)
    msg = str(exc.value)
    assert "CIFAR-10 not found under" in msg and "cifar-10-python.tar.gz" in msg and "\n" not in msg
    assert "not reachable" in msg  # offline (conftest): no download was tried
    write_cifar10(tmp_path)  # wrong MD5 sums: torchvision refuses, we say so in one line
    with pytest.raises(DatasetError, match="incomplete or corrupted"):
        load_split("cifar10", "train", tmp_path)


# ---------------------------------------------------------------- transforms

def test_to_float_normalises_with_task_values():
    cifar, game = get_task("cifar10"), get_task(GAME)
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    mean, std = cifar.data.normalize.mean, cifar.data.normalize.std
    y = to_float(x, cifar)
    assert y.dtype == torch.float32
    for c in range(3):
        assert torch.allclose(y[:, c], torch.tensor((1 - mean[c]) / std[c]))
    assert torch.equal(to_float(torch.full((1, 3, 2, 2), 51, dtype=torch.uint8), game),
                       torch.full((1, 3, 2, 2), 0.2))


def test_augment_identity_for_game_and_random_for_cifar():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(augment(x, get_task(GAME)), x)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    y = augment(x, get_task("cifar10"), g1)
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert not torch.equal(y, x)
    assert torch.equal(y, augment(x, get_task("cifar10"), g2))  # reproducible with a seeded generator


def test_flip_and_crop_on_a_hand_made_example():
    x = torch.arange(6, dtype=torch.uint8).view(1, 1, 2, 3)
    assert horizontal_flip(x, p=1.0).tolist() == [[[[2, 1, 0], [5, 4, 3]]]]
    assert torch.equal(horizontal_flip(x, p=0.0), x)
    crops = random_crop(x.repeat(20, 1, 1, 1), size=2, padding=0, generator=torch.Generator().manual_seed(0))
    lefts = {c[0, 0, 0].item() for c in crops}
    assert lefts == {0, 1}  # a 2x2 window of a 2x3 image starts at column 0 or 1
    for c in crops:
        left = c[0, 0, 0].item()
        assert torch.equal(c, x[0, :, :, left:left + 2])
    img = (torch.arange(32 * 32) % 251 + 1).to(torch.uint8).view(1, 1, 32, 32).repeat(200, 3, 1, 1)
    out = random_crop(img, size=32, padding=4, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(img[0], (4, 4, 4, 4))
    windows = {(t, l): padded[:, t:t + 32, l:l + 32] for t in range(9) for l in range(9)}
    seen = set()
    for o in out:
        match = [k for k, w in windows.items() if torch.equal(o, w)]
        assert len(match) == 1, "every crop is exactly one window of the zero-padded image"
        seen.add(match[0])
    assert len(seen) > 40  # offsets are per image, not one for the batch


# ---------------------------------------------------------------- curriculum

def test_curriculum_schedule_follows_the_recipe():
    s = CurriculumSchedule("lol/goldnumber-fraction", 4)
    assert [s.active_classes(e) for e in (0, 59, 60, 119, 120)] == [4, 4, 5, 5, 6]
    assert s.active_classes(10**4) == 11
    assert s.describe(0) == "curriculum: 4/11 classes (next +1 at epoch 60)"
    assert CurriculumSchedule("lol/goldnumber-fraction", 1).active_classes(0) == 11
    t = CurriculumSchedule("lol/timer-minutes", 4)  # max(K // 20, f), K // 20 more every 120 epochs
    assert [t.active_classes(e) for e in (0, 119, 120)] == [4, 4, 7]
    assert CurriculumSchedule("cifar100", 4).active_classes(0) == 100  # no curriculum in its recipe


def test_curriculum_scaled_to_a_shorter_run():
    """60 epochs instead of 1500: the same schedule on a 25x compressed time axis."""
    s = CurriculumSchedule("lol/goldnumber-fraction", 4, epochs=60)
    full = CurriculumSchedule("lol/goldnumber-fraction", 4)
    assert [s.active_classes(e) for e in (0, 2, 3, 59)] == [full.active_classes(e * 25) for e in (0, 2, 3, 59)]
    assert s.active_classes(2) == 4 and s.active_classes(3) == 5 and s.active_classes(59) == 11
    assert s.describe(0) == "curriculum: 4/11 classes (next +1 at epoch 3)"


# ---------------------------------------------------------------- distillation

def test_teacher_logits_match_a_direct_forward():
    task = get_task("noscope-coral")
    torch.manual_seed(0)
    teacher = build_model(task, 1)
    teacher.train()
    data = ImageSet(torch.randint(0, 256, (10, 3, 50, 50), dtype=torch.uint8), torch.zeros(10, dtype=torch.long),
                    task.classes, "t")
    logits = teacher_logits(teacher, data, task, batch_size=4)
    assert teacher.training  # mode restored
    with torch.no_grad():
        want = teacher.eval()(data.images.float() / 255)
    assert logits.shape == (10, 2) and logits.dtype == torch.float32
    assert torch.allclose(logits, want, atol=1e-5)


def test_teacher_sees_normalised_images():
    task = get_task("cifar10")
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    data = ImageSet(torch.randint(0, 256, (9, 3, 32, 32), dtype=torch.uint8), torch.arange(9) % 10,
                    task.classes, "t")
    logits = teacher_logits(teacher, data, task, batch_size=4)
    with torch.no_grad():
        assert torch.allclose(logits, teacher(to_float(data.images, task)), atol=1e-5)
