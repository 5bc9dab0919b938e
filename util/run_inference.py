#!/usr/bin/env python3
"""Bulk inference benchmark: models x folds x trials -> one CSV (``run_inference.sh``).

Each model runs in a fresh worker process (``--worker``) that measures all its folds with
``util.bench.runner.run_benchmark`` and reports one JSON line per fold; this parent turns the
trials into CSV rows and appends each row as soon as it exists (an interrupted run keeps
its rows; the header is written once). A failing configuration becomes a row with an
``Error`` and is listed at the end; the rest continue. Columns (the original's first)::

    Model,Trial,Batch Size,Mode,Fold,Throughput,FLOPs/sec,TputNorm,FLOPNorm,Backend,...

``Bandwidth`` is the GPU's measured memory bytes/sec and ``RooflineFraction`` the throughput
over the layer roofline's (``util/bench/runner.py``); both are empty on CPU. ``BandLimit``,
``BandAlgorithm`` and ``KeptFraction`` describe band-limited CNNs (``BAND_LIMIT``, infer.py
--band-limit) and are empty for ordinary ones. A CSV written before those columns existed
gets them (empty) when a run appends to it.

TputNorm / FLOPNorm divide by the Original row of the same Model, Trial and band limit in
this run (EfficientNet rows share the Model name of their game CNN, so they are normalised to it).
Fold entries run at every FOLDS value; EfficientNet entries only at fold 2 (the original's
convention). Every setting is an environment variable or a flag (flags win):

    MODELS="all"        benchmark names, or groups: all game noscope efficientnet
    FOLDS="1 2 3 4"     TRIALS=10  ITERS=10000  WARMUP=100  BATCH=1024
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
10 trials); CHANNELS_LAST=1 because NHWC is cuDNN's fast FP16 layout.

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
import csv
import io
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

from config.tasks import TaskError, bench_entries, get_bench_entry  # noqa: E402
from util.bench.backends import BACKENDS, BenchError  # noqa: E402
from util.records.atomic import atomic_write_text  # noqa: E402

COLUMNS = ["Model", "Trial", "Batch Size", "Mode", "Fold", "Throughput", "FLOPs/sec", "TputNorm",
           "FLOPNorm", "Backend", "BackendRequested", "Precision", "Utilization", "ChannelAlign",
           "PadInput", "ChannelsLast", "E2EThroughput", "CompileSeconds", "Probe", "GPU", "Torch",
           "Error", "Bandwidth", "RooflineFraction", "BandLimit", "BandAlgorithm", "KeptFraction"]
GROUPS = ("all", "game", "noscope", "efficientnet")
ROW_PREFIX = "RESULT "


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _flag(name: str, default: str) -> bool:
    return _env(name, default).strip().lower() in ("1", "true", "yes", "on")


def _default_backend(quick: bool) -> str:
    """BACKEND if set; else QUICK runs use cudagraph (no compile per row), others auto."""
    if "BACKEND" in os.environ:
        return os.environ["BACKEND"]
    if quick:
        return "cudagraph" if _env("DEVICE", "cuda") == "cuda" else "eager"
    return "auto"


def _band_default() -> float | None:
    """BAND_LIMIT as a number, None when unset or empty; a one-line error otherwise."""
    value = _env("BAND_LIMIT", "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        raise BenchError(f"BAND_LIMIT={value!r} is not a number; give a percentage such as 50, "
                         "or leave it empty for ordinary convs") from None


def get_args_parser() -> argparse.ArgumentParser:
    quick = _flag("QUICK", "0")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", nargs="?", help="results CSV (rows are appended)")
    p.add_argument("--models", nargs="+", default=_env("MODELS", "all").split(),
                   help="benchmark names or groups (%s)" % ", ".join(GROUPS))
    p.add_argument("--folds", nargs="+", type=int,
                   default=[int(f) for f in _env("FOLDS", "1 2 3 4").split()],
                   help="fold factors; 1 = original (env FOLDS)")
    p.add_argument("--trials", type=int, default=int(_env("TRIALS", "1" if quick else "10")),
                   help="timed trials per configuration (env TRIALS)")
    p.add_argument("--iters", type=int, default=int(_env("ITERS", "200" if quick else "10000")),
                   help="timed iterations per trial (env ITERS)")
    p.add_argument("--warmup", type=int, default=int(_env("WARMUP", "20" if quick else "100")),
                   help="warm-up iterations (env WARMUP)")
    p.add_argument("--batch", type=int, default=int(_env("BATCH", "1024")),
                   help="images per batch (env BATCH)")
    p.add_argument("--backend", choices=BACKENDS, default=_default_backend(quick),
                   help="inference backend, see infer.py --help (env BACKEND)")
    p.add_argument("--precision", default=_env("PRECISION", "fp16"),
                   help="fp16, bf16 or fp32 (env PRECISION)")
    p.add_argument("--align", type=int, default=int(_env("ALIGN", "1")),
                   help="channel alignment of widths (env ALIGN)")
    p.add_argument("--pad-input", action=argparse.BooleanOptionalAction, default=_flag("PAD_INPUT", "0"),
                   help="pad input channels to ALIGN (env PAD_INPUT)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   default=_flag("CHANNELS_LAST", "1"),
                   help="NHWC layout (env CHANNELS_LAST)")
    p.add_argument("--device", default=_env("DEVICE", "cuda"),
                   help="cuda or cpu (env DEVICE)")
    p.add_argument("--end-to-end", action=argparse.BooleanOptionalAction, default=_flag("E2E", "0"),
                   help="also time the uint8-frames pipeline (env E2E)")
    p.add_argument("--band-limit", type=float, default=_band_default(), metavar="CR",
                   help="band-limited CNNs discarding CR%% of each conv's spectrum (env BAND_LIMIT; "
                        "default: ordinary convs)")
    p.add_argument("--band-algorithm", choices=["fft", "dft", "auto"],
                   default=_env("BAND_ALGORITHM", "auto"),
                   help="algorithm of the band-limited convs (env BAND_ALGORITHM)")
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
            out += [e.name for e in bench_entries()
                    if name == "all" or (name == "efficientnet" and e.scaling == "efficientnet")
                    or (e.scaling == "fold" and e.task.family == name)]
        else:
            out.append(get_bench_entry(name).name)
    order = {e.name: i for i, e in enumerate(bench_entries())}
    return sorted(set(out), key=order.__getitem__)


def folds_for(model: str, folds: list[int]) -> list[int]:
    return [2] if get_bench_entry(model).scaling == "efficientnet" else sorted(set(folds))


# ---------------------------------------------------------------- worker (one model)

def worker(args: argparse.Namespace) -> None:
    """Measure every fold of one model; print one ``RESULT {json}`` line per fold.

    With ``auto``, the backend is chosen once, on the first fold measured (the original when
    FOLDS has 1), and reused for the model's other folds: every speedup then compares one
    backend, the one fastest for the original (choosing per fold once paired a compiled
    original with a CUDA-graph folded model).
    """
    from util.bench.runner import BenchConfig, run_benchmark  # heavy imports only in workers

    backend = args.backend
    for fold in folds_for(args.worker, args.folds):
        cfg = BenchConfig(model=args.worker, fold=fold, batch_size=args.batch, num_warmup=args.warmup,
                          num_iteration=args.iters, trials=args.trials, backend=backend,
                          precision=args.precision, channels_last=args.channels_last,
                          channel_align=args.align, pad_input=args.pad_input, device=args.device,
                          end_to_end=args.end_to_end, band_limit=args.band_limit,
                          band_algorithm=args.band_algorithm)
        try:
            row = run_benchmark(cfg)
            if args.backend == "auto":
                backend = row["backend"]
                row["backend_requested"] = "auto"
        except Exception as exc:  # recorded by the parent; the next fold still runs
            msg = str(exc).splitlines()[0] if str(exc) else ""
            row = {"model": args.worker, "fold": fold, "error": f"{type(exc).__name__}: {msg}"[:500]}
        print(ROW_PREFIX + json.dumps(row), flush=True)


# ---------------------------------------------------------------- parent (CSV)

def _fmt(v: Any, spec: str) -> str:
    return "" if v is None or v == "" else format(v, spec)


class CsvSink:
    """Appends rows to the CSV (header once) and keeps Original rows for normalisation."""

    def __init__(self, path: Path, original_names: bool = False) -> None:
        self.path = path
        self.original_names = original_names
        self.originals: dict[tuple[str, int, Any], tuple[float, float]] = {}
        self.failures: list[str] = []
        if path.exists() and path.stat().st_size:
            header = path.read_text().splitlines()[0]
            if header != ",".join(COLUMNS):
                self._upgrade(header)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append([COLUMNS], echo=False)

    def _upgrade(self, header: str) -> None:
        """A CSV of an older version (a prefix of today's columns) gets the new columns,
        empty, in one atomic rewrite; any other header is refused."""
        old = header.split(",")
        if old != COLUMNS[:len(old)]:
            raise BenchError(f"{self.path} has another header ({header[:60]}...); "
                             "write to a new CSV file")
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(
            [COLUMNS] + [r + [""] * (len(COLUMNS) - len(r)) for r in rows])
        atomic_write_text(self.path, buf.getvalue())
        print(f"# {self.path}: added the columns {', '.join(COLUMNS[len(old):])} (empty for "
              f"its {len(rows)} earlier rows)", file=sys.stderr)

    def _append(self, rows: list[list[Any]], echo: bool = True) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        with open(self.path, "a") as fh:  # whole rows in one write, flushed to disk
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        if echo:
            sys.stdout.write(buf.getvalue())
            sys.stdout.flush()

    def name(self, model: str) -> str:
        """The Model column of benchmark model ``model``: ours, or the released script's."""
        e = get_bench_entry(model)
        return e.released_csv_name if self.original_names else e.csv_name

    def error(self, model: str, fold: int, args: argparse.Namespace, message: str) -> None:
        e = get_bench_entry(model)
        mode = ("EfficientNet" if e.scaling == "efficientnet" and fold == 2 else
                "Original" if fold == 1 else "Folded")
        row = {c: "" for c in COLUMNS}
        row.update({"Model": self.name(model), "Batch Size": args.batch, "Mode": mode, "Fold": fold,
                    "BackendRequested": args.backend, "Precision": args.precision,
                    "ChannelAlign": args.align, "PadInput": int(args.pad_input),
                    "ChannelsLast": int(args.channels_last), "Error": message,
                    "BandLimit": _fmt(args.band_limit, "g"),
                    "BandAlgorithm": args.band_algorithm if args.band_limit is not None else ""})
        self.failures.append(f"{model} fold {fold}: {message}")
        self._append([[row[c] for c in COLUMNS]])

    def result(self, r: dict[str, Any]) -> None:
        rows = []
        e2e = r.get("end_to_end_trials") or []
        name = self.name(r["model"])
        for i, tput in enumerate(r["trials"], start=1):
            flops = r["flops_per_image"] * tput
            band = r.get("band_limit")
            if r["mode"] == "Original":
                self.originals[(name, i, band)] = (tput, flops)
            orig = self.originals.get((name, i, band))
            probe = r.get("auto_probe") or {}
            rows.append([
                name, i, r["batch_size"], r["mode"], r["fold"], _fmt(tput, ".2f"),
                _fmt(flops, ".4e"), _fmt(tput / orig[0] if orig else None, ".4f"),
                _fmt(flops / orig[1] if orig else None, ".4f"), r["backend"], r["backend_requested"],
                r["precision"], _fmt(flops / r["peak_flops_per_sec"] if r["peak_flops_per_sec"] else None, ".4f"),
                r["channel_align"], int(r["pad_input"]), int(r["channels_last"]),
                _fmt(e2e[i - 1] if i <= len(e2e) else None, ".2f"), _fmt(r["compile_seconds"], ".1f"),
                ";".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}" for k, v in probe.items()),
                r["gpu"], r["versions"]["torch"], "", _fmt(r.get("peak_bytes_per_sec"), ".4e"),
                _fmt(tput / r["roofline_images_per_sec"] if r.get("roofline_images_per_sec")
                     else None, ".4f"), _fmt(band, "g"), r.get("band_algorithm") or "",
                _fmt(r.get("kept_fraction"), ".4f")])
        self._append(rows)


