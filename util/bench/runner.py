"""Inference throughput of one benchmark model: the logic behind ``infer.py``.

Protocol (paper section 6, plus what a modern GPU needs to be measured fairly):

* a batch of ``batch_images`` images; a folded model gets ``batch_images // f`` inputs of ``f``
  images each, so one iteration classifies ``(batch_images // f) * f`` images (1023 for
  f = 3 at 1024) and images/sec counts exactly those;
* the input is device-resident random normal data (not zeros) in the chosen dtype and
  memory format; weights are cast to the dtype (as TensorRT FP16 does), not autocast;
* ``num_warmup`` iterations, then ``trials`` timed loops of ``num_iteration`` iterations,
  each loop between two CUDA events (``perf_counter`` on CPU); the median trial is reported;
* everything runs under ``torch.inference_mode()``; compile / graph capture / engine build
  time is reported as ``compile_seconds`` and never timed as throughput.

``end_to_end`` also times what a video pipeline runs per batch: uint8 frames (N, H, W, C)
in pinned host memory -> non-blocking copy to the GPU -> NCHW, float, normalise ->
``fold_images`` -> forward -> ``unfold_logits`` -> argmax. The backend wraps that whole
device-side function (with ``cudagraph`` the copy stays outside the graph). On CUDA the
copies are double-buffered (``DoubleBuffer``): batch i + 1 is copied on its own stream while
batch i computes, so the rate is that of the slower of the two, not of their sum; the row
gives the host-to-device bytes/sec this reached (``end_to_end_h2d_bytes_per_sec``) beside
the measured pinned copy bandwidth (``h2d_bytes_per_sec``, ``util.bench.peak``); both None
on CPU, where the frames are already where the model runs and nothing is copied.
EfficientNet entries take frames at their reduced input size (the resize is not timed).

FLOPs/sec come from the FLOP table (``config/model_map.json``, ``util.bench.flops``) when the
paper's widths are used (``channel_align`` 1); with ``channel_align`` > 1 they are a thop
count of the model actually built (wider layers execute more FLOPs; the layer cost model of
``models/costs.py``, which counts the same, when thop is not installed): ``flops_source``
says which. Utilization = FLOPs/sec / the GPU's measured peak (``util.bench.peak``); None on CPU.
``roofline_fraction`` = images/sec / the images/sec of the same model with every layer at the
roofline of the measured peak and bandwidth (``models/costs.py``): how far the kernels are
from what the hardware allows, which utilization alone hides for memory-bound layers.

``band_limit`` benchmarks the band-limited CNN (``models/bandlimit.py``) that discards that
percentage of each conv's spectrum; its FLOPs are those its FFT or DFT convolutions execute
(``models/costs.py``, ``flops_source`` "layer_costs"), with the direct convolutions' FLOPs
beside them (``direct_flops_per_image``) and the share of spectrum kept (``kept_fraction``).
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import nn
try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional on a bare GPU box
    def tqdm(iterable, **_):  # type: ignore[no-redef]
        return iterable

from config.tasks import BenchEntry, BenchVariant, get_bench_entry
from models import CompoundScaling, fold_images, kept_fraction, model_input_shape, unfold_logits
from models.bandlimit import BandLimitError, band_layers, check_band_settings
from models.costs import LayerCost, layer_costs
from util.bench.backends import BenchError, Prepared, auto_candidates, check_backend, prepare
from util.bench.config import DEVICES, PRECISIONS, BenchConfig, bytes_per_element
from util.bench.flops import flops_from_tput, load_model_map, thop_flops
from util.bench.roofline import layer_roofline
from util.bench.variants import DEFAULT_MULTIPLIERS, build_variant, compound_of, variant_costs
from util.cli import exception_line
from util.records.provenance import device_name, git_hash, library_versions
from util.bench.peak import h2d_bandwidth, peak_bandwidth, peak_flops, time_loop

# auto's probe per candidate: the full warm-up, then the best of AUTO_PROBE_REPEATS loops of
# AUTO_PROBE_ITERS (capped by num_iteration). A 20-call warm-up and one 200-call loop right after
# a compile under-rated compile by 1.4-2x on an H100 (apex original: probe 4.19 M img/s, then
# 5.88 M measured), so auto once kept cudagraph for a model that compile ran faster.
AUTO_PROBE_ITERS = 500
AUTO_PROBE_REPEATS = 2


@dataclass(frozen=True)
class Target:
    """What MODEL + FOLD mean (``BenchEntry.variant``), with the compound multipliers asked."""
    entry: BenchEntry
    variant: BenchVariant
    multipliers: CompoundScaling = DEFAULT_MULTIPLIERS

    @property
    def fold(self) -> int:
        return self.variant.fold

    @property
    def mode(self) -> str:
        return self.variant.mode

    @property
    def images_per_input(self) -> int:
        return self.variant.images_per_input

    @property
    def compound(self) -> CompoundScaling:
        return compound_of(self.variant, self.multipliers)

    @property
    def in_flop_table(self) -> bool:
        """Whether config/model_map.json has this model (paper widths aside): every fold
        variant, and an EfficientNet one at the table's fold with the default multipliers."""
        v = self.variant
        if v.scaling == "efficientnet":
            return v.fold in self.entry.flop_folds and self.compound == compound_of(v)
        return v.scaling == "fold"  # widened layers are not in the table


