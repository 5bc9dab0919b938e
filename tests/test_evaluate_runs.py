"""util/evaluate_runs.py: trained checkpoints evaluated on new data, and the report's section of them."""
from __future__ import annotations

import pytest
import torch

from conftest import REPO, assert_one_line_error, run_cli
from fakes import write_image_folder

from config.tasks import get_task
from datasets import load_split, to_float
from models import build_model
from util.training.checkpoint import save_best
from util.training.errors import TrainError
from util.training.layout import BEST, CURRENT, run_dir, write_done
from util.training.run_eval import MISSING, OK, evaluate_runs, format_eval_csv, read_eval_csv, write_eval_csv

TASK = "lol/goldnumber-fraction"


@pytest.fixture
def shipped(tmp_path):
    """A savedir with V1 f=1 (finished: done.json) and f=2 checkpoints, no f=4 run; tiny data."""
    data = tmp_path / "data"
    write_image_folder(data / TASK, TASK, per_class=(1, 1, 2))
    save = tmp_path / "runs"
    task = get_task(TASK)
    for fold in (1, 2):
        torch.manual_seed(fold)
        model = build_model(task, fold)
        run = run_dir(save, TASK, fold)
        run.mkdir(parents=True)
        save_best(run / BEST, model, 7, 50.0, {"task": TASK, "fold": fold, "channel_align": 1,
                                                "scaling": "fold", "band_limit": None})
    write_done(run_dir(save, TASK, 1), {"test_top1": 91.5, "epochs": 1500})
    return save, data


def test_rows_hold_the_accuracy_on_this_data_and_say_which_runs_are_missing(shipped):
    save, data = shipped
    rows = evaluate_runs(save, [TASK], [1, 2, 4], data)
    assert [(r["fold"], r["status"]) for r in rows] == [(1, OK), (2, OK), (4, MISSING)]
    # f=1 by hand: every test image alone through the same weights
    task = get_task(TASK)
    test = load_split(task, "test", data / TASK, progress=False)
    torch.manual_seed(1)
    model = build_model(task, 1).eval()
    with torch.no_grad():
        hand = 100 * float((model(to_float(test.images, task)).argmax(1) == test.labels).float().mean())
    assert rows[0]["test_top1"] == pytest.approx(hand, abs=0.01)
    assert rows[0]["images"] == len(test) == 2 * task.num_classes
    assert rows[0]["trained_test_top1"] == 91.5 and rows[0]["trained_epochs"] == 1500
    assert rows[0]["checkpoint_epoch"] == 7 and rows[1]["trained_test_top1"] is None
    assert rows[2]["test_top1"] is None


def test_csv_round_trip_and_a_foreign_csv_is_refused(shipped, tmp_path):
    rows = evaluate_runs(shipped[0], [TASK], [1, 4], shipped[1])
    path = tmp_path / "eval.csv"
    write_eval_csv(path, rows)
    back = read_eval_csv(path)
    assert [(r["fold"], r["status"], r["test_top1"]) for r in back] == [(r["fold"], r["status"], r["test_top1"])
                                                                         for r in rows]
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TrainError, match="lacks column.*written by util/evaluate_runs.py"):
        read_eval_csv(tmp_path / "other.csv")


def test_a_checkpoint_of_another_network_is_a_one_line_error(shipped):
    save, data = shipped
    src = run_dir(save, TASK, 1) / BEST
    (run_dir(save, TASK, 2) / BEST).write_bytes(src.read_bytes())  # an f=1 model in the f=2 folder
    bad = run_cli("util/evaluate_runs.py", str(save), "--folds", "2", "--data-root", str(data))
    assert_one_line_error(bad, "holds lol/goldnumber-fraction f=1, not lol/goldnumber-fraction f=2")


