"""util/train_throughput.py and its library (util/training/throughput.py, projection.py): stats.csv
timing, aggregation, projection and the CLI's errors (CPU, fast)."""
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_cli
from util.training.layout import STATS_FIELDS
from util.train_throughput import get_args_parser
from util.training import projection as proj
from util.training import throughput as tp
from util.training.throughput import Epoch

TOOL = "util/train_throughput.py"


def write_stats(path: Path, rows: list[tuple[int, int, float, float]]) -> None:
    """A stats.csv as fold_trainer.py writes it: (epoch, classes, seconds, train_seconds) per row."""
    lines = [",".join(STATS_FIELDS)]
    for epoch, classes, seconds, train_seconds in rows:
        vals = {"epoch": epoch, "classes": classes, "seconds": f"{seconds:.4f}",
                "train_seconds": f"{train_seconds:.4f}"}
        lines.append(",".join(str(vals.get(k, "1.0000")) for k in STATS_FIELDS))
    path.write_text("\n".join(lines) + "\n")


def run_of(ends_seconds: list[tuple[float, float]], classes: int = 11) -> list[Epoch]:
    return [Epoch(i, classes, s, s * 0.9, end) for i, (end, s) in enumerate(ends_seconds)]


# ------------------------------------------------------------------ stats.csv and timing
def test_read_stats_parses_a_fold_trainer_file_and_its_time(tmp_path):
    path = tmp_path / "stats.csv"
    write_stats(path, [(0, 4, 9.5, 9.0), (1, 10, 2.25, 2.0)])
    os.utime(path, (1000.0, 1234.5))
    epochs, mtime = tp.read_stats(path)
    assert mtime == 1234.5
    assert epochs == [Epoch(0, 4, 9.5, 9.0), Epoch(1, 10, 2.25, 2.0)]


