"""NoScope tasks by their short name (``coral`` for ``noscope-coral``, ``Task.short_name``),
the name every NoScope command takes, and the one error type of this package."""
from __future__ import annotations

from config.tasks import Task, TaskError, get_task, task_names


class NoScopeError(ValueError):
    """A bad label CSV, frames folder or output folder; the message is one line for the user."""


def noscope_names() -> list[str]:
    """Short names of the NoScope tasks, in registry order (``coral``, ``night``, ...)."""
    return [get_task(n).short_name for n in task_names("noscope")]


def noscope_task(short: str) -> Task:
    """The NoScope task whose short name is ``short``; a one-line error lists the valid ones."""
    tasks = {get_task(n).short_name: get_task(n) for n in task_names("noscope")}
    if short not in tasks:
        raise TaskError(f"unknown NoScope task {short!r}; valid: {', '.join(tasks)}")
    return tasks[short]
