"""How every command ends: the one ``if __name__ == "__main__":`` body of ``train.py``, ``infer.py``,
``util/*.py`` and the rest.

A user's mistake (a typo'd task name, a missing file) ends the command with one line on stderr and
no traceback, which the tests check through ``tests/conftest.py:assert_one_line_error``; anything
else is a bug and keeps its traceback::

    if __name__ == "__main__":
        run_command(main, get_args_parser, errors=(TaskError, OSError))

A library that turns someone else's exception into its own one-line error quotes it with
``exception_line``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, NoReturn

ErrorTypes = tuple[type[BaseException], ...]


def run_command(main: Callable[[argparse.Namespace], Any],
                get_args_parser: Callable[[], argparse.ArgumentParser],
                errors: ErrorTypes | Callable[[], ErrorTypes] = (), *,
                prog: str | None = None, interrupted: str | None = None,
                returns_status: bool = False) -> NoReturn:
    """Parse argv, run ``main(args)`` and exit.

    ``errors``: the user-error types (or a function giving them, asked only once one is raised, for
    a command that imports its libraries lazily); one of them ends the command with the line
    ``error: MESSAGE`` and status 1, or with ``prog``, ``PROG: error: MESSAGE`` and status 2, as
    argparse reports a bad option. ``interrupted``: the line that Ctrl-C (or SIGTERM under
    ``util.training.interrupt.sigterm_as_ctrl_c``) ends the command with, status 1; without it
    Ctrl-C keeps Python's traceback. ``returns_status``: ``main`` returns the exit status (None is
    0); otherwise its return value is for callers in Python (tests) and the status is 0."""
    try:
        result = main(get_args_parser().parse_args())
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        sys.exit(interrupted)
    except Exception as exc:
        if not isinstance(exc, errors() if callable(errors) else errors):
            raise
        if prog is None:
            sys.exit(f"error: {exc}")
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(result if returns_status else 0)


def exception_line(exc: BaseException, *, typed: bool = False, limit: int = 200) -> str:
    """What a one-line error quotes of a library's exception: the first line of its message, cut to
    ``limit`` characters (``typed``: after ``TypeName: ``), or the type's name when the message is
    empty (``str(EOFError())`` is ``""``, so indexing its first line would raise instead)."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:limit] if lines else ""
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}" if typed else text
