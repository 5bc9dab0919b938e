"""Per-layer scoreboard: each layer's measured time beside its roofline time.

The benchmark's ``roofline_fraction`` says how far a whole network is from the layer
roofline (``util.bench.roofline``); this says which layer loses the time. A *layer* is what
the cost model (``models/costs.py``) counts, as the benchmark builds the network:

* a conv or linear layer together with the ReLU that reads its output (the cost model takes
  activations as fused into the preceding layer; so does cuDNN's or inductor's epilogue);
* a pooling layer on its own: the cost model counts it nothing (fused into the conv before
  it), so its roofline time is 0 and all its measured time counts as lost (gap: none);
* with the ``triton`` backend, a ``FusedConv3x3`` (conv + ReLU (+ 2x2 max pool) in one
  kernel, ``util.bench.triton_conv.fuse_convs``), costed as the conv it replaces.

Each layer is timed in isolation on its real input, captured by a forward hook during one
forward of the benchmark's input batch: warm-up, then the best of ``TIMING_REPEATS`` loops of
``iters`` calls (CUDA events on the GPU, ``perf_counter`` on CPU). On CUDA every call is a
CUDA-graph replay (``util.bench.backends``' ``cudagraph`` and ``compile``), so a layer's time
is its kernels' time without launch cost. The whole network is timed the same way on the
benchmark's input; the sum of the layers and the whole network's time differ by what runs
between layers (flatten, padding, copies) and by cross-layer fusion (``compile``).

Backends (``LAYER_BACKENDS``): ``eager`` (each layer's eager modules; the whole network as
the benchmark's ``cudagraph`` replays it on CUDA), ``compile`` (each layer compiled alone, the
whole network compiled whole, as the benchmark's ``compile``), ``triton`` (the layers of the
``fuse_convs`` copy run as eager modules, so a fused conv is its Triton kernel on CUDA and
``F.conv2d`` on CPU; the whole network is the benchmark's ``triton`` backend on CUDA, the
fused copy eagerly on CPU). Another backend's fused modules fit the same way: add their type
to ``COMPUTE`` (costed in order, as the convs they replace) and their builder to
``layer_modules``. ``fused`` (CUDA only) cannot time a layer alone: its layers run inside one
kernel. The whole network is timed as the benchmark's ``fused`` backend runs it (its tuned
setting, ``tuned_fused_net``), the kernel's share is split over its layers by the cycles each
spends in them (``FusedNet.layer_cycles``: the profiling kernel reads every SM's cycle counter
at each layer boundary), and a classifier run after the kernel is timed layer by layer, as the
other backends' layers are. A layer's time then includes waiting at its closing barrier.

Rows (one per fold and layer) are ``TABLE``'s columns; fractions and roofline need the peak
FLOPs/sec and bandwidth (``util.bench.peak``, measured on CUDA; None on CPU unless given).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from models.bandlimit import BandLimitedConv2d
from models.costs import LayerCost
from util.bench.backends import BenchError, prepare, sync
from util.bench.config import PRECISIONS, BenchConfig, bytes_per_element
from util.bench.peak import peak_bandwidth, peak_flops, time_loop
from util.bench.results import Column, CsvTable
from util.bench.runner import bench_layer_costs, build_bench_model, check_config
from util.bench.triton_conv import FusedConv3x3, fuse_convs

LAYER_BACKENDS = ("eager", "compile", "triton", "fused")
TIMING_REPEATS = 3
# Modules that start a layer and carry one LayerCost each, in execution order.
COMPUTE = (nn.Conv2d, nn.Linear, BandLimitedConv2d, FusedConv3x3)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
ACTIVATIONS = (nn.ReLU,)
_LABELS = {nn.Conv2d: "conv", nn.Linear: "linear", BandLimitedConv2d: "band conv",
           nn.ReLU: "relu", nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool",
           nn.AdaptiveAvgPool2d: "avgpool", nn.AdaptiveMaxPool2d: "maxpool"}

_INT = ("fold", "images_per_batch", "flops", "bytes", "worst")
_FLOAT = ("us_per_batch", "tflops_per_sec", "gb_per_sec", "peak_fraction", "bandwidth_fraction",
          "roofline_us", "gap", "lost_us", "network_us_per_batch", "peak_flops_per_sec",
          "peak_bytes_per_sec")
_NAMES = ["model", "fold", "backend", "device", "precision", "images_per_batch", "layer", "kind",
          "input_shape", "us_per_batch", "flops", "bytes", "tflops_per_sec", "gb_per_sec",
          "peak_fraction", "bandwidth_fraction", "roofline_us", "gap", "lost_us", "worst",
          "network_us_per_batch", "peak_flops_per_sec", "peak_bytes_per_sec"]
# worst: 1 on the layer of its fold with the most time lost (us_per_batch - roofline_us).
# gap: us_per_batch / roofline_us, empty where the roofline is 0 (pools) or unknown.
TABLE = CsvTable(tuple(Column(n, "int") if n in _INT else Column(n, "float", ".6g") if n in _FLOAT
                       else Column(n) for n in _NAMES),
                 producer="util/profile_model.py --layers")
COLUMNS = TABLE.names


@dataclass
class Layer:
    """Modules run one after the other on ``input`` (a copy of what the network gave them)."""
    name: str
    modules: list[nn.Module]
    input: torch.Tensor

    @property
    def kind(self) -> str:
        parts = []
        for m in self.modules:
            if isinstance(m, FusedConv3x3):
                parts += ["triton conv"] + (["relu"] if m.relu else []) + (["maxpool"] if m.pool else [])
            else:
                parts.append(_LABELS.get(type(m), type(m).__name__.lower()))
        return "+".join(parts)

    @property
    def has_cost(self) -> bool:
        return isinstance(self.modules[0], COMPUTE)


def split_layers(model: nn.Module, x: torch.Tensor) -> list[Layer]:
    """The layers of one forward of ``model`` on ``x``, in execution order (module docstring):
    a leaf module starts a layer, except an activation that reads the output of the conv or
    linear layer just before it, which joins that layer."""
    layers: list[Layer] = []
    last: dict[str, Any] = {"out": None}

    def pre(mod: nn.Module, args: tuple, name: str) -> None:
        if (isinstance(mod, ACTIVATIONS) and layers and args and args[0] is last["out"]
                and isinstance(layers[-1].modules[-1], COMPUTE)):
            layers[-1].modules.append(mod)
            layers[-1].name += "+" + name
        elif args and isinstance(args[0], torch.Tensor):
            layers.append(Layer(name, [mod], args[0].detach().clone()))

    def post(mod: nn.Module, args: tuple, out: Any) -> None:
        last["out"] = out

    leaves = [(n, m) for n, m in model.named_modules()
              if isinstance(m, COMPUTE) or not list(m.children())]
    handles = []
    for name, mod in leaves:
        handles.append(mod.register_forward_pre_hook(lambda m, a, n=name: pre(m, a, n)))
        handles.append(mod.register_forward_hook(post))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return layers


def layer_modules(model: nn.Module, backend: str) -> nn.Module:
    """The network whose layers ``backend`` times: the model itself, or its fused copy."""
    if backend != "triton":
        return model
    fused, count = fuse_convs(model)
    if count == 0:
        raise BenchError("--backend triton found no 3x3 stride-1 padding-1 conv to fuse in this "
                         "model; use --backend compile")
    return fused


def seconds_per_call(module: nn.Module, x: torch.Tensor, how: str, iters: int,
                     warmup: int) -> float:
    """Best of ``TIMING_REPEATS`` timed loops of ``module(x)`` prepared by backend ``how``
    (``util.bench.backends``; called with ``x`` itself, so a CUDA graph copies nothing)."""
    prep = prepare(how, module, x)
    for _ in range(warmup):
        prep.fn(x)
    sync(x.device)
    return min(time_loop(lambda: prep.fn(x), iters, x.device) for _ in range(TIMING_REPEATS)) / iters


def _layer_how(backend: str, device: torch.device) -> str:
    """``prepare`` backend that times one layer under ``backend``."""
    if backend == "compile":
        return "compile"
    return "cudagraph" if device.type == "cuda" else "eager"


def _network_how(backend: str, device: torch.device) -> str:
    """``prepare`` backend that times the whole network under ``backend`` (module docstring)."""
    if device.type == "cuda":
        return {"eager": "cudagraph", "compile": "compile", "triton": "triton"}[backend]
    return "compile" if backend == "compile" else "eager"


def layer_row(name: str, kind: str, input_shape: Sequence[int], seconds: float,
              cost: LayerCost | None, bytes_per_elt: int, peak: float | None,
              bandwidth: float | None) -> dict[str, Any]:
    """The numbers of one layer: achieved rates, fractions of the peaks, roofline and gap."""
    flops = cost.flops if cost else 0
    nbytes = cost.bytes(bytes_per_elt) if cost else 0
    roof = max(flops / peak, nbytes / bandwidth) if peak and bandwidth else None
    return {"layer": name, "kind": kind, "input_shape": "x".join(str(d) for d in input_shape),
            "us_per_batch": 1e6 * seconds, "flops": flops, "bytes": nbytes,
            "tflops_per_sec": flops / seconds / 1e12, "gb_per_sec": nbytes / seconds / 1e9,
            "peak_fraction": flops / seconds / peak if peak else None,
            "bandwidth_fraction": nbytes / seconds / bandwidth if bandwidth else None,
            "roofline_us": None if roof is None else 1e6 * roof,
            "gap": seconds / roof if roof else None,
            "lost_us": None if roof is None else 1e6 * (seconds - roof), "worst": 0}


def mark_worst(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Set ``worst`` on the row with the most time lost to its roofline; that row, or None
    without a roofline."""
    scored = [r for r in rows if r["lost_us"] is not None]
    if not scored:
        return None
    worst = max(scored, key=lambda r: r["lost_us"])
    worst["worst"] = 1
    return worst


