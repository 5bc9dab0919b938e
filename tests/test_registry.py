import json

import pytest

from config.tasks import (CONFIG_DIR, TaskError, bench_entries, check_fold, get_bench_entry,
                          get_task, task_names)

GAME = ["apex/squad_count_v2", "lol/goldnumber-fraction", "lol/goldnumber-int",
        "lol/timer-minutes", "sot/coin_count-digits_3_4-v2", "sot/timer3"]


def test_all_twelve_tasks_present():
    assert sorted(task_names("game")) == GAME
    assert sorted(task_names("noscope")) == [f"noscope-{n}" for n in
                                             ("coral", "night", "roundabout", "taipei")]
    assert sorted(task_names("cifar")) == ["cifar10", "cifar100"]


@pytest.mark.parametrize("name,h,w,k", [
    ("lol/goldnumber-fraction", 22, 52, 11), ("apex/squad_count_v2", 19, 25, 22),
    ("sot/coin_count-digits_3_4-v2", 17, 40, 15), ("sot/timer3", 22, 30, 27),
    ("lol/goldnumber-int", 22, 52, 111), ("lol/timer-minutes", 15, 35, 62),
    ("noscope-coral", 50, 50, 2), ("cifar10", 32, 32, 10), ("cifar100", 32, 32, 100)])
def test_task_facts(name, h, w, k):
    t = get_task(name)
    assert (t.height, t.width, t.num_classes) == (h, w, k)
    if t.data.source == "image_folder":  # class folders: sorted as strings
        assert list(t.classes) == sorted(t.classes)


def test_game_classes_end_with_other_and_are_strings_sorted():
    t = get_task("apex/squad_count_v2")
    assert t.classes[:4] == ("0", "1", "10", "11") and t.classes[-1] == "other"


def test_unknown_task_lists_valid_names():
    with pytest.raises(TaskError) as e:
        get_task("lol/nope")
    assert "lol/nope" in str(e.value) and "lol/goldnumber-fraction" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_fold(bad):
    with pytest.raises(TaskError, match="fold"):
        check_fold(bad)


def test_recipes_follow_the_paper():
    r = get_task("lol/goldnumber-fraction").recipe(4)
    assert (r.optimizer, r.lr, r.weight_decay, r.batch_size, r.epochs) == ("adam", 1e-4, 1e-5, 32, 1500)
    c = r.curriculum
    assert c.initial_classes(11, 4) == 4 and c.classes_at(59, 11, 4) == 4 and c.classes_at(60, 11, 4) == 5
    # lol/timer-minutes at f=4: K//20 classes per step, every 120 epochs, 3000 epochs
    r6 = get_task("lol/timer-minutes").recipe(4)
    assert r6.epochs == 3000 and r6.curriculum.every == 120
    assert r6.curriculum.initial_classes(62, 4) == 4  # max(62 // 20, 4), as released
    assert r6.curriculum.classes_at(119, 62, 4) == 4 and r6.curriculum.classes_at(120, 62, 4) == 4 + 3
    assert get_task("lol/timer-minutes").recipe(2).epochs == 1500
    n = get_task("noscope-taipei").recipe(1)
    assert n.optimizer == "rmsprop" and abs(n.lr - 0.001 / 1.5) < 1e-12 and n.epochs == 50
    cf = get_task("cifar10").recipe(4)
    assert cf.step_lr == (200, 0.5) and cf.distill_folded
    assert not get_task("cifar100").recipe(4).distill_folded


@pytest.mark.parametrize("name", task_names())
def test_recipe_defaults_are_the_released_code(name):
    """The released train.py: batch 32 for every family, 1500 epochs (NoScope: 50), curriculum
    only for folded game runs; lol/timer-minutes at f = 4 over 3000 epochs."""
    t = get_task(name)
    for f in (1, 2, 3, 4):
        r = t.recipe(f)
        assert r.batch_size == 32
        special = name == "lol/timer-minutes" and f == 4
        assert r.epochs == (50 if t.family == "noscope" else 3000 if special else 1500)
        assert (r.curriculum is not None) == (t.family == "game")


def test_bench_entries_match_original_names():
    names = [e.name for e in bench_entries()]
    assert names[0].startswith("game_") and "noscope_coral" in names
    assert "efficientnet-game_lol/goldnumber-fraction" in names
    assert get_bench_entry("noscope_taipei").task.name == "noscope-taipei"
    with pytest.raises(TaskError, match="valid models"):
        get_bench_entry("game_nope")


def test_unknown_key_in_json_is_an_error(tmp_path, monkeypatch):
    import config.tasks as tasks
    src = json.loads((CONFIG_DIR / "noscope-coral" / "model_description.json").read_text())
    src["colour"] = "blue"
    with pytest.raises(TaskError, match="unknown key"):
        tasks._check_keys("x", src, tasks._TOP_KEYS)


def _coral_data() -> dict:
    return json.loads((CONFIG_DIR / "noscope-coral" / "model_description.json").read_text())["data"]


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(colour="blue"), r"\[data\]: unknown key\(s\) \['colour'\]; valid keys: .*'source'"),
    (lambda d: d.pop("path"), r"\[data\]: missing key\(s\) \['path'\]"),
    (lambda d: d.pop("noscope"), r"\[data\]: missing key\(s\) \['noscope'\]"),
    (lambda d: d["noscope"].pop("chunks"), r"\[data.noscope\]: missing key\(s\) \['chunks'\]"),
    (lambda d: d["noscope"].update(first_chunk=6), r"first_chunk 6 \+ 3 splits .* 8 chunks"),
])
def test_data_section_is_checked(change, message):
    import config.tasks as tasks
    data = _coral_data()
    change(data)
    with pytest.raises(TaskError, match=message):
        tasks._parse_data("x", data, "noscope")


def test_data_section_is_a_frozen_dataclass():
    d = get_task("noscope-coral").data
    assert (d.source, d.noscope.object, d.noscope.chunks, d.noscope.first_chunk) == \
        ("image_folder", "person", 8, 5)
    cifar = get_task("cifar10").data
    assert cifar.validation_images == 5000 and cifar.normalize.mean[0] == 0.4914
    assert get_task("sot/timer3").data.images_per_class == {"train": 2000, "val": 100, "test": 100}
    with pytest.raises(AttributeError):
        d.source = "cifar10"


def test_short_names():
    assert get_task("noscope-coral").short_name == "coral"
    assert get_task("sot/timer3").short_name == "sot/timer3" and get_task("cifar10").short_name == "cifar10"
