#!/usr/bin/env python3
"""Bulk inference benchmark: models x folds x trials -> one CSV (``run_inference.sh``).

Each model runs in a fresh worker process (``--worker``) that measures all its folds with
``util.bench.runner.run_benchmark`` and reports one JSON line per fold; this parent turns the
trials into CSV rows (``util/bench/results.py`` owns the columns) and appends each row as soon
as it exists (an interrupted run keeps its rows; the header is written once). A failing
configuration becomes a row with an ``Error`` and is listed at the end; the rest continue.
Columns (the original's first)::

    Model,Trial,Batch Size,Mode,Fold,Throughput,FLOPs/sec,TputNorm,FLOPNorm,Backend,...

``Bandwidth`` is the GPU's measured memory bytes/sec and ``RooflineFraction`` the throughput
over the layer roofline's (``util/bench/roofline.py``); both are empty on CPU.
``E2EH2DBytesPerSec`` is the frames' host-to-device bytes/sec at the trial's ``E2EThroughput``
(double-buffered copies, ``util/bench/runner.py``) and ``H2DBandwidth`` the measured pinned
host-to-device bandwidth; both empty on CPU (no copy) and without ``E2E=1``. ``BandLimit``,
``BandAlgorithm`` and ``KeptFraction`` describe band-limited CNNs (``BAND_LIMIT``, infer.py
--band-limit) and are empty for ordinary ones. A CSV written before those columns existed
gets them (empty) when a run appends to it.

TputNorm / FLOPNorm divide by the Original row of the same Model, Trial and band limit in
this run (EfficientNet rows share the Model name of their game CNN, so they are normalised to it).
Fold entries run at every FOLDS value; EfficientNet entries only at fold 2 (the original's
convention, ``BenchEntry.bench_folds``). Every setting is an environment variable or a flag
(flags win; the flags are those of ``util.bench.config.BenchConfig``'s fields, e.g.
``--num-iteration`` for ITERS):

    MODELS="all"        benchmark names, or groups: all game noscope efficientnet
    FOLDS="1 2 3 4"     TRIALS=10  ITERS=10000  WARMUP=100  BATCH=1024 (images)
    BACKEND=auto        eager cudagraph compile triton tensorrt auto (auto: chosen on each model's
                        original, then reused for its folds: one backend per speedup)
    PRECISION=fp16      ALIGN=1  PAD_INPUT=0  CHANNELS_LAST=1  DEVICE=cuda  E2E=0
    BAND_LIMIT=         band-limited CNNs discarding this % of each conv's spectrum (empty = ordinary)
    BAND_ALGORITHM=auto fft, dft or auto, for BAND_LIMIT
    TIMEOUT=0           seconds per model worker (0 = none)
    ORIGINAL_NAMES=0    1: the released script's Model names (coral, night, ... for NoScope;
                        game and EfficientNet rows are named alike either way)
    QUICK=1             ITERS=200 WARMUP=20 TRIALS=1 BACKEND=cudagraph (eager on CPU),
                        for any of those not set explicitly

Defaults reproduce the paper's protocol (batch 1024, FP16, 100 warm-up, 10000 iterations,
10 trials; ``PROTOCOL`` holds where it differs from infer.py's defaults); CHANNELS_LAST=1
because NHWC is cuDNN's fast FP16 layout.

Examples::

    ./run_inference.sh results.csv                                   # the full protocol
    QUICK=1 ./run_inference.sh quick.csv                             # every model, ~minutes
    ALIGN=8 PAD_INPUT=1 BACKEND=cudagraph ./run_inference.sh aligned.csv
    MODELS="game_lol/goldnumber-fraction noscope_coral" FOLDS="1 4" BACKEND=auto \\
        ./run_inference.sh best.csv
    DEVICE=cpu PRECISION=fp32 MODELS=noscope_coral BATCH=16 ITERS=3 WARMUP=1 TRIALS=2 \\
        ./run_inference.sh cpu.csv
    BAND_LIMIT=50 MODELS=noscope FOLDS="1 4" BACKEND=cudagraph ./run_inference.sh band50.csv
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config.tasks import BENCH_GROUPS, TaskError, bench_entries, get_bench_entry  # noqa: E402
from util.bench.backends import BenchError  # noqa: E402
from util.bench.config import (BenchConfig, add_config_arguments, config_from_args,  # noqa: E402
                               config_to_argv, default_of)
from util.bench.results import BENCH, COLUMNS, ResultsError  # noqa: E402
from util.cli import exception_line, run_command  # noqa: E402

GROUPS = ("all", *BENCH_GROUPS)
ROW_PREFIX = "RESULT "
# The environment variable of each setting (run_inference.sh's interface).
ENV = {"trials": "TRIALS", "num_iteration": "ITERS", "num_warmup": "WARMUP", "batch_images": "BATCH",
       "backend": "BACKEND", "precision": "PRECISION", "channel_align": "ALIGN",
       "pad_input": "PAD_INPUT", "channels_last": "CHANNELS_LAST", "device": "DEVICE",
       "end_to_end": "E2E", "band_limit": "BAND_LIMIT", "band_algorithm": "BAND_ALGORITHM"}
# The paper protocol, where it differs from BenchConfig's (infer.py's) defaults.
PROTOCOL = {"trials": 10, "channels_last": True, "device": "cuda"}
# QUICK=1: a few minutes for every model (its backend: cudagraph on CUDA, eager elsewhere).
QUICK = {"num_iteration": 200, "num_warmup": 20, "trials": 1}


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _flag(name: str, default: str) -> bool:
    return _env(name, default).strip().lower() in ("1", "true", "yes", "on")


def _from_env(name: str) -> Any:
    """Setting ``name`` from its environment variable; a one-line error for a bad value."""
    var, value = ENV[name], os.environ[ENV[name]]
    kind = type(default_of(name)) if default_of(name) is not None else float
    if kind is bool:
        return _flag(var, "0")
    if not value.strip() and name == "band_limit":
        return None  # empty: ordinary convs
    try:
        return kind(value.strip()) if kind is not str else value
    except ValueError:
        raise BenchError(f"{var}={value!r} is not a {kind.__name__}"
                         + ("; give a percentage such as 50, or leave it empty for ordinary convs"
                            if name == "band_limit" else "")) from None


def bulk_defaults() -> dict[str, Any]:
    """The default of each setting here: its environment variable when set, else QUICK's
    (QUICK=1), else the paper protocol's; the rest are BenchConfig's."""
    out: dict[str, Any] = dict(PROTOCOL)
    quick = _flag("QUICK", "0")
    if quick:
        out.update(QUICK)
    out.update({name: _from_env(name) for name, var in ENV.items() if var in os.environ})
    if quick and "BACKEND" not in os.environ:  # no compile per row
        out["backend"] = "cudagraph" if out["device"] == "cuda" else "eager"
    return out


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", nargs="?", help="results CSV (rows are appended)")
    p.add_argument("--models", nargs="+", default=_env("MODELS", "all").split(),
                   help="benchmark names or groups (%s)" % ", ".join(GROUPS))
    p.add_argument("--folds", nargs="+", type=int,
                   default=[int(f) for f in _env("FOLDS", "1 2 3 4").split()],
                   help="fold factors; 1 = original (env FOLDS)")
    add_config_arguments(p, defaults=bulk_defaults(),
                         help_suffix={n: f" (env {v})" for n, v in ENV.items()})
    p.add_argument("--timeout", type=float, default=float(_env("TIMEOUT", "0")),
                   help="seconds per model worker; 0 = no limit")
    p.add_argument("--original-names", action=argparse.BooleanOptionalAction,
                   default=_flag("ORIGINAL_NAMES", "0"),
                   help="name NoScope rows as the released script did (coral, ...) instead of "
                        "noscope_coral (env ORIGINAL_NAMES)")
    p.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    return p


def expand_models(names: list[str]) -> list[str]:
    """Benchmark names with groups expanded, in the registry's order (game and NoScope CNNs
    before EfficientNet entries, so their Original rows exist to normalise against)."""
    out: list[str] = []
    for name in names:
        if name in GROUPS:
            out += [e.name for e in bench_entries(None if name == "all" else (name,))]
        else:
            out.append(get_bench_entry(name).name)
    order = {e.name: i for i, e in enumerate(bench_entries())}
    return sorted(set(out), key=order.__getitem__)


def settings(args: argparse.Namespace) -> BenchConfig:
    """The settings of this run, as a BenchConfig of no model yet (each worker sets its own)."""
    return config_from_args(args, model="", fold=1)


# ---------------------------------------------------------------- worker (one model)

def worker(args: argparse.Namespace) -> None:
    """Measure every fold of one model; print one ``RESULT {json}`` line per fold.

    With ``auto``, the backend is chosen once, on the first fold measured (the original when
    FOLDS has 1), and reused for the model's other folds: every speedup then compares one
    backend, the one fastest for the original (choosing per fold once paired a compiled
    original with a CUDA-graph folded model).
    """
    from util.bench.runner import run_benchmark  # heavy imports only in workers

    template = dataclasses.replace(settings(args), model=args.worker)
    backend = template.backend
    for fold in get_bench_entry(args.worker).bench_folds(args.folds):
        cfg = dataclasses.replace(template, fold=fold, backend=backend)
        try:
            row = run_benchmark(cfg)
            if template.backend == "auto":
                backend = row["backend"]
                row["backend_requested"] = "auto"
        except Exception as exc:  # recorded by the parent; the next fold still runs
            row = {"model": args.worker, "fold": fold, "error": exception_line(exc, typed=True, limit=450)}
        print(ROW_PREFIX + json.dumps(row), flush=True)


# ---------------------------------------------------------------- parent (CSV)

class CsvSink:
    """Appends rows to the CSV (``util.bench.results.BENCH``) and keeps Original rows for
    normalisation."""

    def __init__(self, path: Path, original_names: bool = False) -> None:
        self.path = path
        self.original_names = original_names
        self.originals: dict[tuple[str, int, Any], tuple[float, float]] = {}
        self.failures: list[str] = []
        BENCH.start(path)

    def _append(self, rows: list[dict[str, Any]]) -> None:
        sys.stdout.write(BENCH.append(self.path, rows))
        sys.stdout.flush()

    def name(self, model: str) -> str:
        """The Model column of benchmark model ``model``: ours, or the released script's."""
        e = get_bench_entry(model)
        return e.released_csv_name if self.original_names else e.csv_name

    def error(self, model: str, fold: int, cfg: BenchConfig, message: str) -> None:
        self.failures.append(f"{model} fold {fold}: {message}")
        self._append([{
            "Model": self.name(model), "Batch Size": cfg.batch_images,
            "Mode": get_bench_entry(model).variant(fold, cfg.do_fold).mode, "Fold": fold,
            "BackendRequested": cfg.backend, "Precision": cfg.precision,
            "ChannelAlign": cfg.channel_align, "PadInput": cfg.pad_input,
            "ChannelsLast": cfg.channels_last, "Error": message, "BandLimit": cfg.band_limit,
            "BandAlgorithm": cfg.band_algorithm if cfg.band_limit is not None else ""}])

    def result(self, r: dict[str, Any]) -> None:
        rows = []
        e2e = r.get("end_to_end_trials") or []
        h2d_per_image = r.get("end_to_end_h2d_bytes_per_image")
        name = self.name(r["model"])
        band = r.get("band_limit")
        roofline = r.get("roofline_images_per_sec")
        probe = r.get("auto_probe") or {}
        for i, tput in enumerate(r["trials"], start=1):
            flops = r["flops_per_image"] * tput
            if r["mode"] == "Original":
                self.originals[(name, i, band)] = (tput, flops)
            orig = self.originals.get((name, i, band))
            rows.append({
                "Model": name, "Trial": i, "Batch Size": r["batch_size"], "Mode": r["mode"],
                "Fold": r["fold"], "Throughput": tput, "FLOPs/sec": flops,
                "TputNorm": tput / orig[0] if orig else None,
                "FLOPNorm": flops / orig[1] if orig else None,
                "Backend": r["backend"], "BackendRequested": r["backend_requested"],
                "Precision": r["precision"],
                "Utilization": flops / r["peak_flops_per_sec"] if r["peak_flops_per_sec"] else None,
                "ChannelAlign": r["channel_align"], "PadInput": r["pad_input"],
                "ChannelsLast": r["channels_last"],
                "E2EThroughput": e2e[i - 1] if i <= len(e2e) else None,
                "CompileSeconds": r["compile_seconds"],
                "Probe": ";".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in probe.items()),
                "GPU": r["gpu"], "Torch": r["versions"]["torch"],
                "Bandwidth": r.get("peak_bytes_per_sec"),
                "RooflineFraction": tput / roofline if roofline else None,
                "BandLimit": band, "BandAlgorithm": r.get("band_algorithm") or "",
                "KeptFraction": r.get("kept_fraction"),
                "E2EH2DBytesPerSec": (e2e[i - 1] * h2d_per_image
                                      if h2d_per_image and i <= len(e2e) else None),
                "H2DBandwidth": r.get("h2d_bytes_per_sec")})
        self._append(rows)


