"""The ``fused`` backend: a whole game-scraping or NoScope CNN in one Triton kernel, on CPU.

The kernel runs under Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before
triton is imported, so in two child processes that share the selected cases) and is compared
with the eager fp32 model (``FoldedClassifier(model)(to_float(images))``, or ``model(x)`` for
folded inputs; random weights with logits of order 1): every registry game and NoScope
network at f = 1, 2 and 4 (uint8 NCHW images, 2f + 1 for the game CNNs and f + 1 for the
50 x 50 NoScope ones, so the last input is partial), plus f = 3, ``channel_align`` 8 with
and without ``pad_input``, the task's mean/std normalisation, NHWC frames, float images,
folded float inputs, odd image sizes built directly, the widened and EfficientNet-style
networks, partial tiles and programs looping over several groups, the unrolled-tap and
multi-chunk code paths, and the backend's CPU path (and its end-to-end frames hook).
Most cases run fp32 operands (NumPy multiplies fp16 without BLAS, ~10x slower); two run
fp16 as on the GPU. Planning, packing and the errors run in this process (no kernel launch).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

import pytest
import torch
from torch import nn

from config.tasks import task_names
from models import build_model
from util.bench import backends as bench_backends
from util.bench.backends import BenchError, check_backend
from util.bench.fused_net import (INTERPRETER_CONFIG, TUNING_CANDIDATES, Conv, Dense, FusedConfig, FusedNet,
                                  FuseError, InputLayout, Pool, _pack_dense, _padded, _Step,
                                  head_in_kernel, kernel_source, plan_network, schedule)

from conftest import REPO, assert_one_line_error, run_cli

# One group per case (``tile`` = its inputs, unless a case says otherwise) keeps a case at a
# few seconds; the special cases make partial tiles, several groups per program, small blocks.
FAST = {**INTERPRETER_CONFIG.__dict__, "programs": 1}

WORKER = r"""
import json, sys, time, traceback
import torch
from torch import nn
from dataclasses import replace
from config.tasks import Normalize, get_task
from datasets.transforms import to_float
from models import FoldedClassifier, build_model
from models.game_cnn import GameCNN
from models.noscope_cnn import NoScopeCNN
from util.bench import backends
from util.bench.fused_net import FusedConfig, FusedNet
from util.bench.runner import VideoPipeline

torch.set_num_threads(1)


def randomise(model, seed):
    # logits of order 1 and nonzero biases (padded channels must stay out of the sums)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.bias.data = torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1
        if isinstance(m, nn.Linear):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * m.in_features ** -0.5
    return model.eval()


def build(case):
    if case.get("arch") == "game":
        return GameCNN(*case["size"], 5, case["fold"], channel_align=case["align"],
                       pad_input=case["pad"])
    if case.get("arch") == "noscope":
        return NoScopeCNN(*case["size"], 2, case["fold"], filters=8, dense=16, layers=4,
                          channel_align=case["align"], pad_input=case["pad"])
    return build_model(case["task"], case["fold"], scaling=case.get("scaling", "fold"),
                       channel_align=case["align"], pad_input=case["pad"])


def compare(got, want):
    scale = want.abs().max().item()
    err = (got - want).abs().max().item() / scale
    pick = got.argmax(1)
    agree = (pick == want.argmax(1)).float().mean().item()
    # a different argmax must be a near-tie of the reference
    regret = (want.max(1).values - want.gather(1, pick[:, None])[:, 0]).max().item() / scale
    return dict(err=err, agree=agree, regret=regret, shape=list(got.shape),
                want_shape=list(want.shape))


