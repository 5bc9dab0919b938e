import json

import pytest

import ai
from config.tasks import TaskError, bench_entries, get_bench_entry
from models.costs import arithmetic_intensity, conv_cost, roofline_seconds
from util.bench.flops import MODEL_MAP, flop_table, flops_from_tput

# The released config/model_map.json (msr-fiddle/folded-cnns), entry by entry.
RELEASED_MODEL_MAP = {
    "lol/goldnumber-fraction": (16784480, 34743232, 53668372, 74843392),
    "apex/squad_count_v2": (7176032, 14838682, 22905844, 31916608),
    "sot/coin_count-digits_3_4-v2": (10132064, 20960424, 32365792, 45110464),
    "sot/timer3": (14562240, 29692248, 45389136, 62661504),
    "noscope_coral": (16400512, 32918948, 51471402, 73924096),
    "noscope_night": (16400512, 32918948, 51471402, 73924096),
    "noscope_taipei": (196160128, 394762860, 597713160, 817921024),
    "noscope_roundabout": (120589952, 241804260, 365155560, 498680320),
    "efficientnet-game_lol/goldnumber-fraction": (16778672, 10504264),
    "efficientnet-game_apex/squad_count_v2": (7171808, 3787864),
    "efficientnet-game_sot/coin_count-digits_3_4-v2": (10128224, 5198192),
    "efficientnet-game_sot/timer3": (14558784, 8979560),
    "lol/goldnumber-int": (16890080, 35033632, 54183172, 75688192),
    "lol/timer-minutes": (7918448, 16389814, 25316028, 35298400),
}
# What the released ai.py prints (FP16, batch 1024): original, f = 2, 3, 4 (EfficientNet: original).
RELEASED_AI = {
    "game_lol/goldnumber-fraction": (87.33, 126.73, 158.38, 187.79),
    "game_apex/squad_count_v2": (88.63, 128.36, 160.12, 189.44),
    "game_sot/coin_count-digits_3_4-v2": (88.15, 127.79, 159.55, 188.97),
    "game_sot/timer3": (102.27, 146.46, 181.30, 213.03),
    "noscope_coral": (58.70, 82.44, 101.34, 118.75),
    "noscope_night": (58.70, 82.44, 101.34, 118.75),
    "noscope_taipei": (185.16, 262.37, 321.82, 374.64),
    "noscope_roundabout": (151.52, 214.13, 262.52, 305.94),
    "efficientnet-game_lol/goldnumber-fraction": (87.33,),
    "efficientnet-game_apex/squad_count_v2": (88.63,),
    "efficientnet-game_sot/coin_count-digits_3_4-v2": (88.15,),
    "efficientnet-game_sot/timer3": (102.27,),
}

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


def test_model_map_within_half_a_percent_of_the_released_table(table):
    for key, released in RELEASED_MODEL_MAP.items():
        names = ["og_ops", "fold2_ops", "fold3_ops", "fold4_ops"][:len(released)]
        for name, value in zip(names, released):
            assert abs(table[key][name] - value) <= 0.005 * value, (key, name, table[key][name], value)


def test_released_game_rows_count_the_classifier_twice(table):
    """The released game rows exceed the same network's EfficientNet og_ops by exactly
    2 x the classifier's MACs; the NoScope rows count it once (no such excess)."""
    from models import build_model
    for key in ("lol/goldnumber-fraction", "apex/squad_count_v2", "sot/coin_count-digits_3_4-v2",
                "sot/timer3"):
        head = build_model(key, 1).head
        excess = RELEASED_MODEL_MAP[key][0] - RELEASED_MODEL_MAP["efficientnet-game_" + key][0]
        assert excess == 2 * head.in_features * head.out_features
    coral = build_model("noscope-coral", 1)
    convs_and_linears = 2 * (50 * 50 * 16 * (27 + 1) + 50 * 50 * 16 * (144 + 1) + 10000 * 128 + 128 * 2)
    assert coral.head[0].in_features == 10000 and convs_and_linears == RELEASED_MODEL_MAP["noscope_coral"][0]


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
    """Paper: game CNNs have AI 88-102 at large batch. The released networks give 87.0-102.0 by
    the paper's formula (the released ai.py, counting bias adds: 87.3-102.3)."""
    ais = [r["original_AI"] for r in ai.ai_rows(groups=("game",), folds=(2,))]
    assert 86.9 <= min(ais) <= 88 and 101.5 <= max(ais) <= 102.1, ais


def test_ai_with_bias_is_the_released_ai_py():
    rows = {r["model"]: r for r in ai.ai_rows(count_bias=True)}
    for model, released in RELEASED_AI.items():
        r = rows[model]
        ours = [r["original_AI"]] + ([r[f"tformed_AI_{f}"] for f in (2, 3, 4)] if len(released) > 1 else [])
        assert [round(v, 2) for v in ours] == list(released), model


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
