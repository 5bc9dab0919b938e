"""A fused 3x3 convolution + bias + ReLU Triton kernel for the ``triton`` inference backend.

Why: on an H100 the compiled (max-autotune) FoldedCNNs spend their time in convolutions
that are 4x off the roofline, plus a separate bias+ReLU kernel after every conv; a folded
64 -> 64 conv on 256 inputs took as long as the original's 32 -> 32 conv on 1024 inputs,
though it moves half the bytes. These convs are small (K = 9 * Cin <= 1152, Cout <= 128), so
one implicit-GEMM kernel can keep all of a tap's input channels and every output channel in
one tile, read each NHWC activation once, and apply bias and ReLU before the single store.
A following ``MaxPool2d(2, 2)`` is fused too: with ``POOL`` each tile's rows are the 4 pixels
of every 2x2 window, reduced in the epilogue, so the full-resolution activation (and the
separate pool kernel that read it back, ~30% of NoScope-taipei's time) never hits memory.

Layout: activations NHWC (channels_last, channel stride 1); weights packed once to
``[9 * Cin, Cout]`` (tap-major). Output pixel ``m`` of the flattened ``N * H * W`` grid reads
neighbour ``m + dh * W + dw`` of the same image; taps that fall outside the image are masked
to zero ('same' padding 1). With ``POOL``, row ``m = p * 4 + q`` is window position ``q`` of
pooled pixel ``p`` (flat over ``N * (H // 2) * (W // 2)``, an odd last row/column dropped).

``fuse_convs(model)`` returns a copy whose ``Conv2d(3x3, stride 1, padding 1)`` (+ ``ReLU``)
(+ ``MaxPool2d(2, 2)``) layers run this kernel through the custom op ``foldedcnn::conv3x3``.
On CPU the op runs ``F.conv2d``; with ``TRITON_INTERPRET=1`` (set before the first import
of triton) ``conv3x3_triton`` runs the kernel itself on CPU tensors, which is how CI checks it.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the reference path still works
    triton = None


def triton_available() -> bool:
    """True when the ``triton`` backend can run its kernel on a CUDA GPU."""
    return triton is not None


def _pow2_at_least(n: int, low: int = 16) -> int:
    return max(low, 1 << (max(1, n) - 1).bit_length())


if triton is not None:
    @triton.jit
    def _tap_dot(acc, x_ptr, w_ptr, pix, offs_n, kk, row, col, in_m, in_n, H, W, tap,
                 CIN: tl.constexpr, COUT: tl.constexpr, IEEE: tl.constexpr):
        """acc += the input pixels shifted by tap (dh, dw), channels kk, @ that tap's weights.

        ``pix`` / ``row`` / ``col``: each M row's input pixel (flat N*H*W index, row, column).
        """
        dh = tap // 3 - 1
        dw = tap % 3 - 1
        ok = in_m & (row + dh >= 0) & (row + dh < H) & (col + dw >= 0) & (col + dw < W)
        src = (pix + dh * W + dw) * CIN
        a = tl.load(x_ptr + src[:, None] + kk[None, :],
                    mask=ok[:, None] & (kk[None, :] < CIN), other=0.0)
        b = tl.load(w_ptr + (tap * CIN + kk)[:, None] * COUT + offs_n[None, :],
                    mask=(kk[:, None] < CIN) & in_n[None, :], other=0.0)
        if IEEE:
            return tl.dot(a, b, acc, input_precision="ieee")
        return tl.dot(a, b, acc)

    @triton.jit
    def _conv3x3_kernel(x_ptr, w_ptr, b_ptr, y_ptr, NPIX, H, W,
                        CIN: tl.constexpr, COUT: tl.constexpr, RELU: tl.constexpr,
                        IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_K: tl.constexpr, UNROLL: tl.constexpr, POOL: tl.constexpr):
        """NPIX = number of M rows: N*H*W, or N*(H//2)*(W//2)*4 with POOL (2x2 max pool)."""
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        if POOL:  # m = p * 4 + q: pooled pixel p = (n, ho, wo), window position q = (q//2, q%2)
            WO = W // 2
            HO = H // 2
            p = offs_m // 4
            q = offs_m % 4
            col = (p % WO) * 2 + q % 2
            row = ((p // WO) % HO) * 2 + q // 2
            pix = ((p // (WO * HO)) * H + row) * W + col
        else:
            col = offs_m % W
            row = (offs_m // W) % H
            pix = offs_m
        in_m = offs_m < NPIX
        in_n = offs_n < COUT
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if UNROLL:  # every (tap, chunk) unrolled: no loop overhead, no pipelining
            for tap in tl.static_range(9):
                for k0 in tl.static_range(0, CIN, BLOCK_K):
                    acc = _tap_dot(acc, x_ptr, w_ptr, pix, offs_n, k0 + offs_k, row, col,
                                   in_m, in_n, H, W, tap, CIN, COUT, IEEE)
        else:  # one loop over (tap, chunk) that Triton pipelines (num_stages)
            KCH: tl.constexpr = (CIN + BLOCK_K - 1) // BLOCK_K
            for it in range(9 * KCH):
                acc = _tap_dot(acc, x_ptr, w_ptr, pix, offs_n, (it % KCH) * BLOCK_K + offs_k,
                               row, col, in_m, in_n, H, W, it // KCH, CIN, COUT, IEEE)
        if POOL:  # max over each window first: max commutes with + bias and ReLU
            acc = tl.max(tl.reshape(acc, (BLOCK_M // 4, 4, BLOCK_N)), axis=1)
            offs_m = pid_m * (BLOCK_M // 4) + tl.arange(0, BLOCK_M // 4)
            in_m = offs_m < NPIX // 4  # a window's 4 rows are all in or all out
        acc += tl.load(b_ptr + offs_n, mask=in_n, other=0.0).to(tl.float32)[None, :]
        if RELU:
            acc = tl.maximum(acc, 0.0)
        tl.store(y_ptr + offs_m[:, None] * COUT + offs_n[None, :],
                 acc.to(y_ptr.dtype.element_ty), mask=in_m[:, None] & in_n[None, :])

    def _prune(configs, named_args, **kwargs):
        """Keep tiles that fit the layer: BLOCK_K no wider than the padded input channels,
        accumulator <= 64 fp32 registers per thread, BLOCK_M no larger than the pixels."""
        block_n = kwargs.get("BLOCK_N", named_args.get("BLOCK_N", 128))
        max_k = _pow2_at_least(kwargs.get("CIN", named_args.get("CIN", 128)))
        keep, seen = [], set()
        for c in configs:
            m, k, unroll = c.kwargs["BLOCK_M"], min(c.kwargs["BLOCK_K"], max_k), c.kwargs["UNROLL"]
            key = (m, k, unroll, c.num_warps, c.num_stages)
            if key in seen or m * block_n > 64 * 32 * c.num_warps or m > max(64, named_args["NPIX"]):
                continue
            seen.add(key)
            keep.append(triton.Config({"BLOCK_M": m, "BLOCK_K": k, "UNROLL": unroll},
                                      num_warps=c.num_warps, num_stages=c.num_stages))
        return keep or configs[:1]

    def _bench_in_graph(kernel_call, quantiles):
        """Time a config inside a CUDA graph, as the backend runs it: the default timer
        includes launch gaps, which hide the differences between 5-20 us kernels."""
        return triton.testing.do_bench_cudagraph(kernel_call, rep=20, quantiles=quantiles)

    # (BLOCK_M, BLOCK_K, UNROLL, warps, stages); each config costs a Triton compile (~1 s)
    # per layer shape, so the list stays short. Unrolled taps won on small images, the
    # pipelined loop on 50 x 50 NoScope layers (H100 per-layer timings).
    _CONFIGS = [(64, 128, True, 4, 1), (128, 128, True, 4, 1), (128, 128, True, 8, 1),
                (256, 128, True, 8, 1), (64, 32, False, 4, 3), (128, 32, False, 4, 3),
                (128, 64, False, 4, 3), (128, 64, False, 8, 3), (256, 32, False, 8, 3),
                (256, 64, False, 8, 3)]
    def _autotuned(kernel):
        configs = [triton.Config({"BLOCK_M": m, "BLOCK_K": k, "UNROLL": u}, num_warps=w,
                                 num_stages=s) for m, k, u, w, s in _CONFIGS]
        common = dict(configs=configs, key=["NPIX", "H", "W", "CIN", "COUT", "POOL"],
                      prune_configs_by={"early_config_prune": _prune})
        try:
            return triton.autotune(do_bench=_bench_in_graph, **common)(kernel)
        except TypeError:  # a Triton without autotune(do_bench=): its default timer
            return triton.autotune(**common)(kernel)

    _conv3x3_tuned = _autotuned(_conv3x3_kernel)


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """``[Cout, Cin, 3, 3]`` -> ``[9 * Cin, Cout]`` (tap-major), as the kernel reads it."""
    cout, cin = weight.shape[:2]
    return weight.permute(2, 3, 1, 0).reshape(9 * cin, cout).contiguous()


def _check_shapes(x: torch.Tensor, w_packed: torch.Tensor) -> None:
    if x.dim() != 4 or w_packed.shape[0] != 9 * x.shape[1]:
        raise ValueError(f"conv3x3: input {tuple(x.shape)} does not match packed weight "
                         f"{tuple(w_packed.shape)} (expected [9 * Cin, Cout])")


def conv3x3_triton(x: torch.Tensor, w_packed: torch.Tensor, bias: torch.Tensor,
                   relu: bool, block_m: int | None = None, unroll: bool = False,
                   pool: bool = False) -> torch.Tensor:
    """Launch the kernel: ``relu(conv2d(x, w, bias, padding=1))`` in channels_last, then
    ``max_pool2d(., 2, 2)`` with ``pool`` (the full-resolution activation is never stored).

    ``block_m`` (and ``unroll``) fix the tile and loop form (no autotuning: the interpreter
    and tests); ``None`` autotunes per shape on the first call (keep that call out of
    CUDA-graph capture and timing).
    """
    if triton is None:
        raise RuntimeError("the triton backend needs the triton package (pip install triton)")
    _check_shapes(x, w_packed)
    x = x.contiguous(memory_format=torch.channels_last)
    n, cin, h, w = x.shape
    cout = w_packed.shape[1]
    ho, wo = (h // 2, w // 2) if pool else (h, w)
    y = torch.empty((n, cout, ho, wo), device=x.device, dtype=x.dtype,
                    memory_format=torch.channels_last)
    npix = n * ho * wo * (4 if pool else 1)  # M rows: with pool, 4 per pooled pixel
    if max(x.numel(), y.numel(), npix) >= 2 ** 31:
        raise ValueError("conv3x3: tensor too large for 32-bit indexing; use a smaller batch")
    if npix == 0:  # nothing to compute (empty batch, or a 1-pixel side under pool)
        return y
    block_n = min(128, _pow2_at_least(cout))
    meta = dict(CIN=cin, COUT=cout, RELU=relu, IEEE=x.dtype == torch.float32, BLOCK_N=block_n,
                POOL=pool)
    if block_m is None:
        grid = lambda m: (triton.cdiv(npix, m["BLOCK_M"]), triton.cdiv(cout, block_n))  # noqa: E731
        _conv3x3_tuned[grid](x, w_packed, bias, y, npix, h, w, **meta)
    else:
        grid = (triton.cdiv(npix, block_m), triton.cdiv(cout, block_n))
        _conv3x3_kernel[grid](x, w_packed, bias, y, npix, h, w, BLOCK_M=block_m,
                              BLOCK_K=min(64, _pow2_at_least(cin)), UNROLL=unroll, **meta)
    return y


def conv3x3_reference(x: torch.Tensor, w_packed: torch.Tensor, bias: torch.Tensor,
                      relu: bool, pool: bool = False) -> torch.Tensor:
    """What the kernel computes, with ``F.conv2d`` (CPU path and tests)."""
    _check_shapes(x, w_packed)
    cin, cout = x.shape[1], w_packed.shape[1]
    weight = w_packed.reshape(3, 3, cin, cout).permute(3, 2, 0, 1)
    y = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1)
    y = F.relu(y) if relu else y
    y = F.max_pool2d(y, 2, 2) if pool else y
    return y.contiguous(memory_format=torch.channels_last)


@torch.library.custom_op("foldedcnn::conv3x3", mutates_args=())
def conv3x3(x: torch.Tensor, w_packed: torch.Tensor, bias: torch.Tensor,
            relu: bool, pool: bool = False) -> torch.Tensor:
    """3x3 'same' conv + bias (+ ReLU) (+ 2x2 max pool): the Triton kernel on CUDA,
    ``F.conv2d`` elsewhere."""
    return conv3x3_reference(x, w_packed, bias, relu, pool)


@conv3x3.register_kernel("cuda")
def _conv3x3_cuda(x: torch.Tensor, w_packed: torch.Tensor, bias: torch.Tensor,
                  relu: bool, pool: bool = False) -> torch.Tensor:
    return conv3x3_triton(x, w_packed, bias, relu, pool=pool)


@conv3x3.register_fake
def _conv3x3_fake(x: torch.Tensor, w_packed: torch.Tensor, bias: torch.Tensor,
                  relu: bool, pool: bool = False) -> torch.Tensor:
    n, _, h, w = x.shape
    if pool:
        h, w = h // 2, w // 2
    return torch.empty((n, w_packed.shape[1], h, w), device=x.device, dtype=x.dtype,
                       memory_format=torch.channels_last)


class FusedConv3x3(nn.Module):
    """A ``Conv2d(k=3, stride=1, padding=1)`` (optionally with its ReLU, then a
    ``MaxPool2d(2, 2)``) as one kernel call."""

    def __init__(self, conv: nn.Conv2d, relu: bool, pool: bool = False) -> None:
        super().__init__()
        if not is_fusable(conv):
            raise ValueError(f"FusedConv3x3 takes a 3x3 stride-1 padding-1 conv, got {conv}")
        self.relu, self.pool = relu, pool
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.register_buffer("w_packed", pack_weight(conv.weight.detach()))
        bias = conv.bias.detach() if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
        self.register_buffer("bias", bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv3x3(x, self.w_packed, self.bias, self.relu, self.pool)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, relu={self.relu}, pool={self.pool}"


def is_fusable(conv: nn.Module) -> bool:
    """Whether ``conv`` is what the kernel computes: 3x3, stride 1, 'same' zero padding."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


def is_fusable_pool(pool: nn.Module) -> bool:
    """Whether ``pool`` is the epilogue the kernel has: a plain 2x2 stride-2 max pool that
    drops an odd last row/column (``ceil_mode=False``) and returns no indices."""
    return (isinstance(pool, nn.MaxPool2d) and _pair(pool.kernel_size) == (2, 2)
            and _pair(pool.stride) == (2, 2) and _pair(pool.padding) == (0, 0)
            and _pair(pool.dilation) == (1, 1) and not pool.ceil_mode
            and not pool.return_indices)


def fuse_convs(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` with every fusable conv (and a ReLU right after it in the same
    ``nn.Sequential``, then a fusable ``MaxPool2d(2, 2)``) replaced by ``FusedConv3x3``;
    returns (copy, number of convs fused)."""
    model = copy.deepcopy(model)
    fused = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        children = list(seq.children())
        new: list[nn.Module] = []
        i = 0
        while i < len(children):
            layer = children[i]
            if is_fusable(layer):
                relu = i + 1 < len(children) and isinstance(children[i + 1], nn.ReLU)
                j = i + 2 if relu else i + 1
                pool = j < len(children) and is_fusable_pool(children[j])
                new.append(FusedConv3x3(layer, relu, pool))
                fused += 1
                i = j + 1 if pool else j
            else:
                new.append(layer)
                i += 1
        if len(new) != len(children) or any(a is not b for a, b in zip(new, children)):
            seq._modules.clear()
            for j, layer in enumerate(new):
                seq.add_module(str(j), layer)
    return model, fused
