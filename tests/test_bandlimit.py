"""Band-limited convolution (models/bandlimit.py) and its place in every network (CPU)."""
from __future__ import annotations

import copy
import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F

from config.tasks import TaskError, get_task, task_names
from conftest import assert_one_line_error, run_cli
from models import BandLimitedConv2d, build_model, kept_fraction, model_input_shape
from models.bandlimit import Band, column_weights, fixed_band, row_counts
from models.costs import bandlimited_cost, conv_cost, layer_costs

ALGS = ("fft", "dft")


def reference(x, conv, band, stride, padding):
    """The band-limited conv computed independently: the FULL complex 2-D DFT of the padded
    input and filter, a full-spectrum 0/1 mask (the band and its Hermitian mirror), the
    product with the conjugated filter spectrum summed over channels, the inverse, the crop."""
    xp = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    lh, lw = xp.shape[-2:]
    mask = torch.zeros(lh, lw, dtype=torch.bool)
    rows = band.row_frequencies()
    cols = list(range(band.cols)) + [lw - v for v in range(1, band.cols) if lw - v >= band.cols]
    mask[torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = True
    xf = torch.fft.fft2(xp) * mask
    wf = torch.fft.fft2(conv.weight, s=(lh, lw))
    y = torch.fft.ifft2(torch.einsum("nchw,ochw->nohw", xf, wf.conj()))
    assert y.imag.abs().max() < 1e-9 * max(1.0, y.real.abs().max().item())  # a real operator
    kh, kw = conv.kernel_size
    y = y.real[..., :lh - kh + 1:stride, :lw - kw + 1:stride]
    return y if conv.bias is None else y + conv.bias.view(1, -1, 1, 1)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("hw,stride,bias", [((7, 9), 1, True), ((8, 10), 1, False),
                                            ((7, 9), 2, False), ((8, 10), 2, True),
                                            ((22, 52), 1, True), ((15, 35), 2, True)])
def test_zero_discarded_equals_conv2d(alg, hw, stride, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 6, 3, stride, 1, bias=bias)
    x = torch.randn(3, 5, *hw)
    layer = BandLimitedConv2d.from_conv(conv, compress_rate=0, algorithm=alg)
    with torch.no_grad():
        want, got = conv(x), layer(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    assert layer.kept_fraction == 1.0


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("cr", [25, 40, 75])
@pytest.mark.parametrize("hw,stride,kernel,padding", [((9, 12), 1, 3, 1), ((10, 7), 2, 3, 1),
                                                      ((8, 8), 1, 5, 2), ((11, 14), 2, (3, 5), 0)])
def test_band_equals_full_spectrum_mask_reference(alg, cr, hw, stride, kernel, padding):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 4, kernel, stride, padding).double()
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    layer = BandLimitedConv2d.from_conv(conv, compress_rate=cr, algorithm=alg)
    with torch.no_grad():
        got = layer(x)
        want = reference(x, conv, layer.last_band, stride, layer.padding)
        full = conv(x)
    assert got.shape == full.shape
    assert torch.allclose(got, want, atol=1e-10)
    assert not torch.allclose(got, full, atol=1e-3)  # the band really removes something


def test_fft_and_dft_agree_in_low_precision():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(8, 8, 3, 1, 1)
    x = torch.randn(4, 8, 22, 52)
    want = BandLimitedConv2d.from_conv(conv, compress_rate=50, algorithm="fft")(x)
    for dtype in (torch.bfloat16, torch.float16):
        layer = BandLimitedConv2d.from_conv(copy.deepcopy(conv), compress_rate=50,
                                            algorithm="dft").to(dtype)
        got = layer(x.to(dtype))
        assert got.dtype == dtype
        err = ((got.float() - want).abs().max() / want.abs().max()).item()
        assert err < 0.05, (dtype, err)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("cr", [0, 40])
def test_gradcheck(alg, cr):
    torch.manual_seed(3)
    for stride in (1, 2):
        layer = BandLimitedConv2d(2, 2, 3, stride, 1, compress_rate=cr, algorithm=alg).double()
        x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
        w, b = (p.detach().clone().requires_grad_() for p in (layer.weight, layer.bias))
        assert torch.autograd.gradcheck(
            lambda x, w, b: torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,)),
            (x, w, b), fast_mode=True)


def test_backward_is_band_limited():
    """The gradient of the input lies in the band too: it equals the gradient through the
    reference, which masks the input's spectrum."""
    torch.manual_seed(4)
    conv = torch.nn.Conv2d(2, 3, 3, 1, 1).double()
    layer = BandLimitedConv2d.from_conv(conv, compress_rate=60, algorithm="dft")
    x = torch.randn(1, 2, 9, 10, dtype=torch.float64, requires_grad=True)
    layer(x).square().sum().backward()
    got = x.grad.clone()
    x.grad = None
    reference(x, conv, layer.last_band, 1, (1, 1)).square().sum().backward()
    assert torch.allclose(got, x.grad, atol=1e-10)


