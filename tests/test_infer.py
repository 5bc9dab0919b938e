"""Inference benchmark: infer.py, util/bench/runner.py, run_inference.sh, plot_results.py (CPU)."""
import csv
import json
import math
import os
import sys

import pytest
import torch

from config.tasks import TaskError, bench_entries, get_bench_entry
from models import FoldedClassifier, build_model
from util.bench import backends as bench_backends
from util.bench.backends import BenchError, check_backend
from util.bench.config import BenchConfig
from util.bench.runner import VideoPipeline, describe, resolve_device, run_benchmark
from util.bench.flops import flops_from_tput, load_model_map
from util.bench.results import COLUMNS, ResultsError

from conftest import REPO, assert_one_line_error, run_cli

TINY = dict(device="cpu", precision="fp32", batch_images=4, num_warmup=0, num_iteration=1,
            trials=1, backend="eager")
ROW_FIELDS = {"model", "fold", "mode", "backend", "precision", "batch_size", "images_per_sec",
              "flops_per_sec", "utilization", "gpu", "versions", "channels_last", "channel_align",
              "compile_seconds", "trials"}


def _folds(entry):
    return (1, 2) if entry.scaling == "efficientnet" else (1, 2, 3, 4)


def test_every_model_and_fold_runs():
    table = load_model_map()
    for entry in bench_entries():
        for fold in _folds(entry):
            row = run_benchmark(BenchConfig(model=entry.name, fold=fold, **TINY))
            f = fold if entry.scaling == "fold" else 1
            assert row["images_per_batch"] == (4 // f) * f
            assert row["images_per_sec"] > 0 and math.isfinite(row["images_per_sec"])
            want = flops_from_tput(entry, fold, row["images_per_sec"], table)
            assert row["flops_per_sec"] == pytest.approx(want)
            assert row["mode"] == ("Original" if fold == 1 else
                                   "EfficientNet" if entry.scaling == "efficientnet" else "Folded")
            assert row["utilization"] is None  # no GPU peak on CPU
            assert "images/sec:" in describe(row)


def test_aligned_model_counts_its_own_flops():
    row = run_benchmark(BenchConfig(model="noscope_coral", fold=2, channel_align=8, pad_input=True,
                                    **TINY))
    assert row["flops_source"] == "thop"
    paper = flops_from_tput(get_bench_entry("noscope_coral"), 2, row["images_per_sec"])
    assert row["flops_per_sec"] > paper  # wider layers execute more FLOPs


def test_cli_text_and_json():
    args = ["infer.py", "game_sot/timer3", "4", "--do_fold", "--device", "cpu", "--precision", "fp32",
            "--batch-images", "16", "--num_warmup", "1", "--num_iteration", "2", "--trials", "2"]
    text = run_cli(*args, "--channels_last", "--end-to-end")
    assert text.returncode == 0, text.stderr
    assert "images/sec:" in text.stdout and "end-to-end images/sec" in text.stdout
    js = run_cli(*args, "--json", "--channel-align", "8", "--pad-input")
    assert js.returncode == 0, js.stderr
    row = json.loads(js.stdout)
    assert ROW_FIELDS <= row.keys()
    assert (row["mode"], row["fold"], row["channel_align"], len(row["trials"])) == ("Folded", 4, 8, 2)
    assert row["backend_requested"] == "auto" and row["backend"] == "eager"  # auto on CPU
    assert row["images_per_sec"] == pytest.approx(sum(row["trials"]) / 2)  # median of two


def test_video_pipeline_matches_folded_classifier():
    torch.manual_seed(0)
    model = build_model("noscope-coral", 2).eval()
    frames = torch.randint(0, 256, (6, 50, 50, 3), dtype=torch.uint8)
    pipe = VideoPipeline(model, 2, torch.float32, 3, [0.5, 0.4, 0.3], [0.2, 0.25, 0.3],
                         torch.channels_last)
    images = (frames.permute(0, 3, 1, 2).float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) \
        / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = FoldedClassifier(model)(images).argmax(1)
        assert torch.equal(pipe(frames), want)


def test_compile_backend_is_max_autotune_and_setup_not_timed(monkeypatch):
    seen = {}

    def fake_compile(module, mode=None):
        seen["mode"] = mode
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    row = run_benchmark(BenchConfig(model="noscope_coral", fold=1, **{**TINY, "backend": "compile"}))
    assert seen["mode"] == "max-autotune"
    assert row["backend"] == "compile" and row["compile_seconds"] >= 0


def test_compile_on_cuda_replays_compiled_kernels_in_our_cuda_graph(monkeypatch):
    """Inductor's own CUDA graphs made small models host-bound on an H100 (bench_backends'
    docstring): on CUDA, compile without them and capture the compiled forward ourselves."""
    from types import SimpleNamespace

    seen = {}
    compiled = lambda x: x  # noqa: E731

    def fake_compile(module, mode=None):
        seen["mode"] = mode
        return compiled

    def fake_cudagraph(fn, example):
        seen["captured"] = fn
        return bench_backends.Prepared("cudagraph", lambda x: "replayed", 0.5)

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(bench_backends, "_cudagraph", fake_cudagraph)
    example = SimpleNamespace(device=torch.device("cuda"))
    prep = bench_backends._compile(torch.nn.Identity(), example)
    assert seen == {"mode": "max-autotune-no-cudagraphs", "captured": compiled}
    assert prep.backend == "compile" and prep.fn(example) == "replayed" and prep.setup_seconds >= 0


def test_resolve_rules():
    """MODEL / FOLD / do_fold as the released inference.py read them."""
    from util.bench.runner import resolve_target
    assert [resolve_target("noscope_coral", f, d).mode for f, d in ((1, True), (1, False), (2, True), (2, False))] \
        == ["Original", "Original", "Folded", "Widened"]
    widened = resolve_target("game_sot/timer3", 4, do_fold=False)
    assert (widened.variant.scaling, widened.variant.build_fold, widened.images_per_input) == ("widen", 4, 1)
    eff = "efficientnet-game_sot/timer3"
    assert [resolve_target(eff, f, d).mode for f, d in ((1, True), (2, False), (2, True))] \
        == ["Original", "Original", "EfficientNet"]
    assert resolve_target(eff, 3, True).compound.steps == 2  # phi = -(FOLD - 1), as released
    with pytest.raises(BenchError, match="smaller than the fold"):
        run_benchmark(BenchConfig(model="noscope_coral", fold=4, **{**TINY, "batch_images": 2}))


def test_gpu_only_requests_fail_cleanly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BenchError, match="no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(bench_backends, "tensorrt_available", lambda: False)
    monkeypatch.setattr(bench_backends, "triton_available", lambda: False)
    with pytest.raises(BenchError, match="torch_tensorrt, which is not installed"):
        check_backend("tensorrt", torch.device("cuda"))
    assert bench_backends.auto_candidates(torch.device("cuda")) == ["compile", "cudagraph", "eager"]


@pytest.mark.parametrize("argv,needle", [
    (["nosuch_model", "1"], "unknown model 'nosuch_model'"),
    (["noscope_coral", "0"], "bad fold 0"),
    (["noscope_coral", "1", "--device", "cpu", "--backend", "cudagraph"], "needs --device cuda"),
    (["noscope_coral", "1", "--device", "cpu", "--backend", "tensorrt"], "needs --device cuda"),
])
def test_bad_arguments_one_line(argv, needle):
    assert_one_line_error(run_cli("infer.py", *argv), needle)


def test_device_cuda_without_gpu_one_line():
    if torch.cuda.is_available():  # the in-process test above covers the message everywhere
        assert run_cli("infer.py", "noscope_coral", "1", "--num_iteration", "1", "--trials", "1",
                       "--num_warmup", "0", "--backend", "eager").returncode == 0
    else:
        assert_one_line_error(run_cli("infer.py", "noscope_coral", "1", "--device", "cuda"),
                              "no CUDA GPU", "--device cpu")


def _infer(*argv: str) -> dict:
    """infer.py in-process with a small CPU budget, as a user types it; the JSON result row."""
    import infer
    args = infer.get_args_parser().parse_args(
        [*argv, "--num_iteration", "2", "--num_warmup", "1", "--trials", "1", "--json"])
    return infer.main(args)


def test_released_command_lines_keep_their_meaning(capsys):
    """The released inference.py's flags: --batch_size counts inputs, --fold overrides FOLD,
    no --do_fold means widened only, --fp16 / --trt 0 choose dtype and plain PyTorch."""
    r = _infer("game_lol/goldnumber-fraction", "4", "--do_fold", "--batch_size", "2", "--trt", "0",
               "--fp16", "0")
    assert (r["mode"], r["images_per_batch"], r["inputs_per_batch"]) == ("Folded", 8, 2)
    assert (r["backend"], r["precision"], r["device"]) == ("eager", "fp32", "cpu")  # --device auto
    r = _infer("game_lol/goldnumber-fraction", "1", "--do_fold", "--fold", "3", "--batch_size", "2",
               "--fp16", "0")
    assert (r["mode"], r["fold"], r["images_per_batch"]) == ("Folded", 3, 6)
    r = _infer("noscope_coral", "4", "--batch_size", "3", "--fp16", "0")
    assert (r["mode"], r["images_per_batch"], r["flops_source"]) == ("Widened", 3, "thop")
    assert r["flops_per_image"] > 2 * load_model_map()["noscope_coral"]["og_ops"]  # widths x 2
    table = load_model_map()["efficientnet-game_sot/timer3"]
    r = _infer("efficientnet-game_sot/timer3", "2", "--do_fold", "--batch_size", "4", "--depth_mult", "1.2",
               "--width_mult", "1.1", "--res_mult", "1.15", "--fp16", "0")
    assert (r["mode"], r["images_per_batch"], r["flops_per_image"]) == ("EfficientNet", 4, table["fold2_ops"])
    r = _infer("efficientnet-game_sot/timer3", "2", "--do_fold", "--batch_size", "4", "--width_mult", "1",
               "--res_mult", "1", "--fp16", "0")  # multipliers of 1 scale nothing, as released
    assert r["flops_per_image"] == table["og_ops"]
    r = _infer("noscope_coral", "1", "--batch_size", "2", "--fp16", "1", "--trt", "0")
    assert r["precision"] == "fp16"


def test_trt_without_tensorrt_is_one_line(monkeypatch):
    import infer
    monkeypatch.setattr(infer, "tensorrt_available", lambda: False)
    args = infer.get_args_parser().parse_args(["game_sot/timer3", "1", "--trt", "1"])
    with pytest.raises(BenchError, match="--trt 1 asks for TensorRT, but torch_tensorrt is not installed") as e:
        infer.main(args)
    assert "\n" not in str(e.value)
    monkeypatch.setattr(infer, "tensorrt_available", lambda: True)
    assert infer.resolve_backend(args) == "tensorrt"
    assert_one_line_error(run_cli("infer.py", "game_sot/timer3", "1", "--fp16", "1", "--precision", "fp32"),
                          "--fp16 1 contradicts --precision fp32")


def test_flops_from_tput_command_as_released():
    """Same output as the released util/flops_from_tput.py (values of its model_map.json)."""
    for argv, want in ((["1000", "game_lol/goldnumber-fraction", "og"], "16784480000.00"),
                       (["1000", "lol/goldnumber-fraction", "fold4"], "18710848000.00"),
                       (["1000", "efficientnet-game_lol/goldnumber-fraction", "fold2"], "10504264000.00"),
                       (["1000", "noscope_coral", "fold3"], "17157134000.00")):
        p = run_cli("util/flops_from_tput.py", *argv)
        assert p.returncode == 0 and p.stdout.strip() == want, (argv, p.stdout, p.stderr)
    assert_one_line_error(run_cli("util/flops_from_tput.py", "1", "noscope_nope", "og"), "unknown model")


def _bulk(csv_path, **env):
    base = {"PYTHON": sys.executable, "DEVICE": "cpu", "PRECISION": "fp32", "BATCH": "8",
            "ITERS": "2", "WARMUP": "0", "TRIALS": "2", "BACKEND": "eager"}
    import subprocess
    return subprocess.run(["bash", str(REPO / "run_inference.sh"), str(csv_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **base, **env})


def test_run_inference_csv(tmp_path):
    out = tmp_path / "res" / "results.csv"
    proc = _bulk(out, MODELS="efficientnet-game_apex/squad_count_v2 noscope_coral game_apex/squad_count_v2",
                 FOLDS="1 2")
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == ("Model,Trial,Batch Size,Mode,Fold,Throughput,FLOPs/sec,TputNorm,FLOPNorm,"
                        + ",".join(COLUMNS[9:]))
    rows = list(csv.DictReader(lines))
    assert len(rows) == 2 * 2 + 2 * 2 + 2  # 2 fold models x 2 folds x 2 trials + EfficientNet x 2
    table = load_model_map()
    orig = {(r["Model"], r["Trial"]): float(r["Throughput"]) for r in rows if r["Mode"] == "Original"}
    for r in rows:
        assert r["Error"] == "" and r["Backend"] == "eager"
        tnorm, fnorm = float(r["TputNorm"]), float(r["FLOPNorm"])
        assert tnorm == pytest.approx(float(r["Throughput"]) / orig[(r["Model"], r["Trial"])], rel=1e-2, abs=6e-5)
        key = r["Model"] if r["Mode"] != "EfficientNet" else "efficientnet-game_" + r["Model"]
        f = int(r["Fold"])
        ops = table[key]["og_ops" if f == 1 else f"fold{f}_ops"] / (f if r["Mode"] == "Folded" else 1)
        og = table[key]["og_ops"]
        if r["Mode"] == "Original":
            assert tnorm == 1 and fnorm == 1
        # both columns are written to 4 decimals: a slow row's small ratios differ by that rounding
        assert fnorm == pytest.approx(tnorm * ops / og, rel=1e-2, abs=6e-5 * (1 + ops / og))
    assert [r["Mode"] for r in rows if r["Model"] == "apex/squad_count_v2"][-2:] == ["EfficientNet"] * 2


def test_run_inference_records_failures_and_continues(tmp_path):
    out = tmp_path / "r.csv"
    proc = _bulk(out, MODELS="noscope_coral", FOLDS="1 3", BATCH="2", TRIALS="1")
    assert proc.returncode == 0, proc.stderr
    proc2 = _bulk(out, MODELS="noscope_night", FOLDS="1", BATCH="2", TRIALS="1")
    assert proc2.returncode == 0, proc2.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))  # header written once
    assert [(r["Model"], r["Fold"], bool(r["Error"])) for r in rows] == [
        ("noscope_coral", "1", False), ("noscope_coral", "3", True), ("noscope_night", "1", False)]
    assert "smaller than the fold" in rows[1]["Error"]
    assert "1 configuration(s) failed" in proc.stderr


