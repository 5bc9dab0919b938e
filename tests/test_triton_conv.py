"""The fused 3x3 conv + bias + ReLU (+ 2x2 max pool) kernel of the ``triton`` backend,
checked on CPU.

The kernel itself runs under Triton's interpreter (``TRITON_INTERPRET=1``, in a child
process: the flag must be set before triton is imported); the module rewrite, the custom
op and its compile path run on CPU through the ``F.conv2d`` reference.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import build_model
from util.bench import backends as bench_backends
from util.bench.backends import BenchError, check_backend
from util.bench.triton_conv import (FusedConv3x3, conv3x3, conv3x3_reference, fuse_convs,
                              is_fusable, is_fusable_pool, pack_weight)

REPO = Path(__file__).resolve().parents[1]

INTERPRETER_CHECK = r"""
import sys, torch
from util.bench.triton_conv import conv3x3_triton, conv3x3_reference, pack_weight
torch.manual_seed(0)
worst = 0.0
# (n, cin, cout, h, w, relu, dtype): odd channel counts, several channel chunks (130 > 64),
# a partial last pixel tile, fp16 and fp32 (ieee dot); with pool also odd H and W (the last
# row/column dropped), windows of two images in one tile, and partial tiles (48 and 36 rows)
for n, cin, cout, h, w, relu, dt in [(2, 3, 32, 5, 7, True, torch.float16),
                                     (2, 12, 64, 4, 6, True, torch.float16),
                                     (1, 64, 64, 3, 5, False, torch.float16),
                                     (1, 130, 90, 3, 4, True, torch.float32),
                                     (1, 16, 24, 7, 6, False, torch.float32)]:
    x = torch.randn(n, cin, h, w).to(dt).contiguous(memory_format=torch.channels_last)
    wt, b = (torch.randn(cout, cin, 3, 3) / cin ** 0.5).to(dt), torch.randn(cout).to(dt)
    for pool in (False, True):
        ref = conv3x3_reference(x.float(), pack_weight(wt).float(), b.float(), relu, pool)
        assert ref.shape[2:] == ((h // 2, w // 2) if pool else (h, w))
        for unroll in (False, True):
            y = conv3x3_triton(x, pack_weight(wt), b, relu, block_m=32, unroll=unroll, pool=pool)
            assert y.shape == ref.shape and y.dtype == dt, (y.shape, y.dtype)
            assert y.is_contiguous(memory_format=torch.channels_last)
            err = (y.float() - ref).abs().max().item() / ref.abs().max().item()
            worst = max(worst, err)
            tol = 1e-5 if dt == torch.float32 else 2e-3
            assert err < tol, (n, cin, cout, h, w, relu, dt, pool, unroll, err)
# a pooled side of 0 (H = 1): an empty output, no launch
y = conv3x3_triton(torch.randn(1, 4, 1, 6), pack_weight(torch.randn(8, 4, 3, 3)),
                   torch.randn(8), True, block_m=32, pool=True)
assert y.shape == (1, 8, 0, 3)
print("worst relative error", worst)
"""


def test_kernel_matches_conv2d_under_triton_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", INTERPRETER_CHECK], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst relative error" in proc.stdout


def test_pack_weight_and_reference_are_conv2d():
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 5, 6, 7), torch.randn(9, 5, 3, 3), torch.randn(9)
    packed = pack_weight(w)
    assert packed.shape == (45, 9)
    assert torch.equal(packed[4 * 5 + 2], w[:, 2, 1, 1])  # tap (1, 1) = centre, channel 2
    torch.testing.assert_close(conv3x3_reference(x, packed, b, False), F.conv2d(x, w, b, padding=1))
    torch.testing.assert_close(conv3x3(x, packed, b, True), F.relu(F.conv2d(x, w, b, padding=1)))
    pooled = conv3x3(x, packed, b, True, True)  # 6 x 7 -> 3 x 3: the odd last column dropped
    torch.testing.assert_close(pooled, F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2))
    assert pooled.shape == (2, 9, 3, 3) and pooled.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="does not match packed weight"):
        conv3x3_reference(x, pack_weight(torch.randn(9, 4, 3, 3)), b, True)


@pytest.mark.parametrize("task,fold,expected", [("apex/squad_count_v2", 4, 5),
                                                ("sot/timer3", 1, 8),
                                                ("noscope-roundabout", 2, 4)])
def test_fuse_convs_keeps_the_function(task, fold, expected):
    torch.manual_seed(0)
    model = build_model(task, fold, channel_align=8, pad_input=True).eval()
    fused, count = fuse_convs(model)
    assert count == expected
    assert not any(isinstance(m, (nn.Conv2d, nn.ReLU)) and m in list(model.modules())
                   for m in fused.features.modules())  # a copy: the input model is untouched
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == expected
    assert all(m.relu for m in fused.modules() if isinstance(m, FusedConv3x3))
    x = torch.randn(3, model.in_channels, *model.input_size)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)


def test_only_same_padding_3x3_stride_1_convs_fuse():
    convs = [nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1),
             nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1, groups=2),
             nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")]
    assert [is_fusable(c) for c in convs] == [True, False, False, False, False]
    net = nn.Sequential(convs[0], convs[1], nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(3, 2, 1))
    fused, count = fuse_convs(net)
    kinds = [type(m).__name__ for m in fused]
    # MaxPool2d(2) (stride defaults to the kernel size) joins the conv before it, with no ReLU
    assert count == 3 and kinds == ["FusedConv3x3", "Conv2d", "ReLU", "FusedConv3x3",
                                    "FusedConv3x3", "MaxPool2d"]
    assert not fused[0].relu  # the next layer is a stride-2 conv, not a ReLU
    assert [(m.relu, m.pool) for m in fused[3:5]] == [(False, True), (False, False)]
    assert "pool=True" in repr(fused[3])
    x = torch.randn(2, 4, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), net(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="3x3 stride-1 padding-1"):
        FusedConv3x3(convs[1], relu=True)


def test_only_2x2_stride_2_max_pools_fuse():
    pools = [nn.MaxPool2d(2), nn.MaxPool2d((2, 2), (2, 2)), nn.MaxPool2d(2, 2, ceil_mode=True),
             nn.MaxPool2d(2, 1), nn.MaxPool2d(3, 2, padding=1), nn.MaxPool2d(2, 2, padding=1),
             nn.MaxPool2d(2, 2, dilation=2), nn.MaxPool2d(2, return_indices=True),
             nn.AvgPool2d(2), nn.ReLU()]
    assert [is_fusable_pool(p) for p in pools] == [True, True] + [False] * 8


@pytest.mark.parametrize("task,fold,convs,pools", [("noscope-taipei", 1, 2, 1),
                                                   ("noscope-roundabout", 2, 4, 2)])
def test_noscope_pools_fuse_into_the_conv(task, fold, convs, pools):
    """conv, ReLU, MaxPool2d(2, 2) becomes one FusedConv3x3(pool=True); 25 x 25 -> 12 x 12
    (roundabout's second pool) checks the dropped odd row and column."""
    torch.manual_seed(0)
    model = build_model(task, fold, channel_align=8, pad_input=True).eval()
    fused, count = fuse_convs(model)
    assert count == convs
    assert not any(isinstance(m, nn.MaxPool2d) for m in fused.features)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == pools  # untouched
    assert [m.pool for m in fused.features] == [False, True] * pools
    x = torch.randn(3, model.in_channels, *model.input_size)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("task,fold", [("apex/squad_count_v2", 4), ("sot/timer3", 1)])
def test_game_pools_stay_separate(task, fold):
    """The game CNNs' (3, s2, p1) and (3, s1, p1) pools are not the kernel's 2x2 epilogue."""
    model = build_model(task, fold, channel_align=8, pad_input=True).eval()
    fused, _ = fuse_convs(model)
    n_pools = sum(isinstance(m, nn.MaxPool2d) for m in model.features)
    assert n_pools > 0 and sum(isinstance(m, nn.MaxPool2d) for m in fused.features) == n_pools
    assert not any(m.pool for m in fused.modules() if isinstance(m, FusedConv3x3))


@pytest.mark.parametrize("pool", [False, True])
def test_op_fake_matches_the_cpu_op(pool):
    """The fake (compile's shapes) agrees with the CPU op, pooled odd sides included."""
    x = torch.randn(2, 5, 7, 9).contiguous(memory_format=torch.channels_last)
    args = (x, pack_weight(torch.randn(6, 5, 3, 3)), torch.randn(6), True, pool)
    result = torch.library.opcheck(conv3x3, args)
    assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("task,fold", [("lol/timer-minutes", 4), ("noscope-roundabout", 2)])
def test_custom_op_compiles_in_one_graph(task, fold):
    """inductor must trace the fused model whole (the op's fake gives channels_last shapes,
    pooled ones for noscope's fused pools)."""
    torch.manual_seed(0)
    model = build_model(task, fold, channel_align=8, pad_input=True).eval()
    model = model.to(memory_format=torch.channels_last)
    fused, _ = fuse_convs(model)
    x = torch.randn(2, model.in_channels, *model.input_size).contiguous(
        memory_format=torch.channels_last)
    torch._dynamo.reset()
    compiled = torch.compile(fused, fullgraph=True)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_triton_backend_rules(monkeypatch):
    with pytest.raises(BenchError, match="needs --device cuda"):
        check_backend("triton", torch.device("cpu"))
    monkeypatch.setattr(bench_backends, "triton_available", lambda: False)
    with pytest.raises(BenchError, match="needs the triton package"):
        check_backend("triton", torch.device("cuda"))
    assert "triton" not in bench_backends.auto_candidates(torch.device("cuda"))
    monkeypatch.setattr(bench_backends, "triton_available", lambda: True)
    assert bench_backends.auto_candidates(torch.device("cuda"))[0] in ("tensorrt", "triton")
    with pytest.raises(BenchError, match="no 3x3 stride-1 padding-1 conv"):
        bench_backends._triton(nn.Linear(3, 3), torch.zeros(1, 3))


def test_triton_backend_compiles_the_fused_model(monkeypatch):
    """The fused convs go to _compile (inductor's default mode for the rest, our graph), and
    the result is checked against the eager model before it is timed."""
    seen = {}

    def fake_compile(module, example, cuda_mode=None):
        seen["mode"], seen["kinds"] = cuda_mode, [type(m).__name__ for m in module]
        return bench_backends.Prepared("compile", module, 1.5)  # the CPU op: F.conv2d

    monkeypatch.setattr(bench_backends, "_compile", fake_compile)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten())
    x = torch.randn(2, 3, 5, 5)
    prep = bench_backends._triton(net, x)
    assert seen == {"mode": bench_backends.TRITON_REST_MODE, "kinds": ["FusedConv3x3", "Flatten"]}
    assert prep.backend == "triton" and prep.setup_seconds == 1.5
    torch.testing.assert_close(prep.fn(x), net(x))


@pytest.mark.parametrize("wrong", [lambda y: y * 1.05, lambda y: y[:1],
                                   lambda y: torch.full_like(y, float("nan"))])
def test_triton_backend_refuses_a_wrong_kernel(monkeypatch, wrong):
    """A kernel bug (5% off, a wrong shape, NaNs) stops the run instead of becoming a row."""
    monkeypatch.setattr(bench_backends, "_compile", lambda module, example, cuda_mode=None:
                        bench_backends.Prepared("compile", lambda x: wrong(module(x)), 1.0))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten())
    with pytest.raises(BenchError, match="triton backend: output"):
        bench_backends._triton(net, torch.randn(2, 3, 5, 5))


def test_autotune_pruning_fits_the_layer():
    from util.bench import triton_conv
    configs = triton_conv._conv3x3_tuned.configs
    kept = triton_conv._prune(configs, {"NPIX": 10_000}, CIN=16, BLOCK_N=64)
    assert kept and all(c.kwargs["BLOCK_K"] <= 16 for c in kept)
    assert all(c.kwargs["BLOCK_M"] * 64 <= 64 * 32 * c.num_warps for c in kept)
    keys = [(c.kwargs["BLOCK_M"], c.kwargs["UNROLL"], c.num_warps, c.num_stages) for c in kept]
    assert len(keys) == len(set(keys)) < len(configs)  # BLOCK_K 32 and 64 collapse to 16
    small = triton_conv._prune(configs, {"NPIX": 40}, CIN=64, BLOCK_N=128)
    assert all(c.kwargs["BLOCK_M"] <= 64 for c in small)