def run_model(model: str, args: argparse.Namespace, sink: CsvSink) -> None:
    """Run one model's worker process and record its results (or its failure)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", model,
           "--folds", *map(str, args.folds), "--trials", str(args.trials), "--iters", str(args.iters),
           "--warmup", str(args.warmup), "--batch", str(args.batch), "--backend", args.backend,
           "--precision", args.precision, "--align", str(args.align), "--device", args.device,
           "--pad-input" if args.pad_input else "--no-pad-input",
           "--channels-last" if args.channels_last else "--no-channels-last",
           "--end-to-end" if args.end_to_end else "--no-end-to-end",
           "--band-algorithm", args.band_algorithm]
    if args.band_limit is not None:
        cmd += ["--band-limit", f"{args.band_limit:g}"]
    pending = folds_for(model, args.folds)
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
                sink.error(model, r["fold"], args, r["error"])
            else:
                sink.result(r)
        code = proc.wait()
    finally:
        if timer:
            timer.cancel()
    for fold in pending:
        why = (f"timed out after {args.timeout:.0f}s" if code < 0 and timer else
               f"worker exited with code {code} before this fold (see its stderr above)")
        sink.error(model, fold, args, why)


def main(args: argparse.Namespace) -> list[str]:
    if args.worker:
        worker(args)
        return []
    if not args.csv:
        raise BenchError("give the results CSV path, e.g. ./run_inference.sh results.csv")
    if any(f < 1 for f in args.folds) or min(args.trials, args.iters, args.batch, args.align) < 1:
        raise BenchError("FOLDS, TRIALS, ITERS, BATCH and ALIGN must all be >= 1")
    models = expand_models(args.models)
    from util.bench.runner import PRECISIONS, resolve_device  # imports torch: after cheap checks
    from util.bench.backends import check_backend
    if args.precision not in PRECISIONS:
        raise BenchError(f"unknown precision {args.precision!r}; valid: {', '.join(PRECISIONS)}")
    check_backend(args.backend, resolve_device(args.device))
    if args.band_limit is not None:
        from models.bandlimit import BandLimitError, check_band_settings
        try:
            check_band_settings(args.band_limit, None, args.band_algorithm)
        except BandLimitError as exc:
            raise BenchError(str(exc)) from None
    sink = CsvSink(Path(args.csv), args.original_names)
    band = "" if args.band_limit is None else f", band limit {args.band_limit:g}% ({args.band_algorithm})"
    print(f"# {len(models)} models{band}, folds {args.folds}, backend {args.backend}, {args.precision}, "
          f"batch {args.batch}, {args.trials} trials x {args.iters} iterations (warm-up {args.warmup}),"
          f" align {args.align}{' +pad' if args.pad_input else ''} -> {args.csv}", file=sys.stderr)
    print(",".join(COLUMNS))
    for model in models:
        run_model(model, args, sink)
    if sink.failures:
        print(f"# {len(sink.failures)} configuration(s) failed:", file=sys.stderr)
        for f in sink.failures:
            print(f"#   {f}", file=sys.stderr)
    return sink.failures


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (TaskError, BenchError) as exc:
        sys.exit(f"error: {exc}")