def run_model(model: str, args: argparse.Namespace, sink: CsvSink) -> None:
    """Run one model's worker process and record its results (or its failure)."""
    cfg = settings(args)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", model,
           "--folds", *map(str, args.folds), *config_to_argv(cfg)]
    pending = get_bench_entry(model).bench_folds(args.folds)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    timer = None
    if args.timeout > 0:
        timer = threading.Timer(args.timeout, proc.kill)
        timer.start()
    try:
        for line in proc.stdout:
            if not line.startswith(ROW_PREFIX):
                sys.stderr.write(line)
                continue
            r = json.loads(line[len(ROW_PREFIX):])
            if r["fold"] in pending:
                pending.remove(r["fold"])
            if "error" in r:
                sink.error(model, r["fold"], cfg, r["error"])
            else:
                sink.result(r)
        code = proc.wait()
    finally:
        if timer:
            timer.cancel()
    for fold in pending:
        why = (f"timed out after {args.timeout:.0f}s" if code < 0 and timer else
               f"worker exited with code {code} before this fold (see its stderr above)")
        sink.error(model, fold, cfg, why)


def main(args: argparse.Namespace) -> list[str]:
    if args.worker:
        worker(args)
        return []
    if not args.csv:
        raise BenchError("give the results CSV path, e.g. ./run_inference.sh results.csv")
    if any(f < 1 for f in args.folds):
        raise BenchError(f"FOLDS must all be >= 1, got {args.folds}")
    models = expand_models(args.models)
    from util.bench.runner import check_settings  # imports the models: after cheap checks

    cfg = settings(args)
    check_settings(cfg)
    sink = CsvSink(Path(args.csv), args.original_names)
    band = "" if cfg.band_limit is None else f", band limit {cfg.band_limit:g}% ({cfg.band_algorithm})"
    print(f"# {len(models)} models{band}, folds {args.folds}, backend {cfg.backend}, {cfg.precision}, "
          f"batch {cfg.batch_images}, {cfg.trials} trials x {cfg.num_iteration} iterations (warm-up "
          f"{cfg.num_warmup}), align {cfg.channel_align}{' +pad' if cfg.pad_input else ''} -> {args.csv}",
          file=sys.stderr)
    print(",".join(COLUMNS))
    for model in models:
        run_model(model, args, sink)
    if sink.failures:
        print(f"# {len(sink.failures)} configuration(s) failed:", file=sys.stderr)
        for f in sink.failures:
            print(f"#   {f}", file=sys.stderr)
    return sink.failures


if __name__ == "__main__":
    run_command(main, get_args_parser, errors=(TaskError, BenchError, ResultsError))
