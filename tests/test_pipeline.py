"""util/pipeline.py (the README's main job): its resumable steps, and that every script of the
repository at least compiles (a syntax error in a script no test imports once reached main)."""
import py_compile
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from util import pipeline


def test_every_python_file_compiles(tmp_path):
    files = [p for p in REPO.rglob("*.py") if not {".venv", ".git", ".scratch"} & set(p.relative_to(REPO).parts)]
    assert len(files) > 30
    for path in files:
        py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_pipeline_help():
    p = run_cli("util/pipeline.py", "--help")
    assert p.returncode == 0 and "savedir" in p.stdout


def test_step_marks_success_and_skips_it_next_time(tmp_path, capsys):
    out = tmp_path / "out.txt"
    pipeline.step("say hi", tmp_path, [sys.executable, "-c", "print('hi')"], stdout_to=out)
    assert out.read_text() == "hi\n" and (tmp_path / ".done-say-hi").exists()
    pipeline.step("say hi", tmp_path, [sys.executable, "-c", "raise SystemExit(3)"], stdout_to=out)
    assert "done already" in capsys.readouterr().out and out.read_text() == "hi\n"


@pytest.mark.parametrize("capture", [False, True])
def test_failed_step_is_one_line_and_leaves_no_marker_or_partial_output(tmp_path, capture):
    out = tmp_path / "out.txt" if capture else None
    with pytest.raises(SystemExit) as exc:
        pipeline.step("bad", tmp_path, [sys.executable, "-c", "print('partial'); raise SystemExit(3)"],
                      stdout_to=out)
    assert str(exc.value) == ("error: step 'bad' failed (exit 3); fix it and re-run the same command "
                              "to continue")
    assert not (tmp_path / ".done-bad").exists()
    assert not any(p.name.startswith("out") for p in Path(tmp_path).iterdir())