def test_a_file_without_the_timing_columns_is_a_one_line_error(tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text("epoch,train_loss\n0,1.0\n")
    with pytest.raises(tp.ThroughputError, match="not a fold_trainer.py stats.csv"):
        tp.read_stats(path)


def test_epochs_seen_in_one_poll_end_where_the_next_one_starts():
    known = [Epoch(0, 11, 5.0, 4.0, 105.0)]
    rows = known + [Epoch(1, 11, 2.0, 1.8), Epoch(2, 11, 3.0, 2.7)]
    out = tp.note_epoch_ends(known, rows, mtime=111.0)
    assert [e.end for e in out] == [105.0, 108.0, 111.0]  # epoch 2 ran 108..111, epoch 1 ended at 108
    assert out[2].start == 108.0 and out[1].start == 106.0


def test_only_epochs_while_every_run_trained_are_timed():
    # run a: epochs end at 10, 12, 14, 16 (2 s each after a 10 s first epoch); run b starts 3 s later
    a = run_of([(10, 10), (12, 2), (14, 2), (16, 2)])
    b = run_of([(13, 10), (15, 2), (17, 2), (19, 2)])
    window = tp.concurrent_window([a, b])
    assert window == (13, 16)  # b's first epoch ended at 13; a's last epoch ended at 16
    assert [e.epoch for e in tp.timed_epochs(a, window, slack=0)] == [3]      # 14..16; 10..12 and 12..14 start too early
    assert [e.epoch for e in tp.timed_epochs(b, window, slack=0)] == [1]      # 13..15; later ones end after 16
    assert [e.epoch for e in tp.timed_epochs(a, (-math.inf, math.inf))] == [1, 2, 3]  # first epoch never


def test_trained_images_follow_the_curriculum_and_the_trimmed_batch():
    counts = [10000] * 11  # V1: 10,000 train images per class
    assert tp.trained_images(counts, 11, 32, 1) == 110000          # 3437 batches of 32 + 16
    assert tp.trained_images(counts, 11, 32, 3) == 109998          # batch 30: 3666 x 30 + 18 (20 cut to 3s)
    assert tp.trained_images(counts, 4, 32, 4) == 40000            # 4 active classes
    assert tp.batch_images(32, 3) == 30 and tp.batch_images(2, 4) == 4


def test_summarize_aggregates_per_run_rates_by_hand():
    counts = [1000] * 10  # 10,000 images, batch 32, f=1: 10,000 trained per epoch (312 x 32 + 16)
    a = run_of([(10, 10), (12, 2.0), (14, 2.0), (16, 2.0)], classes=10)
    b = run_of([(10, 10), (14.5, 4.5), (19, 4.5), (23.5, 4.5)], classes=10)
    # window (10, 16): a's epochs 1-3 (rate 5000 each); b's epoch 1 only (10..14.5: 10000 / 4.5)
    row = tp.summarize([a, b], counts, batch=32, fold=1)
    assert row["runs"] == 2 and row["epochs_timed"] == 4
    assert row["median_s_per_epoch"] == 2.0                        # median of 2, 2, 2, 4.5
    assert row["imgs_per_s_per_run"] == pytest.approx((5000 + 10000 / 4.5) / 2)
    assert row["aggregate_imgs_per_s"] == pytest.approx(5000 + 10000 / 4.5)
    assert row["images_per_epoch"] == 10000 and row["batch_images"] == 32


def test_summarize_without_an_overlapping_epoch_says_raise_epochs():
    a = run_of([(10, 10), (12, 2)])
    b = run_of([(20, 10), (22, 2)])  # b started after a had finished
    with pytest.raises(tp.ThroughputError, match="raise --epochs"):
        tp.summarize([a, b], [100], batch=32, fold=1)


def row(task="lol/goldnumber-fraction", fold=1, runs=1, mps="off", agg=50000.0, **extra):
    return {"task": task, "fold": fold, "runs": runs, "mps": mps, "amp": "none", "epochs_timed": 3,
            "median_s_per_epoch": 2.0, "imgs_per_s_per_run": agg / runs, "aggregate_imgs_per_s": agg, **extra}


def test_speedup_is_over_the_n1_run_without_mps_else_with_it():
    rows = tp.add_speedups([row(agg=50000.0), row(runs=4, agg=150000.0), row(runs=4, mps="on", agg=200000.0),
                            row(fold=4, runs=1, mps="on", agg=40000.0), row(fold=4, runs=8, mps="on", agg=120000.0),
                            row(fold=2, runs=4, agg=1.0)])
    got = {(r["fold"], r["runs"], r["mps"]): (r["speedup_vs_n1"], r["speedup_base"]) for r in rows}
    assert got[(1, 4, "off")] == (3.0, "off")
    assert got[(1, 4, "on")] == (4.0, "off")
    assert got[(4, 8, "on")] == (3.0, "on")      # no N=1 row without MPS for f=4
    assert math.isnan(got[(2, 4, "off")][0]) and got[(2, 4, "off")][1] == ""


def test_csv_round_trip_and_merge_replaces_rows_of_the_same_key(tmp_path):
    old = tp.add_speedups([row(), row(runs=4, agg=100000.0)])
    path = tmp_path / "tp.csv"
    path.write_text(tp.format_rows_csv(old))
    back = tp.read_rows_csv(path)
    assert [(r["runs"], r["aggregate_imgs_per_s"], r["speedup_vs_n1"]) for r in back] == [(1, 50000.0, 1.0),
                                                                                          (4, 100000.0, 2.0)]
    merged = tp.merge_rows(back, [row(runs=4, agg=120000.0), row(runs=8, agg=130000.0)])
    assert [(r["runs"], r["aggregate_imgs_per_s"]) for r in merged] == [(1, 50000.0), (4, 120000.0), (8, 130000.0)]


# ------------------------------------------------------------------ projection
def test_run_images_by_hand():
    counts = [10000] * 11
    assert proj.run_images("lol/goldnumber-fraction", 1, 1500, counts, 32) == 1500 * 110000
    # f=4: 4 classes in epochs 0-59, one more every 60 epochs, all 11 from epoch 420 on
    by_hand = 60 * 10000 * sum(range(4, 11)) + (1500 - 420) * 110000
    assert proj.run_images("lol/goldnumber-fraction", 4, 1500, counts, 32) == by_hand == 148_200_000
    assert proj.run_images("lol/goldnumber-fraction", 4, 1500, counts, 32, curriculum=False) == 165_000_000


def test_the_accuracy_table_has_44_runs_at_the_recipes_epochs():
    table = proj.paper_table_runs()
    assert len(table) == 44
    assert sum(t.efficientnet for t in table) == 4
    assert {t.label.split()[0] for t in table if t.efficientnet} == {"V1", "V2", "V3", "V4"}
    by = {t.label: t for t in table}
    assert by["V6 f=4"].epochs == 3000 and by["V6 f=3"].epochs == 1500 and by["N1 f=2"].epochs == 50
    assert by["V1 f=1"].images == 165_000_000
    assert by["N1 f=1"].images == 50 * (20000 // 8) and by["N4 f=1"].images == 50 * (20000 // 16)


def test_projection_by_hand():
    table = [proj.TableRun("V1 f=1", "lol/goldnumber-fraction", 1, False, 10, 3_600_000),
             proj.TableRun("V1 f=2", "lol/goldnumber-fraction", 2, False, 10, 7_200_000),
             proj.TableRun("V1 EfficientNet", "lol/goldnumber-fraction", 1, True, 10, 1_800_000),
             proj.TableRun("V2 f=1", "apex/squad_count_v2", 1, False, 10, 1_000_000)]
    rows = [row(fold=1, runs=4, agg=1000.0), row(fold=4, runs=4, agg=3000.0), row(fold=1, runs=1, agg=500.0),
            row(task="sot/timer3", fold=1, runs=4, agg=8000.0)]
    p = proj.project(table, rows, runs=4, mps="off")
    # V1 f=1 at 1000/s: 1 h; V1 f=2 at the mean of f=1 and f=4 (2000/s): 1 h; EfficientNet at f=1's
    # 1000/s: 0.5 h; V2 at the mean of every measured row of N=4 (1000, 3000, 8000: 4000/s): 250 s
    assert p.gpu_hours == pytest.approx(1 + 1 + 0.5 + 250 / 3600)
    assert p.exact == ["V1 f=1"] and p.by_task == ["V1 f=2", "V1 EfficientNet"] and p.assumed == ["V2 f=1"]
    # each run gets a quarter of the rate: V1 f=1 alone takes 4 h, V1 f=2 4 h too (first wins)
    assert p.longest_run_hours == pytest.approx(4.0) and p.longest_run == "V1 f=1"
    assert p.wall_hours(1) == pytest.approx(4.0)  # max(2.57 GPU-hours, 4 h longest run)
    with pytest.raises(tp.ThroughputError, match="N=8"):
        proj.project(table, rows, runs=8, mps="off")


def test_a_larger_batch_or_other_numerics_is_its_own_setting():
    """Rows at batch 256 bf16 must not be averaged into the batch-32 fp32 projection."""
    table = [proj.TableRun("V1 f=1", "lol/goldnumber-fraction", 1, False, 10, 3_600_000)]
    rows = tp.add_speedups([row(runs=1, agg=1000.0), row(runs=1, agg=4000.0, batch_size=256, amp="bf16"),
                            row(runs=8, agg=8000.0, batch_size=256, amp="bf16")])
    assert [r["speedup_vs_n1"] for r in rows] == [1.0, 1.0, 2.0]   # each over the N=1 row of its batch
    assert len(tp.merge_rows(rows, [row(runs=1, agg=2000.0)])) == 3  # same key: replaced
    assert proj.project(table, rows, runs=1, mps="off").gpu_hours == pytest.approx(1.0)
    assert proj.project(table, rows, runs=8, mps="off", amp="bf16", batch=256).gpu_hours == pytest.approx(0.125)
    assert [(p.batch, p.amp, p.runs) for p in proj.projections(rows, table)] == [(32, "none", 1), (256, "bf16", 1),
                                                                                 (256, "bf16", 8)]
    with pytest.raises(tp.ThroughputError, match="batch=32"):
        proj.project(table, rows, runs=8, mps="off")


def test_the_compiled_step_is_its_own_setting():
    """--compile-step rows (step = compiled) get their own speedup base and projection; rows
    without the column are the CUDA-graph step's."""
    table = [proj.TableRun("V1 f=1", "lol/goldnumber-fraction", 1, False, 10, 3_600_000)]
    rows = tp.add_speedups([row(runs=1, agg=1000.0), row(runs=1, agg=3000.0, step="compiled"),
                            row(runs=8, mps="on", agg=6000.0, step="compiled")])
    assert [r["speedup_vs_n1"] for r in rows] == [1.0, 1.0, 2.0]
    assert len(tp.merge_rows(rows, [row(runs=1, agg=2000.0, step="graph")])) == 3  # graph = no column
    assert proj.project(table, rows, runs=1, mps="off").gpu_hours == pytest.approx(1.0)
    assert proj.project(table, rows, runs=8, mps="on", step="compiled").gpu_hours == pytest.approx(1 / 6)
    assert "compiled" in tp.format_table(rows) and "compiled" in tp.format_rows_csv(rows)


# ------------------------------------------------------------------ measuring with fakes
FAKE_TRAINER = """
import os, sys, time
from pathlib import Path
out, epochs, seconds = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
head = "{head}"
rows = []
for e in range(epochs):
    time.sleep(seconds)
    rows.append(",".join(str(e) if k == "epoch" else "11" if k == "classes"
                         else f"{{seconds:.4f}}" if k in ("seconds", "train_seconds") else "1.0"
                         for k in head.split(",")))
    (out / "stats.tmp").write_text(head + "\\n" + "\\n".join(rows) + "\\n")
    os.replace(out / "stats.tmp", out / "stats.csv")
"""


def fake_launcher(seconds: float, fail: bool = False):
    script = FAKE_TRAINER.format(head=",".join(STATS_FIELDS))

    def launch(task, fold, n, group_dir, args):
        out = []
        for k in range(n):
            folder = group_dir / f"run{k}"
            folder.mkdir(parents=True)
            (folder / "train.log").write_text("error: the fake run broke\n" if fail else "")
            code = "import sys; sys.exit(3)" if fail else script
            out.append(tp.Watched(subprocess.Popen([sys.executable, "-c", code, str(folder), str(args.epochs),
                                                    str(seconds)]), folder))
        return out
    return launch


def test_measure_times_concurrent_runs_from_their_stats_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tp, "launch_runs", fake_launcher(0.4))
    args = get_args_parser().parse_args(["--epochs", "3"])
    r = tp.measure("lol/goldnumber-fraction", 1, 2, "on", [100] * 11, args, tmp_path, probe=lambda: True)
    assert r["runs"] == 2 and r["mps"] == "on" and r["mps_server"] == "yes"
    assert 2 <= r["epochs_timed"] <= 4 and r["median_s_per_epoch"] == pytest.approx(0.4)
    assert r["aggregate_imgs_per_s"] == pytest.approx(2 * 1100 / 0.4)
    assert not (tmp_path / "lol_goldnumber-fraction-f1-n2-mpson").exists()  # group folder removed


def test_a_failed_run_stops_the_measurement_with_its_last_log_line(tmp_path, monkeypatch):
    monkeypatch.setattr(tp, "launch_runs", fake_launcher(0.1, fail=True))
    args = get_args_parser().parse_args([])
    with pytest.raises(tp.ThroughputError, match="the fake run broke"):
        tp.measure("lol/goldnumber-fraction", 1, 2, "off", [100] * 11, args, tmp_path, probe=None)


def test_mps_daemon_is_started_probed_and_quit(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / tp.MPS_CONTROL
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nif [ \"$1\" = -d ]; then echo \"start $CUDA_MPS_PIPE_DIRECTORY\" >> {calls}; exit 0; fi\n"
                    f"read cmd; echo \"$cmd\" >> {calls}; [ \"$cmd\" = get_server_list ] && echo 4242\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    with tp.mps_daemon(tmp_path / "work") as probe:
        assert os.environ["CUDA_MPS_PIPE_DIRECTORY"] == str(tmp_path / "work" / "mps-pipe")
        assert probe() is True
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ
    assert calls.read_text().splitlines() == [f"start {tmp_path / 'work' / 'mps-pipe'}", "get_server_list", "quit"]


# ------------------------------------------------------------------ command line
def test_cli_unknown_task_is_one_line():
    assert_one_line_error(run_cli(TOOL, "--tasks", "lol/nope"), "unknown task 'lol/nope'", "valid tasks")


def test_cli_runs_below_one_is_one_line():
    assert_one_line_error(run_cli(TOOL, "--runs", "1", "0"), "--runs values must be >= 1", "got 0")


def test_cli_one_epoch_is_one_line():
    assert_one_line_error(run_cli(TOOL, "--epochs", "1"), "--epochs must be >= 2")


def test_cli_mps_without_the_control_binary_is_one_line(tmp_path):
    env = {"PATH": str(Path(sys.executable).parent)}  # python only: no nvidia-cuda-mps-control
    assert_one_line_error(run_cli(TOOL, "--mps", env=env), "nvidia-cuda-mps-control", "without --mps")
    assert_one_line_error(run_cli(TOOL, "--mps", "both", env=env), "nvidia-cuda-mps-control")


def test_cli_missing_data_names_the_generator(tmp_path):
    assert_one_line_error(run_cli(TOOL, "--data-root", str(tmp_path / "none")),
                          "no data for lol/goldnumber-fraction", "util/make_game_data.py")


def test_cli_from_csv_prints_table_and_projection(tmp_path):
    path = tmp_path / "tp.csv"
    path.write_text(tp.format_rows_csv(tp.add_speedups([row(agg=55000.0), row(runs=4, mps="on", agg=110000.0)])))
    proc = run_cli(TOOL, "--from-csv", str(path))
    assert proc.returncode == 0, proc.stderr
    table = proj.paper_table_runs()
    hours_n1 = sum(t.images for t in table) / 55000.0 / 3600  # one measured row: every run at its rate
    assert f"{hours_n1:10.2f}" in proc.stdout and "2.00x" in proc.stdout
    assert "ASSUMED" in proc.stdout and "<- fewest GPU-hours" in proc.stdout
    assert_one_line_error(run_cli(TOOL, "--from-csv", str(tmp_path / "missing.csv")), "does not exist")


def test_children_get_the_settings_train_py_gives_its_children(tmp_path):
    """Timing N runs means nothing unless each trains as ``train.py --jobs`` would train it."""
    import train
    import util.training.plan as plan

    args = get_args_parser().parse_args(["--epochs", "3", "--amp", "bf16", "--data-root", "/d", "--device", "cpu",
                                         "--batch-size", "256"])
    got = tp.child_config("lol/goldnumber-fraction", 4, 2, tmp_path, args)
    savedir = tmp_path / "run2"
    targs = train.get_args_parser().parse_args([str(savedir), "--epochs", "3", "--amp", "bf16", "--seed", "2",
                                                "--data-root", "/d", "--no-progress", "--batch-size", "256"])
    assert got == plan.run_config(targs, savedir, "lol/goldnumber-fraction", 4, "cpu")
