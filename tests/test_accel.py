"""Accelerator evaluation with ZigZag (util/accel): the wrapper, its validation against ZigZag's own
test figures, MAC counts against thop, fusion, caching, the report and the ReLU-density estimate."""
import csv
import math

import pytest
import torch

from conftest import assert_one_line_error, run_cli
from config.tasks import bench_entries
from models import build_model
from util.accel.evaluate import LayerCache, SearchOptions, evaluate_jobs, prepare
from util.accel.hardware import AccelError, get_hardware, memory_classes, zigzag_inputs
from util.accel.network import NetworkSpec, build_network, export_onnx, thop_macs, zigzag_macs
from util.accel.relu_density import prerelu_shares, skipping_savings
from util.accel.runs import comparison_specs, run_all
from util.accel.table import COLUMNS, TOTAL, read_csv, table_rows, write_csv

SMALL = "game_apex/squad_count_v2"        # the smallest registry network (3 x 19 x 25)
FAST = SearchOptions(lpf_limit=2, spatial_mappings=1)  # a coarse search keeps the tests fast


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("accel_cache")


@pytest.fixture(scope="module")
def small_results(cache_dir):
    """The small network at f = 1 and 2 (original at batch 1 and 2, fold 2) on the TPU-like
    accelerator, fusion off and on."""
    specs = comparison_specs(SMALL, [1, 2])
    stats = {}
    results = run_all(specs, ["tpu_like"], [False, True], FAST, cache_dir=cache_dir, workers=1,
                      progress=False, stats=stats)
    return specs, results, stats


def test_original_for_is_the_same_images_of_the_original():
    from util.accel.network import original_for

    assert original_for(NetworkSpec(SMALL, 4, 2)) == NetworkSpec(SMALL, 1, 8)
    assert original_for(NetworkSpec("efficientnet-" + SMALL, 1, 1, "efficientnet")) == NetworkSpec(SMALL, 1, 1)


def test_comparison_runs_the_same_images():
    specs = comparison_specs(SMALL, [1, 2, 4])
    assert [(s.variant, s.batch, s.images) for s in specs] == [
        ("original", 1, 1), ("original", 2, 2), ("fold2", 1, 2), ("original", 4, 4), ("fold4", 1, 4)]
    specs = comparison_specs(SMALL, [1, 4], images=8)
    assert [(s.variant, s.batch, s.images) for s in specs] == [("original", 8, 8), ("fold4", 2, 8)]


def test_small_network_positive_finite_totals_and_thop_macs(small_results):
    specs, results, stats = small_results
    assert stats["searched"] > 0 and len(results) == 6
    for res in results:
        spec = res.run.network
        for metric in ("energy_pJ", "latency_cycles", "dram_bits", "macs"):
            total = res.total(metric)
            assert total > 0 and math.isfinite(total), (spec, res.run.fuse, metric)
        assert res.total("macs") == thop_macs(build_network(spec), spec.batch)[0], spec
        for layer in res.layers:
            assert 0 < layer["util"] <= layer["util_spatial"] <= 1


def test_fusion_never_adds_dram_traffic(small_results):
    _, results, _ = small_results
    by = {(r.run.network, r.run.fuse): r for r in results}
    for spec in {r.run.network for r in results}:
        off, on = by[(spec, False)].total("dram_bits"), by[(spec, True)].total("dram_bits")
        assert on <= off, (spec, on, off)
    # and it does keep some activation on chip somewhere
    assert any(on.total("dram_bits") < by[(s, False)].total("dram_bits")
               for (s, fused), on in by.items() if fused)


def test_rerun_comes_from_the_cache(small_results, cache_dir):
    specs, results, _ = small_results
    stats = {}
    again = run_all(specs, ["tpu_like"], [False, True], FAST, cache_dir=cache_dir, workers=1,
                    progress=False, stats=stats)
    assert stats["searched"] == 0 and stats["cached"] > 0
    assert [r.layers for r in again] == [r.layers for r in results]


def test_table_rows_ratios_and_csv_round_trip(small_results, tmp_path):
    _, results, _ = small_results
    rows = table_rows(results)
    totals = [r for r in rows if r["layer_index"] == TOTAL]
    assert len(totals) == 6
    for r in totals:
        assert r["energy_pJ"] == pytest.approx(
            r["energy_compute_pJ"] + r["energy_reg_pJ"] + r["energy_sram_pJ"] + r["energy_dram_pJ"])
        assert r["energy_per_image_pJ"] == pytest.approx(r["energy_pJ"] / r["images"])
        if r["variant"] == "original":
            assert r["energy_ratio"] == 1.0
    fold2 = next(r for r in totals if r["variant"] == "fold2" and r["fuse"] == 0)
    orig2 = next(r for r in totals if r["variant"] == "original" and r["batch"] == 2 and r["fuse"] == 0)
    assert fold2["latency_ratio"] == pytest.approx(fold2["cycles_per_image"] / orig2["cycles_per_image"])
    write_csv(rows, tmp_path / "t.csv")
    back = read_csv(tmp_path / "t.csv")
    assert list(back[0]) == COLUMNS and len(back) == len(rows)
    assert back[-1]["energy_pJ"] == pytest.approx(rows[-1]["energy_pJ"], rel=1e-5)


