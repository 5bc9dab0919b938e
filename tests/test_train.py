"""Training: tiny runs on CPU through train.py / fold_trainer.py as a user runs them."""
import csv
import json
from dataclasses import replace
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from config.tasks import get_task
from conftest import REPO, assert_one_line_error, run_cli
from fakes import write_cifar10, write_image_folder
import util.training.plan as plan
from util.training.layout import BEST, CONFIG, CURRENT, DONE, RESULT_FIELDS, RESULTS, STATS, run_dir


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_image_folder(root / "game_data" / "lol" / "goldnumber-fraction", "lol/goldnumber-fraction")
    write_image_folder(root / "noscope-coral-subset", "noscope-coral", per_class=(16, 4, 4))
    write_cifar10(root / "cifar10", per_batch=12, n_test=20)
    return root


def few_validation_images(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The tiny CIFAR archive holds 60 images: the registry's cifar10 entry keeps n for validation."""
    import dataclasses

    import config.tasks as tasks
    t = tasks.get_task("cifar10")
    monkeypatch.setitem(tasks._registry(), "cifar10",
                        dataclasses.replace(t, data=dataclasses.replace(t.data, validation_images=n)))


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def train(savedir, data_root, *extra, timeout=600):
    return run_cli("train.py", str(savedir), "--data-root", str(data_root), "--device", "cpu", *extra,
                   timeout=timeout)


def test_game_folds_with_curriculum(tmp_path, data_root):
    p = train(tmp_path, data_root, "--tasks", "lol/goldnumber-fraction", "--folds", "1", "2", "--epochs", "2")
    assert p.returncode == 0, p.stderr[-2000:]
    rows = read_csv(tmp_path / RESULTS)
    assert list(rows[0]) == RESULT_FIELDS
    assert [(r["task"], r["fold"]) for r in rows] == [("lol/goldnumber-fraction", "1"), ("lol/goldnumber-fraction", "2")]
    for f in (1, 2):
        run = run_dir(tmp_path, "lol/goldnumber-fraction", f)
        for name in (CURRENT, BEST, STATS, CONFIG, DONE, "val_top1.txt"):
            assert (run / name).exists(), name
        stats = read_csv(run / STATS)
        assert [s["epoch"] for s in stats] == ["0", "1"]
        ckpt = torch.load(run / CURRENT, weights_only=True)
        assert ckpt["epoch"] == 2 and ckpt["fold"] == f
        assert set(ckpt) == {"model", "optimizer", "scheduler", "epoch", "best_val", "best_epoch", "history", "rng",
                             "wall_seconds", "task", "fold", "channel_align", "scaling", "curriculum_epochs",
                             "band_limit"}
        cfg = json.loads((run / CONFIG).read_text())
        assert cfg["run"]["fold"] == f and "torch" in cfg["versions"] and cfg["batch_images"] % f == 0
    # curriculum: the folded run starts with max(f, K // 10) = 2 of 11 classes, and (compressed to
    # 2 epochs) reaches all 11 by its last epoch; the original always sees all classes.
    classes2 = [int(s["classes"]) for s in read_csv(tmp_path / "lol/goldnumber-fraction/fold2/stats.csv")]
    assert classes2[0] == 2 and classes2[-1] == 11
    assert {s["classes"] for s in read_csv(tmp_path / "lol/goldnumber-fraction/fold1/stats.csv")} == {"11"}
    assert "Test top-1" in p.stdout


def test_noscope_trains(tmp_path, data_root):
    p = train(tmp_path, data_root, "--tasks", "noscope-coral", "--folds", "2", "--epochs", "2", "--batch-size", "8")
    assert p.returncode == 0, p.stderr[-2000:]
    assert [(r["task"], r["fold"]) for r in read_csv(tmp_path / "results.csv")] == [("noscope-coral", "2")]
    assert len(read_csv(tmp_path / "noscope-coral/fold2/stats.csv")) == 2


def test_cifar10_folded_run_distils_from_fold1(tmp_path, data_root, monkeypatch):
    """In-process: the tiny archive cannot match torchvision's MD5 sums, so that check is patched."""
    import torchvision.datasets.cifar as tv_cifar

    import train as train_script
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    few_validation_images(monkeypatch, 10)  # the archive holds 60 images
    args = train_script.get_args_parser().parse_args(
        [str(tmp_path), "--data-root", str(data_root), "--device", "cpu", "--tasks", "cifar10", "--folds", "2",
         "--epochs", "2", "--batch-size", "8"])
    assert train_script.main(args) == 0
    rows = {(r["task"], r["fold"]) for r in read_csv(tmp_path / "results.csv")}
    assert rows == {("cifar10", "1"), ("cifar10", "2")}  # the teacher (f=1) was trained first
    cfg = json.loads((tmp_path / "cifar10/fold2/config.json").read_text())
    assert cfg["recipe"]["distill_folded"] is True and cfg["recipe"]["step_lr"] == [200, 0.5]
    assert len(read_csv(tmp_path / "cifar10/fold2/stats.csv")) == 2


def released_resnet18_state_dict(num_classes: int = 10) -> dict[str, torch.Tensor]:
    """A state dict in the released models/resnet.py naming (ResNet18(num_classes=10), unfolded),
    written from that code's module tree, not from ours: conv1, bn1, layer1-4 of two BasicBlocks
    (conv1, bn1, conv2, bn2, and downsample.0/.1 where the shape changes), fc."""
    g = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}

    def bn(name, c):
        sd.update({f"{name}.weight": 1 + 0.1 * torch.randn(c, generator=g),
                   f"{name}.bias": 0.1 * torch.randn(c, generator=g),
                   f"{name}.running_mean": 0.1 * torch.randn(c, generator=g),
                   f"{name}.running_var": 1 + torch.rand(c, generator=g),
                   f"{name}.num_batches_tracked": torch.tensor(7)})

    def conv(name, cin, cout, k):
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2 / (k * k * cout)) ** 0.5

    conv("conv1", 3, 64, 3)
    bn("bn1", 64)
    cin = 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            conv(f"{p}.conv1", cin, planes, 3)
            bn(f"{p}.bn1", planes)
            conv(f"{p}.conv2", planes, planes, 3)
            bn(f"{p}.bn2", planes)
            if block == 0 and cin != planes:
                conv(f"{p}.downsample.0", cin, planes, 1)
                bn(f"{p}.downsample.1", planes)
            cin = planes
    sd["fc.weight"] = 0.01 * torch.randn(num_classes, 512, generator=g)
    sd["fc.bias"] = torch.zeros(num_classes)
    return sd