def test_run_inference_original_names(tmp_path):
    out = tmp_path / "orig.csv"
    proc = _bulk(out, MODELS="noscope_coral", FOLDS="1 2", TRIALS="1", ORIGINAL_NAMES="1")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [(r["Model"], r["Mode"], r["TputNorm"] != "") for r in rows] == [
        ("coral", "Original", True), ("coral", "Folded", True)]


def test_run_inference_bad_model_one_line(tmp_path):
    assert_one_line_error(_bulk(tmp_path / "x.csv", MODELS="game_nosuch"), "unknown model")


def test_quick_defaults(monkeypatch):
    from util.run_inference import get_args_parser, settings
    monkeypatch.setenv("QUICK", "1")
    for k in ("ITERS", "WARMUP", "TRIALS", "BACKEND", "DEVICE"):
        monkeypatch.delenv(k, raising=False)
    c = settings(get_args_parser().parse_args(["x.csv"]))
    assert (c.num_iteration, c.num_warmup, c.trials, c.backend, c.device) == (200, 20, 1, "cudagraph", "cuda")
    monkeypatch.setenv("BACKEND", "compile")
    assert settings(get_args_parser().parse_args(["x.csv"])).backend == "compile"
    monkeypatch.setenv("QUICK", "0")  # the paper protocol; a flag beats its variable
    c = settings(get_args_parser().parse_args(["x.csv", "--trials", "3"]))
    assert (c.num_iteration, c.num_warmup, c.trials, c.channels_last) == (10000, 100, 3, True)