def test_report_from_table(small_results, tmp_path):
    from util.accel.report import write_report

    write_csv(table_rows(small_results[1]), tmp_path / "accel_table.csv")
    text = write_report(tmp_path).read_text()
    assert "| V2 |" in text and "Band-limiting" in text and "Awaiting the trained checkpoints" in text
    assert (tmp_path / "ratios.png").stat().st_size > 0 and (tmp_path / "energy_split.png").exists()


def test_report_sets_skipping_savings_against_the_original(small_results, tmp_path):
    """The predictive section: energy per image after skipping, and its ratio to the original's
    after skipping on the same hardware (here 200 - 60 pJ left over 200 - 70 pJ: x1.08)."""
    from util.accel.report import write_report

    write_csv(table_rows(small_results[1]), tmp_path / "accel_table.csv")
    density = tmp_path / "density.csv"
    fields = ["task", "variant", "hardware", "split", "images", "share_nonpositive", "macs_per_image",
              "macs_saved_per_image", "energy_per_image_pJ", "energy_saved_per_image_pJ"]
    with open(density, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for variant, saved in (("original", 70.0), ("fold4", 60.0)):
            for share in (saved / 100, ""):
                w.writerow({"task": "t", "variant": variant, "hardware": "tpu_like", "split": "test",
                            "images": 8, "share_nonpositive": share, "macs_per_image": 10.0,
                            "macs_saved_per_image": 0.0 if share == "" else 5.0,
                            "energy_per_image_pJ": 100.0, "energy_saved_per_image_pJ": 0.0 if share == "" else saved})
    text = write_report(tmp_path, relu_density_csv=density).read_text()
    orig = next(line for line in text.splitlines() if line.startswith("| t | original |"))
    fold = next(line for line in text.splitlines() if line.startswith("| t | fold4 |"))
    assert "| 25.0% | 35.0% |" in orig and "| 1.00 |" in orig and "70% —" in orig
    assert "| 25.0% | 30.0% |" in fold and "| 1.08 |" in fold and "Awaiting" not in text


def test_report_sets_band_limited_networks_against_the_direct_ones(small_results, tmp_path):
    """The band section divides each band-limited total by the direct network's of the same
    variant and batch on the same hardware (here 300 pJ over 200: x1.50)."""
    from util.accel.report import write_report

    write_csv(table_rows(small_results[1]), tmp_path / "accel_table.csv")
    rows = []
    for variant, energy, cycles in (("original", 200.0, 100.0), ("original-band50", 300.0, 80.0)):
        rows.append({c: 0 for c in COLUMNS} | {
            "model": "noscope_coral", "variant": variant, "fold": 1, "batch": 4, "images": 4,
            "hardware": "tpu_like", "fuse": 0, "opt": "latency", "lpf_limit": 2, "layer_index": TOTAL,
            "layer": TOTAL, "macs_per_image": 1e6, "energy_per_image_pJ": energy,
            "cycles_per_image": cycles, "dram_bytes_per_image": 10.0})
    write_csv(rows, tmp_path / "band_table.csv")
    text = write_report(tmp_path).read_text()
    line = next(x for x in text.splitlines() if x.startswith("| N1 | tpu_like | original (batch 4) | 50% |"))
    assert line.endswith("| 1.50 | 0.80 | 1.00 |"), line


def test_cli_prints_per_image_table_and_writes_csv(small_results, cache_dir, tmp_path):
    p = run_cli("util/accel_sim.py", SMALL, "--folds", "1", "2", "--hardware", "tpu_like", "--both",
                "--lpf-limit", "2", "--spatial-mappings", "1", "--cache-dir", str(cache_dir), "--workers", "1", "--quiet",
                "--csv", str(tmp_path / "out.csv"), timeout=300)
    assert p.returncode == 0, p.stderr
    assert "per image" in p.stdout and "fold2" in p.stdout and "MaxPool" in p.stdout
    rows = read_csv(tmp_path / "out.csv")
    assert sum(r["layer_index"] == TOTAL for r in rows) == 6


@pytest.mark.parametrize("args,needle", [
    (["game_nope"], "unknown model"),
    ([SMALL, "--hardware", "gpu"], "unknown hardware"),
])
def test_cli_bad_input_one_line_error(args, needle):
    assert_one_line_error(run_cli("util/accel_sim.py", *args, "--no-cache", "--quiet"), needle)


def test_bad_options_are_one_line_errors():
    with pytest.raises(AccelError, match="bad opt 'speed'; valid: latency, energy, EDP"):
        SearchOptions(opt="speed")
    with pytest.raises(AccelError, match="multiple of every fold"):
        comparison_specs(SMALL, [1, 4], images=6)


def test_band_limit_flag():
    from models.bandlimit import band_layers

    model = build_network(NetworkSpec(SMALL, 1, 1, band_limit=4.0))
    assert band_layers(model) and all(layer.compress_rate == 4.0 for layer in band_layers(model))


def test_memory_classes_of_shipped_accelerators():
    assert memory_classes("eyeriss_like") == {
        "rf_64B_A": "reg", "rf_64B_W": "reg", "rf_16B": "reg", "sram_8KB": "sram",
        "sram_64KB": "sram", "sram_1M": "sram", "dram": "dram"}
    assert memory_classes("tpu_like") == {"rf_128B": "reg", "rf_2B": "reg", "sram_2MB": "sram",
                                          "dram": "dram"}
    with pytest.raises(AccelError, match="valid: eyeriss_like"):
        get_hardware("gpu")


@pytest.mark.slow
def test_zigzag_macs_equal_thop_for_every_registry_network():
    """ZigZag counts the products of Conv/Gemm layers; thop too (no bias term). Networks with
    BatchNorm (ResNet-18) differ only by what thop counts outside Conv2d/Linear."""
    mapping = get_hardware("tpu_like").mapping_yaml
    checked = 0
    for e in bench_entries():
        for fold in ((1, 2, 4) if e.scaling == "fold" else (1,)):
            spec = NetworkSpec(e.name, fold, 2 if fold == 2 else 1, e.scaling)
            model = build_network(spec)
            total, conv_linear = thop_macs(model, spec.batch)
            assert zigzag_macs(export_onnx(model, spec.batch), mapping) == total == conv_linear, spec
            checked += 1
    for task, fold in (("cifar10", 1), ("cifar100", 2)):
        model = build_model(task, fold).eval()
        total, conv_linear = thop_macs(model, 1)
        assert zigzag_macs(export_onnx(model, 1), mapping) == conv_linear < total
    assert checked == 36


def _resnet18_on_tpu_like(fuse: bool) -> tuple[float, float]:
    run = prepare(str(zigzag_inputs() / "workload" / "resnet18.onnx"), "tpu_like", fuse=fuse,
                  search=SearchOptions(io_in_dram=False))
    res = evaluate_jobs(run.jobs.values(), LayerCache(None), workers=2, progress=False)
    return (sum(res[layer["key"]]["energy_pJ"] for layer in run.layers),
            sum(res[layer["key"]]["latency_cycles"] for layer in run.layers))


@pytest.mark.slow
@pytest.mark.parametrize("fuse,expected", [
    # zigzag-dse 3.9.1 wheel: tests/main/test_origin/test_tpu_like.py
    (False, (1871436380.6559997, 3865041.0)),
    # ... and tests/main/test_with_exploit_data_locality/test_tpu_like.py
    (True, (1735241704.2240005, 3783401.0)),
])
def test_wrapper_reproduces_zigzag_test_figures(fuse, expected):
    energy, latency = _resnet18_on_tpu_like(fuse)
    assert energy == pytest.approx(expected[0]) and latency == pytest.approx(expected[1])


# ----------------------------------------------------------------------------- ReLU density
def test_prerelu_shares_match_a_direct_count():
    torch.manual_seed(0)
    model = build_model("noscope-coral", 2).eval()
    with torch.no_grad():
        model.features[2].bias.fill_(-1e4)     # second conv: every output <= 0
        model.head[0].bias.fill_(1e4)          # hidden fc: every output > 0
    x = torch.rand(5, 6, 50, 50)
    shares = prerelu_shares(model, x, batch_size=2)
    assert [s.name for s in shares] == ["features.0", "features.2", "head.0", "head.2"]
    with torch.no_grad():
        direct = (model.features[0](x) <= 0).float().mean().item()
    assert shares[0].share == pytest.approx(direct)
    assert 0 < shares[0].share < 1
    assert shares[1].share == 1.0 and shares[2].share == 0.0 and shares[3].share is None
    table = [{"layer": f"l{i}", "macs_per_image": 100.0 * (i + 1), "energy_per_image_pJ": 10.0 * (i + 1)}
             for i in range(4)]
    saved = skipping_savings(shares, table)
    assert saved[1]["macs_saved_per_image"] == 200.0 and saved[2]["energy_saved_per_image_pJ"] == 0.0
    assert saved[0]["energy_saved_per_image_pJ"] == pytest.approx(10.0 * shares[0].share)
    with pytest.raises(ValueError, match="not the one in the accelerator table"):
        skipping_savings(shares, table[:3])


def test_relu_density_cli_on_a_tiny_checkpoint(tmp_path):
    """A checkpoint as fold_trainer.py writes it, tiny NoScope data, and a table with the
    network's ZigZag layers: the command measures shares and scales the table's figures."""
    import cv2
    import numpy as np

    from config.tasks import get_task

    task = get_task("noscope-coral")
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c in task.classes:
        d = root / "noscope-coral-subset" / "test" / c
        d.mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 255, (50, 50, 3), dtype=np.uint8))
    model = build_model(task, 2)
    ckpt = tmp_path / "best.pth"
    torch.save({"model": model.state_dict(), "task": task.name, "fold": 2, "channel_align": 1}, ckpt)
    table = tmp_path / "table.csv"
    rows = [{"model": "noscope_coral", "variant": "fold2", "fold": 2, "batch": 1, "images": 2,
             "hardware": "tpu_like", "fuse": 0, "layer_index": i, "layer": f"l{i}",
             "macs_per_image": 1000.0, "energy_per_image_pJ": 50.0} for i in range(4)]
    full = [{c: r.get(c, 0) for c in COLUMNS} for r in rows]
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(full)
    out = tmp_path / "density.csv"
    p = run_cli("util/relu_density.py", "--checkpoint", str(ckpt), "--data-root", str(root),
                "--table", str(table), "--hardware", "tpu_like", "--csv", str(out))
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        got = list(csv.DictReader(f))
    assert len(got) == 4 and got[0]["images"] == "6" and got[3]["share_nonpositive"] == ""
    share = float(got[0]["share_nonpositive"])
    assert 0 <= share <= 1 and float(got[0]["macs_saved_per_image"]) == pytest.approx(1000 * share)
    bad = run_cli("util/relu_density.py", "--checkpoint", str(tmp_path / "missing.pth"),
                  "--table", str(table))
    assert_one_line_error(bad, "does not exist")


