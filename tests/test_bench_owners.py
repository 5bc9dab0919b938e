"""The benchmark's one-owner modules: BenchEntry's variants (config/tasks.py), the results CSV
(util/bench/results.py), the layer roofline (util/bench/roofline.py) and BenchConfig's flags
(util/bench/config.py)."""
import argparse
import dataclasses

import pytest

from config.tasks import (BENCH_GROUPS, MODES, TaskError, bench_entries, find_bench_entry,
                          get_bench_entry)
from models.costs import LayerCost
from util.bench import roofline
from util.bench.bandlimit_results import TABLE as BAND_TABLE
from util.bench.config import (BYTES_PER_ELEMENT, PRECISIONS, BenchConfig, add_config_arguments,
                               config_from_args, config_to_argv)
from util.bench.results import BENCH, COLUMNS, RELEASED_COLUMNS, ResultsError

FOLDS = (1, 2, 3, 4)


@pytest.mark.parametrize("entry", bench_entries(), ids=lambda e: e.name)
def test_every_entry_knows_its_variants(entry):
    """What FOLD 1-4 of an entry mean, with and without do_fold (the released inference.py)."""
    for fold in FOLDS:
        v, plain = entry.variant(fold), entry.variant(fold, do_fold=False)
        assert v.fold == plain.fold == fold and v.mode in MODES and plain.mode in MODES
        if fold == 1:
            assert (v.mode, v.build_fold, v.scaling, v.images_per_input) == ("Original", 1, "fold", 1)
            assert plain == v
        elif entry.is_efficientnet:  # the compound-scaled CNN, phi = -(FOLD - 1); never folded
            assert (v.mode, v.build_fold, v.scaling, v.compound_steps, v.images_per_input) == \
                ("EfficientNet", 1, "efficientnet", fold - 1, 1)
            assert (plain.mode, plain.build_fold, plain.scaling) == ("Original", 1, "fold")
        else:
            assert (v.mode, v.build_fold, v.scaling, v.images_per_input) == ("Folded", fold, "fold", fold)
            assert (plain.mode, plain.build_fold, plain.scaling, plain.images_per_input) == \
                ("Widened", fold, "widen", 1)
        assert v.compound_steps == (fold - 1 if entry.is_efficientnet else 0)
    with pytest.raises(TaskError, match="bad fold 0"):
        entry.variant(0)


def test_entries_know_group_names_and_folds():
    entries = bench_entries()
    assert {e.group for e in entries} == set(BENCH_GROUPS)
    assert [e.name for e in bench_entries(("noscope",))] == [e.name for e in entries if e.group == "noscope"]
    with pytest.raises(TaskError, match="valid groups"):
        bench_entries(("cifar",))
    for e in entries:
        if e.is_efficientnet:
            original = get_bench_entry(e.original_name)
            assert original.group == "game" and original.efficientnet_name == e.name
            assert e.flop_folds == (1, 2) and e.bench_folds([1, 3, 4]) == [2]
            assert find_bench_entry(e.csv_name, "EfficientNet") == e
            assert find_bench_entry(e.name) == e
        else:
            assert e.original_name == e.name and e.flop_folds == FOLDS
            assert e.bench_folds([4, 1, 4]) == [1, 4]
            for name in (e.name, e.csv_name, e.released_csv_name, e.flop_key, e.task.name):
                assert find_bench_entry(name) == e
    assert get_bench_entry("game_sot/timer3").efficientnet_name == "efficientnet-game_sot/timer3"
    assert get_bench_entry("noscope_coral").efficientnet_name is None
    with pytest.raises(TaskError, match="no EfficientNet-style baseline"):
        find_bench_entry("noscope_coral", "EfficientNet")
    with pytest.raises(TaskError, match="unknown model 'nope'"):
        find_bench_entry("nope")


def _row(**cells):
    return {c: BENCH.column(c).parse(None) for c in COLUMNS} | cells


def test_results_csv_round_trip(tmp_path):
    """Rows written as dicts come back as the same dicts, typed, in the columns' order."""
    rows = [_row(Model="noscope_coral", Trial=1, **{"Batch Size": 1024}, Mode="Folded", Fold=4,
                 Throughput=1234567.25, **{"FLOPs/sec": 2.5e13}, TputNorm=1.5, FLOPNorm=1.25,
                 Backend="triton", BackendRequested="auto", Precision="fp16", Utilization=0.125,
                 ChannelAlign=8, PadInput=1, ChannelsLast=1, CompileSeconds=12.5,
                 Probe="eager=1;triton=2", GPU="NVIDIA H200", Torch="2.14.1", Bandwidth=4.0e12,
                 RooflineFraction=0.25, BandLimit=50.0, BandAlgorithm="dft", KeptFraction=0.5),
            _row(Model="coral", **{"Batch Size": 8}, Mode="Original", Fold=1, Error="RuntimeError: x",
                 ChannelAlign=1, PadInput=0)]
    path = tmp_path / "r.csv"
    text = BENCH.append(path, rows[:1]) + BENCH.append(path, rows[1:])
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and lines[1:] == text.splitlines()
    assert lines[1].startswith("noscope_coral,1,1024,Folded,4,1234567.25,2.5000e+13,1.5000,1.2500,")
    assert BENCH.read_rows(path) == rows
    df = BENCH.read_frame([path, path])
    assert list(df.columns) == COLUMNS and len(df) == 4 and df["Error"].tolist()[1] == "RuntimeError: x"
    with pytest.raises(ResultsError, match="unknown column"):
        BENCH.append(path, [{"Model": "x", "Speed": 1}])


