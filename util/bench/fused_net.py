"""The whole forward of a game-scraping or NoScope CNN as one Triton kernel: the ``fused`` backend.

Why: these networks are a handful of small layers (V1 at f = 4: five 3x3 convs of <= 64
channels on <= 22 x 52 maps), so even with every conv fused (the ``triton`` backend) a batch
runs about a dozen kernels, each activation making a round trip through device memory, and
the uint8 -> float -> fold steps of a video pipeline add kernels and a float copy of every
frame. Here one persistent launch reads the uint8 frames and writes per-image logits, and a
group's activations stay in a per-program scratch region of global memory (see below). On an
H200 it is not faster than the per-layer ``triton`` backend yet, except on V2's original
(``model_files/h200/README.md``: 0.48-1.10x of it, folding still pays 1.23-1.68x at f = 4).

Grid: ``programs`` programs (``PROGRAMS_PER_SM`` per SM by default); program ``p`` takes groups ``p``,
``p + programs``, ... of ``tile`` network inputs (``tile * f`` images) and runs every layer
for its group before the next. Between layers a group's activation lives in the program's
scratch region of global memory: two ping-pong buffers of ``FusedNet.buffer_elements``
elements (the largest activation of a group), per-group NHWC with the channels padded to a
power of two >= 16 (zeros: padded weights and biases are zero). Not all of it stays in L2: at
``tile`` 1 the 264 programs of a 132-SM GPU hold 15-37 MiB (``FusedNet.scratch_bytes``) for
the game CNNs' originals, 31-74 MiB for their folds and 40-322 MiB for the NoScope CNNs, next
to the H100's and H200's 50 MB L2. ``tl.debug_barrier()`` (``__syncthreads``) separates a layer's
stores from the next layer's loads, and the last layer of a group from the next group's first.

Layers (shared ``@triton.jit`` helpers below, shapes as ``tl.constexpr``):

* first conv (``conv3x3_from_input``): implicit GEMM with K = 9 taps x the input channels
  gathered from the images themselves: folded channel ``j * C + c`` is channel ``c`` of image
  ``j`` of the input's group of ``f`` (``models/fold.py``), normalised on load (``u8 * scale
  + shift``: ``/ 255`` and the task's mean/std, as ``datasets.transforms.to_float``); images
  past the batch read as 0.0, the zero padding of ``FoldedClassifier``; ``pad_input`` channels
  are zeros and skipped. Any strides: NCHW (what the data loaders hold) or an NHWC view.
* other convs (``conv3x3_from_scratch``): implicit GEMM (M = the group's pixels in BLOCK_M
  chunks, N = output channels, K = 9 taps x input channels), fp16 operands (or bf16, or
  fp32 with TF32 dots), fp32 accumulation, bias + ReLU in the epilogue; a following
  ``MaxPool2d(2, 2)`` is fused into it as in ``util.bench.triton_conv`` (M rows are the 4
  pixels of each window).
* other max-pools (any kernel and stride, no padding: the game CNNs' 3/2 and 3/1): a pass
  over the scratch buffer (``max_pool_scratch``).
* classifier (``dense_to_scratch`` / ``dense_to_logits``): the flatten is in PyTorch's NCHW
  order because the first Linear's weight is permuted once on the host to the scratch's
  (pixel, padded channel) order; then Linear (+ ReLU) (+ Linear ...), the last writing logits
  straight into the (N_images, K) output: unfolding is a reshape, so it costs nothing.
  A head whose first Linear is large (the NoScope CNNs') instead runs after the kernel as
  matrix products over the whole batch (``head_in_kernel``): the last conv writes each
  input's flattened map to a (inputs, features) buffer.

The kernel's source is generated per network (``kernel_source``: every layer's shapes, block
sizes and weight offsets inlined as constants in calls to the helpers), written to
``<cache>/fused-kernels/fused_<hash>.py`` (Triton needs a source file) and imported once per
signature. Weights are packed once per ``FusedNet`` (operand dtype, tap-major, zero-padded).

``kernel_source(..., profile=True)`` is the same kernel with a cycle count per layer
(``FusedNet.layer_cycles``): where the whole-network kernel spends its time, for the per-layer
scoreboard (``util/profile_model.py --layers --backend fused``). The timed kernel's source does
not change.

With ``TRITON_INTERPRET=1`` set before triton is first imported, the kernel runs on CPU
tensors under Triton's interpreter, which is how the tests check it against the eager model;
they also compile it for sm_90 with Triton's compiler, which needs no GPU.
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import math
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from config.tasks import Normalize, Task, get_task
from models.layers import FoldableNet, round_up
from util.bench.backends import BenchError
from util.bench.peak import cache_dir
from util.bench.triton_conv import _pow2_at_least, is_fusable, is_fusable_pool, triton_available
from util.records.atomic import atomic_write_text

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: planning and packing still work, launching does not
    triton = None

KERNEL_DIR = "fused-kernels"  # under util.bench.peak.cache_dir()
INT32_LIMIT = 2 ** 31


class FuseError(BenchError):
    """A network (or input) the fused kernel cannot run; the message is one line for the user."""


# ------------------------------------------------------------------ the network as shapes
@dataclass(frozen=True)
class Conv:
    """3x3 'same' conv on ``height`` x ``width`` maps (+ ReLU) (+ a fused 2x2/2 max-pool)."""
    cin: int
    cout: int
    height: int
    width: int
    relu: bool
    pool: bool

    @property
    def out_size(self) -> tuple[int, int]:
        return (self.height // 2, self.width // 2) if self.pool else (self.height, self.width)


@dataclass(frozen=True)
class Pool:
    """Max-pool without padding: ``kernel`` and ``stride`` are (rows, columns)."""
    channels: int
    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple((n - k) // s + 1 for n, k, s in zip((self.height, self.width), self.kernel,
                                                          self.stride))


@dataclass(frozen=True)
class Dense:
    """Linear layer (+ ReLU); the first one reads the flattened feature map."""
    features_in: int
    features_out: int
    relu: bool


@dataclass(frozen=True)
class NetPlan:
    """What the kernel computes, as shapes only (its source depends on nothing else)."""
    fold: int             # images per network input
    image_channels: int   # C of one image
    in_channels: int      # the first conv's input channels (f * C, or more with pad_input)
    height: int
    width: int
    layers: tuple[Conv | Pool | Dense, ...]

    @property
    def num_outputs(self) -> int:
        return self.layers[-1].features_out


def _supported_pool(layer: nn.Module) -> bool:
    return (isinstance(layer, nn.MaxPool2d) and _pair(layer.padding) == (0, 0)
            and _pair(layer.dilation) == (1, 1) and not layer.ceil_mode
            and not layer.return_indices)


def _unsupported(model: nn.Module, why: str) -> FuseError:
    return FuseError(f"--backend fused cannot run {type(model).__name__}: {why}; "
                     "use --backend compile or cudagraph")


def plan_network(model: nn.Module) -> tuple[NetPlan, list[nn.Module]]:
    """The shapes of ``model``'s layers and the modules holding their weights (conv and
    linear, in order); ``FuseError`` for a network the kernel cannot run.

    Runs ``FoldableNet``s whose forward is the base class's ``head(flatten(features(x)))``
    with ``features`` made of 3x3 stride-1 'same' convs, ReLUs and unpadded max-pools and a
    head of Linear layers and ReLUs (dropout in eval mode is skipped): every game-scraping and
    NoScope network, original, folded, widened or EfficientNet-style, any ``channel_align``.
    """
    if not isinstance(model, FoldableNet) or type(model).forward is not FoldableNet.forward:
        raise _unsupported(model, "only CNNs of the form head(flatten(features(x))) fuse")
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or not len(features) \
            or not hasattr(model, "input_size"):
        raise _unsupported(model, "it has no input_size or no nn.Sequential of features")
    head = list(model.head) if isinstance(model.head, nn.Sequential) else [model.head]
    h, w = model.input_size
    c = model.in_channels
    layers: list[Conv | Pool | Dense] = []
    weights: list[nn.Module] = []
    mods = [m for m in list(features) + [nn.Flatten()] + head
            if not (isinstance(m, nn.Dropout) and not m.training)]
    flat = False  # past the flatten: only Linear layers (and their ReLUs)
    i = 0
    while i < len(mods):
        m, nxt = mods[i], mods[i + 1] if i + 1 < len(mods) else None
        relu = isinstance(nxt, nn.ReLU)
        if isinstance(m, nn.Flatten) and layers and not flat:
            c, i, flat = c * h * w, i + 1, True
        elif is_fusable(m) and not flat and m.in_channels == c:
            j = i + (2 if relu else 1)
            pool = j < len(mods) and is_fusable_pool(mods[j])
            layers.append(Conv(m.in_channels, m.out_channels, h, w, relu, pool))
            weights.append(m)
            c, (h, w), i = m.out_channels, layers[-1].out_size, j + (1 if pool else 0)
        elif _supported_pool(m) and layers and not flat:
            layers.append(Pool(c, h, w, _pair(m.kernel_size), _pair(m.stride)))
            (h, w), i = layers[-1].out_size, i + 1
        elif isinstance(m, nn.Linear) and flat and m.in_features == c:
            layers.append(Dense(m.in_features, m.out_features, relu))
            weights.append(m)
            c, i = m.out_features, i + (2 if relu else 1)
        else:
            name = str(m) if "\n" not in str(m) else type(m).__name__
            what = (f"its first layer, {name}, is not a 3x3 stride-1 padding-1 conv" if not layers
                    else f"its layer {name} is not a 3x3 stride-1 padding-1 conv, unpadded "
                         "max-pool, Linear or ReLU after one of them, in that order")
            raise _unsupported(model, what)
        if min(h, w) < 1:
            raise _unsupported(model, f"its feature map shrinks to {h} x {w}")
    if not isinstance(layers[-1], Dense) or layers[-1].features_out % model.fold:
        raise _unsupported(model, f"it must end in a Linear layer of f * K outputs "
                                  f"(f = {model.fold})")
    plan = NetPlan(model.fold, model.raw_in_channels // model.fold, model.in_channels,
                   *model.input_size, tuple(layers))
    return plan, weights


# ------------------------------------------------------------------ tunables and schedule
@dataclass(frozen=True)
class FusedConfig:
    """Tile and block sizes (each layer clips them to its own shapes) and launch settings.

    ``tile``: network inputs per group (``tile * f`` images); ``programs``: persistent programs
    (None: ``PROGRAMS_PER_SM`` per SM on CUDA, at most 4 on CPU; never more than there are
    groups). The defaults are an H200 sweep's best; ``INTERPRETER_CONFIG`` is for CPU tensors.
    """
    tile: int = 1
    block_m: int = 128       # conv: pixel rows per tl.dot
    block_n: int = 128       # conv and dense: output channels per tl.dot
    block_k: int = 64        # conv: input channels per tl.dot (the first conv: tap x channel)
    pool_elements: int = 2048  # max-pool pass: output pixels x padded channels per step
    dense_block_k: int = 128  # dense: features per tl.dot
    block_s: int = 64        # dense: inputs of the group per tl.dot (at most; >= 16)
    programs: int | None = None  # None: PROGRAMS_PER_SM per SM on CUDA
    # the classifier in the kernel (True), as matrix products after it (False), or None: in the
    # kernel when its first Linear has at most HEAD_IN_KERNEL_MAX_WEIGHTS weights
    head_in_kernel: bool | None = None
    # convs: unroll the 9 taps x channel chunks (ptxas spilled at block_m 64 on sm_90, as the
    # triton backend's unrolled kernel does) or one loop over them that Triton pipelines
    unroll_taps: bool = False
    num_warps: int = 4

    num_stages: int = 2
    # channels padded to powers of two (None: 45 -> 64, as measured) or to multiples of this
    # (16: 45 -> 48, 55 -> 64, 90 -> 96): fewer wasted FLOPs at f = 2, 3, in more, smaller dots
    channel_multiple: int | None = None
    # registers per thread the compiler may use (None: its choice, 255 for every network at the
    # default setting, so two 4-warp programs fill an SM); fewer let more programs share an SM,
    # and spill more (model_files/h200/README.md, "registers and spills")
    maxnreg: int | None = None

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n", "block_k", "pool_elements", "dense_block_k",
                     "block_s"):
            v = getattr(self, name)
            if v < 16 or v & (v - 1):
                raise ValueError(f"FusedConfig.{name} must be a power of two >= 16, got {v}")
        if self.tile < 1 or (self.programs is not None and self.programs < 1):
            raise ValueError(f"FusedConfig: tile and programs must be >= 1, got {self}")
        if self.maxnreg is not None and not 24 <= self.maxnreg <= 255:
            raise ValueError(f"FusedConfig.maxnreg must be None or 24..255, got {self.maxnreg}")
        if self.channel_multiple is not None and (self.channel_multiple < 16
                                                  or self.channel_multiple % 16):
            raise ValueError("FusedConfig.channel_multiple must be None or a multiple of 16, "
                             f"got {self.channel_multiple}")


# H200, fp16, batch 1024 (V1, N1, N3 at f = 1 and 4, 24 configs each): 2 programs per SM,
# block_m 128 and 4 warps were the fastest or within 5% of it everywhere but N1 at f = 1
PROGRAMS_PER_SM = 2
# A larger first Linear (the NoScope CNNs': 0.3-1.3 M weights) read once per group of ``tile``
# inputs costs more than the convs: such a head runs as matrix products over the whole batch.
HEAD_IN_KERNEL_MAX_WEIGHTS = 1 << 17

# The fused backend times these on the batch it is given and keeps the fastest (on CUDA only).
# H200, fp16, batch 1024, ``fused_sweep.py --grid fold``: multiples of 16 helped the game CNNs
# at f = 3 (V1 3.06 -> 3.86 M img/s) and lost 2-3x at f = 2; 256-pixel blocks with 8 warps
# helped NoScope at f = 2-4 (N1 f = 3 1.88 -> 2.43 M) and lost 20-30% on the originals.
TUNING_CANDIDATES = (FusedConfig(), FusedConfig(channel_multiple=16),
                     FusedConfig(block_m=256, num_warps=8),
                     FusedConfig(channel_multiple=16, block_m=256, num_warps=8))

# CPU tensors run under Triton's interpreter, where every tl op costs ~0.3 ms of Python
# whatever its size: a few large blocks (and NumPy's BLAS for the dots) keep a call fast.
INTERPRETER_CONFIG = FusedConfig(tile=2, block_m=1024, block_k=128, pool_elements=1 << 20,
                                 dense_block_k=8192)


@dataclass(frozen=True)
class InputLayout:
    """How the kernel's input maps to the first conv's channels: input channel
    ``j * channels + c`` of network input ``s`` is channel ``c`` of tensor row
    ``s * group + j``. (f, C) for images; (1, in_channels) for already-folded inputs."""
    group: int
    channels: int


@dataclass(frozen=True)
class _Step:
    layer: Conv | Pool | Dense
    src: str             # "x" (the input), "buf_a" or "buf_b"
    dst: str             # "buf_a", "buf_b", "out", or "feat" (the flattened map, for the head)
    w_offset: int        # in the packed weights (the first conv: its own buffer)
    b_offset: int        # in the packed biases
    k: int               # first conv: 9 taps x input channels; other convs: padded input
    #                      channels per tap; dense: features per row in the scratch
    kp: int              # rows of the packed weight (K padded to the blocks)
    np: int              # padded output channels / features (the stored row width)
    rows: int            # M rows per group (conv with pool: 4 per pooled pixel)
    blocks: tuple[int, ...]
    on_host: bool = False  # a Linear of the head run as a matrix product after the kernel


def head_in_kernel(plan: NetPlan, cfg: FusedConfig) -> bool:
    """Whether the classifier runs in the kernel (see ``FusedConfig.head_in_kernel``)."""
    if cfg.head_in_kernel is not None:
        return cfg.head_in_kernel
    first = next(layer for layer in plan.layers if isinstance(layer, Dense))
    return first.features_in * first.features_out <= HEAD_IN_KERNEL_MAX_WEIGHTS


def _padded(c: int, multiple: int | None) -> int:
    """Stored channels of a ``c``-channel map (or features of a Linear): see
    ``FusedConfig.channel_multiple``."""
    return _pow2_at_least(c) if multiple is None else round_up(c, multiple)


def _pow2_dividing(n: int, cap: int) -> int:
    """The largest power of two <= ``cap`` that divides ``n`` (a multiple of 16): a block that
    tiles a padded width exactly (for a power-of-two ``n``, ``min(cap, n)``)."""
    b = 16
    while b * 2 <= cap and n % (b * 2) == 0:
        b *= 2
    return b


def _first_conv_block_k(k: int, cap: int) -> int:
    """The chunk of the gathered (tap, channel) K: the fewest chunks, then the fewest padded
    columns. With cap 64: 27 -> 32, 54 -> 64, 81 and 108 -> 2 x 64."""
    choices = [b for b in (16, 32, 64, 128, 256) if b <= cap]
    return min(choices, key=lambda b: (-(-k // b), round_up(k, b)))


def schedule(plan: NetPlan, layout: InputLayout, cfg: FusedConfig) -> tuple[list[_Step], int]:
    """Per layer: buffers, packed offsets, padded sizes and blocks; and the elements of one
    scratch buffer. The one owner of these numbers (packing and source generation read them)."""
    steps: list[_Step] = []
    w_off = b_off = 0
    buffer = 0
    src = "x"
    tile = cfg.tile
    in_kernel = head_in_kernel(plan, cfg)
    first_dense = next(i for i, layer in enumerate(plan.layers) if isinstance(layer, Dense))
    for index, layer in enumerate(plan.layers):
        dst = "out" if index == len(plan.layers) - 1 else ("buf_b" if src == "buf_a" else "buf_a")
        on_host = not in_kernel and index >= first_dense
        if not in_kernel and index == first_dense - 1:
            dst = "feat"  # the map the host's matrix products read
        elif on_host:
            dst = "out" if index == len(plan.layers) - 1 else "host"
        if isinstance(layer, Conv):
            np_ = _padded(layer.cout, cfg.channel_multiple)
            ho, wo = layer.out_size
            rows = tile * (ho * wo * 4 if layer.pool else layer.height * layer.width)
            bm = max(16, min(cfg.block_m, _pow2_at_least(rows)))
            bn = _pow2_dividing(np_, cfg.block_n)
            if src == "x":
                k = 9 * layout.group * layout.channels
                bk = _first_conv_block_k(k, cfg.block_k)
                kp = round_up(k, bk)
            else:
                k = _padded(layer.cin, cfg.channel_multiple)
                bk = _pow2_dividing(k, cfg.block_k)
                kp = 9 * k
            blocks = (bm, bn, bk)
            out_elems = tile * ho * wo * np_
        elif isinstance(layer, Pool):
            np_ = _padded(layer.channels, cfg.channel_multiple)
            ho, wo = layer.out_size
            rows = tile * ho * wo
            bp = max(1, min(_pow2_at_least(rows), cfg.pool_elements // _pow2_at_least(np_)))
            k = kp = 0
            blocks = (bp,)
            out_elems = rows * np_
        else:
            np_ = _padded(layer.features_out, cfg.channel_multiple)
            prev = steps[-1]  # a sample's row: its flattened map, or the previous features
            k = prev.np * (1 if isinstance(prev.layer, Dense) else math.prod(prev.layer.out_size))
            bs = min(cfg.block_s, _pow2_at_least(tile))
            bk = min(cfg.dense_block_k, _pow2_at_least(k))
            kp = round_up(k, bk)
            rows = tile
            blocks = (bs, _pow2_dividing(np_, cfg.block_n), bk)
            out_elems = tile * np_
        step = _Step(layer, src, dst, 0 if src == "x" else w_off, b_off, k, kp, np_, rows, blocks,
                     on_host)
        steps.append(step)
        if isinstance(layer, (Conv, Dense)):
            if src != "x":
                w_off += round_up(kp * np_, 64)  # 128-byte aligned layers
            b_off += round_up(np_, 64)
        if dst not in ("out", "feat", "host"):
            buffer = max(buffer, out_elems)
        src = dst
    return steps, buffer


# ------------------------------------------------------------------ the shared device code
# The profiling kernel (``FusedNet.layer_cycles``) reads the SM's cycle counter at every layer
# boundary. The interpreter has no inline assembly, so there ``_clock`` counts its own calls
# instead (INTERPRETER_TICK per call): the tests check the bookkeeping with it, not the times.
INTERPRETER_TICK = 1000
_interpreter_ticks = itertools.count(1)


def _next_tick() -> int:
    return next(_interpreter_ticks) * INTERPRETER_TICK


if triton is not None:
    if os.environ.get("TRITON_INTERPRET") == "1":
        @triton.jit
        def _clock():
            return tl.full((), _next_tick(), tl.int64)
    else:
        @triton.jit
        def _clock():
            """``%clock64``: this SM's cycle counter (a program never leaves its SM)."""
            return tl.inline_asm_elementwise("mov.u64 $0, %clock64;", "=l", [], dtype=tl.int64,
                                             is_pure=False, pack=1)

    @triton.jit
    def _pixel_rows(offs_m, H: tl.constexpr, W: tl.constexpr, POOL: tl.constexpr):
        """Each M row's (input of the group, row, column). With POOL, row m = p * 4 + q is
        position q of the 2x2 window of pooled pixel p (flat over the group)."""
        if POOL:
            p = offs_m // 4
            q = offs_m % 4
            col = (p % (W // 2)) * 2 + q % 2
            row = ((p // (W // 2)) % (H // 2)) * 2 + q // 2
            sample = p // ((W // 2) * (H // 2))
        else:
            col = offs_m % W
            row = (offs_m // W) % H
            sample = offs_m // (H * W)
        return sample, row, col

    @triton.jit
    def _conv_epilogue(acc, b_ptr, y_ptr, m0, offs_n, ROWS: tl.constexpr, COUTP: tl.constexpr,
                       RELU: tl.constexpr, POOL: tl.constexpr, BLOCK_M: tl.constexpr,
                       BLOCK_N: tl.constexpr):
        """(2x2 max,) + bias, ReLU, store NHWC rows of COUTP channels. Max first: it
        commutes with the per-channel bias and the ReLU."""
        if POOL:
            acc = tl.max(tl.reshape(acc, (BLOCK_M // 4, 4, BLOCK_N)), axis=1)
            offs_p = m0 // 4 + tl.arange(0, BLOCK_M // 4)
            ok = offs_p < ROWS // 4
        else:
            offs_p = m0 + tl.arange(0, BLOCK_M)
            ok = offs_p < ROWS
        acc += tl.load(b_ptr + offs_n)[None, :]
        if RELU:
            acc = tl.maximum(acc, 0.0)
        tl.store((y_ptr + offs_p * COUTP)[:, None] + offs_n[None, :],
                 acc.to(y_ptr.dtype.element_ty), mask=ok[:, None])

    @triton.jit
    def conv3x3_from_input(x_ptr, s_n, s_c, s_h, s_w, n_rows, norm_ptr, group, w_ptr, b_ptr, y_ptr,
                           TILE: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
                           GROUP: tl.constexpr, CHANNELS: tl.constexpr, K: tl.constexpr,
                           KP: tl.constexpr, COUTP: tl.constexpr, ROWS: tl.constexpr,
                           RELU: tl.constexpr, POOL: tl.constexpr, BLOCK_M: tl.constexpr,
                           BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """First conv, its A operand gathered from the input tensor: K column kk is tap
        kk // CI of folded channel ci = kk % CI (CI = GROUP * CHANNELS), i.e. channel
        ci % CHANNELS of tensor row (input * GROUP + ci // CHANNELS); rows >= n_rows are 0.0
        (FoldedClassifier's padding). Values are ``x * scale[c] + shift[c]`` (norm_ptr)."""
        CI: tl.constexpr = GROUP * CHANNELS
        offs_k = tl.arange(0, BLOCK_K)
        for m0 in range(0, ROWS, BLOCK_M):
            offs_m = m0 + tl.arange(0, BLOCK_M)
            sample, row, col = _pixel_rows(offs_m, H, W, POOL)
            first = (group * TILE + sample) * GROUP  # tensor row of each M row's image 0
            first = tl.where(offs_m < ROWS, first, n_rows)  # rows past the tile read nothing
            row_base = first * s_n + row * s_h + col * s_w
            for n0 in tl.static_range(0, COUTP, BLOCK_N):
                offs_n = n0 + tl.arange(0, BLOCK_N)
                acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
                for k0 in tl.static_range(0, KP, BLOCK_K):
                    # per K column: its image j of the group, channel c and tap (dh, dw)
                    kk = k0 + offs_k
                    j = (kk % CI) // CHANNELS
                    c = kk % CHANNELS
                    dh = kk // CI // 3 - 1
                    dw = kk // CI % 3 - 1
                    ok = ((first[:, None] < (n_rows - j)[None, :]) & (kk < K)[None, :]
                          & (row[:, None] >= -dh[None, :]) & (row[:, None] < (H - dh)[None, :])
                          & (col[:, None] >= -dw[None, :]) & (col[:, None] < (W - dw)[None, :]))
                    k_off = j * s_n + c * s_c + dh * s_h + dw * s_w
                    v = tl.load((x_ptr + row_base)[:, None] + k_off[None, :], mask=ok, other=0)
                    scale = tl.load(norm_ptr + c)
                    shift = tl.load(norm_ptr + CHANNELS + c)
                    a = tl.where(ok, v.to(tl.float32) * scale[None, :] + shift[None, :], 0.0)
                    b = tl.load((w_ptr + kk * COUTP)[:, None] + offs_n[None, :])
                    acc = tl.dot(a.to(w_ptr.dtype.element_ty), b, acc)
                _conv_epilogue(acc, b_ptr, y_ptr, m0, offs_n, ROWS, COUTP, RELU, POOL,
                               BLOCK_M, BLOCK_N)

    @triton.jit
    def _tap_dot(acc, a_rows, b_rows, ok, offs_k, offs_n):
        """acc += A @ B, A[m, k] = a_rows[m][k] (rows where ``ok``), B[k, n] = b_rows[k][n].
        The 2-D addresses are formed here from 1-D row pointers and column offsets: kept live
        across the taps they would cost a 64-bit register per element."""
        a = tl.load(a_rows[:, None] + offs_k[None, :], mask=ok[:, None], other=0.0)
        b = tl.load(b_rows[:, None] + offs_n[None, :])
        return tl.dot(a, b, acc)

    @triton.jit
    def conv3x3_from_scratch(x_ptr, w_ptr, b_ptr, y_ptr, H: tl.constexpr, W: tl.constexpr,
                             CINP: tl.constexpr, COUTP: tl.constexpr, ROWS: tl.constexpr,
                             RELU: tl.constexpr, POOL: tl.constexpr, UNROLL: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_K: tl.constexpr):
        """Conv of a scratch map (NHWC, CINP channels) with weights [9, CINP, COUTP]: tap
        (dh, dw) and channel chunk k0 read row pointers shifted by a scalar. UNROLL: every
        (tap, chunk) unrolled, each tap's border mask 0-2 precomputed compares; else one
        loop over them that Triton can pipeline (num_stages)."""
        KCH: tl.constexpr = CINP // BLOCK_K
        offs_k = tl.arange(0, BLOCK_K)
        for m0 in range(0, ROWS, BLOCK_M):
            offs_m = m0 + tl.arange(0, BLOCK_M)
            sample, row, col = _pixel_rows(offs_m, H, W, POOL)
            in_m = offs_m < ROWS
            a_rows = x_ptr + ((sample * H + row) * W + col) * CINP
            for n0 in tl.static_range(0, COUTP, BLOCK_N):
                offs_n = n0 + tl.arange(0, BLOCK_N)
                b_rows = w_ptr + offs_k * COUTP
                acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
                if UNROLL:
                    up, down = in_m & (row >= 1), in_m & (row < H - 1)
                    for tap in tl.static_range(9):
                        if tap // 3 == 0:
                            ok = up
                        elif tap // 3 == 2:
                            ok = down
                        else:
                            ok = in_m
                        if tap % 3 == 0:
                            ok = ok & (col >= 1)
                        elif tap % 3 == 2:
                            ok = ok & (col < W - 1)
                        for k0 in tl.static_range(0, CINP, BLOCK_K):
                            shift = ((tap // 3 - 1) * W + tap % 3 - 1) * CINP + k0
                            acc = _tap_dot(acc, a_rows + shift,
                                           b_rows + (tap * CINP + k0) * COUTP, ok, offs_k,
                                           offs_n)
                else:
                    for it in range(9 * KCH):
                        tap = it // KCH
                        k0 = (it % KCH) * BLOCK_K
                        dh = tap // 3 - 1
                        dw = tap % 3 - 1
                        ok = in_m & (row >= -dh) & (row < H - dh) & (col >= -dw) & (col < W - dw)
                        acc = _tap_dot(acc, a_rows + ((dh * W + dw) * CINP + k0),
                                       b_rows + (tap * CINP + k0) * COUTP, ok, offs_k, offs_n)
                _conv_epilogue(acc, b_ptr, y_ptr, m0, offs_n, ROWS, COUTP, RELU, POOL,
                               BLOCK_M, BLOCK_N)

    @triton.jit
    def max_pool_scratch(x_ptr, y_ptr, H: tl.constexpr, W: tl.constexpr, WO: tl.constexpr,
                         HO: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                         SH: tl.constexpr, SW: tl.constexpr, CP: tl.constexpr,
                         CPOW: tl.constexpr, ROWS: tl.constexpr, BLOCK_P: tl.constexpr):
        """Unpadded max-pool of a scratch map (NHWC, CP channels), ROWS output pixels; CPOW is
        the power of two >= CP that tl.arange needs."""
        offs_c = tl.arange(0, CPOW)
        for p0 in range(0, ROWS, BLOCK_P):
            p = p0 + tl.arange(0, BLOCK_P)
            if CPOW == CP:
                ok = (p < ROWS)[:, None]
            else:  # the channels past CP too
                ok = (p < ROWS)[:, None] & (offs_c < CP)[None, :]
            base = (((p // (HO * WO)) * H + ((p // WO) % HO) * SH) * W + (p % WO) * SW) * CP
            best = tl.load((x_ptr + base)[:, None] + offs_c[None, :], mask=ok, other=0.0)
            for t in tl.static_range(1, KH * KW):
                v = tl.load((x_ptr + base + ((t // KW) * W + t % KW) * CP)[:, None]
                            + offs_c[None, :], mask=ok, other=0.0)
                best = tl.maximum(best, v)
            tl.store((y_ptr + p * CP)[:, None] + offs_c[None, :], best, mask=ok)

    @triton.jit
    def _dense_acc(x_ptr, w_ptr, b_ptr, rows, offs_n, ROWS: tl.constexpr, K: tl.constexpr,
                   NP: tl.constexpr, RELU: tl.constexpr, BLOCK_S: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """Rows (of K contiguous features each) @ weights [KP, NP] + bias (+ ReLU), fp32."""
        acc = tl.zeros((BLOCK_S, BLOCK_N), dtype=tl.float32)
        offs_k = tl.arange(0, BLOCK_K)
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + offs_k
            a = tl.load((x_ptr + rows * K)[:, None] + kk[None, :],
                        mask=(rows < ROWS)[:, None] & (kk < K)[None, :], other=0.0)
            b = tl.load((w_ptr + kk * NP)[:, None] + offs_n[None, :])
            acc = tl.dot(a, b, acc)
        acc += tl.load(b_ptr + offs_n)[None, :]
        if RELU:
            acc = tl.maximum(acc, 0.0)
        return acc

    @triton.jit
    def dense_to_scratch(x_ptr, w_ptr, b_ptr, y_ptr, ROWS: tl.constexpr, K: tl.constexpr,
                         NP: tl.constexpr, RELU: tl.constexpr, BLOCK_S: tl.constexpr,
                         BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """A hidden Linear (+ ReLU): ROWS rows of NP features into the scratch."""
        for s0 in tl.static_range(0, ROWS, BLOCK_S):
            rows = s0 + tl.arange(0, BLOCK_S)
            for n0 in tl.static_range(0, NP, BLOCK_N):
                offs_n = n0 + tl.arange(0, BLOCK_N)
                acc = _dense_acc(x_ptr, w_ptr, b_ptr, rows, offs_n, ROWS, K, NP, RELU, BLOCK_S,
                                 BLOCK_N, BLOCK_K)
                tl.store((y_ptr + rows * NP)[:, None] + offs_n[None, :],
                         acc.to(y_ptr.dtype.element_ty), mask=(rows < ROWS)[:, None])

    @triton.jit
    def dense_to_logits(x_ptr, w_ptr, b_ptr, out_ptr, group, n_rows, ROWS: tl.constexpr,
                        K: tl.constexpr, NP: tl.constexpr, N_OUT: tl.constexpr,
                        GROUP: tl.constexpr, RELU: tl.constexpr, BLOCK_S: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """The last Linear: input s of the group writes its N_OUT = GROUP * K logits to
        out[(group * ROWS + s) * N_OUT + o], which is row (.. * GROUP + o // K) of the
        per-image (n_rows, K) logits; rows past n_rows are not stored."""
        for s0 in tl.static_range(0, ROWS, BLOCK_S):
            rows = s0 + tl.arange(0, BLOCK_S)
            sample = group * ROWS + rows
            for n0 in tl.static_range(0, NP, BLOCK_N):
                offs_n = n0 + tl.arange(0, BLOCK_N)
                acc = _dense_acc(x_ptr, w_ptr, b_ptr, rows, offs_n, ROWS, K, NP, RELU, BLOCK_S,
                                 BLOCK_N, BLOCK_K)
                ok = ((rows < ROWS)[:, None] & (offs_n < N_OUT)[None, :]
                      & (sample[:, None] * GROUP + (offs_n // (N_OUT // GROUP))[None, :] < n_rows))
                tl.store((out_ptr + sample * N_OUT)[:, None] + offs_n[None, :],
                         acc.to(out_ptr.dtype.element_ty), mask=ok)


# ------------------------------------------------------------------ source generation
_HELPERS = ("conv3x3_from_input", "conv3x3_from_scratch", "max_pool_scratch", "dense_to_scratch",
            "dense_to_logits")


def _describe(layer: Conv | Pool | Dense) -> str:
    if isinstance(layer, Conv):
        extra = (" + ReLU" if layer.relu else "") + (" + max-pool 2/2" if layer.pool else "")
        return f"conv3x3 {layer.cin} -> {layer.cout} on {layer.height} x {layer.width}{extra}"
    if isinstance(layer, Pool):
        return (f"max-pool {layer.kernel}/{layer.stride} of {layer.channels} channels, "
                f"{layer.height} x {layer.width} -> {' x '.join(map(str, layer.out_size))}")
    return f"linear {layer.features_in} -> {layer.features_out}" + (" + ReLU" if layer.relu else "")


def _call(step: _Step, layout: InputLayout, tile: int, unroll: bool) -> str:
    """One helper call of the generated kernel, every shape a literal."""
    layer, src, dst = step.layer, step.src, step.dst
    w, b = f"w_ptr + {step.w_offset}", f"b_ptr + {step.b_offset}"
    if isinstance(layer, Conv):
        bm, bn, bk = step.blocks
        common = (f"COUTP={step.np}, ROWS={step.rows}, RELU={layer.relu}, POOL={layer.pool}, "
                  f"BLOCK_M={bm}, BLOCK_N={bn}, BLOCK_K={bk}")
        if src == "x":
            return (f"conv3x3_from_input(x_ptr, s_n, s_c, s_h, s_w, n_rows, norm_ptr, group, "
                    f"w_in_ptr, {b}, {dst}, TILE={tile}, H={layer.height}, W={layer.width}, "
                    f"GROUP={layout.group}, CHANNELS={layout.channels}, K={step.k}, "
                    f"KP={step.kp}, {common})")
        return (f"conv3x3_from_scratch({src}, {w}, {b}, {dst}, H={layer.height}, "
                f"W={layer.width}, CINP={step.k}, UNROLL={unroll}, {common})")
    if isinstance(layer, Pool):
        ho, wo = layer.out_size
        return (f"max_pool_scratch({src}, {dst}, H={layer.height}, W={layer.width}, WO={wo}, "
                f"HO={ho}, KH={layer.kernel[0]}, KW={layer.kernel[1]}, SH={layer.stride[0]}, "
                f"SW={layer.stride[1]}, CP={step.np}, CPOW={_pow2_at_least(step.np)}, "
                f"ROWS={step.rows}, BLOCK_P={step.blocks[0]})")
    bs, bn, bk = step.blocks
    tail = f"RELU={layer.relu}, BLOCK_S={bs}, BLOCK_N={bn}, BLOCK_K={bk}"
    if dst == "out":
        return (f"dense_to_logits({src}, {w}, {b}, out_ptr, group, n_rows, ROWS={tile}, "
                f"K={step.k}, NP={step.np}, N_OUT={layer.features_out}, GROUP={layout.group}, "
                f"{tail})")
    return (f"dense_to_scratch({src}, {w}, {b}, {dst}, ROWS={tile}, K={step.k}, NP={step.np}, "
            f"{tail})")


def kernel_source(plan: NetPlan, layout: InputLayout, cfg: FusedConfig,
                  profile: bool = False) -> str:
    """Python source of the network's kernel ``fused_forward``: every layer one helper call.

    ``profile``: the kernel also takes ``prof_ptr`` (int64, programs x in-kernel layers) and
    adds up, per layer, the cycles each program spends from the end of the layer before to the
    barrier after it (``FusedNet.layer_cycles``); without it the source is the timed kernel's."""
    steps, buffer = schedule(plan, layout, cfg)
    kernel_steps = [i for i, step in enumerate(steps) if not step.on_host]
    body = []
    feat = feature_elements(steps)
    if feat:  # the head runs after the kernel: this group's rows of the (inputs, map) features
        body.append(f"        feat = feat_ptr + group * {cfg.tile * feat}")  # int32: see _launch
    if profile:
        body.append("        t_prev = _clock()")
    for slot, i in enumerate(kernel_steps):
        step = steps[i]
        call = _call(step, layout, cfg.tile, cfg.unroll_taps)
        body += [f"        # {i}: {_describe(step.layer)}",
                 *textwrap.wrap(call, 100, initial_indent=" " * 8,
                                subsequent_indent=" " * (9 + call.index("(")),
                                break_long_words=False, break_on_hyphens=False),
                 "        tl.debug_barrier()"]
        if profile:
            body += ["        t_now = _clock()", f"        cycles_{slot} += t_now - t_prev",
                     "        t_prev = t_now"]
    n = len(kernel_steps)
    helpers = _HELPERS + (("_clock",) if profile else ())
    return "\n".join([
        f'"""Generated by util/bench/fused_net.py; do not edit.\n\n{plan.fold} image(s) of '
        f'{plan.image_channels} x {plan.height} x {plan.width} per network input, {cfg.tile} '
        f'input(s) per group;\ninput tensor rows grouped {layout.group} x {layout.channels} '
        f'channels.\n"""',
        "import triton",
        "import triton.language as tl",
        "",
        f"from util.bench.fused_net import {', '.join(helpers)}  # noqa: F401",
        "",
        "",
        "@triton.jit",
        "def fused_forward(x_ptr, s_n, s_c, s_h, s_w, n_rows, n_groups, norm_ptr, w_in_ptr, w_ptr,",
        "                  b_ptr, scratch_ptr, out_ptr, feat_ptr" + (", prof_ptr):" if profile else "):"),
        "    pid = tl.program_id(0)",
        f"    buf_a = scratch_ptr + pid.to(tl.int64) * {2 * buffer}",
        f"    buf_b = buf_a + {buffer}",
        *([f"    cycles_{k} = pid.to(tl.int64) * 0" for k in range(n)] if profile else []),
        "    for group in range(pid, n_groups, tl.num_programs(0)):",
        *body,
        *([f"    tl.store(prof_ptr + pid * {n} + {k}, cycles_{k})" for k in range(n)] if profile else []),
        "",
    ])


def feature_elements(steps: list[_Step]) -> int:
    """Elements of one input's flattened map when the head runs after the kernel, else 0."""
    last = next((step for step in steps if step.dst == "feat"), None)
    return 0 if last is None else last.np * math.prod(last.layer.out_size)


def _ptxas(arch: int) -> str:
    """Path of the ptxas Triton compiles with (its knob, else the one in its wheel)."""
    from triton.backends.nvidia import compiler

    try:
        return compiler.get_ptxas(arch).path
    except TypeError:  # older Triton: no arch argument
        return compiler.get_ptxas().path


@lru_cache(maxsize=None)
def _load_kernel(source: str) -> Callable:
    """Import (writing it first if needed) the module of ``source``; its ``fused_forward``."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = cache_dir() / KERNEL_DIR / f"fused_{digest}.py"
    if not path.is_file() or path.read_text() != source:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, source)
    name = f"folded_cnns_fused_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.fused_forward


# ------------------------------------------------------------------ host side
def input_affine(normalize: Normalize | None, channels: int) -> tuple[list[float], list[float]]:
    """Per-channel (scale, shift) with ``u8 * scale + shift`` = ``to_float``'s
    ``(u8 / 255 - mean) / std`` (``datasets.transforms``)."""
    mean = normalize.mean if normalize is not None else (0.0,) * channels
    std = normalize.std if normalize is not None else (1.0,) * channels
    if len(mean) != channels or len(std) != channels:
        raise FuseError(f"normalisation of {len(mean)} channels for images of {channels}")
    return [1.0 / (255.0 * s) for s in std], [-m / s for m, s in zip(mean, std)]


def _pack_first_conv(conv: nn.Conv2d, channels: int, kp: int, coutp: int) -> torch.Tensor:
    """[Cout, Cin, 3, 3] (the first ``channels`` inputs) -> [kp, coutp], row tap * channels + c."""
    w = conv.weight.detach()[:, :channels].float()
    out = w.new_zeros(kp, coutp)
    out[:9 * channels, :w.shape[0]] = w.permute(2, 3, 1, 0).reshape(9 * channels, w.shape[0])
    return out


def _pack_conv(conv: nn.Conv2d, cinp: int, coutp: int) -> torch.Tensor:
    """[Cout, Cin, 3, 3] -> [9, cinp, coutp] (tap-major, zero-padded)."""
    w = conv.weight.detach().float()
    cout, cin = w.shape[:2]
    out = w.new_zeros(9, cinp, coutp)
    out[:, :cin, :cout] = w.permute(2, 3, 1, 0).reshape(9, cin, cout)
    return out


def _pack_dense(linear: nn.Linear, step: _Step, flat: tuple[int, int, int] | None) -> torch.Tensor:
    """[N, K] -> [kp, np]. After a flatten (``flat`` = channels, pixels, padded channels) row
    ``pixel * cp + c`` holds PyTorch's feature ``c * pixels + pixel`` (NCHW flatten order)."""
    w = linear.weight.detach().float()
    n = w.shape[0]
    out = w.new_zeros(step.kp, step.np)
    if flat is None:
        out[:w.shape[1], :n] = w.t()
    else:
        c, pixels, cp = flat
        nhwc = w.new_zeros(pixels, cp, n)
        nhwc[:, :c] = w.reshape(n, c, pixels).permute(2, 1, 0)
        out[:pixels * cp, :n] = nhwc.reshape(pixels * cp, n)
    return out


def _bias(module: nn.Module, np_: int) -> torch.Tensor:
    out = torch.zeros(round_up(np_, 64), device=module.weight.device)
    if module.bias is not None:
        out[:module.bias.shape[0]] = module.bias.detach().float()
    return out


class FusedNet:
    """``model``'s whole forward as one Triton launch; weights packed once, here.

    ``images(x)``: (N, C, H, W) images (uint8, normalised on load with ``scale``/``shift``,
    or float, already normalised; NCHW or any strided view such as NHWC frames permuted)
    -> (N, K) fp32 logits, equal to ``FoldedClassifier(model)(to_float(x))``.
    ``folded(x)``: (B, in_channels, H, W) float network inputs -> (B, f * K) = ``model(x)``,
    in ``x.dtype`` (what the benchmark times and compares).
    ``dtype``: of the weights, the scratch activations and the tl.dot operands: fp16 (the
    benchmark's), bf16, or fp32 (TF32 dots on a GPU; under the interpreter NumPy multiplies
    fp32 with BLAS but fp16 ~10x slower, so most tests use it). ``config``: None picks
    ``FusedConfig()`` for a model on CUDA, ``INTERPRETER_CONFIG`` on CPU.
    """

    def __init__(self, model: nn.Module, *, scale: Sequence[float] | None = None,
                 shift: Sequence[float] | None = None, dtype: torch.dtype = torch.float16,
                 config: FusedConfig | None = None) -> None:
        if dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise FuseError(f"the fused kernel runs fp16, bf16 or fp32 operands, not {dtype}")
        self.plan, self._modules = plan_network(model)
        device = next(model.parameters()).device
        if config is None:
            config = INTERPRETER_CONFIG if device.type == "cpu" else FusedConfig()
        self.config, self.dtype = config, dtype
        c = self.plan.image_channels
        self.layouts = {"images": InputLayout(self.plan.fold, c),
                        "folded": InputLayout(1, self.plan.in_channels)}
        default_scale, default_shift = input_affine(None, c)
        self._affine = [float(v) for v in (*(scale if scale is not None else default_scale),
                                           *(shift if shift is not None else default_shift))]
        if len(self._affine) != 2 * c:
            raise FuseError(f"scale and shift need {c} values each, got {len(self._affine) // 2}")
        self._packed: dict[str, tuple] = {}
        self._head: dict[str, list[tuple[torch.Tensor, torch.Tensor, bool]]] = {}
        self._features: dict[str, int] = {}
        self._scratch: torch.Tensor | None = None
        self._pack(device)

    @classmethod
    def for_task(cls, model: nn.Module, task: str | Task, **kwargs) -> FusedNet:
        """Normalising uint8 images as ``task``'s data loaders do (``to_float``)."""
        task = get_task(task)
        scale, shift = input_affine(task.data.normalize, task.in_channels)
        return cls(model, scale=scale, shift=shift, **kwargs)

    @property
    def buffer_elements(self) -> int:
        """Elements of one of a program's two scratch buffers (the largest activation)."""
        return schedule(self.plan, self.layouts["images"], self.config)[1]

    def scratch_bytes(self, programs: int) -> int:
        """Bytes of scratch ``programs`` programs use (what would have to stay in L2)."""
        return programs * 2 * self.buffer_elements * self.dtype.itemsize

    def _pack(self, device: torch.device) -> None:
        for name, layout in self.layouts.items():
            steps, _ = schedule(self.plan, layout, self.config)
            w_in, weights, biases, head = None, [], [], []
            shared_head = next(iter(self._head.values()), None)  # the same for every layout
            modules = iter(self._modules)
            prev = None
            for step in steps:
                layer = step.layer
                if isinstance(layer, Pool):
                    prev = step
                    continue
                module = next(modules)
                if isinstance(layer, Conv) and step.src == "x":
                    w_in = _pack_first_conv(module, layout.group * layout.channels, step.kp,
                                            step.np).flatten()
                else:
                    if isinstance(layer, Conv):
                        packed = _pack_conv(module, step.k, step.np)
                    elif isinstance(prev.layer, Dense):
                        packed = _pack_dense(module, step, None)
                    else:  # the flatten of the map the previous step stored
                        channels = (prev.layer.cout if isinstance(prev.layer, Conv)
                                    else prev.layer.channels)
                        flat = (channels, math.prod(prev.layer.out_size), prev.np)
                        packed = _pack_dense(module, step, flat)
                    if not step.on_host:
                        packed = packed.flatten()
                        weights += [packed, packed.new_zeros(round_up(packed.numel(), 64)
                                                             - packed.numel())]
                    elif shared_head is None:  # (k, np) for the matrix product, bias of np
                        head.append((packed[:step.k].to(device, self.dtype).contiguous(),
                                     _bias(module, step.np)[:step.np].to(device, self.dtype),
                                     step.layer.relu))
                if not step.on_host:
                    biases.append(_bias(module, step.np))
                prev = step
            self._packed[name] = (w_in.to(device, self.dtype),
                                  torch.cat(weights or [torch.zeros(64)]).to(device, self.dtype),
                                  torch.cat(biases).to(device))
            self._head[name] = head if shared_head is None else shared_head
            self._features[name] = feature_elements(steps)
        identity = lambda c: torch.tensor([1.0] * c + [0.0] * c, device=device)  # noqa: E731
        self._norm = {"images": torch.tensor(self._affine, device=device),
                      "float_images": identity(self.plan.image_channels),
                      "folded": identity(self.plan.in_channels)}

    def kernel(self, layout: str, profile: bool = False) -> Callable:
        """The compiled-on-first-launch kernel for ``layout`` ("images" or "folded")."""
        if not triton_available():
            raise FuseError("--backend fused needs the triton package (pip install triton)")
        return _load_kernel(kernel_source(self.plan, self.layouts[layout], self.config, profile))

    def kernel_layers(self, layout: str = "folded") -> list[Conv | Pool | Dense]:
        """The layers the kernel runs, in order (a head run after it is not among them)."""
        steps, _ = schedule(self.plan, self.layouts[layout], self.config)
        return [step.layer for step in steps if not step.on_host]

    def host_head(self, layout: str = "folded") -> tuple[int, list[tuple[torch.Tensor, torch.Tensor, bool]]]:
        """The classifier run after the kernel (``head_in_kernel`` off): features per input and
        each Linear as (weight (in, out), bias, ReLU after it); (0, []) when the kernel has it."""
        return self._features[layout], list(self._head[layout])

    def _compile_options(self) -> dict[str, int]:
        """Triton's options of the launch (and of ``compiled_resources``)."""
        c = self.config
        return {"num_warps": c.num_warps, "num_stages": c.num_stages,
                **({"maxnreg": c.maxnreg} if c.maxnreg is not None else {})}

    def kernel_signature(self, layout: str = "folded", profile: bool = False,
                         input_dtype: torch.dtype | None = None) -> dict[str, str]:
        """Triton's types of the kernel's arguments as ``_launch`` passes them: inputs of
        ``input_dtype`` (default: uint8 images, or folded inputs in the operand dtype)."""
        pointer = {torch.uint8: "*u8", torch.float16: "*fp16", torch.bfloat16: "*bf16",
                   torch.float32: "*fp32"}
        x = input_dtype or (torch.uint8 if layout == "images" else self.dtype)
        out = torch.float32 if layout == "images" else x
        op = pointer[self.dtype]
        return {"x_ptr": pointer[x], **{k: "i32" for k in ("s_n", "s_c", "s_h", "s_w", "n_rows",
                                                          "n_groups")},
                "norm_ptr": "*fp32", "w_in_ptr": op, "w_ptr": op, "b_ptr": "*fp32",
                "scratch_ptr": op, "out_ptr": pointer[out],
                "feat_ptr": op if self._features[layout] else pointer[out],
                **({"prof_ptr": "*i64"} if profile else {})}

    def compiled_resources(self, layout: str = "folded", profile: bool = False,
                           arch: int = 90) -> dict[str, Any]:
        """Registers per thread, spilled bytes and shared memory of the kernel as Triton compiles
        it for ``sm_<arch>``, read from ptxas' report; runs on any machine (no GPU: Triton's
        own compiler and ptxas). 255 registers per thread let at most two 4-warp programs share
        an SM's 64K registers; spills go to local memory."""
        import subprocess
        import tempfile

        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource

        compiled = triton.compile(ASTSource(fn=self.kernel(layout, profile), signature=self.kernel_signature(layout, profile),
                                            constexprs={}),
                                  target=GPUTarget("cuda", arch, 32), options=self._compile_options())
        with tempfile.TemporaryDirectory() as tmp:
            ptx = Path(tmp) / "fused.ptx"
            ptx.write_text(compiled.asm["ptx"])
            report = subprocess.run([_ptxas(arch), f"-arch=sm_{arch}a" if arch >= 90 else f"-arch=sm_{arch}",
                                     "-v", str(ptx), "-o", str(Path(tmp) / "fused.cubin")],
                                    capture_output=True, text=True, check=True).stderr
        registers = re.search(r"Used (\d+) registers", report)
        spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", report)
        return {"registers": int(registers.group(1)) if registers else None,
                "spill_store_bytes": int(spills.group(1)) if spills else 0,
                "spill_load_bytes": int(spills.group(2)) if spills else 0,
                "shared_bytes": int(compiled.metadata.shared),
                "clock_reads": compiled.asm["ptx"].count("%clock64")}

    def profiled(self, x: torch.Tensor, prof: torch.Tensor) -> torch.Tensor:
        """``folded(x)`` by the profiling kernel, adding each program's cycles per layer
        (``kernel_layers``) into ``prof`` (int64, programs x layers; ``profile_buffer``)."""
        p = self.plan
        if x.dim() != 4 or tuple(x.shape[1:]) != (p.in_channels, p.height, p.width):
            raise FuseError(f"fused: inputs must be (B, {p.in_channels}, {p.height}, {p.width}), "
                            f"got {tuple(x.shape)}")
        out = torch.empty(x.shape[0], p.num_outputs, device=x.device, dtype=x.dtype)
        return self._launch("folded", x, "folded", out, x.shape[0], prof=prof)

    def profile_buffer(self, x: torch.Tensor) -> torch.Tensor:
        """A zeroed (programs, kernel layers) int64 buffer for ``profiled(x, ...)``."""
        groups = -(-x.shape[0] // self.config.tile)
        return torch.zeros(self._programs(groups, x.device), len(self.kernel_layers()),
                           dtype=torch.int64, device=x.device)

    def layer_cycles(self, x: torch.Tensor) -> torch.Tensor:
        """Cycles the kernel spends in each of its layers (``kernel_layers``) on the network
        inputs ``x`` (as ``folded``), summed over its programs: one launch of the profiling
        kernel, whose layer boundaries read each SM's cycle counter. Shares of the sum are
        shares of the kernel's time; waiting at a layer's closing barrier counts to the layer.
        The profiling kernel is compiled on its own, so its registers (and spills) may differ
        a little from the timed kernel's: the shares are close, not exact."""
        prof = self.profile_buffer(x)
        self.profiled(x, prof)
        return prof.sum(0).cpu()

    def source(self, layout: str = "images") -> str:
        return kernel_source(self.plan, self.layouts[layout], self.config)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        p = self.plan
        if x.dim() != 4 or tuple(x.shape[1:]) != (p.image_channels, p.height, p.width):
            raise FuseError(f"fused: images must be (N, {p.image_channels}, {p.height}, "
                            f"{p.width}), got {tuple(x.shape)}")
        if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
            raise FuseError(f"fused: images must be uint8 or float, got {x.dtype}")
        norm = "images" if x.dtype == torch.uint8 else "float_images"
        out = torch.empty(x.shape[0], p.num_outputs // p.fold, device=x.device,
                          dtype=torch.float32)
        return self._launch("images", x, norm, out, -(-x.shape[0] // p.fold))

    def folded(self, x: torch.Tensor) -> torch.Tensor:
        p = self.plan
        if x.dim() != 4 or tuple(x.shape[1:]) != (p.in_channels, p.height, p.width):
            raise FuseError(f"fused: inputs must be (B, {p.in_channels}, {p.height}, {p.width}), "
                            f"got {tuple(x.shape)}")
        out = torch.empty(x.shape[0], p.num_outputs, device=x.device, dtype=x.dtype)
        return self._launch("folded", x, "folded", out, x.shape[0])

    def _programs(self, groups: int, device: torch.device) -> int:
        if self.config.programs is not None:
            wanted = self.config.programs
        elif device.type == "cuda":
            wanted = PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
        else:
            wanted = 4
        return max(1, min(groups, wanted))

    def _launch(self, layout: str, x: torch.Tensor, norm: str, out: torch.Tensor,
                inputs: int, prof: torch.Tensor | None = None) -> torch.Tensor:
        w_in, w, b = self._packed[layout]
        if x.device != w.device:
            raise FuseError(f"fused: input on {x.device}, weights on {w.device}")
        if x.shape[0] == 0:
            return out
        span = 1 + sum((n - 1) * abs(s) for n, s in zip(x.shape, x.stride()))
        if span >= INT32_LIMIT or out.numel() >= INT32_LIMIT:
            raise FuseError("fused: batch too large for 32-bit indexing; use a smaller batch")
        if self.buffer_elements >= INT32_LIMIT:  # offsets within a program's buffer are int32
            raise FuseError(f"fused: tile {self.config.tile} needs scratch buffers too large "
                            "for 32-bit indexing; use a smaller tile")
        groups = -(-inputs // self.config.tile)
        programs = self._programs(groups, x.device)
        need = programs * 2 * self.buffer_elements
        if (self._scratch is None or self._scratch.numel() < need
                or self._scratch.device != x.device):  # grown, never shrunk; reused by calls
            self._scratch = torch.empty(need, device=x.device, dtype=self.dtype)
        head, features = self._head[layout], self._features[layout]
        # the flattened maps, one row per input (and the last group's padding rows), for the head
        feat = (torch.empty(groups * self.config.tile, features, device=x.device, dtype=self.dtype)
                if head else out)
        if feat.numel() >= INT32_LIMIT:
            raise FuseError("fused: batch too large for 32-bit indexing; use a smaller batch")
        if prof is not None and prof.shape[0] != programs:
            raise FuseError(f"fused: the profile buffer has {prof.shape[0]} rows for {programs} programs")
        self.kernel(layout, profile=prof is not None)[(programs,)](
            x, *x.stride(), x.shape[0], groups, self._norm[norm], w_in, w, b, self._scratch, out,
            feat, *(() if prof is None else (prof,)), **self._compile_options())
        if head:
            h = feat[:inputs]
            for weight, bias, relu in head:
                h = torch.addmm(bias, h, weight)
                if relu:
                    h = h.relu_()
            logits = h[:, :self.plan.num_outputs]  # (inputs, f * K): a row per network input
            out.copy_(logits if layout == "folded"
                      else logits.reshape(-1, out.shape[1])[:out.shape[0]])
        return out


__all__ = ["INTERPRETER_CONFIG", "Conv", "Dense", "FuseError", "FusedConfig", "FusedNet",
           "InputLayout", "NetPlan", "Pool", "head_in_kernel", "input_affine", "kernel_source",
           "plan_network", "schedule"]
