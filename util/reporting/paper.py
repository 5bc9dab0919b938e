"""The paper's reported results (``config/paper_results.json``), looked up by OUR task names.

Why a data file: the report, tests and docs compare against the same numbers, so they are
written once, with their source (Kosaian et al., ICML 2021; V100, TensorRT, FP16, batch
1024). Every task entry carries the paper's name for it (``V1`` .. ``V6``, ``N1`` .. ``N4``,
``CIFAR-10``, ``CIFAR-100``), which must equal the task's ``paper_id`` in the registry.

Print the table: ``python3 util/paper.py``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from config.tasks import CONFIG_DIR, TaskError, check_fold, get_task

PAPER_RESULTS = CONFIG_DIR / "paper_results.json"


@lru_cache(maxsize=None)
def load_paper_results(path: Path = PAPER_RESULTS) -> dict[str, Any]:
    """The parsed JSON; a one-line TaskError if it is missing or broken."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TaskError(f"{path} is missing; restore it from git (git checkout -- {path})") from None
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path}: not valid JSON ({exc}); fix the file") from None
    for name, entry in data.get("tasks", {}).items():
        task = get_task(name)  # unknown names are errors listing the valid ones
        if entry.get("paper_id") != task.paper_id:
            raise TaskError(f"{path}: task {name!r} has paper_id {entry.get('paper_id')!r} but the "
                            f"registry says {task.paper_id!r}; make them agree")
    return data


def paper_entry(task_name: str) -> dict[str, Any] | None:
    """The paper's entry for a task of the registry, or None when the paper does not report it."""
    task = get_task(task_name)
    return load_paper_results()["tasks"].get(task.name)


def _per_fold(task_name: str, fold: int, key: str) -> float | None:
    check_fold(fold)
    entry = paper_entry(task_name)
    if entry is None:
        return None
    value = entry.get(key, {}).get(str(fold))
    return None if value is None else float(value)


def paper_accuracy(task_name: str, fold: int) -> float | None:
    """The paper's test top-1 accuracy (%) of ``task_name`` at fold ``fold`` (1 = original)."""
    return _per_fold(task_name, fold, "accuracy")


def paper_speedup(task_name: str, fold: int) -> float | None:
    """The paper's throughput speedup of the FoldedCNN over the original (V100, TensorRT, FP16,
    batch 1024); 1.0 for ``fold == 1`` when the paper reports the task at all."""
    if check_fold(fold) == 1:
        entry = paper_entry(task_name)
        return 1.0 if entry and entry.get("speedup") else None
    return _per_fold(task_name, fold, "speedup")


def paper_id(task_name: str) -> str:
    """The paper's name of a task (``V1``, ``N3``, ``CIFAR-10``)."""
    return get_task(task_name).paper_id


def paper_citation() -> str:
    return load_paper_results()["source"]["citation"]


def paper_inference_setting() -> dict[str, Any]:
    return dict(load_paper_results()["source"]["inference_setting"])


def paper_fact(key: str) -> dict[str, Any]:
    """One of the non-task sections: ``efficientnet_baseline``, ``arithmetic_intensity``,
    ``order_agreement`` (the band-limited paper's results: ``paper_band_limited``)."""
    data = load_paper_results()
    other = ("tasks", "source", "_comment", "band_limited")
    if key not in data or key in other:
        valid = [k for k in data if k not in other]
        raise TaskError(f"unknown paper fact {key!r}; valid: {', '.join(valid)}")
    return dict(data[key])


def paper_band_limited(task_name: str) -> dict[str, Any] | None:
    """The band-limited CNN paper's result for a task (Dziedzic et al., ICML 2019), or None:
    ``{"network": ..., "accuracy": {compress rate (float): test top-1 (%)}, "note": ...}``."""
    task = get_task(task_name)
    entry = load_paper_results().get("band_limited", {}).get("tasks", {}).get(task.name)
    if entry is None:
        return None
    if entry.get("paper_id") != task.paper_id:
        raise TaskError(f"{PAPER_RESULTS}: band_limited task {task.name!r} has paper_id "
                        f"{entry.get('paper_id')!r} but the registry says {task.paper_id!r}")
    return {"network": entry["network"], "note": entry.get("note", ""),
            "accuracy": {float(k): float(v) for k, v in entry["accuracy"].items()}}


def band_limited_source() -> dict[str, str]:
    """Citation, recipe and timing remark of the band-limited CNN paper."""
    entry = load_paper_results().get("band_limited", {})
    return {k: entry[k] for k in ("citation", "recipe", "timing") if k in entry}