def scoreboard_fold(cfg: BenchConfig, backend: str, iters: int, peak: float | None = None,
                    bandwidth: float | None = None) -> dict[str, Any]:
    """Every layer of ``cfg``'s network timed under ``backend``, beside its costs and roofline,
    and the whole network's time; ``peak`` / ``bandwidth`` (FLOPs/s, bytes/s) default to this
    device's measured ones (None on CPU)."""
    if backend not in LAYER_BACKENDS:
        raise BenchError(f"unknown layer backend {backend!r}; valid: {', '.join(LAYER_BACKENDS)}")
    if iters < 1:
        raise BenchError(f"--iters must be >= 1, got {iters}")
    target, device = check_config(cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dtype = PRECISIONS[cfg.precision]
    peak = peak if peak is not None else peak_flops(dtype, device)
    bandwidth = bandwidth if bandwidth is not None else peak_bandwidth(device)
    costs = bench_layer_costs(target, cfg)
    bpe = bytes_per_element(cfg.precision)
    model, x = build_bench_model(cfg, target, device)
    warmup = max(cfg.num_warmup, 2)
    if backend == "fused":
        rows, network, profiled = fused_layer_rows(model, x, costs, bpe, peak, bandwidth, iters,
                                                   warmup)
        return {**_result(cfg, target, backend, device, rows, network, peak, bandwidth),
                "profiled_us_per_batch": 1e6 * profiled}
    with torch.inference_mode():
        layers = split_layers(layer_modules(model, backend), x)
        computed = [layer for layer in layers if layer.has_cost]
        if len(computed) != len(costs):
            raise BenchError(f"{cfg.model} f={cfg.fold}: {len(computed)} conv/linear layers ran but "
                             f"the cost model counts {len(costs)}; this is a bug, please report it")
        cost_of = {id(layer): c for layer, c in zip(computed, costs)}
        rows = []
        for layer in layers:
            unit = nn.Sequential(*layer.modules)
            seconds = seconds_per_call(unit, layer.input, _layer_how(backend, device), iters, warmup)
            rows.append(layer_row(layer.name, layer.kind, layer.input.shape, seconds,
                                  cost_of.get(id(layer)), bpe, peak, bandwidth))
            layer.input = None  # type: ignore[assignment]  # free it before the next layer
        del layers, computed, cost_of
        network = seconds_per_call(model, x, _network_how(backend, device), iters, warmup)
    return _result(cfg, target, backend, device, rows, network, peak, bandwidth)


def _result(cfg: BenchConfig, target: Any, backend: str, device: torch.device,
            rows: list[dict[str, Any]], network: float, peak: float | None,
            bandwidth: float | None) -> dict[str, Any]:
    """One fold's scoreboard: its rows (the worst marked) under the fold's common columns."""
    mark_worst(rows)
    f = target.images_per_input
    head = {"model": cfg.model, "fold": target.fold, "backend": backend, "device": device.type,
            "precision": cfg.precision, "images_per_batch": (cfg.batch_images // f) * f,
            "network_us_per_batch": 1e6 * network, "peak_flops_per_sec": peak,
            "peak_bytes_per_sec": bandwidth}
    return {**head, "rows": [{**head, **r} for r in rows]}


def _fused_kind(layer: Any) -> tuple[str, tuple[int, ...]]:
    """A kernel layer's kind and per-input shape (``util.bench.fused_net``'s Conv, Pool, Dense)."""
    from util.bench.fused_net import Conv, Pool

    if isinstance(layer, Conv):
        return ("fused conv" + ("+relu" if layer.relu else "") + ("+maxpool" if layer.pool else ""),
                (layer.cin, layer.height, layer.width))
    if isinstance(layer, Pool):
        return "fused maxpool", (layer.channels, layer.height, layer.width)
    return "fused linear" + ("+relu" if layer.relu else ""), (layer.features_in,)


def split_kernel_time(kernel_seconds: float, cycles: Sequence[int]) -> list[float]:
    """The kernel's time shared out over its layers in proportion to their cycles."""
    total = sum(cycles)
    if total <= 0:
        raise BenchError("the fused kernel's layers counted no cycles; this is a bug, please report it")
    return [kernel_seconds * c / total for c in cycles]


def fused_layer_rows(model: nn.Module, x: torch.Tensor, costs: list[LayerCost], bytes_per_elt: int,
                     peak: float | None, bandwidth: float | None, iters: int,
                     warmup: int) -> tuple[list[dict[str, Any]], float, float]:
    """The ``fused`` backend's rows (module docstring), the whole network's seconds and the
    profiling kernel's (with the head after it), which show how much the counters cost."""
    from util.bench.backends import tuned_fused_net

    if x.device.type != "cuda":
        raise BenchError("--layers --backend fused needs a CUDA GPU: its layers run inside one "
                         "kernel and are timed by the GPU's cycle counters; on a CPU use "
                         "--backend triton or eager")
    with torch.inference_mode():
        net = tuned_fused_net(model, x)
        network = seconds_per_call(net.folded, x, "cudagraph", iters, warmup)
        features, head = net.host_head()
        inputs = x.shape[0]
        h = torch.randn(inputs, features, device=x.device, dtype=x.dtype)
        head_rows = []
        for i, (weight, bias, relu) in enumerate(head):
            def linear(t: torch.Tensor, w: torch.Tensor = weight, b: torch.Tensor = bias,
                       r: bool = relu) -> torch.Tensor:
                y = torch.addmm(b, t, w)
                return y.relu_() if r else y
            head_rows.append((f"head.{i}", "linear (after the kernel)" + ("+relu" if relu else ""),
                              (inputs, h.shape[1]), seconds_per_call(linear, h, "cudagraph", iters,
                                                                    warmup)))
            h = linear(h)
        kernel = max(network - sum(r[3] for r in head_rows), 0.0)
        # the profiling kernel, timed as the timed one is; its cycles add up over every launch,
        # in the same proportions as one launch's (FusedNet.layer_cycles)
        prof = net.profile_buffer(x)
        profiled = seconds_per_call(lambda t: net.profiled(t, prof), x, "cudagraph", iters, warmup)
        cycles = prof.sum(0).tolist()
    rows = assemble_fused_rows(net.kernel_layers(), cycles, kernel, head_rows, costs, inputs,
                               bytes_per_elt, peak, bandwidth)
    return rows, network, profiled


def assemble_fused_rows(layers: Sequence[Any], cycles: Sequence[int], kernel_seconds: float,
                        head_rows: Sequence[tuple[str, str, tuple[int, ...], float]],
                        costs: Sequence[LayerCost], inputs: int, bytes_per_elt: int,
                        peak: float | None, bandwidth: float | None) -> list[dict[str, Any]]:
    """Rows of the kernel's ``layers`` (their share of ``kernel_seconds`` by ``cycles``) and of
    the head run after it (name, kind, input shape, seconds), costed in order by ``costs``
    (convs and linears; a pool costs nothing)."""
    from util.bench.fused_net import Pool

    kinds = [_fused_kind(layer) for layer in layers]
    costed = [i for i, layer in enumerate(layers) if not isinstance(layer, Pool)]
    if len(costed) + len(head_rows) != len(costs) or len(cycles) != len(layers):
        raise BenchError(f"the fused kernel runs {len(costed)} conv/linear layers ({len(cycles)} "
                         f"counted) and the head {len(head_rows)}, but the cost model counts "
                         f"{len(costs)}; this is a bug, please report it")
    cost_of = dict(zip(costed, costs))
    times = split_kernel_time(kernel_seconds, cycles)
    rows = [layer_row(f"kernel.{i}", kind, (inputs, *shape), seconds, cost_of.get(i),
                      bytes_per_elt, peak, bandwidth)
            for i, ((kind, shape), seconds) in enumerate(zip(kinds, times))]
    rows += [layer_row(name, kind, shape, seconds, cost, bytes_per_elt, peak, bandwidth)
             for (name, kind, shape, seconds), cost in zip(head_rows, costs[len(costed):])]
    return rows


def _cell(value: float | None, spec: str, width: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"{'-':>{width}s}"
    return f"{value:>{width}{spec}}"


FOLD_HEADER = (("us", 9), ("GFLOP", 7), ("MB", 7), ("TF/s", 6), ("GB/s", 7), ("%pk", 5),
               ("%bw", 5), ("roof", 8), ("gap", 7))


def _fold_cells(r: dict[str, Any] | None) -> str:
    if r is None:
        return " ".join(f"{'':>{w}s}" for _, w in FOLD_HEADER)
    pct = (lambda v: None if v is None else 100 * v)
    gap = _cell(r["gap"], ".1f", 6) + ("*" if r["worst"] else " ")
    return " ".join([_cell(r["us_per_batch"], ".1f", 9), _cell(r["flops"] / 1e9, ".3f", 7),
                     _cell(r["bytes"] / 1e6, ".2f", 7), _cell(r["tflops_per_sec"], ".1f", 6),
                     _cell(r["gb_per_sec"], ".0f", 7), _cell(pct(r["peak_fraction"]), ".0f", 5),
                     _cell(pct(r["bandwidth_fraction"]), ".0f", 5), _cell(r["roofline_us"], ".1f", 8),
                     gap])


def format_scoreboard(results: list[dict[str, Any]]) -> str:
    """The layers of every fold side by side (per batch), then the sums and the worst layers."""
    names: list[str] = []
    for res in results:
        names += [r["layer"] for r in res["rows"] if r["layer"] not in names]
    width = max(len("layer"), *(len(n) for n in names))
    by_fold = [{r["layer"]: r for r in res["rows"]} for res in results]
    kinds = {r["layer"]: r["kind"] for res in results for r in res["rows"]}
    kind_w = max(len("kind"), *(len(k) for k in kinds.values()))
    fold_w = len(_fold_cells(None))
    first = results[0]
    lines = [f"{first['model']} per layer, per batch ({first['backend']}, {first['device']}, "
             f"{first['precision']}); %pk / %bw: achieved FLOP/s and bytes/s as a share of the "
             f"measured peak and bandwidth; roof: roofline us; gap: us / roof; * most us lost",
             f"{'':{width}s} {'':{kind_w}s} " + " | ".join(
                 f"{'f=' + str(res['fold']) + ' (' + str(res['images_per_batch']) + ' images)':^{fold_w}s}"
                 for res in results),
             f"{'layer':{width}s} {'kind':{kind_w}s} " + " | ".join(
                 " ".join(f"{h:>{w}s}" for h, w in FOLD_HEADER) for _ in results)]
    for n in names:
        lines.append(f"{n:{width}s} {kinds[n]:{kind_w}s} " + " | ".join(
            _fold_cells(rows.get(n)) for rows in by_fold))
    lines.append("")
    for res in results:
        rows = res["rows"]
        total = sum(r["us_per_batch"] for r in rows)
        roof = (sum(r["roofline_us"] for r in rows) if all(r["roofline_us"] is not None for r in rows)
                else None)
        text = (f"f={res['fold']}: sum of layers {total:.1f} us, whole network "
                f"{res['network_us_per_batch']:.1f} us per batch")
        if roof:
            text += f", roofline {roof:.1f} us (whole network / roofline {res['network_us_per_batch'] / roof:.2f})"
        lines.append(text)
        if "profiled_us_per_batch" in res:
            lines.append(f"  with the profiling kernel (a cycle count per layer) the network took "
                         f"{res['profiled_us_per_batch']:.1f} us per batch; the layers' shares "
                         "come from it, their times from the timed kernel")
        worst = next((r for r in rows if r["worst"]), None)
        if worst is not None:
            lines.append(f"  largest gap: {worst['layer']} ({worst['kind']}) {worst['us_per_batch']:.1f} us "
                         f"measured vs {worst['roofline_us']:.1f} us at the roofline: "
                         f"{worst['lost_us']:.1f} us lost")
    base = results[0]

    def per_image(res: dict[str, Any], key: str) -> float | None:
        values = [r[key] for r in res["rows"]]
        if any(v is None for v in values):
            return None
        return sum(values) / res["images_per_batch"]

    for res in results[1:]:
        versus = f"f={res['fold']} vs f={base['fold']}"
        b_roof, r_roof = per_image(base, "roofline_us"), per_image(res, "roofline_us")
        if b_roof and r_roof:
            lines.append(f"speedup if both networks ran every layer at the roofline ({versus}, per "
                         f"image; ai.py --roofline's bound_speedup): {b_roof / r_roof:.2f}x")
        measured = ((base["network_us_per_batch"] / base["images_per_batch"])
                    / (res["network_us_per_batch"] / res["images_per_batch"]))
        lines.append(f"measured speedup of the whole network ({versus}, per image): {measured:.2f}x")
    if base["peak_flops_per_sec"] is None or base["peak_bytes_per_sec"] is None:
        lines.append("(no measured peak on this device: give --peak-tflops and --bandwidth-tbs "
                     "for the fractions, the roofline and the gaps)")
    return "\n".join(lines)


def scoreboard_csv(results: list[dict[str, Any]]) -> str:
    """Every (fold, layer) row as ``TABLE``'s CSV text."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TABLE.names)
    for res in results:
        w.writerows(TABLE.cells(r) for r in res["rows"])
    return buf.getvalue()
