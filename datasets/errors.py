"""The one error type of the data package: a missing, corrupt or mislaid data set."""
from __future__ import annotations


class DatasetError(ValueError):
    """A data set problem the user can fix; the message is one line that says how."""