def test_plot_results(tmp_path):
    path = tmp_path / "sample.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        for model, modes in (("noscope_coral", [("Original", 1), ("Folded", 2), ("Folded", 4)]),
                             ("sot/timer3", [("Original", 1), ("Folded", 4), ("EfficientNet", 2)])):
            for mode, f in modes:
                for t in (1, 2):
                    sp = 1.0 if f == 1 else 1.5
                    w.writerow({c: "" for c in COLUMNS} | {
                        "Model": model, "Trial": t, "Batch Size": 1024, "Mode": mode, "Fold": f,
                        "Throughput": 1e6 * sp, "FLOPs/sec": 2e13 * sp, "TputNorm": sp, "FLOPNorm": sp,
                        "Backend": "cudagraph", "BackendRequested": "cudagraph", "Precision": "fp16",
                        "Utilization": 0.02 * sp, "ChannelAlign": 1, "PadInput": 0, "GPU": "Test GPU"})
        w.writerow({c: "" for c in COLUMNS} | {"Model": "noscope_coral", "Mode": "Folded", "Fold": 3,
                                               "Batch Size": 1024, "Error": "RuntimeError: x"})
    proc = run_cli("util/plot_results.py", str(path), str(tmp_path / "plots"))
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["flops_cudagraph_fp16_align1_b1024.png", "tputnorm_cudagraph_fp16_align1_b1024.png",
                    "util_vs_ai_cudagraph_fp16_align1_b1024.png"]
    assert all((tmp_path / "plots" / p).stat().st_size > 10_000 for p in pngs)
    summary = (tmp_path / "plots" / "summary.md").read_text()
    assert "| sot/timer3 | 1,000,000 | cudagraph | - | 1.50x | 1.50x |" in summary
    assert "Rows with errors left out: 1." in summary