@pytest.mark.slow
def test_released_cifar10_teacher_loads_and_distils(tmp_path, data_root, monkeypatch):
    """model_files/cifar10/resnet18/model.t7 as released (a bare state dict, loaded there with
    model.load_state_dict(torch.load(path))) is the teacher: no fold-1 run is trained."""
    import torchvision.datasets.cifar as tv_cifar
    from collections import OrderedDict

    import train as train_script
    from models import build_model
    from util.training.checkpoint import load_checkpoint, model_weights
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    few_validation_images(monkeypatch, 10)
    files = tmp_path / "model_files"
    t7 = files / "cifar10" / "resnet18" / "model.t7"
    t7.parent.mkdir(parents=True)
    torch.save(OrderedDict(released_resnet18_state_dict()), t7)
    weights, align = model_weights(load_checkpoint(t7))  # torch.load(..., weights_only=True)
    teacher = build_model("cifar10", 1)
    assert teacher.load_state_dict(weights, strict=True) is not None and align == 1
    monkeypatch.setattr(plan, "TEACHER_FILES", files)
    args = train_script.get_args_parser().parse_args(
        [str(tmp_path / "runs"), "--data-root", str(data_root), "--device", "cpu", "--tasks", "cifar10",
         "--folds", "2", "--epochs", "1", "--batch-size", "8"])
    assert train_script.main(args) == 0
    assert not (tmp_path / "runs" / "cifar10" / "fold1").exists()  # the shipped teacher was used
    cfg = json.loads((tmp_path / "runs/cifar10/fold2/config.json").read_text())
    assert cfg["run"]["teacher"] == str(t7)


