"""The errors a training command reports as one line instead of a traceback."""
from __future__ import annotations

from config.tasks import TaskError
from datasets import DatasetError


class TrainError(RuntimeError):
    """A user-facing training problem (corrupt checkpoint, missing teacher...); one line."""


USER_ERRORS = (TaskError, DatasetError, TrainError)