def test_auto_probe_warms_up_before_judging(monkeypatch):
    """auto must not judge a backend by its first slow calls (e.g. right after a compile):
    here 'compile' is slow for its first 30 calls and then 10x faster than 'eager'."""
    import time as _time

    from util.bench import runner as benchmark
    calls = {"compile": 0}

    def slow_then_fast(x):
        calls["compile"] += 1
        _time.sleep(0.02 if calls["compile"] <= 30 else 0.0001)
        return x

    def steady(x):
        _time.sleep(0.001)
        return x

    fns = {"eager": steady, "compile": slow_then_fast}
    monkeypatch.setattr(benchmark, "auto_candidates", lambda device: ["eager", "compile"])
    monkeypatch.setattr(benchmark, "prepare", lambda name, m, x: bench_backends.Prepared(name, fns[name], 0.0))
    cfg = BenchConfig(model="noscope_coral", device="cpu", num_warmup=40, num_iteration=50, trials=1)
    best, probe, _ = benchmark._prepare_auto(torch.nn.Identity(), torch.zeros(1), cfg, 1)
    assert best.backend == "compile" and probe["compile"] > probe["eager"]


def test_auto_picks_one_backend_per_model_on_its_original(monkeypatch, capsys):
    """run_inference with BACKEND=auto: the original's choice is reused for the folded rows,
    so every speedup compares the same backend."""
    from util.bench import runner as benchmark
    from util.run_inference import ROW_PREFIX, get_args_parser, worker
    asked = []

    def fake_run(cfg):
        asked.append((cfg.fold, cfg.backend))
        chosen = "compile" if cfg.backend == "auto" else cfg.backend
        return {"model": cfg.model, "fold": cfg.fold, "backend": chosen, "backend_requested": cfg.backend}

    monkeypatch.setattr(benchmark, "run_benchmark", fake_run)
    args = get_args_parser().parse_args(["--worker", "noscope_coral", "--folds", "1", "2", "4",
                                         "--backend", "auto", "--device", "cpu"])
    worker(args)
    assert asked == [(1, "auto"), (2, "compile"), (4, "compile")]
    rows = [json.loads(ln[len(ROW_PREFIX):]) for ln in capsys.readouterr().out.splitlines()
            if ln.startswith(ROW_PREFIX)]
    assert [(r["backend"], r["backend_requested"]) for r in rows] == [("compile", "auto")] * 3