# ----------------------------------------------------------------------------- band-limited export
@pytest.mark.parametrize("cr", [0, 50])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(9, 13), (10, 12)])
def test_band_export_form_equals_the_module(cr, stride, hw):
    """The export-only form (MatMuls with constants on the right, a grouped 1 x 1 Conv for the
    channel mixing) computes what BandLimitedConv2d's dft path computes."""
    from models.bandlimit import BandLimitedConv2d
    from util.accel.band_export import DftConvExport

    torch.manual_seed(0)
    layer = BandLimitedConv2d(3, 5, 3, stride, 1, compress_rate=cr, algorithm="dft").eval()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        want, got = layer(x), DftConvExport(layer, hw)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_band_limited_zigzag_macs_equal_the_dft_products():
    """ZigZag costs every product of the dft path: its MAC total is dft_macs (from the matrix
    shapes) over the band-limited convs plus the ordinary layers (1 x 1 convs, the head)."""
    from models.bandlimit import band_layers
    from util.accel.band_export import dft_macs, input_sizes
    from util.accel.network import example_input

    model = build_network(NetworkSpec(SMALL, 2, 1, band_limit=50))
    layers = band_layers(model)
    assert layers
    sizes = input_sizes(model, example_input(model, 1))
    band = sum(dft_macs(layer, sizes[layer], 1) for layer in layers)
    rest = thop_macs(model, 1)[1]  # thop counts nn.Conv2d / nn.Linear only, not band layers
    mapping = get_hardware("tpu_like").mapping_yaml
    assert zigzag_macs(export_onnx(model, 1), mapping) == band + rest
    direct = build_network(NetworkSpec(SMALL, 2, 1))
    assert zigzag_macs(export_onnx(direct, 1), mapping) == thop_macs(direct, 1)[1]


def test_band_limited_fft_is_a_one_line_error():
    from models.bandlimit import band_limit_model

    model = build_network(NetworkSpec(SMALL, 1, 1))
    band_limit_model(model, compress_rate=50, algorithm="fft")
    with pytest.raises(AccelError, match="'fft' algorithm: ZigZag costs only Conv/Gemm/MatMul"):
        export_onnx(model, 1)


def test_cli_band_limited_network_runs(cache_dir):
    p = run_cli("util/accel_sim.py", SMALL, "--folds", "1", "--band-limit", "50", "--hardware",
                "tpu_like", "--lpf-limit", "2", "--spatial-mappings", "1", "--cache-dir", str(cache_dir),
                "--workers", "1", "--quiet", timeout=300)
    assert p.returncode == 0, p.stderr
    assert "original-band50" in p.stdout