def resolve_target(model: str, fold: int, do_fold: bool = True,
                   compound: CompoundScaling = DEFAULT_MULTIPLIERS) -> Target:
    """MODEL, FOLD and do_fold as the released ``inference.py`` read them
    (``config.tasks.BenchEntry.variant``); ``compound``: the EfficientNet multipliers."""
    return Target(get_bench_entry(model), get_bench_entry(model).variant(fold, do_fold), compound)


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise BenchError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device cuda: no CUDA GPU is visible to torch {torch.__version__} "
                         f"(built with CUDA {torch.version.cuda}); use --device cpu")
    return torch.device(name)


def check_settings(cfg: BenchConfig) -> torch.device:
    """Validate every setting of ``cfg`` but its model, so bad requests fail with one line
    before any work; the device it runs on."""
    if cfg.precision not in PRECISIONS:
        raise BenchError(f"unknown precision {cfg.precision!r}; valid: {', '.join(PRECISIONS)}")
    for name in ("batch_images", "num_iteration", "trials", "channel_align"):
        if getattr(cfg, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.num_warmup < 0:
        raise BenchError(f"--num-warmup must be >= 0, got {cfg.num_warmup}")
    if cfg.band_limit is not None:
        try:
            check_band_settings(cfg.band_limit, None, cfg.band_algorithm)
        except BandLimitError as exc:
            raise BenchError(str(exc)) from None
    device = resolve_device(cfg.device)
    check_backend(cfg.backend, device)
    return device


def check_config(cfg: BenchConfig) -> tuple[Target, torch.device]:
    """Validate ``cfg`` up front so bad requests fail with one line before any work."""
    target = resolve_target(cfg.model, cfg.fold, cfg.do_fold, cfg.compound)
    device = check_settings(cfg)
    if cfg.batch_images < target.images_per_input:
        raise BenchError(f"a batch of {cfg.batch_images} images is smaller than the fold "
                         f"{target.images_per_input}")
    return target, device


class VideoPipeline(nn.Module):
    """uint8 frames (N, H, W, C) on the device -> predicted class of each frame.

    The ``fused`` backend runs this in its own kernel from ``model``, ``scale`` and ``shift``
    (``util.bench.backends._fused``): keep those attributes' meaning."""

    def __init__(self, model: nn.Module, fold: int, dtype: torch.dtype, channels: int,
                 mean: list[float] | None, std: list[float] | None,
                 memory_format: torch.memory_format) -> None:
        super().__init__()
        self.model, self.fold, self.dtype, self.memory_format = model, fold, dtype, memory_format
        mean_t = torch.tensor(mean if mean else [0.0] * channels).view(1, -1, 1, 1)
        std_t = torch.tensor(std if std else [1.0] * channels).view(1, -1, 1, 1)
        # x / 255 then (x - mean) / std, folded into one multiply-add
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).to(dtype))
        self.register_buffer("shift", (-mean_t / std_t).to(dtype))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).to(self.dtype) * self.scale + self.shift
        x = fold_images(x, self.fold).contiguous(memory_format=self.memory_format)
        return unfold_logits(self.model(x), self.fold).argmax(1)