def conv_inputs(model):
    """(conv, input H, input W) of every k > 1 conv of ``model``, from one dry run."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append((m, *a[0].shape[-2:])))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d) and max(m.kernel_size) > 1]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *model_input_shape(model)))
    for h in hooks:
        h.remove()
    return seen


def nearest_share(lh: int, lw: int, cr: float) -> float:
    """How close any allowed band (odd or all rows, any columns) comes to keeping 1 - cr/100."""
    half = lw // 2 + 1
    return min(abs(r * c / (lh * half) - (1 - cr / 100)) for r in row_counts(lh)
               for c in range(1, half + 1))


def test_kept_fraction_follows_the_rate_in_every_network():
    for name in task_names():
        for conv, h, w in conv_inputs(build_model(name, 1)):
            for cr in (25, 50, 75):
                layer = BandLimitedConv2d.from_conv(conv, compress_rate=cr)
                band = layer.band_for(h, w)
                err = abs(band.kept_fraction - (1 - cr / 100))
                # within 3 points, or as near as a small spectrum allows (e.g. 8 x 10 coefficients)
                assert err <= max(0.03, nearest_share(*band.size, cr) + 0.01), (name, cr, band)
        for cr in (25, 50, 75):  # the whole network (coefficient-weighted): within 3 points
            with torch.device("meta"):
                model = build_model(name, 1, band_limit=cr)
            model(torch.zeros(1, *model_input_shape(model), device="meta"))
            assert abs(kept_fraction(model) - (1 - cr / 100)) <= 0.03, (name, cr)
    for lh, lw in [(24, 54), (17, 37), (52, 52), (34, 34), (21, 27)]:  # the inputs, padded
        for cr in (10, 25, 40, 50, 75, 90):
            band = fixed_band(lh, lw, cr)
            assert abs(band.kept_fraction - (1 - cr / 100)) <= 0.03, (lh, lw, cr, band)
            assert band.rows in row_counts(lh) and band.mask().sum() == band.kept
    # what a forward reports: each layer's band, and the whole network's share
    model = build_model("apex/squad_count_v2", 1, band_limit=50).eval()
    with torch.no_grad():
        model(torch.zeros(2, *model_input_shape(model)))
    bands = [m.last_band for m in model.modules() if isinstance(m, BandLimitedConv2d)]
    assert all(abs(b.kept_fraction - 0.5) <= 0.03 for b in bands)
    assert kept_fraction(model) == pytest.approx(sum(b.kept for b in bands) / sum(b.total for b in bands))


def test_energy_mode_keeps_at_least_p_percent_with_the_smallest_band():
    torch.manual_seed(5)
    # smooth images: most energy at low frequencies, so a partial band suffices
    x = torch.randn(4, 3, 10, 13).cumsum(-1).cumsum(-2)
    conv = torch.nn.Conv2d(3, 2, 3, 1, 1)
    for p in (50.0, 80.0, 95.0):
        layer = BandLimitedConv2d.from_conv(conv, preserve_energy=p, algorithm="fft")
        with torch.no_grad():
            y = layer(x)
        band = layer.last_band
        assert y.shape == conv(x).shape and band.kept < band.total
        energy = torch.fft.fft2(F.pad(x.double(), (1, 1, 1, 1))).abs().square().sum((0, 1))

        def share(b: Band) -> float:
            lh, lw = b.size
            mask = torch.zeros(lh, lw, dtype=torch.bool)
            cols = list(range(b.cols)) + [lw - v for v in range(1, b.cols) if lw - v >= b.cols]
            mask[torch.tensor(b.row_frequencies())[:, None], torch.tensor(cols)[None, :]] = True
            return float(energy[mask].sum() / energy.sum())

        assert share(band) >= p / 100 - 1e-9
        smaller = [Band(band.size, r, c) for r in row_counts(band.size[0])
                   for c in range(1, band.half_cols + 1) if r * c < band.kept]
        assert all(share(b) < p / 100 for b in smaller)  # no band with fewer coefficients does
        assert layer.kept_fraction == band.kept / band.total


def test_state_dicts_load_both_ways():
    conv = torch.nn.Conv2d(4, 5, 3, 2, 1)
    layer = BandLimitedConv2d(4, 5, 3, 2, 1, compress_rate=30)
    assert layer.state_dict().keys() == conv.state_dict().keys()
    layer.load_state_dict(conv.state_dict())
    conv2 = torch.nn.Conv2d(4, 5, 3, 2, 1)
    conv2.load_state_dict(layer.state_dict())
    assert torch.equal(conv2.weight, conv.weight)
    for name, fold in (("lol/goldnumber-fraction", 2), ("cifar10", 1)):
        plain, band = build_model(name, fold), build_model(name, fold, band_limit=50)
        band.load_state_dict(plain.state_dict())
        plain.load_state_dict(band.state_dict())
    with torch.no_grad():  # at 0% the band-limited network computes the same function
        plain = build_model("noscope-coral", 2).eval()
        full = build_model("noscope-coral", 2, band_limit=0).eval()
        full.load_state_dict(plain.state_dict())
        x = torch.randn(2, *model_input_shape(plain))
        assert torch.allclose(full(x), plain(x), atol=1e-4 * plain(x).abs().max().item())


@pytest.mark.parametrize("name", task_names())
def test_every_network_builds_and_runs_band_limited(name):
    for fold in (1, 2, 4):
        plain = build_model(name, fold)
        model = build_model(name, fold, band_limit=50).eval()
        convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)]
        band = [m for m in model.modules() if isinstance(m, BandLimitedConv2d)]
        ordinary = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(band) == sum(max(c.kernel_size) > 1 for c in convs) > 0
        assert all(c.kernel_size == (1, 1) for c in ordinary)  # 1x1 convs stay ordinary
        with torch.no_grad():
            y = model(torch.randn(1, *model_input_shape(model)))
        assert y.shape == (1, fold * get_task(name).num_classes) and torch.isfinite(y).all()


def test_bad_settings_are_one_line_errors():
    for kwargs, needle in ((dict(band_limit=100), "[0, 100)"), (dict(band_limit=-5), "[0, 100)"),
                           (dict(band_limit="50"), "a number"),
                           (dict(band_limit=50, band_algorithm="fast"), "fft, dft, auto"),
                           (dict(band_limit=50, band_energy=90), "exactly one")):
        with pytest.raises(TaskError, match=None) as exc:
            build_model("noscope-coral", 1, **kwargs)
        assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_costs_count_what_each_algorithm_executes():
    layer = BandLimitedConv2d(32, 32, 3, 1, 1, compress_rate=0)
    direct = conv_cost(1024, 32, 22, 52, 32, 22, 52, 3, 3)
    by = {}
    for alg, cr in itertools.product(ALGS, (0, 25, 50, 75)):
        layer.algorithm, layer.compress_rate = alg, cr
        c = bandlimited_cost(layer, 1024, 22, 52, 22, 52)
        assert c.direct_flops == direct.flops and c.in_elems == direct.in_elems
        assert c.bytes(2) > direct.bytes(2)  # the spectra are extra traffic
        by[alg, cr] = c
    for alg in ALGS:  # the kept band sets the cost
        flops = [by[alg, cr].flops for cr in (0, 25, 50, 75)]
        assert flops == sorted(flops, reverse=True) and flops[-1] < 0.6 * flops[0]
    mix = 8 * 1024 * 32 * 32 * fixed_band(24, 54, 50).kept  # complex multiply-adds of the band
    assert by["fft", 50].flops > mix and by["fft", 50].spectral_bytes_per_elt == 8


def test_flop_table_and_layer_costs_agree():
    pytest.importorskip("thop")
    from util.bench.flops import thop_flops
    model = build_model("noscope-coral", 2, band_limit=50, band_algorithm="fft")
    costs = layer_costs(model, model_input_shape(model), 1)
    # thop also counts biases and ReLUs of the direct layers; the band-limited convs dominate
    assert thop_flops(model) == pytest.approx(sum(c.flops for c in costs), rel=0.02)


def test_ai_band_limit_table():
    from ai import band_rows
    rows = band_rows(50, groups=("noscope",), folds=(4,))
    assert [(r["model"], r["fold"]) for r in rows][:2] == [("noscope_coral", 1), ("noscope_coral", 4)]
    assert len(rows) == 8 and list(rows[0]) == [
        "model", "fold", "band_limit", "algorithm", "kept_fraction", "direct_GFLOPs", "band_GFLOPs",
        "direct_MB", "band_MB", "direct_AI", "band_AI"]
    for r in rows:
        assert r["algorithm"] == "dft" and abs(r["kept_fraction"] - 0.5) < 0.03
        assert r["band_MB"] > r["direct_MB"] and r["band_AI"] < r["direct_AI"]
    coral = build_model("noscope-coral", 1)
    direct = sum(c.flops for c in layer_costs(coral, model_input_shape(coral), 1024)) / 1e9
    assert rows[0]["direct_GFLOPs"] == pytest.approx(direct)
    assert_one_line_error(run_cli("ai.py", "--band-limit", "100"), "[0, 100)")


@pytest.mark.slow
def test_cpu_benchmark_row(tmp_path):
    p = run_cli("infer.py", "noscope_coral", "1", "--device", "cpu", "--backend", "eager",
                "--precision", "fp32", "--batch_size", "4", "--num_warmup", "1",
                "--num_iteration", "2", "--trials", "1", "--band-limit", "50", "--json")
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)
    assert row["band_limit"] == 50 and row["band_algorithm"] == "dft"
    assert abs(row["kept_fraction"] - 0.5) < 0.03 and row["flops_source"] == "layer_costs"
    assert row["images_per_sec"] > 0 and row["direct_flops_per_image"] == pytest.approx(16_240_512, rel=0.01)
    csv_path = tmp_path / "band.csv"
    p = run_cli("util/run_inference.py", str(csv_path), env={
        "DEVICE": "cpu", "PRECISION": "fp32", "MODELS": "noscope_coral", "FOLDS": "1 2", "BATCH": "4",
        "ITERS": "1", "WARMUP": "0", "TRIALS": "1", "BAND_LIMIT": "50", "BAND_ALGORITHM": "fft",
        "BACKEND": "eager"})
    assert p.returncode == 0, p.stderr
    import csv
    rows = list(csv.DictReader(open(csv_path)))
    assert [(r["Mode"], r["BandLimit"], r["BandAlgorithm"]) for r in rows] == [
        ("Original", "50", "fft"), ("Folded", "50", "fft")]
    assert float(rows[1]["TputNorm"]) > 0  # normalised to the band-limited original
    assert_one_line_error(run_cli("util/run_inference.py", str(csv_path), env={"BAND_LIMIT": "lots"}),
                          "BAND_LIMIT")


@pytest.mark.slow
def test_bandlimit_bench_cpu_and_report(tmp_path):
    out = tmp_path / "band.csv"
    p = run_cli("util/bandlimit_bench.py", str(out), "--device", "cpu", "--tasks", "noscope-coral",
                "--batch-images", "4", "--rates", "50", "--folds", "2", "--original-backend", "eager",
                "--band-backend", "eager", "--precision", "fp32", "--seconds", "0.01")
    assert p.returncode == 0, p.stderr
    from util.bench.bandlimit_results import TABLE
    rows = TABLE.read_rows(out)
    got = [(r["phase"], r["variant"], r["fold"], r["algorithm"]) for r in rows]
    assert got == [(ph, v, f, a) for v, f, a in (("original", 1, ""), ("band", 1, "fft"),
                                                 ("band", 1, "dft"), ("folded", 2, ""))
                   for ph in ("inference", "train")]
    for r in rows:
        assert r["error"] == "" and r["images_per_sec"] > 0 and r["peak_mem_mb"] is None
        if r["variant"] == "band":
            assert abs(r["kept_fraction"] - 0.5) < 0.03
            assert r["direct_flops_per_image"] == pytest.approx(16_240_512, rel=0.01)
    assert_one_line_error(run_cli("util/bandlimit_bench.py", str(out), "--device", "cpu", "--tasks",
                                  "noscope-coral", "--rates", "120"), "[0, 100)")
    # the report sets these rows, and band-limited training runs, beside the originals
    save = tmp_path / "runs"
    save.mkdir()
    (save / "results.csv").write_text(
        "task,fold,best_val_top1,test_top1,test_top5,best_epoch,epochs,wall_seconds,device,"
        "order_agreement,band_limit,kept_fraction\n"
        "noscope-coral,1,90,91.5,100,3,5,10,cpu,,,\n"
        "noscope-coral,1,90,88.75,100,3,5,10,cpu,,50,0.5007\n"
        "cifar10,1,80,81.0,99,3,5,10,cpu,,,\n"
        "cifar10,1,80,80.25,99,3,5,10,cpu,,25,0.75\n")
    p = run_cli("util/report.py", str(save), "--band-results", str(out))
    assert p.returncode == 0, p.stderr
    text = (save / "report.md").read_text()
    section = text.split("## 5. Band-limited CNNs against folding", 1)[1].split("\n## ", 1)[0]
    band_row = next(l for l in section.splitlines() if "`noscope-coral`" in l and "band 50%" in l)
    assert "| 50.1 | 88.75 | -2.75 |" in band_row
    cifar = next(l for l in section.splitlines() if "`cifar10`" in l and "band 25%" in l)
    assert "93.16 (24%, ResNet-18)" in cifar  # the band-limited paper's number beside ours
    speed = next(l for l in section.splitlines() if "band 50% dft" in l)
    assert "| eager |" in speed and "x |" in speed
    acc = text.split("## 1. Accuracy", 1)[1].split("\n## ", 1)[0]
    assert "88.75" not in acc and "80.25" not in acc  # band-limited runs are not mixed into the folding table
