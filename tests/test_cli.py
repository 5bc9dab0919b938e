"""``util.cli.exception_line``: what a one-line error quotes of another library's exception."""
from __future__ import annotations

import pytest

from util.cli import exception_line


@pytest.mark.parametrize("exc, typed, expected", [
    (ValueError("bad row 3\n  traceback detail"), False, "bad row 3"),
    (ValueError("bad row 3\n  traceback detail"), True, "ValueError: bad row 3"),
    (EOFError(), False, "EOFError"),  # an empty message: the type, not an IndexError
    (EOFError(), True, "EOFError"),
    (RuntimeError("\n\nsize mismatch for conv.weight"), False, "size mismatch for conv.weight"),
    (KeyError("opt"), True, "KeyError: 'opt'"),
])
def test_exception_line(exc: BaseException, typed: bool, expected: str) -> None:
    assert exception_line(exc, typed=typed) == expected


def test_exception_line_cuts_long_messages() -> None:
    assert exception_line(ValueError("x" * 500), limit=10) == "x" * 10
    assert exception_line(ValueError("x" * 500), typed=True, limit=10) == "ValueError: " + "x" * 10