def test_results_csv_reads_the_released_columns_and_refuses_others(tmp_path):
    released = tmp_path / "released.csv"
    released.write_text(",".join(RELEASED_COLUMNS) + "\ncoral,1,1024,Original,1,10.0,1e9,1,1\n")
    (row,) = BENCH.read_rows(released)
    assert (row["Model"], row["Fold"], row["Throughput"]) == ("coral", 1, 10.0)
    assert (row["ChannelAlign"], row["PadInput"], row["Backend"], row["Utilization"]) == (1, 0, "", None)
    bad = tmp_path / "bad.csv"
    bad.write_text("Model,Trial\nx,1\n")
    with pytest.raises(ResultsError, match="lacks column"):
        BENCH.read_rows(bad)
    bad.write_text(",".join(RELEASED_COLUMNS) + "\nx,1,1024,Original,1,fast,1,1,1\n")
    with pytest.raises(ResultsError, match="line 2: Throughput = 'fast' is not a number"):
        BENCH.read_rows(bad)


def test_band_csv_round_trip(tmp_path):
    row = {c: BAND_TABLE.column(c).parse(None) for c in BAND_TABLE.names} | {
        "task": "noscope-coral", "phase": "inference", "variant": "band", "fold": 1,
        "band_limit": 50.0, "algorithm": "dft", "kept_fraction": 0.5, "images_per_sec": 1e6,
        "trials": 3}
    path = tmp_path / "band.csv"
    BAND_TABLE.append(path, [row])
    assert BAND_TABLE.read_rows(path) == [row]
    with pytest.raises(ResultsError, match="another header"):
        BENCH.append(path, [_row(Model="x")])


def test_layer_roofline_by_hand(monkeypatch):
    """Two layers at peak 1000 FLOP/s and 100 B/s, 2 bytes per element: a compute-bound one
    (1000 FLOPs: 1 s; 40 bytes: 0.4 s) and a memory-bound one (10 FLOPs: 0.01 s; 400 bytes:
    4 s) take 1 + 4 = 5 s; f = 4 at a batch of 10 images classifies 8 of them."""
    seen = {}

    def fake_costs(entry, variant, batch_images, **build):
        seen.update(batch=batch_images, build=build)
        return [LayerCost("compute", 1000, 10, 0, 10), LayerCost("memory", 10, 100, 0, 100)]

    monkeypatch.setattr(roofline, "variant_costs", fake_costs)
    entry = get_bench_entry("noscope_coral")
    r = roofline.layer_roofline(entry, entry.variant(4), 10, 1000.0, 100.0, 2, channel_align=8)
    assert (r.seconds, r.images, r.images_per_sec) == (pytest.approx(5.0), 8, pytest.approx(1.6))
    assert seen == {"batch": 10, "build": {"channel_align": 8}}


def test_layer_roofline_limits():
    """Compute-bound: total FLOPs / peak; memory-bound: total bytes / bandwidth."""
    from util.bench.variants import variant_costs

    entry = get_bench_entry("game_apex/squad_count_v2")
    costs = variant_costs(entry, entry.variant(2), 64)
    flops = sum(c.flops for c in costs)
    nbytes = sum(c.bytes(2) for c in costs)
    assert roofline.layer_roofline(entry, entry.variant(2), 64, 1e9, 1e30, 2).seconds == pytest.approx(flops / 1e9)
    assert roofline.layer_roofline(entry, entry.variant(2), 64, 1e30, 1e9, 2).seconds == pytest.approx(nbytes / 1e9)


def test_bytes_per_element_is_the_dtype_size():
    assert BYTES_PER_ELEMENT == {p: d.itemsize for p, d in PRECISIONS.items()} == \
        {"fp16": 2, "bf16": 2, "fp32": 4}


def test_config_argv_round_trip():
    """A BenchConfig written as flags reads back as the same config; flags not given keep the
    dataclass default, or the command's own where it has one."""
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, defaults={"trials": 10})
    cfg = BenchConfig(model="noscope_coral", fold=2, batch_images=256, num_warmup=3, num_iteration=7,
                      trials=2, backend="eager", precision="fp32", channels_last=True,
                      channel_align=8, pad_input=True, device="cpu", end_to_end=True, seed=5,
                      band_limit=25.0, band_algorithm="fft")
    back = config_from_args(parser.parse_args(config_to_argv(cfg)), model="noscope_coral", fold=2)
    assert back == cfg
    plain = config_from_args(parser.parse_args([]), model="noscope_coral")
    assert plain == dataclasses.replace(BenchConfig(model="noscope_coral"), trials=10)
