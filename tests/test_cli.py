"""``util.cli.exception_line``: what a one-line error quotes of another library's exception."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

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


def _commands() -> list[str]:
    """Every script with a ``__main__`` body: the top-level commands, util/*.py, model_files'."""
    files = [*REPO.glob("*.py"), *REPO.glob("util/*.py"), *REPO.glob("model_files/**/*.py")]
    return sorted(str(p.relative_to(REPO)) for p in files
                  if 'if __name__ == "__main__":' in p.read_text())


def test_the_command_list_is_complete() -> None:
    assert {"train.py", "fold_trainer.py", "infer.py", "ai.py", "util/flop_count.py",
            "util/pipeline.py", "util/report.py"} <= set(_commands())


@pytest.mark.parametrize("script", _commands())
def test_every_command_prints_its_manual_from_any_folder(script: str, tmp_path: Path) -> None:
    """``python3 path/to/script.py --help`` works from another folder without PYTHONPATH (the
    scripts put the repository on sys.path themselves)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-500:]
    assert p.stdout.startswith("usage:"), p.stdout[:200]


@pytest.mark.parametrize("script", _commands())
def test_no_manual_line_is_joined_by_a_backslash(script: str) -> None:
    """A shell continuation (one backslash) ending a line of a non-raw docstring joins the next
    line onto it in ``--help``; the manual's examples must spell it as two."""
    source = (REPO / script).read_text()
    first = ast.parse(source).body[0]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant), f"{script}: no docstring"
    segment = ast.get_source_segment(source, first)
    if segment.lower().startswith(("r'", 'r"')):
        return
    joined = [line for line in segment.splitlines() if (len(line) - len(line.rstrip("\\"))) % 2]
    assert not joined, f"{script}: its docstring line {joined[0]!r} ends in a single backslash"
