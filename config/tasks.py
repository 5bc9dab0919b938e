"""The task registry: the one place that reads ``config/<task>/model_description.json``.

Every script (training, FLOP table, arithmetic intensity, inference) asks this module
for tasks, so adding a task means adding one JSON file. A task JSON describes everything
that differs between tasks: family, input size, classes, architecture, data location and
training recipe. Unknown keys and unknown task names are errors that list what is valid.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

CONFIG_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONFIG_DIR.parent
DESCRIPTION_FILE = "model_description.json"
# Where the released code found an un-tarred data archive (a task's "data": {"archive_root"},
# the game-scraping set): the folder named by $DATA_ROOT (its README: export
# DATA_ROOT=/path/to/game_data) and the repository's data_root/ (its Docker mount of it).
DATA_ROOT_ENV = "DATA_ROOT"
RELEASED_DATA_DIR = REPO_ROOT / "data_root"

_TOP_KEYS = {"name", "family", "paper_id", "description", "input", "classes", "num_classes",
             "model", "data", "train", "bench_name", "flop_key"}
_TRAIN_KEYS = {"optimizer", "lr", "weight_decay", "batch_size", "epochs", "curriculum",
               "step_lr", "distill_folded", "fold_overrides"}
_CURRICULUM_KEYS = {"start_divisor", "step_divisor", "every"}
_DATA_KEYS = {"source", "path", "archive_root", "images_per_class", "validation_images",
              "normalize", "augment", "noscope"}
_DATA_REQUIRED = {"source", "path"}
_DATA_REQUIRED_BY_FAMILY = {"game": {"images_per_class"}, "noscope": {"noscope"}}
_NORMALIZE_KEYS = {"mean", "std"}
_NOSCOPE_KEYS = {"object", "chunks", "first_chunk"}
_IMAGES_PER_CLASS_KEYS = {"train", "val", "test"}
FAMILIES = ("game", "noscope", "cifar")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


class TaskError(ValueError):
    """A bad task name or task description; the message is one line meant for the user."""


@dataclass(frozen=True)
class Curriculum:
    """Curriculum schedule (paper section 4): start with ``max(f, K // start_divisor)``
    classes, add ``max(K // step_divisor, 1)`` every ``every`` epochs, in sorted class order."""
    start_divisor: int = 10
    step_divisor: int = 10
    every: int = 60

    def initial_classes(self, num_classes: int, fold: int) -> int:
        return min(num_classes, max(fold, num_classes // self.start_divisor))

    def classes_at(self, epoch: int, num_classes: int, fold: int) -> int:
        """Number of active classes during ``epoch`` (0-based)."""
        step = max(num_classes // self.step_divisor, 1)
        return min(num_classes, self.initial_classes(num_classes, fold) + (epoch // self.every) * step)


@dataclass(frozen=True)
class TrainRecipe:
    """The training recipe of one (task, fold), after per-fold overrides were applied."""
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    curriculum: Curriculum | None = None  # used for folded runs only
    step_lr: tuple[int, float] | None = None  # (step_size, gamma)
    distill_folded: bool = False  # folded runs learn from the f=1 model's logits


@dataclass(frozen=True)
class Normalize:
    """Per-channel mean and std applied after scaling images to [0, 1]."""
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class NoScopeFacts:
    """How a NoScope video becomes this task's data (paper section 5): a frame is positive when
    its label CSV names ``object``; the video is cut into ``chunks`` equal contiguous chunks and
    chunks ``first_chunk``, ``+1``, ``+2`` are train, val and test."""
    object: str
    chunks: int
    first_chunk: int


@dataclass(frozen=True)
class TaskData:
    """The ``data`` section of a task JSON: where the images are and how they are read."""
    source: str  # the loader of datasets/image_set.py: image_folder, cifar10, cifar100
    path: str    # default location, relative to the repository root
    archive_root: str | None = None  # the un-tarred archive that ``path`` lies in (game data)
    images_per_class: dict[str, int] | None = None  # the paper's counts per split (game data)
    validation_images: int = 5000  # CIFAR: images carved from the training set for validation
    normalize: Normalize | None = None
    augment: tuple[str, ...] = ()  # names of datasets/transforms.py's AUGMENTATIONS
    noscope: NoScopeFacts | None = None


@dataclass(frozen=True)
class Task:
    """One task of ``config/``; see ``config/<name>/model_description.json``."""
    name: str
    family: str
    paper_id: str
    description: str
    in_channels: int
    height: int
    width: int
    classes: tuple[str, ...]
    arch: str
    arch_args: dict[str, Any]
    efficientnet_baseline: bool
    data: TaskData
    bench_name: str | None
    flop_key: str | None
    _train: dict[str, Any] = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def short_name(self) -> str:
        """The name without its family prefix: ``coral`` for ``noscope-coral``, the name the
        NoScope tools and the released scripts use; other tasks are their own short name."""
        return self.name.removeprefix(self.family + "-")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return (self.in_channels, self.height, self.width)

    @property
    def data_path(self) -> Path:
        """Default data location, relative paths resolved against the repository root."""
        p = Path(self.data.path)
        return p if p.is_absolute() else REPO_ROOT / p

    def data_candidates(self, data_root: str | Path | None = None) -> list[Path]:
        """Where this task's data may live, in search order; the first is where missing data is
        made. The one rule for data locations (data/README.md):

        * ``data_root`` (``--data-root``) stands in for the repository's ``data/`` folder
          (``data/x/y`` -> ``data_root/x/y``); for a task of an archive, ``data_root`` may also
          be the un-tarred archive itself (``data_root/<game>/<task>``). Nothing else is tried.
        * otherwise, for a task of an archive: ``$DATA_ROOT/<game>/<task>`` when the variable is
          set, then ``data_path`` (``data/game_data/<game>/<task>``), then the released code's
          ``data_root/<game>/<task>``; for other tasks ``data_path`` alone.
        """
        rel = Path(self.data.path)
        archive = self.data.archive_root
        inside = rel.relative_to(archive) if archive else None
        if data_root is not None:
            ours = Path(data_root) / (Path(*rel.parts[1:]) if rel.parts[:1] == ("data",) else rel)
            return [ours] + ([Path(data_root) / inside] if inside else [])
        if inside is None:
            return [self.data_path]
        env = os.environ.get(DATA_ROOT_ENV)
        return ([Path(env).expanduser() / inside] if env else []) + [self.data_path,
                                                                      RELEASED_DATA_DIR / inside]

    def data_dir(self, data_root: str | Path | None = None) -> Path:
        """Where this task's data is: the first of ``data_candidates`` that exists, else the
        first one (where it would be made)."""
        candidates = self.data_candidates(data_root)
        return next((c for c in candidates if c.is_dir()), candidates[0])

    def recipe(self, fold: int = 1) -> TrainRecipe:
        """Training recipe for ``fold``: the task's recipe with its ``fold_overrides`` applied."""
        check_fold(fold)
        t = copy.deepcopy(self._train)
        overrides = t.pop("fold_overrides", {}).get(str(fold), {})
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(t.get(key), dict):
                t[key] = {**t[key], **value}
            else:
                t[key] = value
        cur = t.pop("curriculum", None)
        step = t.pop("step_lr", None)
        return TrainRecipe(
            curriculum=Curriculum(**cur) if cur else None,
            step_lr=(int(step["step_size"]), float(step["gamma"])) if step else None,
            **t,
        )


# ---------------------------------------------------------------- benchmark entries
# What a benchmark model's FOLD means is decided here and nowhere else: the bulk runner, the
# FLOP and AI tables, the plots, the report and the accelerator study ask a BenchEntry.
BENCH_GROUPS = ("game", "noscope", "efficientnet")
# The benchmark's Mode labels (the CSV's Mode column), in the order tables list them.
MODES = ("Original", "Folded", "Widened", "EfficientNet")
EFFICIENTNET_PREFIX = "efficientnet-"  # benchmark names of the EfficientNet-style baselines
# The released benchmark ran an EfficientNet entry's compound-scaled network as "fold 2".
EFFICIENTNET_FOLD = 2


@dataclass(frozen=True)
class BenchVariant:
    """What MODEL + FOLD (+ do_fold) of a benchmark entry mean: the network to build and how
    many images one of its inputs holds. ``compound_steps`` > 0 only for the EfficientNet
    mode: the compound scaling's steps (phi = -steps, released: FOLD - 1)."""
    fold: int            # the benchmark's Fold column
    mode: str            # one of MODES
    build_fold: int      # fold passed to build_model
    scaling: str         # scaling passed to build_model: fold, widen or efficientnet
    compound_steps: int = 0

    @property
    def images_per_input(self) -> int:
        """Images one model input holds: f for a FoldedCNN, else 1."""
        return self.build_fold if self.scaling == "fold" else 1


@dataclass(frozen=True)
class BenchEntry:
    """One model of the inference benchmark and FLOP table (the original's naming).

    ``scaling`` is ``"fold"`` (original and FoldedCNNs) or ``"efficientnet"`` (the
    compound-scaled baseline, which the original benchmarked as "fold 2"); ``variant`` says
    what each FOLD of the entry is.
    """
    name: str          # infer.py MODEL argument, e.g. game_lol/goldnumber-fraction
    task: Task
    scaling: str
    flop_key: str      # key in config/model_map.json
    csv_name: str      # "Model" column of run_inference.sh

    @property
    def released_csv_name(self) -> str:
        """The released run_inference.sh's "Model" column: the task's short name (``coral``,
        ``sot/timer3``), for the EfficientNet-style baseline too."""
        return self.task.short_name

    @property
    def is_efficientnet(self) -> bool:
        return self.scaling == "efficientnet"

    @property
    def group(self) -> str:
        """One of BENCH_GROUPS: the task's family, or ``efficientnet`` for the baselines."""
        return "efficientnet" if self.is_efficientnet else self.task.family

    @property
    def original_name(self) -> str:
        """The benchmark name of this entry's original CNN (itself for fold entries)."""
        return self.name.removeprefix(EFFICIENTNET_PREFIX)

    @property
    def efficientnet_name(self) -> str | None:
        """The benchmark name of this task's EfficientNet-style baseline, None without one."""
        return EFFICIENTNET_PREFIX + self.original_name if self.task.efficientnet_baseline else None

    @property
    def flop_folds(self) -> tuple[int, ...]:
        """The FOLDs of this entry in the FLOP table (``og_ops``, ``fold<F>_ops``)."""
        return (1, EFFICIENTNET_FOLD) if self.is_efficientnet else (1, 2, 3, 4)

    def bench_folds(self, folds: list[int] | tuple[int, ...]) -> list[int]:
        """The scaled FOLDs this entry is compared at, of ``folds``: all of them for fold
        entries; for an EfficientNet entry only EFFICIENTNET_FOLD, asked or not (its FOLD 1 is
        the same original as its game entry's)."""
        return [EFFICIENTNET_FOLD] if self.is_efficientnet else sorted(set(folds))

    def variant(self, fold: int, do_fold: bool = True) -> BenchVariant:
        """MODEL, FOLD and do_fold as the released ``inference.py`` read them.

        Game and NoScope CNNs: FOLD 1 is the original CNN; FOLD > 1 with ``do_fold`` the
        FoldedCNN (f images per input), without it the original's interface with the folded
        widths (one image per input, K logits: mode "Widened").
        EfficientNet entries: FOLD > 1 with ``do_fold`` is the compound-scaled CNN with
        ``FOLD - 1`` scaling steps (FOLD 2 = the paper's phi = -1 baseline); FOLD 1 or no
        ``do_fold`` is the original CNN. Never folded.
        """
        check_fold(fold)
        if fold == 1 or (self.is_efficientnet and not do_fold):
            return BenchVariant(fold, "Original", 1, "fold")
        if self.is_efficientnet:
            return BenchVariant(fold, "EfficientNet", 1, "efficientnet", fold - 1)
        if not do_fold:
            return BenchVariant(fold, "Widened", fold, "widen")
        return BenchVariant(fold, "Folded", fold, "fold")


def _check_keys(where: str, got: dict, allowed: set[str], required: set[str] | None = None) -> None:
    """Unknown keys and missing ``required`` ones are errors that list the valid ones."""
    if not isinstance(got, dict):
        raise TaskError(f"{where}: expected an object with keys {sorted(allowed)}, got {got!r}")
    unknown = set(got) - allowed
    if unknown:
        raise TaskError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(allowed)}")
    missing = (required or set()) - set(got)
    if missing:
        raise TaskError(f"{where}: missing key(s) {sorted(missing)}; required: {sorted(required)}")


def _parse_data(where: str, raw: dict, family: str) -> TaskData:
    required = _DATA_REQUIRED | _DATA_REQUIRED_BY_FAMILY.get(family, set())
    _check_keys(where + " [data]", raw, _DATA_KEYS, required)
    norm = raw.get("normalize")
    if norm is not None:
        _check_keys(where + " [data.normalize]", norm, _NORMALIZE_KEYS, _NORMALIZE_KEYS)
        norm = Normalize(tuple(map(float, norm["mean"])), tuple(map(float, norm["std"])))
    per = raw.get("images_per_class")
    if per is not None:
        _check_keys(where + " [data.images_per_class]", per, _IMAGES_PER_CLASS_KEYS,
                    _IMAGES_PER_CLASS_KEYS)
        per = {split: int(n) for split, n in per.items()}
    facts = raw.get("noscope")
    if facts is not None:
        _check_keys(where + " [data.noscope]", facts, _NOSCOPE_KEYS, _NOSCOPE_KEYS)
        facts = NoScopeFacts(str(facts["object"]), int(facts["chunks"]), int(facts["first_chunk"]))
        if not 0 <= facts.first_chunk <= facts.chunks - 3:
            raise TaskError(f"{where} [data.noscope]: first_chunk {facts.first_chunk} + 3 splits "
                            f"(train, val, test) do not fit in {facts.chunks} chunks")
    optional = {"validation_images": int(raw["validation_images"])} if "validation_images" in raw else {}
    return TaskData(
        source=str(raw["source"]), path=str(raw["path"]), archive_root=raw.get("archive_root"),
        images_per_class=per, normalize=norm, augment=tuple(raw.get("augment", ())), noscope=facts,
        **optional)


def _parse(path: Path) -> Task:
    where = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TaskError(f"{where}: not valid JSON ({exc}); fix the file") from None
    _check_keys(where, raw, _TOP_KEYS)
    _check_keys(where + " [train]", raw["train"], _TRAIN_KEYS)
    if "curriculum" in raw["train"]:
        _check_keys(where + " [train.curriculum]", raw["train"]["curriculum"], _CURRICULUM_KEYS)
    if raw["family"] not in FAMILIES:
        raise TaskError(f"{where}: family {raw['family']!r} is not one of {FAMILIES}")
    if raw["train"]["optimizer"] not in OPTIMIZERS:
        raise TaskError(f"{where}: optimizer {raw['train']['optimizer']!r} is not one of {OPTIMIZERS}")
    if "classes" in raw:
        classes = tuple(raw["classes"])
        if list(classes) != sorted(set(classes)):
            raise TaskError(f"{where}: 'classes' must be unique and sorted as strings "
                            "(class folder order)")
    else:  # data sets whose class names come from the archive (CIFAR): index names
        classes = tuple(str(i) for i in range(int(raw["num_classes"])))
    expected = path.parent.relative_to(CONFIG_DIR).as_posix()
    if raw["name"] != expected:
        raise TaskError(f"{where}: name {raw['name']!r} does not match its folder {expected!r}")
    inp = raw["input"]
    return Task(
        name=raw["name"], family=raw["family"], paper_id=raw["paper_id"],
        description=raw.get("description", ""),
        in_channels=int(inp["channels"]), height=int(inp["height"]), width=int(inp["width"]),
        classes=classes, arch=raw["model"]["arch"], arch_args=dict(raw["model"].get("args", {})),
        efficientnet_baseline=bool(raw["model"].get("efficientnet_baseline", False)),
        data=_parse_data(where, raw["data"], raw["family"]), bench_name=raw.get("bench_name"),
        flop_key=raw.get("flop_key"),
        _train=raw["train"],
    )


@lru_cache(maxsize=None)
def _registry() -> dict[str, Task]:
    tasks = {}
    for path in sorted(CONFIG_DIR.rglob(DESCRIPTION_FILE)):
        task = _parse(path)
        tasks[task.name] = task
    return tasks


def task_names(family: str | None = None) -> list[str]:
    """All task names (optionally of one family), in a stable order."""
    if family is not None and family not in FAMILIES:
        raise TaskError(f"unknown family {family!r}; valid families: {', '.join(FAMILIES)}")
    return [n for n, t in _registry().items() if family is None or t.family == family]


def get_task(name: str | Task) -> Task:
    """The task called ``name``; a one-line error listing valid names otherwise."""
    if isinstance(name, Task):
        return name
    try:
        return _registry()[name]
    except KeyError:
        raise TaskError(f"unknown task {name!r}; valid tasks: {', '.join(task_names())}") from None


def check_fold(fold: int) -> int:
    """Validate a fold factor (an integer >= 1)."""
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 1:
        raise TaskError(f"bad fold {fold!r}: the fold factor must be an integer >= 1 (1 = original CNN)")
    return fold


def bench_entries(groups: Sequence[str] | None = None) -> list[BenchEntry]:
    """Models of the inference benchmark, FLOP table and AI table, in the original's order:
    game CNNs, NoScope CNNs, then the EfficientNet-style baselines of the game CNNs
    (``groups``: only those of these BENCH_GROUPS)."""
    if groups is not None:
        bad = sorted(set(groups) - set(BENCH_GROUPS))
        if bad:
            raise TaskError(f"unknown model group(s) {bad}; valid groups: {', '.join(BENCH_GROUPS)}")
    return [e for e in _bench_entries() if groups is None or e.group in groups]


@lru_cache(maxsize=None)
def _bench_entries() -> tuple[BenchEntry, ...]:
    out, effnet = [], []
    for task in _registry().values():
        if not task.bench_name:
            continue
        out.append(BenchEntry(task.bench_name, task, "fold", task.flop_key, task.flop_key))
        if task.efficientnet_baseline:
            key = EFFICIENTNET_PREFIX + task.bench_name
            effnet.append(BenchEntry(key, task, "efficientnet", key, task.flop_key))
    order = {"game": 0, "noscope": 1}
    out.sort(key=lambda e: order.get(e.task.family, 2))
    return tuple(out + effnet)


def get_bench_entry(name: str) -> BenchEntry:
    """The benchmark model called ``name`` (e.g. ``game_sot/timer3``, ``noscope_coral``)."""
    entries = {e.name: e for e in bench_entries()}
    if name not in entries:
        raise TaskError(f"unknown model {name!r}; valid models: {', '.join(entries)}")
    return entries[name]


def find_bench_entry(name: str, mode: str = "Original") -> BenchEntry:
    """The benchmark model any of its names calls (benchmark name, a CSV's Model column
    ours or released, FLOP-table key, task name): with ``mode`` "EfficientNet" the
    baseline of that model, else the model itself (an EfficientNet name stays one)."""
    for e in bench_entries():
        names = (e.name,) if e.is_efficientnet else (e.name, e.csv_name, e.released_csv_name,
                                                     e.flop_key, e.task.name)
        if name in names:
            if mode == "EfficientNet" and not e.is_efficientnet:
                if e.efficientnet_name is None:
                    raise TaskError(f"{name!r} has no EfficientNet-style baseline")
                return get_bench_entry(e.efficientnet_name)
            return e
    raise TaskError(f"unknown model {name!r}; valid models: "
                    f"{', '.join(e.name for e in bench_entries())}")
