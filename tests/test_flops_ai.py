import json

import pytest

import ai
from config.tasks import TaskError, bench_entries, get_bench_entry
from models.costs import arithmetic_intensity, conv_cost, roofline_seconds
from util.flops import MODEL_MAP, flop_table, flops_from_tput

from conftest import assert_one_line_error, run_cli


def test_paper_one_layer_example():
    """Paper section 2: one 3x3 layer, H=11, W=26, FP16."""
    og = conv_cost(1024, 32, 11, 26, 32, 11, 26, 3, 3)
    folded = conv_cost(256, 64, 11, 26, 64, 11, 26, 3, 3)
    assert round(arithmetic_intensity([og], 2), 2) == 143.93
    assert round(arithmetic_intensity([folded], 2), 2) == 286.87


@pytest.fixture(scope="module")
def table():
    return flop_table()


def test_model_map_regenerates_to_committed_file(table):
    assert json.loads(MODEL_MAP.read_text()) == table


def test_model_map_shape(table):
    assert table["lol/goldnumber-fraction"].keys() == {"og_ops", "fold2_ops", "fold3_ops", "fold4_ops"}
    assert table["efficientnet-game_sot/timer3"].keys() == {"og_ops", "fold2_ops"}
    assert "noscope_coral" in table


def test_folded_flops_per_image_within_15_percent(table):
    for e in bench_entries():
        if e.scaling != "fold":
            continue
        row = table[e.flop_key]
        for f in (2, 3, 4):
            ratio = row[f"fold{f}_ops"] / f / row["og_ops"]
            assert 1.0 <= ratio <= 1.15, (e.name, f, ratio)


def test_efficientnet_roughly_halves_flops(table):
    """Paper: 0.51-0.63 of the original for V1-V4."""
    for key in ("lol/goldnumber-fraction", "apex/squad_count_v2", "sot/coin_count-digits_3_4-v2", "sot/timer3"):
        row = table["efficientnet-game_" + key]
        assert 0.5 <= row["fold2_ops"] / row["og_ops"] <= 0.65


def test_flops_from_tput(table):
    e = get_bench_entry("game_lol/goldnumber-fraction")
    assert flops_from_tput(e, 1, 1000.0, table) == table[e.flop_key]["og_ops"] * 1000
    assert flops_from_tput(e, 4, 1000.0, table) == table[e.flop_key]["fold4_ops"] / 4 * 1000
    eff = get_bench_entry("efficientnet-game_lol/goldnumber-fraction")
    assert flops_from_tput(eff, 2, 10.0, table) == table[eff.flop_key]["fold2_ops"] * 10
    with pytest.raises(TaskError, match="flop_count"):
        flops_from_tput(e, 5, 1.0, table)


def test_ai_rises_monotonically_with_fold():
    rows = ai.ai_rows(groups=("game", "noscope"), folds=(2, 3, 4))
    assert len(rows) == 10
    for r in rows:
        seq = [r["original_AI"], r["tformed_AI_2"], r["tformed_AI_3"], r["tformed_AI_4"]]
        assert all(a < b for a, b in zip(seq, seq[1:])), r
        # about sqrt(f) = 2 (a little more: the first and last layers also grow)
        assert 1.8 * r["original_AI"] <= r["tformed_AI_4"] <= 2.2 * r["original_AI"], r


def test_game_ai_near_paper_range():
    """Paper: game CNNs have AI 88-102 at large batch (ours: 89-108)."""
    for r in ai.ai_rows(groups=("game",), folds=(2,)):
        assert 85 <= r["original_AI"] <= 110, r


def test_ai_cli_prints_full_table():
    p = run_cli("ai.py", "--bytes_per_elt", "4")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "model,batch_size,original_AI,tformed_AI_2,tformed_AI_3,tformed_AI_4"
    assert len(lines) == 17


def test_ai_cli_bad_input():
    assert_one_line_error(run_cli("ai.py", "--batch_size", "0"), "--batch_size")


def test_flop_count_script(repo):
    import subprocess
    p = subprocess.run(["bash", "flop_count.sh"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == json.loads(MODEL_MAP.read_text())


def test_roofline_seconds_is_the_slower_of_compute_and_memory_per_layer():
    """Paper's one-layer example on an H100-like GPU (730 TFLOP/s, 3 TB/s): the original's
    32 -> 32 conv is memory-bound, the folded 64 -> 64 one compute-bound."""
    og = conv_cost(1024, 32, 11, 26, 32, 11, 26, 3, 3)
    folded = conv_cost(256, 64, 11, 26, 64, 11, 26, 3, 3)
    peak, bw = 730e12, 3e12
    t_og, t_f = roofline_seconds([og], peak, bw), roofline_seconds([folded], peak, bw)
    assert t_og == pytest.approx(og.bytes(2) / bw) and og.bytes(2) / bw > og.flops / peak
    assert t_f == pytest.approx(folded.flops / peak) and folded.flops / peak > folded.bytes(2) / bw
    assert roofline_seconds([og, folded], peak, bw) == pytest.approx(t_og + t_f)
    assert 1.6 < t_og / t_f < 1.75  # less than AI's 2x: the folded layer hits the compute roof
    with pytest.raises(ValueError, match="positive"):
        roofline_seconds([og], 0.0, bw)


def test_ai_cli_roofline_bounds():
    """With memory free, folding cannot win (same FLOPs per image, more in the first layer);
    with compute free, it wins about what it saves in bytes (AI ratio)."""
    compute_only = ai.roofline_rows(1e12, 1e30, groups=("noscope",), folds=(4,))
    memory_only = ai.roofline_rows(1e30, 1e12, groups=("noscope",), folds=(4,))
    ai_rows = {r["model"]: r for r in ai.ai_rows(groups=("noscope",), folds=(4,))}
    for c, m in zip(compute_only, memory_only):
        assert c["bound_speedup_4"] <= 1.0, c
        a = ai_rows[m["model"]]
        assert m["bound_speedup_4"] == pytest.approx(a["tformed_AI_4"] / a["original_AI"]
                                                     * c["bound_speedup_4"], rel=1e-6)
    p = run_cli("ai.py", "--roofline", "--peak-tflops", "730", "--bandwidth-tbs", "3",
                "--groups", "noscope", "--channel-align", "8", "--pad-input")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == ("model,batch_size,original_us,tformed_us_2,tformed_us_3,tformed_us_4,"
                        "bound_speedup_2,bound_speedup_3,bound_speedup_4")
    bound = {ln.split(",")[0]: float(ln.split(",")[-1]) for ln in lines[1:]}
    # coral's 16-channel convs are memory-bound, taipei's 64-channel ones compute-bound
    assert bound["noscope_coral"] > 1.8 and bound["noscope_taipei"] < 1.3, bound


def test_ai_cli_roofline_bad_input():
    assert_one_line_error(run_cli("ai.py", "--roofline", "--peak-tflops", "730"),
                          "--bandwidth-tbs")
    assert_one_line_error(run_cli("ai.py", "--roofline", env={"CUDA_VISIBLE_DEVICES": ""}),
                          "--peak-tflops")