def _measure(step: Callable[[], Any], images_per_iter: int, cfg: BenchConfig,
             device: torch.device, label: str) -> list[float]:
    """Warm-up, then ``cfg.trials`` timed loops; images/sec of each trial."""
    for _ in range(cfg.num_warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    out = []
    for _ in tqdm(range(cfg.trials), desc=label, leave=False, disable=None):
        out.append(images_per_iter * cfg.num_iteration / time_loop(step, cfg.num_iteration, device))
    return out


def _prepare_auto(module: nn.Module, example: torch.Tensor, cfg: BenchConfig,
                  images_per_iter: int) -> tuple[Prepared, dict[str, Any], float]:
    """``auto``: prepare every candidate, time a short probe, keep the fastest.

    Returns the winner, ``{backend: images/sec or "error: ..."}`` and the summed setup time.
    """
    probe: dict[str, Any] = {}
    setup, best, best_tput = 0.0, None, -1.0
    iters = max(1, min(AUTO_PROBE_ITERS, cfg.num_iteration))
    for name in auto_candidates(example.device):
        try:
            prep = prepare(name, module, example)
            setup += prep.setup_seconds
            for _ in range(cfg.num_warmup):
                prep.fn(example)
            seconds = min(time_loop(lambda: prep.fn(example), iters, example.device)
                          for _ in range(AUTO_PROBE_REPEATS))
            tput = images_per_iter * iters / seconds
        except Exception as exc:  # a backend that fails here is skipped, and said so
            probe[name] = f"error: {exception_line(exc, typed=True)}"
            continue
        probe[name] = tput
        if tput > best_tput:
            best, best_tput = prep, tput
    if best is None:
        raise BenchError(f"auto: every backend failed: {probe}")
    return best, probe, setup


def _prepare(backend: str, module: nn.Module, example: torch.Tensor, cfg: BenchConfig,
             images_per_iter: int) -> tuple[Prepared, dict[str, Any] | None, float]:
    if backend == "auto":
        return _prepare_auto(module, example, cfg, images_per_iter)
    prep = prepare(backend, module, example)
    return prep, None, prep.setup_seconds


def band_args(cfg: BenchConfig) -> dict[str, Any]:
    """``build_model`` arguments of ``cfg``'s band limit (none for ordinary convs)."""
    return ({} if cfg.band_limit is None else
            {"band_limit": cfg.band_limit, "band_algorithm": cfg.band_algorithm})


def model_flops_per_input(target: Target, model: nn.Module, cfg: BenchConfig) -> tuple[float, str]:
    """FLOPs of one model input and where the number comes from ("table", "thop" or
    "layer_costs"; band-limited models always use the cost model of what they execute)."""
    if cfg.band_limit is not None:
        shapes = _build(target, cfg, meta=True)  # shapes only: no weights, no arithmetic
        costs = layer_costs(shapes, model_input_shape(shapes), 1)
        return float(sum(c.flops for c in costs)), "layer_costs"
    if cfg.channel_align == 1 and target.in_flop_table:
        per_image = flops_from_tput(target.entry, target.fold, 1.0, load_model_map())
        return per_image * target.images_per_input, "table"
    cpu_model = _build(target, cfg)
    try:
        return float(thop_flops(cpu_model)), "thop"
    except ImportError:  # thop missing on the GPU box: the cost model counts the same FLOPs
        costs = layer_costs(cpu_model, model_input_shape(cpu_model), 1)
        return float(sum(c.flops for c in costs)), "layer_costs"


def roofline_images_per_sec(target: Target, cfg: BenchConfig, peak: float | None,
                            bandwidth: float | None) -> float | None:
    """Images/sec of the model as built if every layer ran at the roofline
    (``util.bench.roofline``); None without a measured peak and bandwidth."""
    if not peak or not bandwidth:
        return None
    return layer_roofline(target.entry, target.variant, cfg.batch_images, peak, bandwidth,
                          bytes_per_element(cfg.precision), **_build_args(target, cfg)).images_per_sec


def bench_layer_costs(target: Target, cfg: BenchConfig) -> list[LayerCost]:
    """Layer costs (``models/costs.py``) of the model ``cfg`` benchmarks, for its batch: the
    numbers its roofline adds up (``util.bench.roofline``), one owner for both."""
    return variant_costs(target.entry, target.variant, cfg.batch_images, **_build_args(target, cfg))


def _build_args(target: Target, cfg: BenchConfig, band: bool = True) -> dict[str, Any]:
    """``build_variant`` arguments of ``cfg`` (``band=False``: direct convolutions)."""
    return {"multipliers": target.multipliers, "channel_align": cfg.channel_align,
            "pad_input": cfg.pad_input, **(band_args(cfg) if band else {})}


def _build(target: Target, cfg: BenchConfig, band: bool = True, meta: bool = False) -> nn.Module:
    """The model of ``target`` as ``cfg`` asks (CPU, float32, freshly initialised; ``meta``:
    shapes only); with ``band=False`` the same network with direct convolutions."""
    return build_variant(target.entry, target.variant, meta=meta, **_build_args(target, cfg, band))


def build_bench_model(cfg: BenchConfig, target: Target, device: torch.device) -> tuple[nn.Module, torch.Tensor]:
    """The model of ``target`` in eval mode, cast and laid out as ``cfg`` asks, and its
    device-resident random input batch of ``cfg.batch_images // f`` inputs."""
    dtype = PRECISIONS[cfg.precision]
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    torch.manual_seed(cfg.seed)
    model = _build(target, cfg).eval().to(device=device, dtype=dtype, memory_format=fmt)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    x = torch.randn(cfg.batch_images // target.images_per_input, *model_input_shape(model), generator=gen,
                    device=device, dtype=dtype).contiguous(memory_format=fmt)
    return model, x


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Measure ``cfg`` and return one result row (see ``infer.py --json``)."""
    target, device = check_config(cfg)
    dtype = PRECISIONS[cfg.precision]
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest conv algorithm per shape
    model, x = build_bench_model(cfg, target, device)
    flops_per_input, flops_source = model_flops_per_input(target, model, cfg)
    f = target.images_per_input
    inputs = cfg.batch_images // f
    images_per_iter = inputs * f

    row: dict[str, Any] = {"model": cfg.model, "csv_name": target.entry.csv_name,
                           "fold": target.fold, "mode": target.mode}
    with torch.inference_mode():
        prep, probe, setup = _prepare(cfg.backend, model, x, cfg, images_per_iter)
        trials = _measure(lambda: prep.fn(x), images_per_iter, cfg, device,
                          f"{cfg.model} f={target.fold} {prep.backend}")
        e2e, e2e_setup, h2d_per_image = None, None, None
        if cfg.end_to_end:
            e2e, e2e_setup, h2d_per_image = _end_to_end(model, target, prep.backend, cfg, device,
                                                        dtype, fmt, inputs * f)
    tput = statistics.median(trials)
    flops = flops_per_input / f * tput
    band = {"band_limit": cfg.band_limit, "band_algorithm": None, "kept_fraction": None,
            "direct_flops_per_image": None}
    if cfg.band_limit is not None:
        direct_model = _build(target, cfg, band=False, meta=True)
        direct = layer_costs(direct_model, model_input_shape(direct_model), 1)
        band.update(band_algorithm=",".join(sorted({m.resolved_algorithm(device)
                                                    for m in band_layers(model)})),
                    kept_fraction=kept_fraction(model),
                    direct_flops_per_image=sum(c.flops for c in direct) / f)
    peak = peak_flops(dtype, device)
    bandwidth = peak_bandwidth(device)
    roofline = roofline_images_per_sec(target, cfg, peak, bandwidth)
    row.update({
        "backend": prep.backend, "backend_requested": cfg.backend, "auto_probe": probe,
        "precision": cfg.precision, "batch_size": cfg.batch_images, "inputs_per_batch": inputs,
        "images_per_batch": images_per_iter, "images_per_sec": tput, "trials": trials,
        "flops_per_image": flops_per_input / f, "flops_source": flops_source,
        "flops_per_sec": flops, "peak_flops_per_sec": peak,
        "utilization": flops / peak if peak else None,
        "peak_bytes_per_sec": bandwidth, "roofline_images_per_sec": roofline,
        "roofline_fraction": tput / roofline if roofline else None,
        "end_to_end_images_per_sec": statistics.median(e2e) if e2e else None,
        "end_to_end_trials": e2e,
        "end_to_end_h2d_bytes_per_image": h2d_per_image,
        "end_to_end_h2d_bytes_per_sec": (statistics.median(e2e) * h2d_per_image
                                         if e2e and h2d_per_image else None),
        "h2d_bytes_per_sec": h2d_bandwidth(device) if e2e and h2d_per_image else None,
        "compile_seconds": setup, "end_to_end_compile_seconds": e2e_setup,
        "gpu": device_name(device), "device": device.type, "channels_last": cfg.channels_last,
        "channel_align": cfg.channel_align, "pad_input": cfg.pad_input, **band,
        "num_warmup": cfg.num_warmup, "num_iteration": cfg.num_iteration,
        "versions": dict(library_versions()), "git_commit": git_hash(), "config": asdict(cfg),
    })
    return row


class DoubleBuffer:
    """Double-buffered input of a CUDA pipeline: while the compute stream runs batch i on one
    device buffer, the copy stream fills the other with batch i + 1.

    Ordering, by events only (the host never waits): the compute of a buffer waits for the
    copy into it (``copied``); the next copy into a buffer waits for the compute that read it
    (``consumed``). ``fns[b]`` runs the model on ``buffers[b]``, and must be prepared for that
    very tensor (a CUDA graph's static input), so no call copies anything. Streams and events
    are given (``torch.cuda``'s, or fakes in a test): ``stream.wait_event``,
    ``stream.record_event(event)``, ``stream.wait_stream`` and ``on_stream(stream)``, a context
    that issues work on it (``torch.cuda.stream``).
    """

    def __init__(self, host: torch.Tensor, buffers: list[torch.Tensor],
                 fns: list[Callable[[torch.Tensor], Any]], copy_stream: Any, compute_stream: Any,
                 new_event: Callable[[], Any], on_stream: Callable[[Any], Any]) -> None:
        if len(buffers) != 2 or len(fns) != 2:
            raise ValueError("DoubleBuffer takes two buffers and one callable per buffer")
        self.host, self.buffers, self.fns = host, buffers, fns
        self.copy_stream, self.compute_stream, self.on_stream = copy_stream, compute_stream, on_stream
        self.copied = [new_event(), new_event()]
        self.consumed = [new_event(), new_event()]
        self.step_index = 0
        copy_stream.wait_stream(compute_stream)  # the buffers' allocation and capture come first
        self._copy(0)  # batch 0

    def _copy(self, b: int) -> None:
        with self.on_stream(self.copy_stream):
            self.copy_stream.wait_event(self.consumed[b])  # never recorded yet: no wait
            self.buffers[b].copy_(self.host, non_blocking=True)
            self.copy_stream.record_event(self.copied[b])

    def step(self) -> Any:
        """Queue the copy of the next batch, then the compute of this one; the output."""
        b = self.step_index % 2
        self._copy(1 - b)
        self.compute_stream.wait_event(self.copied[b])
        out = self.fns[b](self.buffers[b])
        self.compute_stream.record_event(self.consumed[b])
        self.step_index += 1
        return out


def _end_to_end(model: nn.Module, target: Target, backend: str, cfg: BenchConfig,
                device: torch.device, dtype: torch.dtype, fmt: torch.memory_format,
                images: int) -> tuple[list[float], float, float | None]:
    """Images/sec of the whole per-batch path of a video pipeline (module docstring), its
    setup seconds, and the host-to-device bytes copied per image (None on CPU: no copy).

    On CUDA ``backend`` is prepared once per device buffer, each on its own buffer: a CUDA
    graph (``cudagraph``, ``compile``, ``triton``) has a static input, and a graph given another
    tensor copies it into that input (``util.bench.backends``), a device-to-device copy the
    pipeline does not need. Two graphs, each reading its own buffer, cost a second capture
    (and compile: in the setup seconds, never timed), not a copy per batch.
    """
    task = target.entry.task
    norm = task.data.normalize
    mean, std = (norm.mean, norm.std) if norm is not None else (None, None)
    pipeline = VideoPipeline(model, target.images_per_input, dtype, task.in_channels,
                             mean, std, fmt).to(device)
    h, w = model.input_size
    host = torch.randint(0, 256, (images, h, w, task.in_channels), dtype=torch.uint8)
    if device.type != "cuda":  # already where the model runs: nothing to copy
        prep = prepare(backend, pipeline, host)
        return (_measure(lambda: prep.fn(host), images, cfg, device, "end-to-end"),
                prep.setup_seconds, None)
    host = host.pin_memory()
    buffers = [torch.empty_like(host, device=device) for _ in range(2)]
    for buf in buffers:
        buf.copy_(host)
    preps = [prepare(backend, pipeline, buf) for buf in buffers]
    pipe = DoubleBuffer(host, buffers, [p.fn for p in preps], torch.cuda.Stream(device),
                        torch.cuda.current_stream(device), torch.cuda.Event, torch.cuda.stream)
    trials = _measure(pipe.step, images, cfg, device, "end-to-end")
    torch.cuda.synchronize(device)  # the last prefetch copy ends before its buffer is freed
    return trials, sum(p.setup_seconds for p in preps), host.numel() * host.element_size() / images


def describe(row: dict[str, Any]) -> str:
    """The human-readable result line(s) ``infer.py`` prints."""
    util = (f", utilization {100 * row['utilization']:.1f}% of measured "
            f"{row['peak_flops_per_sec'] / 1e12:.0f} TFLOP/s" if row["utilization"] is not None else "")
    layout = "channels_last" if row["channels_last"] else "NCHW"
    band = ("" if row.get("band_limit") is None else
            f", band-limited {row['band_limit']:g}% discarded ({row['band_algorithm']}, kept "
            f"{100 * row['kept_fraction']:.1f}% of the spectrum)")
    lines = [
        f"{row['model']} fold {row['fold']} ({row['mode']}{band}), {row['gpu']}, backend {row['backend']}"
        f" (asked {row['backend_requested']}), {row['precision']}, {layout}, align "
        f"{row['channel_align']}{' +pad input' if row['pad_input'] else ''}, batch "
        f"{row['batch_size']} images ({row['inputs_per_batch']} inputs)",
        f"images/sec: {row['images_per_sec']:.1f} (median of {len(row['trials'])} trials x "
        f"{row['num_iteration']} iterations), {row['flops_per_sec'] / 1e12:.3f} TFLOP/s{util}",
    ]
    if row.get("roofline_fraction") is not None:
        lines.append(f"layer roofline ({row['peak_flops_per_sec'] / 1e12:.0f} TFLOP/s, "
                     f"{row['peak_bytes_per_sec'] / 1e12:.2f} TB/s measured): "
                     f"{row['roofline_images_per_sec']:.1f} images/sec; this run reaches "
                     f"{100 * row['roofline_fraction']:.1f}% of it")
    if row["auto_probe"]:
        lines.append("auto probe (images/sec): " + ", ".join(
            f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}" for k, v in row["auto_probe"].items()))
    if row["compile_seconds"]:
        lines.append(f"setup (compile/capture) seconds, not timed: {row['compile_seconds']:.1f}")
    if row["end_to_end_images_per_sec"] is not None:
        h2d = ""
        if row.get("end_to_end_h2d_bytes_per_sec") is not None:
            h2d = (f"; host-to-device {row['end_to_end_h2d_bytes_per_sec'] / 1e9:.2f} GB/s "
                   f"(double-buffered) of {row['h2d_bytes_per_sec'] / 1e9:.2f} GB/s measured "
                   f"pinned copy bandwidth")
        lines.append(f"end-to-end images/sec (uint8 host frames -> argmax): "
                     f"{row['end_to_end_images_per_sec']:.1f}{h2d}")
    return "\n".join(lines)
