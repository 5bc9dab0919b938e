"""Per-layer scoreboard (util/bench/scoreboard.py, util/profile_model.py --layers) on CPU.

Peak and bandwidth are given (on CPU util/bench/peak.py measures nothing: it returns None),
so the fractions and rooflines are checked against known numbers."""
import csv
import math

import pytest
import torch

from config.tasks import get_bench_entry
from models import model_input_shape
from models.costs import layer_costs
from util.bench.backends import BenchError
from util.bench.config import BenchConfig
from util.bench.peak import peak_bandwidth, peak_flops
from util.bench.scoreboard import COLUMNS, scoreboard_fold
from util.bench.variants import build_variant

from conftest import assert_one_line_error, run_cli

PEAK, BANDWIDTH = 2e12, 1e11
TINY = dict(device="cpu", precision="fp32", batch_images=4, num_warmup=0)
MODELS = [("noscope_coral", 1), ("noscope_coral", 2), ("game_lol/goldnumber-fraction", 1),
          ("game_lol/goldnumber-fraction", 2)]


def _costs(model: str, fold: int, batch_images: int):
    entry = get_bench_entry(model)
    net = build_variant(entry, entry.variant(fold), meta=True)
    return net, layer_costs(net, model_input_shape(net), batch_images // fold)


@pytest.mark.parametrize("model,fold", MODELS)
def test_every_layer_scored_with_the_cost_models_flops(model, fold):
    res = scoreboard_fold(BenchConfig(model=model, fold=fold, **TINY), "eager", 2, PEAK, BANDWIDTH)
    rows = res["rows"]
    net, costs = _costs(model, fold, 4)
    leaves = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear,
                                                          torch.nn.MaxPool2d))]
    assert len(rows) == len(leaves)  # every conv, pool and linear; ReLUs joined
    assert [r for r in rows if "relu" in r["kind"]] and not any(r["kind"] == "relu" for r in rows)
    computed = [r for r in rows if r["flops"]]
    assert [r["flops"] for r in computed] == [c.flops for c in costs]
    assert [r["bytes"] for r in computed] == [c.bytes(4) for c in costs]
    assert [r["layer"].split("+")[0] for r in computed] == [c.name for c in costs]
    for r in rows:
        t = r["us_per_batch"] / 1e6
        assert t > 0 and math.isfinite(t)
        assert r["peak_fraction"] == pytest.approx(r["flops"] / t / PEAK)
        assert r["bandwidth_fraction"] == pytest.approx(r["bytes"] / t / BANDWIDTH)
        roof = max(r["flops"] / PEAK, r["bytes"] / BANDWIDTH)
        assert r["roofline_us"] == pytest.approx(1e6 * roof)
        assert r["lost_us"] == pytest.approx(r["us_per_batch"] - 1e6 * roof)
        assert r["gap"] == (pytest.approx(t / roof) if roof else None)  # pools: no roofline
    assert sum(r["worst"] for r in rows) == 1
    assert max(rows, key=lambda r: r["lost_us"])["worst"] == 1
    assert res["network_us_per_batch"] > 0 and res["images_per_batch"] == (4 // fold) * fold
    assert {r["peak_flops_per_sec"] for r in rows} == {PEAK}


def test_cpu_has_no_peak_so_no_roofline():
    assert peak_flops(torch.float32, torch.device("cpu")) is None
    assert peak_bandwidth(torch.device("cpu")) is None
    rows = scoreboard_fold(BenchConfig(model="noscope_coral", fold=1, **TINY), "eager", 1)["rows"]
    assert all(r["roofline_us"] is None and r["peak_fraction"] is None and not r["worst"]
               for r in rows)


def test_triton_layers_are_the_fused_convs_costed_as_the_convs():
    """On CPU the fused op runs F.conv2d: the plumbing, not the kernel's speed."""
    res = scoreboard_fold(BenchConfig(model="noscope_coral", fold=2, **TINY), "triton", 1,
                          PEAK, BANDWIDTH)
    _, costs = _costs("noscope_coral", 2, 4)
    kinds = [r["kind"] for r in res["rows"]]
    assert kinds == ["triton conv+relu", "triton conv+relu+maxpool", "linear+relu", "linear"]
    assert [r["flops"] for r in res["rows"]] == [c.flops for c in costs]


def test_cli_table_and_csv(tmp_path):
    out = tmp_path / "layers.csv"
    p = run_cli("util/profile_model.py", "noscope_coral", "--folds", "1", "2", "--layers",
                "--device", "cpu", "--precision", "fp32", "--batch-images", "4", "--iters", "2",
                "--num-warmup", "0", "--peak-tflops", "2", "--bandwidth-tbs", "0.1", "--csv", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "features.2+features.3" in p.stdout and "largest gap:" in p.stdout
    assert "speedup if both networks ran every layer at the roofline" in p.stdout
    assert "sum of layers" in p.stdout and "whole network" in p.stdout
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == COLUMNS
    assert [r["fold"] for r in rows] == ["1"] * 5 + ["2"] * 5
    assert sum(int(r["worst"]) for r in rows) == 2  # one per fold


@pytest.mark.parametrize("flags,needle", [
    (["--peak-tflops", "2", "--bandwidth-tbs", "1"], "add --layers"),
    (["--layers", "--peak-tflops", "2"], "give both --peak-tflops and --bandwidth-tbs"),
    (["--layers", "--peak-tflops", "0", "--bandwidth-tbs", "1"], "must be positive"),
    (["--backend", "triton"], "only with --layers"),
])
def test_bad_flag_combinations_one_line(flags, needle):
    assert_one_line_error(run_cli("util/profile_model.py", "noscope_coral", "--device", "cpu",
                                  *flags), needle)


@pytest.mark.parametrize("model,fold", [("game_lol/goldnumber-fraction", 1), ("game_sot/timer3", 4),
                                        ("noscope_coral", 2), ("noscope_taipei", 1)])
def test_fused_rows_share_the_kernel_time_by_cycles_and_follow_the_cost_model(model, fold):
    """``--layers --backend fused`` (CUDA only) splits the kernel's time over its layers by the
    cycles each spends (``FusedNet.layer_cycles``) and costs them in order, a pool at nothing and
    a head run after the kernel (the NoScope CNNs') as its own rows. Here: the networks and
    costs the scoreboard builds, with given cycles and times."""
    from util.bench.fused_net import FusedConfig, FusedNet
    from util.bench.runner import bench_layer_costs, build_bench_model, check_config
    from util.bench.scoreboard import assemble_fused_rows

    cfg = BenchConfig(model=model, fold=fold, **TINY)
    target, device = check_config(cfg)
    costs = bench_layer_costs(target, cfg)
    net_model, x = build_bench_model(cfg, target, device)
    net = FusedNet(net_model, dtype=torch.float32, config=FusedConfig())  # the GPU's head rule
    layers = net.kernel_layers()
    cycles = list(range(1, len(layers) + 1))
    features, head = net.host_head()
    head_rows = [(f"head.{i}", "linear", (x.shape[0], features), 1e-6) for i in range(len(head))]
    rows = assemble_fused_rows(layers, cycles, 1e-3, head_rows, costs, x.shape[0], 4, PEAK, BANDWIDTH)
    kernel = rows[:len(layers)]
    assert [r["us_per_batch"] for r in kernel] == pytest.approx([1e3 * c / sum(cycles) for c in cycles])
    assert [r["flops"] for r in rows if r["kind"] != "fused maxpool"] == [c.flops for c in costs]
    assert all(r["flops"] == 0 and r["roofline_us"] == 0 for r in rows if r["kind"] == "fused maxpool")
    assert bool(head) == model.startswith("noscope")  # their large first Linear runs after it
    assert [r["layer"] for r in rows[len(layers):]] == [f"head.{i}" for i in range(len(head))]
    with pytest.raises(BenchError, match="cost model counts"):
        assemble_fused_rows(layers, cycles, 1e-3, head_rows, costs[:-1], x.shape[0], 4, PEAK, BANDWIDTH)
    # the table: the kernel's layers and the profiling kernel's own time beside the timed one's
    from util.bench.scoreboard import _result, format_scoreboard, scoreboard_csv
    res = {**_result(cfg, target, "fused", device, rows, 1e-3 + 1e-6 * len(head), PEAK, BANDWIDTH),
           "profiled_us_per_batch": 1050.0}
    text = format_scoreboard([res])
    assert "kernel.0" in text and "with the profiling kernel" in text and "1050.0 us" in text
    assert len(scoreboard_csv([res]).splitlines()) == 1 + len(rows)


def test_fused_layers_need_a_gpu_one_line():
    assert_one_line_error(run_cli("util/profile_model.py", "noscope_coral", "--layers", "--backend",
                                  "fused", "--device", "cpu", "--precision", "fp32"),
                          "needs a CUDA GPU")