def run(case):
    torch.manual_seed(case["seed"])
    model = randomise(build(case), case["seed"])
    task = get_task(case["task"]) if "task" in case else None
    if case.get("normalize"):
        task = replace(task, data=replace(task.data, normalize=Normalize(
            (0.45, 0.5, 0.4), (0.22, 0.25, 0.3))))
    cfg = FusedConfig(**case["config"])
    c, (h, w) = model.raw_in_channels // model.fold, model.input_size
    n = case["n"]
    x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8)
    dtype = getattr(torch, case.get("dtype", "float32"))
    fused = (FusedNet.for_task(model, task, config=cfg, dtype=dtype) if task is not None
             else FusedNet(model, config=cfg, dtype=dtype))
    with torch.no_grad():
        images = to_float(x, task) if task is not None else x.float() / 255
        kind = case["input"]
        if kind == "folded":
            inp = torch.randn(-(-n // model.fold), model.in_channels, h, w)
            if case.get("channels_last"):
                inp = inp.contiguous(memory_format=torch.channels_last)
            return compare(fused.folded(inp), model(inp))
        if kind == "profile":  # the profiling kernel: same logits, and its per-layer counts
            inp = torch.randn(-(-n // model.fold), model.in_channels, h, w)
            prof = fused.profile_buffer(inp)
            out = fused.profiled(inp, prof)
            return {**compare(out, model(inp)), "per_program": prof.tolist(),
                    "cycles": fused.layer_cycles(inp).tolist(),
                    "kernel_layers": [type(layer).__name__ for layer in fused.kernel_layers()]}
        want = FoldedClassifier(model)(images)
        if kind == "u8":
            got = fused.images(x)
        elif kind == "u8_nhwc":
            got = fused.images(x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2))
        elif kind == "float":
            got = fused.images(images)
        elif kind == "backend":
            inp = torch.randn(-(-n // model.fold), model.in_channels, h, w)
            prep = backends._fused(model, inp)  # raises BenchError if it differs from eager
            assert prep.backend == "fused"
            return compare(prep.fn(inp), model(inp))
        elif kind == "pipeline":
            frames = x.permute(0, 2, 3, 1).contiguous()
            norm = task.data.normalize
            pipe = VideoPipeline(model, model.fold, torch.float32, c, norm and norm.mean,
                                 norm and norm.std, torch.contiguous_format)
            prep = backends._fused(pipe, frames)
            logits = fused.images(x)
            out = compare(logits, want)  # the kernel's logits, and the pipeline its argmax
            out["pipeline_is_its_argmax"] = bool(torch.equal(prep.fn(frames), logits.argmax(1)))
            return out
        elif kind == "empty":
            got = fused.images(x[:0])
            return dict(err=0.0, agree=1.0, regret=0.0, shape=list(got.shape),
                        want_shape=[0, want.shape[1]])
        return compare(got, want)


for case in json.loads(sys.argv[1]):
    t0 = time.perf_counter()
    try:
        out = run(case)
    except Exception:
        out = {"error": traceback.format_exc()[-3000:]}
    out["seconds"] = time.perf_counter() - t0
    print("RESULT", json.dumps({"id": case["id"], **out}), flush=True)
"""


def _case(id_: str, fold: int, n: int, input_: str = "u8", align: int = 1, pad: bool = False,
          **extra) -> dict:
    config = {**FAST, "tile": -(-n // fold), **extra.pop("config", {})}
    return {"id": id_, "fold": fold, "n": n, "input": input_, "align": align, "pad": pad,
            "config": config, "seed": zlib.crc32(id_.encode()) % 10_000, **extra}


def _registry_cases() -> list[dict]:
    """Every game and NoScope network at f = 1, 2, 4: 2f + 1 uint8 images for the game CNNs,
    f + 1 for the (50 x 50) NoScope ones: the last input is partial (f > 1)."""
    return [_case(f"{task}-f{fold}", fold, n, task=task)
            for family, images in (("game", lambda f: 2 * f + 1), ("noscope", lambda f: f + 1))
            for task in task_names(family) for fold in (1, 2, 4) for n in [images(fold)]]


SPECIAL_CASES = [
    _case("fold3-align8-pad", 3, 7, align=8, pad=True, task="lol/timer-minutes"),
    _case("align8-nopad", 2, 5, align=8, task="sot/coin_count-digits_3_4-v2"),
    _case("noscope-align8-pad", 2, 3, align=8, pad=True, task="noscope-coral"),
    _case("folded-pad-channels-last", 3, 6, "folded", align=8, pad=True,
          task="apex/squad_count_v2", channels_last=True),
    _case("folded-noscope", 2, 4, "folded", task="noscope-roundabout"),
    _case("normalized-u8", 2, 5, task="lol/goldnumber-fraction", normalize=True),
    _case("normalized-nhwc", 4, 9, "u8_nhwc", task="sot/timer3", normalize=True),
    _case("float-images", 2, 3, "float", task="lol/timer-minutes", normalize=True),
    _case("odd-size-game", 2, 5, arch="game", size=[13, 27]),
    _case("odd-size-noscope", 2, 5, arch="noscope", size=[21, 23], align=8),
    _case("widened", 2, 3, task="apex/squad_count_v2", scaling="widen"),
    _case("efficientnet", 1, 3, task="lol/goldnumber-int", scaling="efficientnet"),
    # partial tiles, programs looping over groups, small blocks (several M, N and K chunks),
    # the unrolled taps, dense row chunks
    _case("unrolled-small-blocks", 2, 9, task="lol/timer-minutes",
          config=dict(tile=2, programs=2, block_m=256, block_n=32, block_k=32,
                      dense_block_k=64, pool_elements=4096, unroll_taps=True)),
    _case("noscope-unrolled-small-blocks", 2, 5, arch="noscope", size=[21, 23],
          config=dict(tile=2, programs=1, block_m=256, block_n=16, block_k=16,
                      dense_block_k=64, unroll_taps=True)),
    _case("partial-tiles-noscope", 1, 3, task="noscope-night", config=dict(tile=2, programs=2)),
    _case("dense-row-chunks", 1, 17, task="lol/timer-minutes", config=dict(block_s=16)),
    # the classifier in the kernel or as matrix products after it, against the size rule
    _case("noscope-head-in-kernel", 2, 3, task="noscope-coral", config=dict(head_in_kernel=True)),
    _case("game-head-after-kernel", 4, 9, task="lol/goldnumber-fraction",
          config=dict(head_in_kernel=False, tile=2, programs=2)),
    # channels padded to multiples of 16: 45 -> 48 (N and K in blocks of 16, a 3/2 pool over
    # 48 of 64 arange lanes), 90 -> 96, 110 -> 112, a host head of 181 -> 192 features
    _case("multiple16-game-f2", 2, 5, task="lol/timer-minutes", config=dict(channel_multiple=16)),
    _case("multiple16-game-f3-pad", 3, 7, align=8, pad=True, task="sot/timer3",
          config=dict(channel_multiple=16)),
    _case("multiple16-noscope-f2", 2, 3, task="noscope-roundabout",
          config=dict(channel_multiple=16)),
    _case("multiple16-noscope-f3-folded", 3, 6, "folded", task="noscope-taipei",
          config=dict(channel_multiple=16)),
    _case("multiple16-fp16-unrolled", 2, 5, task="apex/squad_count_v2", dtype="float16",
          config=dict(channel_multiple=16, unroll_taps=True, block_k=32)),
    # fp16 operands and activations, as on the GPU (NumPy's fp16 matmul is slow: small nets)
    _case("fp16-game", 4, 9, task="apex/squad_count_v2", dtype="float16", config=dict(tile=2)),
    _case("fp16-noscope", 2, 3, arch="noscope", size=[21, 23], dtype="float16"),
    _case("fp16-head-after-kernel", 4, 9, task="apex/squad_count_v2", dtype="float16",
          config=dict(head_in_kernel=False)),
    _case("backend-cpu-path", 4, 8, "backend", task="lol/goldnumber-int"),
    _case("backend-end-to-end-frames", 4, 8, "pipeline", task="lol/timer-minutes",
          normalize=True),
    _case("empty-batch", 2, 4, "empty", task="sot/timer3"),
    # the profiling kernel (layer_cycles): 5 inputs, one per group, over 2 programs
    _case("profile-game", 1, 5, "profile", task="lol/timer-minutes", config=dict(tile=1, programs=2)),
    _case("profile-noscope-host-head", 2, 10, "profile", task="noscope-coral",
          config=dict(tile=1, programs=2)),
]
CASES = {c["id"]: c for c in _registry_cases() + SPECIAL_CASES}


@pytest.fixture(scope="module")
def interpreted(request, tmp_path_factory) -> dict:
    """Results of the selected cases, run in two interpreter processes in parallel."""
    wanted = [item.callspec.params["case_id"] for item in request.session.items
              if getattr(item, "callspec", None) and "case_id" in item.callspec.params]
    cases = [CASES[i] for i in dict.fromkeys(wanted)]
    cases.sort(key=lambda c: "noscope" in c.get("task", c.get("arch", "")))  # balance halves
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO),
           "FOLDED_CNNS_CACHE": str(tmp_path_factory.mktemp("cache")),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # two workers, one core each
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(cases[i::2])], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results, errors = {}, []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        errors.append(err[-3000:])
        for line in out.splitlines():
            if line.startswith("RESULT "):
                row = json.loads(line[len("RESULT "):])
                results[row["id"]] = row
    return {"results": results, "stderr": "\n".join(errors)}


@pytest.mark.parametrize("case_id", list(CASES))
def test_kernel_matches_the_eager_model(interpreted, case_id):
    row = interpreted["results"].get(case_id)
    assert row is not None, f"no result for {case_id}: {interpreted['stderr']}"
    assert "error" not in row, row["error"]
    assert row["shape"] == row["want_shape"]
    assert row["err"] < 2e-2, row  # fp16 operands and activations, fp32 accumulation
    assert row["regret"] < 2e-2, row  # any argmax that differs is a near-tie
    assert row.get("pipeline_is_its_argmax", True), row


@pytest.mark.parametrize("case_id,layers", [
    ("profile-game", ["Conv", "Pool", "Conv", "Conv", "Conv", "Pool", "Conv", "Pool", "Dense"]),
    ("profile-noscope-host-head", ["Conv", "Conv"]),  # its two Linear layers run after the kernel
])
def test_the_profiling_kernel_counts_every_layer_of_every_group(interpreted, case_id, layers):
    """Under the interpreter ``_clock`` counts its reads (INTERPRETER_TICK each), so every layer
    of every group adds one tick: program 0 runs groups 0, 2, 4 and program 1 groups 1, 3. The
    logits are the plain kernel's (checked against eager by the test above)."""
    from util.bench.fused_net import INTERPRETER_TICK

    row = interpreted["results"].get(case_id)
    assert row is not None and "error" not in row, row or interpreted["stderr"]
    assert row["kernel_layers"] == layers
    assert row["per_program"] == [[3 * INTERPRETER_TICK] * len(layers), [2 * INTERPRETER_TICK] * len(layers)]
    assert row["cycles"] == [5 * INTERPRETER_TICK] * len(layers)


def test_the_profiling_source_differs_from_the_timed_kernel_only_by_its_counters():
    plan, _ = plan_network(build_model("lol/goldnumber-fraction", 4).eval())
    layout = InputLayout(4, 3)
    timed = kernel_source(plan, layout, FusedConfig())
    profiled = kernel_source(plan, layout, FusedConfig(), profile=True)
    assert "_clock" not in timed and "prof_ptr" not in timed
    n = sum(1 for layer in plan.layers)  # V1's head is in the kernel: every layer is counted
    assert profiled.count("_clock()") == n + 1 and profiled.count("tl.store(prof_ptr") == n
    counters = ("t_prev", "t_now", "cycles_", "tl.store(prof_ptr")
    stripped = "\n".join(line for line in profiled.splitlines() if not any(c in line for c in counters))
    assert stripped.replace(", _clock  # noqa", "  # noqa").replace(", prof_ptr):", "):") == timed.rstrip("\n")


HOPPER_COMPILE = r"""
import json
import torch
from config.tasks import task_names
from models import build_model
from util.bench.fused_net import FusedConfig, FusedNet

jobs = [(t, 4, "images", False, {}) for t in task_names("game") + task_names("noscope") if t != "noscope-night"]
jobs += [("lol/goldnumber-fraction", 4, "folded", True, {}), ("noscope-coral", 1, "folded", True, {}),
         ("sot/timer3", 2, "folded", False, {"maxnreg": 168, "block_k": 16})]
for task, fold, layout, profile, config in jobs:
    net = FusedNet(build_model(task, fold).eval(), dtype=torch.float16, config=FusedConfig(**config))
    res = net.compiled_resources(layout, profile=profile)
    print("RESULT", json.dumps({"task": task, "profile": profile, "layers": len(net.kernel_layers()),
                                "maxnreg": config.get("maxnreg"), **res}))
"""


def test_the_kernels_compile_for_hopper_on_a_cpu(tmp_path):
    """The interpreter runs the kernel's Python, not Triton's compiler: this compiles the timed
    kernel of every registry network at f = 4 (uint8 images; N2 is N1's), two profiling kernels
    and one capped at 168 registers to an sm_90 cubin (Triton's own ptxas, no GPU needed), so a
    source the GPU could not build fails here. The profiling kernel reads the cycle counter
    once per group and once per layer."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(REPO), FOLDED_CNNS_CACHE=str(tmp_path / "cache"),
               TRITON_CACHE_DIR=str(tmp_path / "triton"))
    p = subprocess.run([sys.executable, "-c", HOPPER_COMPILE], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    rows = [json.loads(line[len("RESULT "):]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    assert p.returncode == 0 and len(rows) == 12, p.stderr[-3000:]
    for r in rows:
        assert 0 < r["registers"] <= (r["maxnreg"] or 255) and r["shared_bytes"] > 0, r
        assert r["clock_reads"] == (r["layers"] + 1 if r["profile"] else 0), r


def test_every_registry_network_and_fold_is_covered():
    covered = {(c["task"], c["fold"]) for c in _registry_cases()}
    tasks = task_names("game") + task_names("noscope")
    assert covered == {(t, f) for t in tasks for f in (1, 2, 4)}


# ------------------------------------------------------------------ in-process: no launch
def test_tuning_candidates_include_the_default_and_schedule_every_network():
    """The backend keeps the fastest of these on CUDA: the measured default is among them, none
    repeats, and each schedules every game and NoScope network; where padding a conv's width to
    16 saves over a power of two (45 -> 48, not 64), it makes another kernel."""
    assert FusedConfig() in TUNING_CANDIDATES and len(set(TUNING_CANDIDATES)) == len(TUNING_CANDIDATES)
    for task in task_names("game") + task_names("noscope"):
        for fold in (1, 2, 3, 4):
            plan, _ = plan_network(build_model(task, fold))
            layout = InputLayout(fold, plan.image_channels)
            sources = {c: kernel_source(plan, layout, c) for c in TUNING_CANDIDATES}
            widths = [layer.cout for layer in plan.layers if isinstance(layer, Conv)]
            if any(_padded(c, 16) < _padded(c, None) for c in widths):
                assert sources[FusedConfig(channel_multiple=16)] != sources[FusedConfig()], (task, fold)


@pytest.mark.parametrize("task,fold,kinds", [
    ("sot/timer3", 1, "CPCCCPCCCPCPD"),
    ("noscope-roundabout", 2, "CCCCDD"),  # both 2x2 pools fused into the conv before them
])
def test_plan_follows_the_layers(task, fold, kinds):
    plan, weights = plan_network(build_model(task, fold).eval())
    assert "".join(type(l).__name__[0] for l in plan.layers) == kinds
    assert len(weights) == sum(k in "CD" for k in kinds)
    convs = [l for l in plan.layers if isinstance(l, Conv)]
    if task.startswith("noscope"):  # 50 x 50 -> 25 x 25 -> 12 x 12 (odd row and column dropped)
        assert [c.pool for c in convs] == [False, True, False, True]
        assert convs[-1].out_size == (12, 12)
    else:
        pools = [l for l in plan.layers if isinstance(l, Pool)]
        s1, s2 = ((3, 3), (1, 1)), ((3, 3), (2, 2))
        assert [(p.kernel, p.stride) for p in pools] == [s2, s1, s1, s2]


def test_generated_source_has_one_launch_and_a_barrier_per_layer():
    plan, _ = plan_network(build_model("apex/squad_count_v2", 4).eval())
    layout = InputLayout(4, 3)
    src = kernel_source(plan, layout, FusedConfig())
    compile(src, "<fused>", "exec")
    assert src.count("@triton.jit") == 1 and src.count("def fused_forward") == 1
    assert src.count("tl.debug_barrier()") == len(plan.layers)
    assert src.count("conv3x3_from_input(") == 1 and src.count("dense_to_logits(") == 1
    assert src == kernel_source(plan, layout, FusedConfig())  # one file per signature
    assert src != kernel_source(plan, layout, FusedConfig(tile=2))


@pytest.mark.parametrize("task,fold,in_kernel", [
    ("lol/goldnumber-fraction", 4, True),   # first Linear 528 x 44
    ("sot/timer3", 4, True),
    ("noscope-coral", 1, False),           # 10,000 x 128: read once per group, it would dominate
    ("noscope-roundabout", 2, False),
])
def test_a_large_head_runs_as_matrix_products_after_the_kernel(task, fold, in_kernel):
    plan, _ = plan_network(build_model(task, fold).eval())
    assert head_in_kernel(plan, FusedConfig()) is in_kernel
    src = kernel_source(plan, InputLayout(fold, 3), FusedConfig())
    assert ("dense_to_logits(" in src) is in_kernel and ("feat = feat_ptr" in src) is not in_kernel
    steps, _ = schedule(plan, InputLayout(fold, 3), FusedConfig())
    dense = [s for s in steps if isinstance(s.layer, Dense)]
    assert all(s.on_host is not in_kernel for s in dense)
    if not in_kernel:  # the last conv writes the features the first Linear reads
        feat = next(s for s in steps if s.dst == "feat")
        assert dense[0].k == feat.np * feat.layer.out_size[0] * feat.layer.out_size[1]
    forced = kernel_source(plan, InputLayout(fold, 3), FusedConfig(head_in_kernel=not in_kernel))
    assert ("dense_to_logits(" in forced) is not in_kernel


def test_scratch_holds_the_largest_activation_of_a_group():
    plan, _ = plan_network(build_model("lol/goldnumber-fraction", 2).eval())
    steps, buffer = schedule(plan, InputLayout(2, 3), FusedConfig(tile=3))
    assert buffer == 3 * 22 * 52 * 64  # the first conv's map, 45 channels padded to 64
    assert [s.dst for s in steps[:3]] == ["buf_a", "buf_b", "buf_a"] and steps[-1].dst == "out"
    assert steps[0].k == 9 * 6 and steps[0].kp == 64  # taps x folded channels, one chunk


def test_channel_multiple_pads_less_and_blocks_tile_the_padded_width():
    plan, _ = plan_network(build_model("lol/goldnumber-fraction", 2).eval())
    layout = InputLayout(2, 3)
    pow2 = schedule(plan, layout, FusedConfig())[0]
    by16 = schedule(plan, layout, FusedConfig(channel_multiple=16))[0]
    assert [s.np for s in pow2 if isinstance(s.layer, Conv)] == [64, 64, 64, 64, 16]
    assert [s.np for s in by16 if isinstance(s.layer, Conv)] == [48, 48, 48, 48, 16]
    for s in by16:
        if isinstance(s.layer, Conv):
            assert s.np % s.blocks[1] == 0 and (s.src == "x" or s.k % s.blocks[2] == 0)
    assert by16[2].blocks[1:] == (16, 16)  # 48 = 3 x 16 in N and in each tap's K
    with pytest.raises(ValueError, match="multiple of 16"):
        FusedConfig(channel_multiple=24)


def test_flatten_weights_are_permuted_to_the_scratch_order():
    """The first Linear reads the map as (pixel, padded channel): its packed weight must give
    what PyTorch's NCHW flatten does."""
    torch.manual_seed(0)
    c, h, w, cp, n = 11, 3, 5, 16, 7
    linear = nn.Linear(c * h * w, n)
    fmap = torch.randn(2, c, h, w)
    step = _Step(Dense(c * h * w, n, False), "buf_a", "out", w_offset=0, b_offset=0,
                 k=h * w * cp, kp=h * w * cp, np=16, rows=2, blocks=(16, 16, 16))
    packed = _pack_dense(linear, step, (c, h * w, cp))
    scratch = torch.zeros(2, h, w, cp)
    scratch[..., :c] = fmap.permute(0, 2, 3, 1)
    got = scratch.reshape(2, -1) @ packed[:, :n] + linear.bias
    torch.testing.assert_close(got, linear(fmap.flatten(1)))


@pytest.mark.parametrize("make,needle", [
    (lambda: build_model("cifar10", 1), "head(flatten(features(x)))"),
    (lambda: build_model("noscope-coral", 1, band_limit=50), "BandLimitedConv2d"),
])
def test_unsupported_networks_get_a_one_line_bench_error(make, needle):
    with pytest.raises(BenchError, match="--backend fused cannot run") as info:
        FusedNet(make().eval())
    assert isinstance(info.value, FuseError) and isinstance(info.value, ValueError)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unsupported_layers_are_named():
    model = build_model("lol/timer-minutes", 1).eval()
    model.features[1] = nn.AvgPool2d(3, 2)
    with pytest.raises(FuseError, match="AvgPool2d"):
        plan_network(model)
    model = build_model("lol/timer-minutes", 1).eval()
    model.features[1] = nn.MaxPool2d(3, 2, padding=1)
    with pytest.raises(FuseError, match="MaxPool2d"):
        plan_network(model)


def test_fused_backend_rules(monkeypatch):
    assert "fused" in bench_backends.BACKENDS
    assert "fused" not in bench_backends.AUTO_CANDIDATES_CUDA  # auto is unchanged
    with pytest.raises(BenchError, match="needs --device cuda"):
        check_backend("fused", torch.device("cpu"))
    monkeypatch.setattr(bench_backends, "triton_available", lambda: False)
    with pytest.raises(BenchError, match="--backend fused needs the triton package"):
        check_backend("fused", torch.device("cuda"))


def test_tuning_keeps_the_fastest_setting_and_skips_one_that_fails(capsys):
    """A setting this GPU cannot compile (say, too much shared memory for a large block) is
    skipped with a note; the fastest of the others wins; if all fail, the first error is raised;
    a problem of the network itself (BenchError) is raised at once."""
    a, b, c = FusedConfig(), FusedConfig(block_m=256, num_warps=8), FusedConfig(channel_multiple=16)
    times = {a: 2.0, c: 1.0}

    def ready(config):
        if config == b:
            raise RuntimeError("out of resource: shared memory, Required: 262144\nmore detail")
        return lambda x, config=config: config

    fn, config = bench_backends.pick_fastest([a, b, c], ready, lambda fn: times[fn(None)])
    assert config == c and fn(None) == c
    err = capsys.readouterr().err
    assert "skipping setting" in err and "out of resource: shared memory" in err and "more detail" not in err

    def broken(config):
        raise RuntimeError(f"cannot compile {config.block_m}")

    with pytest.raises(RuntimeError, match="cannot compile 128"):
        bench_backends.pick_fastest([a, b], broken, lambda fn: 1.0)

    def unsupported(config):
        raise FuseError("--backend fused cannot run X")

    with pytest.raises(FuseError):
        bench_backends.pick_fastest([a, b], unsupported, lambda fn: 1.0)


def test_infer_accepts_backend_fused():
    proc = run_cli("infer.py", "noscope_coral", "2", "--do_fold", "--device", "cpu",
                   "--backend", "fused", "--precision", "fp32")
    assert_one_line_error(proc, "--backend fused needs --device cuda")


def test_bad_inputs_and_oversized_tiles_are_refused():
    fused = FusedNet(build_model("sot/timer3", 2).eval())
    with pytest.raises(FuseError, match=r"images must be \(N, 3, 22, 30\)"):
        fused.images(torch.zeros(4, 6, 22, 30, dtype=torch.uint8))
    with pytest.raises(FuseError, match=r"inputs must be \(B, 6, 22, 30\)"):
        fused.folded(torch.zeros(4, 3, 22, 30))
    huge = FusedNet(build_model("noscope-taipei", 1).eval(), config=FusedConfig(tile=1 << 20))
    with pytest.raises(FuseError, match="use a smaller tile"):
        huge.images(torch.zeros(1, 3, 50, 50, dtype=torch.uint8))