def test_profile_model_cpu(tmp_path):
    """util/profile_model.py: per-operator time of original vs folded, table and CSV."""
    out = tmp_path / "prof.csv"
    p = run_cli("util/profile_model.py", "noscope_coral", "--folds", "1", "2", "--device", "cpu",
                "--precision", "fp32", "--batch-images", "8", "--iters", "2", "--num-warmup", "1", "--csv", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "noscope_coral f=2 (eager, cpu)" in p.stdout and "aten::conv2d" in p.stdout
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    from util.profile_model import CSV_COLUMNS
    assert list(rows[0]) == CSV_COLUMNS
    convs = {r["fold"]: r for r in rows if r["kernel"] == "aten::conv2d"}
    assert set(convs) == {"1", "2"} and all(float(r["calls_per_batch"]) == 2.0 for r in convs.values())
    assert {r["images_per_batch"] for r in rows} == {"8"}
    for fold in ("1", "2"):
        assert sum(float(r["share"]) for r in rows if r["fold"] == fold) == pytest.approx(1.0)
    assert_one_line_error(run_cli("util/profile_model.py", "nope", "--device", "cpu"), "unknown model")


def test_csv_of_an_older_version_gets_the_new_columns(tmp_path):
    """Appending to a CSV written before Bandwidth/RooflineFraction existed keeps its rows and
    adds the columns (empty); a foreign header is refused, the file untouched."""
    from util.run_inference import CsvSink
    old = tmp_path / "old.csv"
    old_cols = COLUMNS[:COLUMNS.index("Error") + 1]
    old.write_text(",".join(old_cols) + "\n" + ",".join(["x"] * len(old_cols)) + "\n")
    CsvSink(old)
    rows = list(csv.DictReader(old.read_text().splitlines()))
    assert list(rows[0]) == COLUMNS and len(rows) == 1
    assert rows[0]["Error"] == "x" and rows[0]["Bandwidth"] == "" and rows[0]["RooflineFraction"] == ""
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ResultsError, match="another header"):
        CsvSink(other)
    assert other.read_text() == "a,b\n1,2\n"