def test_kill_and_resume_gives_same_epochs_without_duplicates(tmp_path, data_root):
    args = [sys.executable, "train.py", str(tmp_path), "--data-root", str(data_root), "--device", "cpu",
            "--tasks", "lol/goldnumber-fraction", "--folds", "1", "--epochs", "40"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stats = tmp_path / "lol/goldnumber-fraction/fold1/stats.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (stats.exists() and len(read_csv(stats)) >= 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(read_csv(stats))
    assert 1 <= done_before < 40, "the run finished before it could be killed"
    assert not (tmp_path / "lol/goldnumber-fraction/fold1/done.json").exists()
    p = run_cli(*args[1:])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "resuming after epoch" in p.stdout
    epochs = [int(s["epoch"]) for s in read_csv(stats)]
    assert epochs == list(range(40))
    assert len(read_csv(tmp_path / "results.csv")) == 1
    # a third run recomputes nothing
    again = run_cli(*args[1:])
    assert again.returncode == 0 and "resuming" not in again.stdout
    assert len(read_csv(tmp_path / "results.csv")) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_exits_cleanly(tmp_path, data_root, sig):
    """Ctrl-C, and SIGTERM from a job scheduler or timeout, end the same clean way."""
    args = [sys.executable, "train.py", str(tmp_path), "--data-root", str(data_root), "--device", "cpu",
            "--tasks", "lol/goldnumber-fraction", "--folds", "1", "--epochs", "400"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stats = tmp_path / "lol/goldnumber-fraction/fold1/stats.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not stats.exists():
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err and "re-run the same command" in err
    ckpt = torch.load(tmp_path / "lol/goldnumber-fraction/fold1/current.pth", weights_only=True)
    assert ckpt["epoch"] >= 1


def test_jobs_2_trains_runs_in_child_processes_and_resumes(tmp_path, data_root):
    cmd = ("--tasks", "lol/goldnumber-fraction", "--folds", "1", "2", "--epochs", "2", "--jobs", "2")
    p = train(tmp_path, data_root, *cmd)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stdout.count("[start]") == 2 and p.stdout.count("[done]") == 2 and "Test top-1" in p.stdout
    runs = [("lol/goldnumber-fraction", "1"), ("lol/goldnumber-fraction", "2")]
    assert [(r["task"], r["fold"]) for r in read_csv(tmp_path / "results.csv")] == runs
    for f in (1, 2):
        run = tmp_path / "lol/goldnumber-fraction" / f"fold{f}"
        log = (run / "train.log").read_text()
        assert f"[lol/goldnumber-fraction f={f}] epoch 0:" in log and "epoch 1:" in log, log
        assert "\r" not in log  # no progress bars in the log
        assert [s["epoch"] for s in read_csv(run / "stats.csv")] == ["0", "1"]
    again = train(tmp_path, data_root, *cmd)
    assert again.returncode == 0 and "[start]" not in again.stdout, again.stdout
    assert [(r["task"], r["fold"]) for r in read_csv(tmp_path / "results.csv")] == runs


def test_jobs_2_from_another_folder_keeps_relative_paths_there(tmp_path, data_root):
    """Relative savedir and --data-root mean the caller's folder to the child runs too (they once
    ran in the repository root: logs went to the caller's folder, checkpoints to the repository)."""
    shutil.copytree(data_root / "game_data", tmp_path / "d" / "game_data")
    p = subprocess.run([sys.executable, str(REPO / "train.py"), "runs/rel", "--data-root", "d", "--device", "cpu",
                        "--tasks", "lol/goldnumber-fraction", "--folds", "1", "2", "--epochs", "1", "--jobs", "2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    for f in (1, 2):
        run = tmp_path / "runs/rel/lol/goldnumber-fraction" / f"fold{f}"
        assert (run / STATS).is_file() and (run / DONE).is_file() and (run / "train.log").is_file()
    assert not (REPO / "runs/rel").exists()


def test_jobs_sigterm_stops_every_child_cleanly(tmp_path, data_root):
    args = [sys.executable, "train.py", str(tmp_path), "--data-root", str(data_root), "--device", "cpu",
            "--tasks", "lol/goldnumber-fraction", "--folds", "1", "2", "--epochs", "400", "--jobs", "2"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = [tmp_path / "lol/goldnumber-fraction" / f"fold{f}" for f in (1, 2)]
    deadline = time.time() + 300
    while time.time() < deadline and not all((r / "stats.csv").exists() for r in runs):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err and "re-run the same command" in err, err
    for run in runs:
        log = (run / "train.log").read_text()
        assert "Traceback" not in log and "interrupted" in log.strip().splitlines()[-1], log[-2000:]
        assert torch.load(run / "current.pth", weights_only=True)["epoch"] >= 1


def test_fold_trainer_cli_forwards_every_run_setting():
    """train.py --jobs starts runs as ``fold_trainer.py <config_argv(cfg)>``: nothing may be lost."""
    from dataclasses import fields

    from fold_trainer import get_args_parser
    from util.training.run_config import RunConfig, config_argv, config_from_args
    changed = dict(task="cifar10", fold=2, outdir="/tmp/r/cifar10/fold2", epochs=3, batch_size=8, lr=3e-4, device="cuda:1",
                   channel_align=8, seed=5, data_root="/d", teacher="/t/best.pth", continue_from_file="/c.pth",
                   eval_orders=2, cuda_graph=False, compile_step=True, amp="fp16", scale_curriculum=False, progress=False,
                   efficientnet=True, effnet_resize="aspect", band_limit=37.5, band_algorithm="fft")
    assert set(changed) == {f.name for f in fields(RunConfig)}, "a new RunConfig field needs a CLI option"
    for cfg in (RunConfig(**changed), RunConfig(task="noscope-coral", fold=1, outdir="o", teacher="t"),
                RunConfig(task="noscope-coral", fold=1, outdir="runs/x/fold2")):
        assert config_from_args(get_args_parser().parse_args(config_argv(cfg))) == cfg


def test_lr_override_reaches_the_optimizer_and_config(tmp_path):
    """--lr replaces the recipe's rate (what a larger --batch-size may need) and is recorded."""
    from fold_trainer import make_optimizer
    from util.training.run_config import RunConfig, effective_recipe
    base = RunConfig(task="sot/coin_count-digits_3_4-v2", fold=4, outdir=str(tmp_path / "r"))
    assert effective_recipe(base).lr == get_task(base.task).recipe(4).lr == 1e-4
    cfg = RunConfig(task=base.task, fold=4, outdir=base.outdir, batch_size=256, lr=8e-4)
    recipe = effective_recipe(cfg)
    assert (recipe.lr, recipe.batch_size, recipe.epochs) == (8e-4, 256, get_task(base.task).recipe(4).epochs)
    opt = make_optimizer(torch.nn.Linear(2, 2), recipe, capturable=False)
    assert opt.param_groups[0]["lr"] == 8e-4


def test_cli_defaults_are_the_dataclass_defaults(tmp_path):
    """fold_trainer.py and train.py with no options train RunConfig's defaults."""
    import train as train_script
    from fold_trainer import get_args_parser
    from util.training.run_config import RunConfig, config_from_args
    want = RunConfig(task="noscope-coral", fold=2, outdir=str(tmp_path / "noscope-coral/fold2"))
    assert config_from_args(get_args_parser().parse_args(["noscope-coral", "2", want.outdir])) == want
    args = train_script.get_args_parser().parse_args([str(tmp_path)])
    got = plan.run_config(args, tmp_path, "noscope-coral", 2, "auto")
    assert got == RunConfig(task="noscope-coral", fold=2, outdir=want.outdir,
                            teacher=str(plan.teacher_path(tmp_path, "noscope-coral")))


def test_train_py_passes_no_progress_to_each_run(tmp_path):
    import train as train_script
    for argv, want in (([], True), (["--no-progress"], False)):
        args = train_script.get_args_parser().parse_args([str(tmp_path), *argv])
        assert plan.run_config(args, tmp_path, "noscope-coral", 1, "cpu").progress is want


def test_folded_cifar10_waits_for_this_savedirs_fold1(tmp_path):
    import train as train_script
    if plan.teacher_path(tmp_path, "cifar10").is_relative_to(plan.TEACHER_FILES):
        pytest.skip("a shipped CIFAR-10 teacher exists: no run waits for fold 1")
    assert plan.distils_from_this_savedir(tmp_path, "cifar10", 2)
    assert not plan.distils_from_this_savedir(tmp_path, "cifar10", 1)
    assert not plan.distils_from_this_savedir(tmp_path, "lol/goldnumber-fraction", 2)


def test_corrupt_checkpoint_is_a_clear_error_and_kept(tmp_path, data_root):
    run = tmp_path / "lol/goldnumber-fraction/fold1"
    run.mkdir(parents=True)
    (run / "current.pth").write_bytes(b"not a checkpoint")
    # --no-progress: when this test is the first of its worker to decode the data, the decoding
    # bars would share stderr with the error line
    p = run_cli("fold_trainer.py", "lol/goldnumber-fraction", "1", str(run), "--data-root", str(data_root),
                "--device", "cpu", "--epochs", "1", "--no-progress")
    assert_one_line_error(p, "corrupt", str(run / "current.pth"))
    assert (run / "current.pth").read_bytes() == b"not a checkpoint"


def test_user_errors_are_one_line(tmp_path, data_root):
    assert_one_line_error(train(tmp_path, data_root, "--tasks", "lol/nope"), "unknown task", "lol/goldnumber-fraction")
    assert_one_line_error(train(tmp_path, data_root, "--folds", "0"), "fold")
    assert_one_line_error(train(tmp_path, data_root, "--jobs", "0"), "--jobs must be >= 1")
    assert_one_line_error(train(tmp_path, data_root, "--lr", "0"), "--lr must be a positive")
    assert_one_line_error(train(tmp_path, data_root, "--devices", "cpu", "cpu"), "--jobs 2")
    p = run_cli("train.py", str(tmp_path), "--data-root", str(tmp_path / "empty"), "--tasks", "sot/timer3",
                "--device", "cpu")
    assert p.returncode != 0 and "Traceback" not in p.stderr and "--synthetic" in p.stderr


def test_order_agreement(tmp_path, data_root):
    p = run_cli("fold_trainer.py", "lol/goldnumber-fraction", "2", str(tmp_path / "run"), "--data-root",
                str(data_root), "--device", "cpu", "--epochs", "2", "--eval-orders", "3")
    assert p.returncode == 0, p.stderr[-2000:]
    done = json.loads((tmp_path / "run/done.json").read_text())["result"]
    assert 0.0 <= done["order_agreement"] <= 100.0 and "agree across 3" in p.stdout


def test_predict_keeps_image_order_under_folding():
    """Per-image logits do not depend on grouping bookkeeping: an f=1 model gives the same
    answers through the evaluator's seeded grouping as through a plain forward."""
    from datasets import ImageSet, to_float
    from models import build_model
    from util.training.evaluate import Evaluator
    task = get_task("lol/goldnumber-fraction")
    model = build_model(task, 1)
    imgs = torch.randint(0, 255, (7, 3, 22, 52), dtype=torch.uint8)
    data = ImageSet(imgs, torch.zeros(7, dtype=torch.long), task.classes, "mem")
    logits, _ = Evaluator(model, task, 1, torch.device("cpu")).predict(data)
    with torch.no_grad():
        ref = model.eval()(to_float(imgs, task))
    assert torch.allclose(logits, ref, atol=1e-5)


def test_extending_a_finished_run_keeps_its_curriculum(tmp_path, data_root):
    """Raising --epochs continues a finished run from current.pth; the curriculum keeps the
    layout it started with (all classes by the old last epoch), so added epochs never drop
    classes, and results.csv keeps one row per run."""
    args = ("--tasks", "lol/goldnumber-fraction", "--folds", "2")
    assert train(tmp_path, data_root, *args, "--epochs", "3").returncode == 0
    stats = tmp_path / "lol/goldnumber-fraction/fold2/stats.csv"
    assert [int(s["classes"]) for s in read_csv(stats)][-1] == 11
    p = train(tmp_path, data_root, *args, "--epochs", "9")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "resuming after epoch 3" in p.stdout
    rows = read_csv(stats)
    assert [int(s["epoch"]) for s in rows] == list(range(9))
    assert {int(s["classes"]) for s in rows[3:]} == {11}  # laid out over 9 epochs, epoch 3 would have 10
    assert json.loads((tmp_path / "lol/goldnumber-fraction/fold2/config.json").read_text())["curriculum_epochs"] == 3
    results = read_csv(tmp_path / "results.csv")
    assert len(results) == 1 and results[0]["epochs"] == "9"


def released_game_checkpoint(fold: int = 2) -> dict:
    """A checkpoint as the released fold_trainer wrote it for V1 at ``fold`` (22 x 52, 11 classes):
    {"epoch", "best_val_acc", "model", "opt"}, its ConvN naming (``lin`` registered first, then
    ``conv.<i>`` over [conv, relu, pool, conv, relu, conv, relu, conv, relu, pool, conv, relu, pool,
    flatten]) and Adam's state keyed by that parameter order."""
    w = {1: 32, 2: 45, 3: 55, 4: 64}[fold]
    n = {1: 8, 2: 11, 3: 13, 4: 16}[fold]
    shapes = {"lin.weight": (11 * fold, n * 3 * 11), "lin.bias": (11 * fold,)}
    for i, (cin, cout) in zip((0, 3, 5, 7, 10), ((3 * fold, w), (w, w), (w, w), (w, w), (w, n))):
        shapes[f"conv.{i}.weight"] = (cout, cin, 3, 3)
        shapes[f"conv.{i}.bias"] = (cout,)
    g = torch.Generator().manual_seed(1)
    model = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    state = {i: {"step": 40, "exp_avg": torch.full(s, float(i)), "exp_avg_sq": torch.full(s, 1.0 + i)}
             for i, s in enumerate(shapes.values())}
    opt = {"state": state, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                             "weight_decay": 1e-5, "amsgrad": False,
                                             "params": list(range(len(shapes)))}]}
    return {"epoch": 4, "best_val_acc": 0.5, "model": model, "opt": opt}


def test_continue_from_a_released_checkpoint(tmp_path, data_root):
    from fold_trainer import FoldTrainer
    from util.training.errors import TrainError
    from util.training.run_config import RunConfig
    ckpt = released_game_checkpoint(2)
    path = tmp_path / "current.pth"
    torch.save(ckpt, path)
    cfg = RunConfig(task="lol/goldnumber-fraction", fold=2, outdir=str(tmp_path / "run"), device="cpu",
                    data_root=str(data_root), continue_from_file=str(path), progress=False)
    trainer = FoldTrainer(cfg)
    assert trainer.state.epoch == 5  # the released "epoch" is the last one finished
    sd = trainer.model.state_dict()
    assert torch.equal(sd["head.weight"], ckpt["model"]["lin.weight"])
    assert torch.equal(sd["features.10.bias"], ckpt["model"]["conv.10.bias"])
    state = trainer.optimizer.state
    assert float(state[trainer.model.head.weight]["exp_avg"].flatten()[0]) == 0.0  # released index 0
    assert float(state[trainer.model.features[0].weight]["exp_avg"].flatten()[0]) == 2.0  # index 2
    torch.save(released_game_checkpoint(4), path)
    with pytest.raises(TrainError, match="does not match lol/goldnumber-fraction f=2"):
        FoldTrainer(cfg)


def test_a_run_continued_from_a_released_checkpoint_finishes_and_reports_its_best_epoch(tmp_path, data_root):
    """Its history starts at the released epoch: the results row counts every epoch trained and
    finds the best epoch's row by number, so the run counts as finished."""
    from fold_trainer import FoldTrainer, finished_result
    from util.training.layout import STATS, epoch_row
    from util.training.run_config import RunConfig
    path = tmp_path / "current.pth"
    torch.save(released_game_checkpoint(2), path)
    cfg = RunConfig(task="lol/goldnumber-fraction", fold=2, outdir=str(tmp_path / "run"), device="cpu", epochs=7,
                    batch_size=16, data_root=str(data_root), continue_from_file=str(path), progress=False)
    row = FoldTrainer(cfg).run()
    assert row["epochs"] == 7
    stats = list(csv.DictReader(open(tmp_path / "run" / STATS)))
    assert [int(r["epoch"]) for r in stats] == [5, 6]
    if row["best_epoch"] >= 0:
        assert row["best_epoch"] in (5, 6)
        assert row["test_top1"] == round(float(epoch_row(stats, row["best_epoch"])["test_top1"]), 4)
    assert finished_result(cfg) is not None


def test_released_train_command_line(tmp_path, data_root):
    """python3 train.py savedir [--checkpoint_cycle N] [--continue_from_file F], restricted to one
    small run so it finishes on a CPU."""
    first = train(tmp_path / "a", data_root, "--tasks", "lol/goldnumber-fraction", "--folds", "1",
                  "--epochs", "1", "--batch-size", "16", "--checkpoint_cycle", "5")
    assert first.returncode == 0, first.stderr[-2000:]
    start = tmp_path / "a/lol/goldnumber-fraction/fold1/current.pth"
    p = train(tmp_path / "b", data_root, "--tasks", "lol/goldnumber-fraction", "--folds", "1", "--epochs", "2",
              "--batch-size", "16", "--checkpoint_cycle", "2", "--continue_from_file", str(start))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "resuming after epoch 1" in p.stdout
    assert [r["epoch"] for r in read_csv(tmp_path / "b/lol/goldnumber-fraction/fold1/stats.csv")] == ["0", "1"]
    assert_one_line_error(train(tmp_path / "c", data_root, "--checkpoint_cycle", "0"), "--checkpoint_cycle")


def test_efficientnet_baseline_trains_on_images_resized_as_released(tmp_path, data_root):
    """train.py --efficientnet: the compound-scaled V1 (29 channels, 4 convs), trained on images
    resized as the released train.py did: Resize((int(W / 1.15), int(H / 1.15))) = 45 x 19."""
    from fold_trainer import FoldTrainer
    from util.training.run_config import RunConfig
    p = train(tmp_path, data_root, "--tasks", "lol/goldnumber-fraction", "--efficientnet", "--epochs", "1",
              "--batch-size", "16")
    assert p.returncode == 0, p.stderr[-2000:]
    run = tmp_path / "lol/goldnumber-fraction/efficientnet"
    assert json.loads((run / "done.json").read_text())["result"]["scaling"] == "efficientnet"
    assert read_csv(tmp_path / "results.csv")[0]["scaling"] == "efficientnet"
    weights = torch.load(run / "best.pth", weights_only=True)["model"]
    assert weights["features.0.weight"].shape == (29, 3, 3, 3) and weights["head.weight"].shape == (11, 4060)
    for resize, size in (("released", (45, 19)), ("aspect", (19, 45))):
        t = FoldTrainer(RunConfig(task="lol/goldnumber-fraction", fold=1, outdir=str(tmp_path / resize),
                                  device="cpu", data_root=str(data_root), efficientnet=True,
                                  effnet_resize=resize, progress=False))
        assert tuple(t.train_set.images.shape[2:]) == size and tuple(t.test_set.images.shape[2:]) == size
    assert_one_line_error(train(tmp_path, data_root, "--tasks", "noscope-coral", "--efficientnet"),
                          "no EfficientNet-style baseline")


def test_resize_matches_torchvision_on_pil_images():
    """The released code resized PIL images with torchvision's Resize (bilinear, antialiased)."""
    from PIL import Image
    from torchvision import transforms

    from datasets import resize_u8
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (22, 52, 3), dtype=np.uint8)
    want = np.asarray(transforms.Resize((45, 19))(Image.fromarray(img)))  # (H, W, C)
    got = resize_u8(torch.from_numpy(img).permute(2, 0, 1)[None], (45, 19))[0].permute(1, 2, 0).numpy()
    assert got.shape == want.shape and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_band_limited_runs_keep_their_own_folders_and_rows(tmp_path, data_root):
    from models import BandLimitedConv2d, build_model
    p = train(tmp_path, data_root, "--tasks", "noscope-coral", "--folds", "1", "--band-limit", "none", "50",
              "--epochs", "2", "--batch-size", "8")
    assert p.returncode == 0, p.stderr[-2000:]
    rows = read_csv(tmp_path / "results.csv")
    assert [(r["task"], r["fold"], r["band_limit"]) for r in rows] == [("noscope-coral", "1", ""),
                                                                       ("noscope-coral", "1", "50.0")]
    assert rows[0]["kept_fraction"] == "" and abs(float(rows[1]["kept_fraction"]) - 0.5) < 0.03
    run = tmp_path / "noscope-coral/fold1-band50"
    assert [s["epoch"] for s in read_csv(run / "stats.csv")] == ["0", "1"]
    assert json.loads((run / "config.json").read_text())["run"]["band_limit"] == 50
    assert "noscope-coral band50" in p.stdout  # the summary names the band-limited run
    ckpt = torch.load(run / "best.pth", weights_only=True)
    assert ckpt["band_limit"] == 50
    model = build_model("noscope-coral", 1, band_limit=ckpt["band_limit"])
    model.load_state_dict(ckpt["model"])
    assert sum(isinstance(m, BandLimitedConv2d) for m in model.modules()) == 2
    build_model("noscope-coral", 1).load_state_dict(ckpt["model"])  # and into the ordinary CNN
    again = train(tmp_path, data_root, "--tasks", "noscope-coral", "--folds", "1", "--band-limit", "50",
                  "--epochs", "2", "--batch-size", "8")
    assert again.returncode == 0 and "resuming" not in again.stdout  # finished: not retrained
    assert_one_line_error(train(tmp_path, data_root, "--band-limit", "100"), "[0, 100)")


def test_cifar10_band_limited_run(tmp_path, data_root, monkeypatch):
    """``--tasks cifar10 --band-limit 50`` on the tiny archive (MD5 check patched, as above)."""
    import torchvision.datasets.cifar as tv_cifar

    import train as train_script
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    few_validation_images(monkeypatch, 10)
    args = train_script.get_args_parser().parse_args(
        [str(tmp_path), "--data-root", str(data_root), "--device", "cpu", "--tasks", "cifar10", "--folds", "1",
         "--band-limit", "50", "--epochs", "1", "--batch-size", "16"])
    assert train_script.main(args) == 0
    rows = read_csv(tmp_path / "results.csv")
    assert [(r["task"], r["fold"], r["band_limit"]) for r in rows] == [("cifar10", "1", "50.0")]
    assert abs(float(rows[0]["kept_fraction"]) - 0.5) < 0.03
    assert len(read_csv(tmp_path / "cifar10/fold1-band50/stats.csv")) == 1


def test_train_step_sums_are_the_loss_and_hits_of_each_batch_of_the_order():
    """TrainStep's epoch sums: batch b trains on order[b*full : b*full+size], and the running
    loss x images and top-1/top-5 hits are those of exactly those images (lr 0 keeps the
    weights fixed, the same seeded generator replays the same augmentation)."""
    from datasets import augment
    from models import build_model
    from util.training.evaluate import topk_correct
    from util.training.step import TrainStep

    task, fold = get_task("lol/goldnumber-fraction"), 2
    torch.manual_seed(0)
    model = build_model(task, fold)
    images = torch.randint(0, 256, (40, task.in_channels, task.height, task.width), dtype=torch.uint8)
    labels = torch.randint(0, task.num_classes, (40,))
    opt = torch.optim.Adam(model.parameters(), lr=0.0)
    step = TrainStep(model, opt, task, fold, images, labels, None, None, channels_last=False, full=8)
    order = torch.randperm(40)[:30]
    step.start_epoch(order, torch.Generator().manual_seed(5))
    for b, size in enumerate([8, 8, 8, 6]):
        step.batch(b, size)
    got = step.sums()
    gen, want = torch.Generator().manual_seed(5), torch.zeros(3)
    with torch.no_grad():
        for b, size in enumerate([8, 8, 8, 6]):
            idx = order[b * 8: b * 8 + size]
            logits, loss = step.forward_loss(augment(images[idx], task, gen), idx)
            want += torch.stack([loss * size, topk_correct(logits, labels[idx], 1).float(),
                                 topk_correct(logits, labels[idx], 5).float()])
    assert torch.allclose(got, want, rtol=1e-5)
    assert got[2] >= got[1] and want[0] > 0
    step.start_epoch(order, None)  # a new epoch starts its sums from zero
    assert step.sums().abs().sum() == 0


@pytest.mark.parametrize("task_name", ["lol/goldnumber-fraction", "cifar10"])
def test_compiled_train_step_trains_as_the_eager_one(task_name):
    """--compile-step: the full batches' forward and loss through torch.compile (traced with
    aot_eager on the CPU) and the fused optimizer give the eager step's weights and epoch sums;
    the shorter last batch runs uncompiled; CIFAR's random augmentation stays outside the
    compiled part, so the same seeded generator draws the same crops and flips. (SGD: Adam
    turns rounding in a near-zero gradient into a whole step of lr, which no tolerance fits.)"""
    from fold_trainer import make_optimizer
    from models import build_model
    from util.training.step import TrainStep

    task, fold = get_task(task_name), 2
    images = torch.randint(0, 256, (40, task.in_channels, task.height, task.width), dtype=torch.uint8)
    labels = torch.randint(0, task.num_classes, (40,))
    order = torch.randperm(40)[:30]
    recipe = replace(task.recipe(fold), optimizer="sgd", lr=0.05, weight_decay=1e-4)
    runs = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(task, fold)
        opt = make_optimizer(model, recipe, capturable=False, fused=compiled)
        assert bool(opt.defaults["fused"]) == compiled
        step = TrainStep(model, opt, task, fold, images, labels, None, None, channels_last=False, full=8,
                         compiled=compiled)
        step.start_epoch(order, torch.Generator().manual_seed(5))
        for b, size in enumerate([8, 8, 8, 6]):
            step.batch(b, size)
        runs.append((step.sums().clone(), [p.detach().clone() for p in model.parameters()]))
    (eager_sums, eager_w), (comp_sums, comp_w) = runs
    assert torch.allclose(comp_sums, eager_sums, rtol=1e-4)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(comp_w, eager_w))
    torch.manual_seed(0)
    init = [p.detach() for p in build_model(task, fold).parameters()]
    assert max((a - w0).abs().max() for a, w0 in zip(comp_w, init)) > 1e-4  # it did train
    adam = make_optimizer(build_model(task, fold), replace(recipe, optimizer="adam"), capturable=False, fused=True)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["fused"]


def _compile_cases() -> list[tuple[str, int, dict]]:
    from config.tasks import task_names
    return ([(t, 2, {}) for t in task_names()] + [("apex/squad_count_v2", 4, {"band_limit": 50}),
                                                  ("lol/goldnumber-fraction", 1, {"scaling": "efficientnet"})])


@pytest.mark.parametrize("task_name,fold,kw", _compile_cases())
def test_the_compiled_step_is_one_graph_for_every_network(task_name, fold, kw):
    """--compile-step pays only if torch.compile sees the whole forward and loss at once: a graph
    break would split it into pieces with eager Python between them. Every registry network (and
    a band-limited and an EfficientNet-style one) traces as one graph."""
    import torch._dynamo as dynamo

    from models import build_model
    from models.game_cnn import CompoundScaling
    from util.training.step import TrainStep

    task = get_task(task_name)
    h, w = task.height, task.width
    if kw.get("scaling") == "efficientnet":
        h, w = CompoundScaling().train_image_size(h, w, as_released=True)
    full = 32 - 32 % fold
    images = torch.randint(0, 256, (full, task.in_channels, h, w), dtype=torch.uint8)
    labels = torch.randint(0, task.num_classes, (full,))
    model = build_model(task, fold, **kw)
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), task, fold, images, labels, None, None,
                     channels_last=False, full=full)
    idx = torch.arange(full)
    explained = dynamo.explain(step.loss_and_hits)(images, idx)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_child_runs_share_the_cpu_threads_unless_told(monkeypatch):
    import os
    import train as train_cmd
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert train_cmd.child_env(4)["OMP_NUM_THREADS"] == "4"
    assert train_cmd.child_env(20)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert train_cmd.child_env(4)["OMP_NUM_THREADS"] == "3"
    assert train_cmd.child_env(4)["PYTHONUNBUFFERED"] == "1"


