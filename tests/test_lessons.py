"""The course: every lesson runs on its own in --quick mode, and lessons/README.md lists exactly the lessons.

Each lesson runs as a separate process (``sys.executable``), from a temporary working directory, the way a
student runs it. It must exit 0, which means all of its printed checks passed, and it must write at least
one PNG into ``--out``.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))

# One BLAS thread. The lessons' matrices are small, and on a busy 2-core machine a multithreaded
# OpenBLAS spends its time waiting for its own threads: lesson 09 --quick took 25 s with 2 threads and
# 3 s with 1 while a training run shared the CPU.
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run_lesson(lesson, tmp_path, *flags, env=ENV):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(lesson), "--backend", "numpy", "--out", str(out), *flags],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return result, out


def report(result):
    return (f"exit status {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n"
            f"--- stderr ---\n{result.stderr[-4000:]}")


def test_the_lessons_are_numbered_01_to_17():
    assert [p.name[:2] for p in LESSONS] == [f"{i:02d}" for i in range(1, 18)]


def cells(path):
    """A percent-format script's cells: (kind, source), split at the lines that start with '# %%'."""
    found, kind, lines = [], "code", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            found.append((kind, "\n".join(lines)))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    found.append((kind, "\n".join(lines)))
    return found


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_every_lesson_opens_as_a_notebook_whose_cells_each_compile(lesson):
    """Jupyter (jupytext), VS Code and PyCharm split a percent-format script at '# %%' lines."""
    found = cells(lesson)
    kinds = [kind for kind, _ in found]
    assert kinds.count("markdown") >= 2 and kinds.count("code") >= 3, kinds
    for number, (kind, source) in enumerate(found):
        if kind == "markdown":
            assert all(not line.strip() or line.startswith("#") for line in source.splitlines()), \
                f"{lesson.name}, markdown cell {number}: every line must be a comment"
        compile(source, f"{lesson.name}, cell {number}", "exec")      # raises SyntaxError if a cell is cut badly


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_lesson_quick_mode_passes_its_checks_and_writes_a_figure(lesson, tmp_path):
    result, out = run_lesson(lesson, tmp_path, "--quick")
    assert result.returncode == 0, report(result)
    assert "all checks passed" in result.stdout, report(result)
    assert list(out.glob("*.png")), f"{lesson.name} wrote no PNG into {out}\n" + report(result)


def test_quick_mode_without_data_draws_synthetic_faces(tmp_path):
    env = dict(ENV, TINYGAN_DATA="")
    result, out = run_lesson(LESSONS_DIR / "11_data_pipeline.py", tmp_path, "--quick", "--data",
                             str(tmp_path / "no_such_data.tar"), env=env)
    assert result.returncode == 0, report(result)
    assert "synthetic faces" in result.stdout
    assert len(list((out / "synthetic_faces").glob("*.jpg"))) == 100


def test_full_mode_without_data_says_how_to_get_celeba(tmp_path):
    env = dict(ENV, TINYGAN_DATA="")
    result, out = run_lesson(LESSONS_DIR / "04_conv_im2col.py", tmp_path, "--data", str(tmp_path / "nothing"), env=env)
    assert result.returncode != 0
    assert "CelebA" in result.stderr and "--data" in result.stderr


def test_readme_lists_exactly_the_lessons():
    readme = (LESSONS_DIR / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\b(\d\d_[a-z0-9_]+\.py)\b", readme))
    present = {path.name for path in LESSONS}
    assert listed - present == set(), f"README.md lists lessons that do not exist: {sorted(listed - present)}"
    assert present - listed == set(), f"lessons missing from README.md: {sorted(present - listed)}"


SILENT_CALLS = {"print", "lesson.check", "lesson.check_gradients", "lesson.save_grid", "lesson.save_figure",
                "lesson.show", "lesson.finish"}


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_no_notebook_cell_ends_in_a_value_jupyter_would_show(lesson):
    """A cell whose last line is an expression shows its value as Out[]: a docstring, a True from a check, a path
    from a save. Every cell ends in a statement, or in a call that returns None (the lesson's own helpers
    included: they may not return a value)."""
    import ast
    found = cells(lesson)
    tree = ast.parse(lesson.read_text(encoding="utf-8"))
    silent = SILENT_CALLS | {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and not any(
        isinstance(inner, ast.Return) and inner.value is not None for inner in ast.walk(node))}
    for number, (kind, source) in enumerate(found):
        body = ast.parse(source).body if kind == "code" else []
        if body and isinstance(body[-1], ast.Expr):
            value = body[-1].value
            called = ast.unparse(value.func) if isinstance(value, ast.Call) else None
            assert called in silent, f"{lesson.name}, cell {number} ends in {ast.unparse(value)[:60]!r}"
    from tinygan.course.lesson import Lesson
    for method in ("check", "check_gradients", "save_grid", "save_figure", "show", "finish"):
        returns = [n for n in ast.walk(ast.parse(inspect_source(getattr(Lesson, method))))
                   if isinstance(n, ast.Return) and n.value is not None]
        assert not returns, f"Lesson.{method} returns a value"


def inspect_source(function):
    import inspect
    import textwrap
    return textwrap.dedent(inspect.getsource(function))
