"""What to tell a user whose data is missing, by task family: the one place that names the
commands which make each family's data. Every loader of this package asks ``how_to_get``."""
from __future__ import annotations

from pathlib import Path

from config.tasks import Task

# Fields: {task} {root} {short} (the task's short name), plus any the caller passes.
_HOW_TO_GET = {
    "game": ("make synthetic data with `python3 util/make_game_data.py` (see its --help), or unpack "
             "the real archive so that {root}/{{train,val,test}}/<class>/*.png exist "
             "(archive layout <root>/<game>/<task>/{{train,val,test}}/<class>/*.png)"),
    "noscope": ("make it with `python3 util/make_noscope_video.py {short} data/{short}.mp4 data/{short}.csv "
                "&& python3 util/noscope_video_save.py data/{short}.mp4 data/{short}-frames "
                "&& python3 util/noscope_split.py {short} {root} --infile data/{short}.csv "
                "--indir data/{short}-frames` (or use a real NoScope video and label CSV)"),
    "cifar": ("put {archive} (or its extracted {folder}/) in {root} "
              "(from https://www.cs.toronto.edu/~kriz/cifar.html), or run once where that site is reachable"),
}


def how_to_get(task: Task, root: Path, **fields: str) -> str:
    """The hint for a task whose data is missing under ``root``."""
    return _HOW_TO_GET[task.family].format(task=task.name, root=root, short=task.short_name, **fields)