def test_resuming_keeps_this_runs_optimizer_implementation(tmp_path):
    """A run saved with a plain Adam resumes with --compile-step's fused one (load_state_dict
    alone would bring back the saved implementation), and one saved on a GPU (a capturable
    Adam, its lr a tensor) resumes on a CPU with a float lr, as a foreach Adam needs; the
    saved hyperparameters and moments are kept and the next step is the plain Adam's."""
    import copy

    from fold_trainer import make_optimizer
    from util.training.checkpoint import load_optimizer_state

    recipe = replace(get_task("lol/goldnumber-fraction").recipe(1), optimizer="adam", lr=1e-2)

    def trained(fused: bool, lr_tensor: bool) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt = make_optimizer(model, recipe, capturable=False, fused=fused)
        if lr_tensor:  # what a capturable (CUDA-graph) run saves
            opt.param_groups[0]["lr"] = torch.tensor(opt.param_groups[0]["lr"])
        return model, opt

    def step(model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
        torch.manual_seed(seed)
        opt.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        opt.step()

    model, opt = trained(fused=False, lr_tensor=False)
    for s in range(3):
        step(model, opt, s)
    saved, weights = copy.deepcopy(opt.state_dict()), copy.deepcopy(model.state_dict())  # as saved to disk
    step(model, opt, 3)  # the plain Adam's next step: what both resumed runs must give

    model2, fused = trained(fused=True, lr_tensor=False)
    model2.load_state_dict(weights)
    load_optimizer_state(fused, copy.deepcopy(saved))  # (loading shares the saved tensors)
    assert fused.param_groups[0]["fused"] is True and fused.state[model2.weight]["step"].item() == 3
    step(model2, fused, 3)
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    gpu_saved = {**saved, "param_groups": [{**saved["param_groups"][0], "lr": torch.tensor(1e-2),
                                            "capturable": True}]}
    model3, plain = trained(fused=False, lr_tensor=False)
    model3.load_state_dict(weights)
    load_optimizer_state(plain, gpu_saved)
    group = plain.param_groups[0]
    assert group["capturable"] is False and isinstance(group["lr"], float) and group["lr"] == pytest.approx(1e-2)
    step(model3, plain, 3)
    for a, b in zip(model.parameters(), model3.parameters()):
        torch.testing.assert_close(a, b)