def test_cli_and_report_section(shipped, tmp_path):
    save, data = shipped
    csv_path = tmp_path / "eval.csv"
    p = run_cli("util/evaluate_runs.py", str(save), "--folds", "1", "2", "4", "--data-root", str(data),
                "--csv", str(csv_path))
    assert p.returncode == 0, p.stderr
    assert "f=4: no best.pth in this checkout" in p.stdout and "(its own test split: 91.50%)" in p.stdout
    out = tmp_path / "rep" / "report.md"
    r = run_cli("util/report.py", str(REPO / "model_files" / "paper-h200"), "--checkpoint-eval", str(csv_path),
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    section = text[text.index("### Trained checkpoints on this run's data"):text.index("## 2.")]
    assert "| `lol/goldnumber-fraction` | V1 | 1 |" in section and "| 91.50 | 1500 / 1500 | 97.64 |" in section
    assert "No `best.pth` in this checkout for `lol/goldnumber-fraction` f = 4." in section
    missing = run_cli("util/report.py", str(REPO / "model_files" / "paper-h200"), "--checkpoint-eval",
                      str(tmp_path / "nope.csv"), "--out", str(out))
    assert_one_line_error(missing, "does not exist", "util/evaluate_runs.py")


def test_confusion_matrix_counts_every_image_once_and_its_diagonal_is_top1(shipped):
    from util.training.run_eval import confusion_matrix, confusion_summary, load_trained_model

    save, data = shipped
    task = get_task(TASK)
    test = load_split(task, "test", data / TASK, progress=False)
    for fold in (1, 2):
        model, _ = load_trained_model(run_dir(save, TASK, fold) / BEST)
        counts = confusion_matrix(model, TASK, fold, test)
        row = next(r for r in evaluate_runs(save, [TASK], [fold], data))
        assert counts.shape == (task.num_classes,) * 2 and int(counts.sum()) == len(test)
        assert counts.sum(1).tolist() == torch.bincount(test.labels, minlength=task.num_classes).tolist()
        assert 100 * float(counts.diag().sum()) / len(test) == pytest.approx(row["test_top1"], abs=0.01)
    counts = torch.tensor([[3, 1, 0], [0, 2, 2], [0, 0, 4]])
    text = confusion_summary(counts, ("a", "b", "c"), 5)
    assert "a 75%, b 50%, c 100%" in text and "b -> c: 2, a -> b: 1" in text and "c -> a" not in text


def test_evaluate_runs_cli_prints_confusions(shipped):
    save, data = shipped
    p = run_cli("util/evaluate_runs.py", str(save), "--folds", "1", "--data-root", str(data), "--confusions", "3")
    assert p.returncode == 0, p.stderr
    assert "per class:" in p.stdout and "most frequent mistakes:" in p.stdout


def test_position_top1_scores_each_place_of_the_group_on_its_own(monkeypatch):
    """Places follow predict's grouping (consecutive runs of f in its seeded order, the last group
    padded), and a network right only at place 0 scores 100% there and chance elsewhere."""
    from util.training.evaluate import Evaluator

    task, fold = get_task(TASK), 3
    classes, n = task.num_classes, 7 * 3 + 2
    ev = Evaluator(torch.nn.Identity(), task, fold, torch.device("cpu"))
    seq, pos = ev._sequence(n), ev.positions(n)
    assert len(seq) == 24 and seq[-1] == -1  # 23 images in 8 groups of 3, one blank
    assert all(int(pos[seq[k]]) == k % fold for k in range(n))
    labels = torch.arange(n) % classes
    right = torch.nn.functional.one_hot(labels, classes).float()
    always_zero = torch.nn.functional.one_hot(torch.zeros_like(labels), classes).float()
    monkeypatch.setattr(ev, "predict", lambda data: (torch.where((pos == 0)[:, None], right, always_zero), labels))
    top1 = ev.position_top1(None)
    assert top1[0] == 100.0
    for j in (1, 2):  # at places 1 and 2 only the images of class 0 are right
        assert top1[j] == pytest.approx(100 * float((labels[pos == j] == 0).float().mean()))


def test_evaluate_runs_cli_prints_top1_by_place_and_the_report_shows_it(shipped, tmp_path):
    save, data = shipped
    csv_path = tmp_path / "eval.csv"
    p = run_cli("util/evaluate_runs.py", str(save), "--folds", "1", "2", "--data-root", str(data), "--by-position",
                "--csv", str(csv_path))
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stdout.splitlines() if "by place in the group" in l]
    assert len(lines) == 1  # f=2 only: an original has one place
    rows = read_eval_csv(csv_path)
    assert rows[0]["top1_by_place"] in (None, "")
    places = [float(a) for a in rows[1]["top1_by_place"].split("/")]
    assert len(places) == 2 and all(0 <= a <= 100 for a in places)
    # one prediction gives both: the places' mean is the overall top-1 (equal places: no blank)
    assert sum(places) / 2 == pytest.approx(rows[1]["test_top1"], abs=0.06)
    from util.report import checkpoint_eval_section
    text = checkpoint_eval_section(csv_path)
    assert "top-1 by place in the group" in text and rows[1]["top1_by_place"] in text


def test_an_eval_csv_without_the_places_column_still_reads(shipped, tmp_path):
    rows = evaluate_runs(shipped[0], [TASK], [1, 2], shipped[1])
    path = tmp_path / "old.csv"
    text = format_eval_csv(rows).splitlines()
    cut = text[0].split(",").index("top1_by_place")
    path.write_text("\n".join(",".join(c for i, c in enumerate(l.split(",")) if i != cut) for l in text) + "\n")
    again = read_eval_csv(path)
    assert [r["test_top1"] for r in again] == [r["test_top1"] for r in rows]
    assert all(not r["top1_by_place"] for r in again)


def test_checkpoint_current_evaluates_a_run_in_training(shipped, tmp_path):
    """--checkpoint current: the latest epoch's weights, for a run without best.pth yet."""
    save, data = shipped
    before = evaluate_runs(save, [TASK], [2], data, by_place=True)[0]
    run = run_dir(save, TASK, 2)
    (run / BEST).rename(run / CURRENT)  # a run in training: only current.pth
    assert evaluate_runs(save, [TASK], [2], data)[0]["status"] == MISSING
    row = evaluate_runs(save, [TASK], [2], data, by_place=True, checkpoint=CURRENT)[0]
    assert row["status"] == OK and row["checkpoint_epoch"] == 7  # the same weights, now read from current.pth
    assert (row["test_top1"], row["top1_by_place"]) == (before["test_top1"], before["top1_by_place"])
    p = run_cli("util/evaluate_runs.py", str(save), "--folds", "2", "--data-root", str(data), "--checkpoint", "current",
                "--by-position")
    assert p.returncode == 0, p.stderr
    assert "by place in the group" in p.stdout and f"{row['test_top1']:.2f}%" in p.stdout
    p = run_cli("util/evaluate_runs.py", str(save), "--folds", "2", "--data-root", str(data))
    assert p.returncode == 0 and "no best.pth in this checkout" in p.stdout
