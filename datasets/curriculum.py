"""Curriculum learning for folded game-scraping CNNs (paper section 4).

A folded model (f > 1) with a curriculum in its recipe starts with ``max(f, K // 10)``
classes and gains ``max(K // 10, 1)`` more every 60 epochs (lol/timer-minutes at f = 4:
starts with ``max(f, K // 20)`` and gains ``K // 20`` every 120), in sorted class-name order, i.e. the first ``n`` of
``task.classes``. The numbers come from ``task.recipe(fold).curriculum``; the original
(f = 1) and tasks without a curriculum always see every class. A run of ``epochs`` other
than the recipe's follows the same schedule on a proportionally scaled time axis, so a short
run still spends the same share of training before every class is active.
"""
from __future__ import annotations

from config.tasks import Task, get_task


class CurriculumSchedule:
    """Which classes are active in each epoch, for train and evaluation splits alike."""

    def __init__(self, task: Task | str, fold: int, epochs: int | None = None) -> None:
        self.task = get_task(task)
        self.fold = fold
        recipe = self.task.recipe(fold)
        self.curriculum = recipe.curriculum if fold > 1 else None
        self.num_classes = self.task.num_classes
        self.recipe_epochs = recipe.epochs
        self.epochs = epochs or recipe.epochs  # the run's length

    def _recipe_epoch(self, epoch: int) -> int:
        return epoch * self.recipe_epochs // self.epochs

    @property
    def enabled(self) -> bool:
        return self.curriculum is not None

    def active_classes(self, epoch: int) -> int:
        """Number of active classes in ``epoch`` (0-based): the first n of ``task.classes``."""
        if self.curriculum is None:
            return self.num_classes
        return self.curriculum.classes_at(self._recipe_epoch(epoch), self.num_classes, self.fold)

    def next_change(self, epoch: int) -> int | None:
        """First epoch after ``epoch`` with more active classes, or None."""
        now = self.active_classes(epoch)
        if self.curriculum is None or now >= self.num_classes:
            return None
        return next((e for e in range(epoch + 1, self.epochs) if self.active_classes(e) > now), None)

    def describe(self, epoch: int) -> str:
        """One line for logs, e.g. ``curriculum: 4/11 classes (next +1 at epoch 60)``."""
        n = self.active_classes(epoch)
        nxt = self.next_change(epoch)
        if self.curriculum is None:
            return f"curriculum: off, all {n} classes"
        if nxt is None:
            return f"curriculum: {n}/{self.num_classes} classes (complete)"
        return (f"curriculum: {n}/{self.num_classes} classes "
                f"(next +{self.active_classes(nxt) - n} at epoch {nxt})")
