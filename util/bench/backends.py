"""Inference backends: turn a module and a static device input into a fast callable.

* ``eager``: plain PyTorch (cuDNN on CUDA, with ``cudnn.benchmark``).
* ``cudagraph``: the forward captured once in a ``torch.cuda.CUDAGraph`` whose static input
  is the example tensor itself; a call replays the graph (no per-kernel launch cost).
* ``compile``: ``torch.compile`` with max-autotune (Triton/cuBLAS/cuDNN autotuning). On CUDA
  the compiled forward (mode ``max-autotune-no-cudagraphs``) is then captured in our own
  CUDA graph, as ``cudagraph`` does: inductor's own CUDA graphs ("cudagraph trees", mode
  ``max-autotune``) cost 130-190 us of host time per call (guards, tree bookkeeping), so on
  an H100 a 1024-image batch of a small model was host-bound: the apex original ran 4.12 M
  images/s that way and 6.75 M in our graph, its f = 4 model 5.45 M vs 8.17 M. The first
  calls compile; their time is returned as setup seconds, never timed as throughput.
* ``triton``: ``compile`` with every 3x3 conv (+ its ReLU) replaced by our fused Triton
  implicit-GEMM kernel (``util.bench.triton_conv``), which inductor calls as an opaque op; pools,
  padding and the linear head are still compiled by inductor, all in our CUDA graph.
  Inductor runs in its default mode here: max-autotune took 20-40 s more per model and, on
  the H100, fused coral's f = 4 pool into a slow mm template (199 us vs 162 us a batch).
* ``fused``: the whole network (every conv, pool and the classifier) in one persistent Triton
  kernel (``util.bench.fused_net``), launched in our CUDA graph; game-scraping and NoScope
  CNNs only. Given uint8 frames (the runner's end-to-end ``VideoPipeline``) the kernel also
  normalises and folds them on load.
* ``tensorrt``: Torch-TensorRT (``torch_tensorrt.compile(ir="dynamo")``) when importable.

``prepare(backend, module, example)`` returns a ``Prepared`` whose ``fn(x)`` runs the module.
Call it with ``example`` itself: the CUDA-graph backend copies only when given another tensor.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn

from util.bench.peak import time_loop
from util.bench.triton_conv import fuse_convs, triton_available
from util.cli import exception_line

if TYPE_CHECKING:  # fused_net imports BenchError from here
    from util.bench.fused_net import FusedConfig, FusedNet

BACKENDS = ("eager", "cudagraph", "compile", "triton", "fused", "tensorrt", "auto")
# auto on CUDA probes these (when available) and keeps the fastest; on CPU it is eager.
AUTO_CANDIDATES_CUDA = ("tensorrt", "triton", "compile", "cudagraph", "eager")
CUDA_ONLY = ("cudagraph", "triton", "fused", "tensorrt")
COMPILE_MODE = "max-autotune"  # on CPU; on CUDA the same without inductor's CUDA graphs:
COMPILE_MODE_CUDA = "max-autotune-no-cudagraphs"  # ... the graph is ours (module docstring)
TRITON_REST_MODE = "default"  # triton backend: inductor's default mode for what is left
TUNING_ITERS = 50  # fused backend: graph replays per timing of a candidate setting (best of 2)


class BenchError(ValueError):
    """A benchmark request that cannot run here; the message is one line for the user."""


@dataclass
class Prepared:
    backend: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    setup_seconds: float  # compile / capture / engine build time, excluded from timing


def tensorrt_available() -> bool:
    return importlib.util.find_spec("torch_tensorrt") is not None


def check_backend(backend: str, device: torch.device) -> None:
    """One-line errors for a backend that cannot run on ``device``."""
    if backend not in BACKENDS:
        raise BenchError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend in CUDA_ONLY and device.type != "cuda":
        raise BenchError(f"--backend {backend} needs --device cuda; on CPU use eager or compile")
    if backend == "tensorrt" and not tensorrt_available():
        raise BenchError("--backend tensorrt needs torch_tensorrt, which is not installed "
                         f"(pip install torch-tensorrt built for torch {torch.__version__}); "
                         "or use --backend compile/cudagraph")
    if backend in ("triton", "fused") and not triton_available():
        raise BenchError(f"--backend {backend} needs the triton package (pip install triton); "
                         "or use --backend compile/cudagraph")


def auto_candidates(device: torch.device) -> list[str]:
    """Backends ``auto`` probes on ``device``, in the order they are tried."""
    if device.type != "cuda":
        return ["eager"]
    available = {"tensorrt": tensorrt_available(), "triton": triton_available()}
    return [b for b in AUTO_CANDIDATES_CUDA if available.get(b, True)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _eager(module: nn.Module, example: torch.Tensor) -> Prepared:
    return Prepared("eager", module, 0.0)


def _cudagraph(module: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor,
               warmup: int = 3) -> Prepared:
    t0 = time.perf_counter()
    side = torch.cuda.Stream(example.device)
    side.wait_stream(torch.cuda.current_stream(example.device))
    with torch.cuda.stream(side):  # warm-up off the capture stream (cuDNN algo search, allocator)
        for _ in range(warmup):
            module(example)
    torch.cuda.current_stream(example.device).wait_stream(side)
    torch.cuda.synchronize(example.device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = module(example)
    torch.cuda.synchronize(example.device)

    def replay(x: torch.Tensor, _source: Callable = module) -> torch.Tensor:
        # _source keeps what the graph reads alive: a callable that owns its tensors (a
        # FusedNet's packed weights and scratch) would be freed with the last reference to
        # it, and the graph would then read memory the allocator has handed out again
        if x is not example:
            example.copy_(x)
        graph.replay()
        return static_out

    return Prepared("cudagraph", replay, time.perf_counter() - t0)


def _compile(module: nn.Module, example: torch.Tensor, cuda_mode: str | None = None) -> Prepared:
    torch._dynamo.reset()  # a fresh cache per model: no recompile limit across many models
    on_cuda = example.device.type == "cuda"
    mode = (cuda_mode or COMPILE_MODE_CUDA) if on_cuda else COMPILE_MODE
    compiled = torch.compile(module, mode=mode)
    t0 = time.perf_counter()
    compiled(example)  # compiles and autotunes
    if not on_cuda:
        return Prepared("compile", compiled, time.perf_counter() - t0)
    graph = _cudagraph(compiled, example)  # warms up, then captures: replays need no host work
    return Prepared("compile", graph.fn, time.perf_counter() - t0)


def _triton(module: nn.Module, example: torch.Tensor) -> Prepared:
    fused, count = fuse_convs(module)
    if count == 0:
        raise BenchError("--backend triton found no 3x3 stride-1 padding-1 conv to fuse in this "
                         "model; use --backend compile")
    compiled = _compile(fused, example, TRITON_REST_MODE)
    check_same_output(module, compiled.fn, example, "triton")
    return Prepared("triton", compiled.fn, compiled.setup_seconds)


def _fused(module: nn.Module, example: torch.Tensor,
           candidates: Sequence[FusedConfig] | None = None) -> Prepared:
    """The module's forward as one kernel (``util.bench.fused_net``), in our CUDA graph on CUDA.

    ``example`` is the model's float input (``FusedNet.folded``; operands, activations and
    weights in its dtype, fp32 accumulation), or, for the runner's
    end-to-end ``VideoPipeline`` (uint8 NHWC frames), the frames: the kernel then reads them
    as NCHW views and normalises with the pipeline's ``scale``/``shift``; the argmax stays a
    PyTorch op. On CUDA each of ``candidates`` (default ``TUNING_CANDIDATES``) is captured
    and timed on ``example`` and the fastest is kept, as Triton's autotuner would: which
    setting wins depends on the network and the fold (``pick_fastest``; one this GPU cannot
    compile is skipped). On CPU (tests, under
    ``TRITON_INTERPRET=1``) the interpreter's setting runs and nothing is captured.
    """
    from util.bench.fused_net import TUNING_CANDIDATES, FusedNet  # raises BenchError: no cycle

    t0 = time.perf_counter()
    frames = example.dtype == torch.uint8

    def build(config: FusedConfig | None) -> Callable[[torch.Tensor], torch.Tensor]:
        if frames:
            fused = FusedNet(module.model, scale=module.scale.flatten().tolist(),
                             shift=module.shift.flatten().tolist(), dtype=module.dtype, config=config)
            return lambda x: fused.images(x.permute(0, 3, 1, 2)).argmax(1)
        # operands in the benchmark's precision: fp16, bf16, or fp32 (TF32 dots)
        return FusedNet(module, dtype=example.dtype, config=config).folded

    if example.device.type != "cuda":
        fn = build(None)
        fn(example)
    else:
        fn, _ = _tune_fused(build, example, candidates or TUNING_CANDIDATES)
    check_same_output(module, fn, example, "fused")
    return Prepared("fused", fn, time.perf_counter() - t0)


def _tune_fused(build: Callable[[FusedConfig], Callable[[torch.Tensor], torch.Tensor]],
                example: torch.Tensor, candidates: Sequence[FusedConfig],
                ) -> tuple[Callable[[torch.Tensor], torch.Tensor], FusedConfig]:
    """The CUDA-graph replay of the fastest of ``candidates`` (``build`` makes a setting's
    forward) and that setting: each compiled, captured and timed on ``example``."""
    def ready(config: FusedConfig) -> Callable[[torch.Tensor], torch.Tensor]:
        fn = build(config)
        fn(example)  # writes, imports and compiles the kernel: never timed
        return _cudagraph(fn, example).fn

    def seconds(fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
        return min(time_loop(lambda: fn(example), TUNING_ITERS, example.device) for _ in range(2))

    return pick_fastest(candidates, ready, seconds)


def tuned_fused_net(module: nn.Module, example: torch.Tensor) -> FusedNet:
    """The ``FusedNet`` of the setting the ``fused`` backend keeps for ``module`` on the CUDA
    input ``example`` (``_tune_fused`` over ``TUNING_CANDIDATES``), checked against eager: what
    the per-layer scoreboard splits into layers."""
    from util.bench.fused_net import TUNING_CANDIDATES, FusedNet

    nets: dict[FusedConfig, FusedNet] = {}

    def build(config: FusedConfig) -> Callable[[torch.Tensor], torch.Tensor]:
        nets[config] = FusedNet(module, dtype=example.dtype, config=config)
        return nets[config].folded

    _, config = _tune_fused(build, example, TUNING_CANDIDATES)
    check_same_output(module, nets[config].folded, example, "fused")
    return nets[config]


def pick_fastest(candidates: Sequence[FusedConfig],
                 ready: Callable[[FusedConfig], Callable[[torch.Tensor], torch.Tensor]],
                 seconds: Callable[[Callable[[torch.Tensor], torch.Tensor]], float],
                 ) -> tuple[Callable[[torch.Tensor], torch.Tensor], FusedConfig]:
    """The fastest of ``candidates`` (``ready`` compiles one into a callable, ``seconds`` times
    it). A setting this GPU cannot compile or launch (too many registers or too much shared
    memory for a large block) is skipped with a one-line note, as Triton's autotuner prunes
    configs; only when every candidate fails is the first failure raised."""
    best = None
    first_failure: Exception | None = None
    for config in candidates:
        try:
            fn = ready(config)
            t = seconds(fn)
        except BenchError:
            raise  # the network or input itself: no other setting would help
        except Exception as exc:  # noqa: BLE001 - Triton's compile and launch errors vary by version
            first_failure = first_failure or exc
            print(f"fused: skipping setting {config} ({exception_line(exc, typed=True)})", file=sys.stderr)
            continue
        if best is None or t < best[0]:
            best = (t, fn, config)
    if best is None:
        raise first_failure
    return best[1], best[2]


# max |fast - eager| / max |eager| a backend may show at setup, per dtype (fp16 and bf16
# accumulate in fp32 but round each layer's output; fp32 eager convs may use TF32)
OUTPUT_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float32: 5e-3}


def check_same_output(module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor],
                      example: torch.Tensor, backend: str) -> None:
    """Raise ``BenchError`` when ``fn`` (our own kernels) and the eager ``module`` disagree on
    ``example``: a wrong kernel must not become a throughput row. Non-float outputs (argmax
    of the end-to-end pipeline) are not compared: near-ties may flip."""
    want = module(example)
    got = fn(example)
    if not (torch.is_floating_point(want) and torch.is_floating_point(got)):
        return
    if got.shape != want.shape:
        raise BenchError(f"{backend} backend: output shape {tuple(got.shape)} differs from eager "
                         f"{tuple(want.shape)}; this is a bug, please report it")
    want, got = want.float(), got.float()
    err = ((got - want).abs().max() / want.abs().max().clamp_min(1e-6)).item()
    if not err <= OUTPUT_TOLERANCE.get(example.dtype, 1e-2):  # NaN fails too
        raise BenchError(f"{backend} backend: output differs from eager by {err:.2e} (relative "
                         f"to the largest output); this is a bug, please report it and use "
                         f"--backend compile meanwhile")


def _tensorrt(module: nn.Module, example: torch.Tensor) -> Prepared:
    import torch_tensorrt  # imported lazily: optional and slow to import

    t0 = time.perf_counter()
    engine = torch_tensorrt.compile(module, ir="dynamo", inputs=[example],
                                    enabled_precisions={example.dtype}, min_block_size=1)
    engine(example)
    sync(example.device)
    return Prepared("tensorrt", engine, time.perf_counter() - t0)


_BUILDERS: dict[str, Callable[[nn.Module, torch.Tensor], Prepared]] = {
    "eager": _eager, "cudagraph": _cudagraph, "compile": _compile, "triton": _triton,
    "fused": _fused, "tensorrt": _tensorrt}


def prepare(backend: str, module: nn.Module, example: torch.Tensor) -> Prepared:
    """Make ``module`` run under ``backend`` (not ``auto``: see ``util.bench.runner``)."""
    check_backend(backend, example.device)
    if backend == "auto":
        raise BenchError("prepare() needs a concrete backend; auto is resolved by util.bench.runner")
    return _BUILDERS[backend](module, example)
