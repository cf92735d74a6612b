"""The course as homework: the students' copies give nothing away, the grader gives the teacher's lessons full
points and the students' copies none, and each typical mistake loses exactly its part's points, with a message
that points at it. Also: a notebook stops at a failed check, and a student's copy runs from any folder."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinygan.cli import main
from tinygan.course import checks, grade, parts, probes, registry
from tinygan.course.lesson import Lesson, LessonFailed

ROOT = Path(__file__).resolve().parents[1]
TEACHER = grade.lesson_files()
POINTS = {part: points for text in TEACHER.values() for part, (points, _) in parts.parts_of(text).items()}

# A typical mistake per part: (lesson, part, the teacher's line(s), the student's, words the grader must say)
MISTAKES = [
    ("04_conv_im2col", "conv_backward", "dcols.transpose(3, 0, 1, 2, 4, 5)", "dcols.transpose(3, 0, 2, 1, 4, 5)",
     "each kernel transposed (u and v swapped)"),
    ("02_linear_gradcheck", "linear_backward", "self.db += G.sum(axis=0)", "self.db += G.mean(axis=0)",
     "the mean over the batch"),
    ("06_batchnorm", "batchnorm_backward", "        return scale * (g - g.mean(axis=(0, 2, 3), keepdims=True)\n"
     "                        - xhat * (g * xhat).mean(axis=(0, 2, 3), keepdims=True))", "        return scale * g",
     "both mean terms belong in dL/dx"),
    ("08_adam_vs_sgd", "adam_step", "m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)", "m_hat, v_hat = m, v",
     "Adam without its bias correction"),
    ("13_train_gan", "g_step", "    g_loss = loss(g_logits, 1.0)\n    G.backward(D.backward(loss.backward()), "
     "need_input_grad=False)", "    g_loss = -loss(g_logits, 0.0)\n    G.backward(D.backward(-loss.backward()), "
     "need_input_grad=False)", "the saturating loss"),
    ("07_bce_logits", "bce_with_logits", "return (xp.maximum(x, 0) - t * x + xp.log1p(xp.exp(-xp.abs(x)))).mean()",
     "return (-t * xp.log(sigmoid(x)) - (1 - t) * xp.log(1 - sigmoid(x))).mean()", "inf"),
    ("14_explore_generator", "input_gradient", "grad = D.backward(backend.xp.ones_like(logits))",
     "grad = D.backward(backend.xp.ones_like(logits) / len(logits))", "the mean of the logits"),
    ("17_find_a_photo", "project_pixels", "        z.data = z.data * (nz ** 0.5 / length)",
     "        z.data = z.data", "goes back onto the sphere"),
]


def folder_of(tmp_path, texts, name="student"):
    folder = tmp_path / name
    folder.mkdir()
    for lesson, text in texts.items():
        (folder / f"{lesson}.py").write_text(text)
    return folder


def points_of(grades):
    return {g.part: g.points for g in grades}



def test_the_registry_and_the_lessons_markers_name_the_same_parts():
    marked = {part: name for name, text in TEACHER.items() for part in parts.parts_of(text)}
    assert marked == {part.name: part.lesson for part in registry.PARTS.values()}
    assert set(probes.PARTS) == set(checks.CHECKS) == set(registry.PARTS)
    assert registry.forbidden("im2col") and registry.needs("conv_backward") == ("im2col",)
    assert registry.forbidden("not a part") == () == registry.needs("not a part")

def test_the_lessons_mark_the_parts_a_course_asks_for():
    assert set(POINTS) >= {"linear_backward", "im2col", "conv_backward", "conv_transpose_forward",
                           "batchnorm_backward", "bce_with_logits", "adam_step", "d_step", "g_step"}
    assert all(hint for text in TEACHER.values() for _, hint in parts.parts_of(text).values())


def test_assign_writes_every_lesson_without_its_solutions(tmp_path):
    written = grade.assign(tmp_path / "hw")
    lessons = sorted(ROOT.glob("lessons/[0-9][0-9]_*.py"))
    assert len(written) == 2 * len(lessons)
    for lesson in lessons:
        student = (tmp_path / "hw" / lesson.name).read_text()
        teacher = lesson.read_text()
        leaked = [line for line in parts.solution_lines(teacher) if line in student]
        assert not leaked, (lesson.name, leaked)
        notebook = json.loads((tmp_path / "hw" / f"{lesson.stem}.ipynb").read_text())
        assert notebook["nbformat"] == 4 and notebook["metadata"]["kernelspec"]["name"] == "python3"
        code = "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
        assert not [line for line in parts.solution_lines(teacher) if line in code]
        for part, (points, hint) in parts.parts_of(teacher).items():
            assert f"### BEGIN PART {part} ({points} points)" in student and hint.split()[0] in student
            assert f'raise NotImplementedError("part {part}:' in student
    with pytest.raises(ValueError, match="exists and may hold a student's work"):
        grade.assign(tmp_path / "hw", ["02"])                      # nothing a student wrote is overwritten


def test_the_teachers_copy_scores_full_points_and_the_students_none(tmp_path):
    full = grade.grade(ROOT / "lessons")
    assert points_of(full) == POINTS and all(g.message == "passed" for g in full)
    grade.assign(tmp_path / "hw")
    empty = grade.grade(tmp_path / "hw")
    assert [g.points for g in empty] == [0] * len(POINTS)
    assert all("not done yet" in g.message for g in empty)


def test_filling_each_blank_with_its_solution_gives_full_points(tmp_path):
    students = {lesson: parts.student_version(text) for lesson, text in TEACHER.items()}
    for part in POINTS:                                           # one part filled at a time: only it scores
        filled = {lesson: splice_one(text, TEACHER[lesson], part) for lesson, text in students.items()}
        got = points_of(grade.grade(folder_of(tmp_path, filled, part)))
        assert got == {p: POINTS[p] if p == part else 0 for p in POINTS}, part
    every = {lesson: parts.splice(text, TEACHER[lesson], keep="") for lesson, text in students.items()}
    assert points_of(grade.grade(folder_of(tmp_path, every, "all"))) == POINTS


def splice_one(student, teacher, part):
    """The student's copy with only ``part`` filled in from the teacher's solution."""
    mine, theirs = parts.find_regions(student), parts.find_regions(teacher)
    lines, teacher_lines = student.split("\n"), teacher.split("\n")
    for own, solution in reversed(list(zip(mine, theirs))):
        if own.part == part:
            lines[own.code:own.end] = teacher_lines[solution.code:solution.end]
    return "\n".join(lines)


@pytest.mark.parametrize("lesson, part, right, wrong, words", MISTAKES, ids=[m[1] for m in MISTAKES])
def test_a_typical_mistake_loses_exactly_its_parts_points(tmp_path, lesson, part, right, wrong, words):
    text = TEACHER[lesson]
    assert text.count(right) == 1
    grades = grade.grade(folder_of(tmp_path, {lesson: text.replace(right, wrong)}))   # the other lessons: no file
    assert points_of(grades) == {p: 0 if p == part or p not in parts.parts_of(text) else POINTS[p] for p in POINTS}
    message = next(g.message for g in grades if g.part == part)
    assert words in message, message


def test_a_wrong_gradient_says_which_entries_and_where(tmp_path):
    lesson, part, right, wrong, _ = MISTAKES[0]
    grades = grade.grade(folder_of(tmp_path, {lesson: TEACHER[lesson].replace(right, wrong)}))
    message = next(g.message for g in grades if g.part == part)
    assert "dL/dx (k=3 s=1 p=1)" in message and "entries wrong" in message and "largest error is at" in message
    assert "largest error per channel" in message
    assert "dL/dW" not in message and "dL/db" not in message                    # those were right


def test_an_endless_loop_or_a_crash_costs_that_part_only(tmp_path):
    text = TEACHER["04_conv_im2col"]
    looping = text.replace("    n, c, h, w = x.shape\n    ho, wo", "    while True:\n        pass\n    ho, wo", 1)
    grades = grade.grade(folder_of(tmp_path, {"04_conv_im2col": looping}), timeout=15)   # ample on a busy CPU
    assert points_of(grades)["im2col"] == 0 and points_of(grades)["conv_backward"] == POINTS["conv_backward"]
    assert "took more than 15 s" in next(g.message for g in grades if g.part == "im2col")
    crashing = TEACHER["08_adam_vs_sgd"].replace("    m = b1 * m + (1 - b1) * g\n", "    m = b1 * m + (1 - b1) * q\n")
    grades = grade.grade(folder_of(tmp_path, {"08_adam_vs_sgd": crashing}, "crash"))
    message = next(g.message for g in grades if g.part == "adam_step")
    assert "NameError" in message and "line" in message and "m = b1 * m + (1 - b1) * q" in message


def test_calling_the_library_instead_of_writing_the_part_scores_nothing(tmp_path):
    text = TEACHER["04_conv_im2col"]
    start = text.index("    n, c, h, w = x.shape\n    ho, wo")
    end = text.index("    return cols\n") + len("    return cols\n")
    cheating = text[:start] + "    return nn.reference.im2col(x, (k, k), (s, s), (p, p))\n" + text[end:]
    grades = grade.grade(folder_of(tmp_path, {"04_conv_im2col": cheating}))
    message = next(g.message for g in grades if g.part == "im2col")
    assert points_of(grades)["im2col"] == 0 and "tinygan.nn.reference.im2col" in message


def test_a_notebook_newer_than_the_script_is_graded(tmp_path):
    grade.assign(tmp_path / "hw", ["02"])
    notebook_path = tmp_path / "hw" / "02_linear_gradcheck.ipynb"
    notebook = json.loads(notebook_path.read_text())
    solved = parts.to_notebook(TEACHER["02_linear_gradcheck"].replace("BEGIN SOLUTION", "BEGIN PART")
                               .replace("END SOLUTION", "END PART"))
    notebook["cells"] = solved["cells"]
    notebook_path.write_text(json.dumps(notebook))
    os.utime(notebook_path, (notebook_path.stat().st_atime, (tmp_path / "hw" / "02_linear_gradcheck.py").stat()
                             .st_mtime + 10))
    grades = [g for g in grade.grade(tmp_path / "hw") if g.lesson == "02_linear_gradcheck"]
    assert [g.points for g in grades] == [POINTS["linear_backward"]]
    # the work done in the script, and the untouched notebook saved later by Jupyter: the script is graded
    script = tmp_path / "hw" / "02_linear_gradcheck.py"
    script.write_text(TEACHER["02_linear_gradcheck"])
    notebook_path.write_text(json.dumps(parts.to_notebook(parts.student_version(TEACHER["02_linear_gradcheck"]))))
    os.utime(notebook_path, (notebook_path.stat().st_atime, script.stat().st_mtime + 10))
    grades = [g for g in grade.grade(tmp_path / "hw") if g.lesson == "02_linear_gradcheck"]
    assert [g.points for g in grades] == [POINTS["linear_backward"]]


def test_a_broken_notebook_costs_its_lesson_only(tmp_path):
    folder = folder_of(tmp_path, {"08_adam_vs_sgd": TEACHER["08_adam_vs_sgd"]})
    (folder / "02_linear_gradcheck.ipynb").write_text("{ not json")
    got = {g.part: (g.points, g.message) for g in grade.grade(folder)}
    assert got["adam_step"][0] == POINTS["adam_step"]
    assert got["linear_backward"][0] == 0 and "is not a Jupyter notebook" in got["linear_backward"][1]


def test_the_command_line_prints_the_table_the_total_and_a_csv(tmp_path, capsys):
    assert main(["course", "assign", "--out", str(tmp_path / "a"), "02", "08_adam_vs_sgd"]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "02_linear_gradcheck.ipynb", "02_linear_gradcheck.py", "08_adam_vs_sgd.ipynb", "08_adam_vs_sgd.py"]
    (tmp_path / "class").mkdir()
    folder_of(tmp_path / "class", {"02_linear_gradcheck": TEACHER["02_linear_gradcheck"]}, "ada")
    folder_of(tmp_path / "class", {"08_adam_vs_sgd": TEACHER["08_adam_vs_sgd"]}, "bob")
    capsys.readouterr()
    assert main(["course", "grade", str(tmp_path / "class"), "--csv", str(tmp_path / "grades.csv")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "== ada ==" in out and "== bob ==" in out and out[-1] == f"total: 2 / {sum(POINTS.values())} points"
    rows = (tmp_path / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,lesson,part,points") and len(rows) == 1 + 2 * len(POINTS)
    assert main(["course", "assign", "--out", str(tmp_path / "b"), "99"]) == 2
    assert "no lesson named 99" in capsys.readouterr().err


def test_a_failed_check_stops_a_notebook(monkeypatch, tmp_path, capsys):
    from tinygan.course import lesson as lesson_module
    monkeypatch.setattr(lesson_module, "in_notebook", lambda: True)
    lesson = Lesson("99_test", "A test lesson.")
    monkeypatch.setenv("TINYGAN_LESSON_ARGS", f"--out {tmp_path}")
    lesson.parse()
    lesson.check("one plus one", 3, False, "should be 2")
    with pytest.raises(LessonFailed, match="1 check\\(s\\) FAILED: one plus one"):
        lesson.finish()


def test_a_students_notebook_runs_from_any_folder(tmp_path):
    """The code cells of a student's notebook, run as Jupyter would (no __file__, the notebook's own folder as the
    working directory, far from lessons/): a finished lesson passes, an unfinished one stops at its stub."""
    grade.assign(tmp_path / "hw", ["02"])
    notebook = json.loads((tmp_path / "hw" / "02_linear_gradcheck.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    solved = parts.splice(code, TEACHER["02_linear_gradcheck"], keep="")
    runner = ("import sys; source = sys.stdin.read(); sys.modules['ipykernel'] = type(sys)('ipykernel'); "
              "exec(compile(source, '<notebook>', 'exec'), {'__name__': '__main__', '__doc__': None})")
    env = {**os.environ, "TINYGAN_LESSON_ARGS": "--quick --out out", "MPLBACKEND": "Agg"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", runner], input=solved, text=True, capture_output=True,
                          cwd=tmp_path / "hw", env=env, timeout=300)
    assert done.returncode == 0 and "all checks passed" in done.stdout, done.stderr[-2000:]
    stopped = subprocess.run([sys.executable, "-c", runner], input=code, text=True, capture_output=True,
                             cwd=tmp_path / "hw", env=env, timeout=300)
    assert stopped.returncode != 0 and "NotImplementedError: part linear_backward" in stopped.stderr


def test_a_bad_flag_in_a_notebook_names_the_variable(monkeypatch, tmp_path):
    from tinygan.course import lesson as lesson_module
    from tinygan.course.lesson import LessonStopped
    monkeypatch.setattr(lesson_module, "in_notebook", lambda: True)
    monkeypatch.setenv("TINYGAN_LESSON_ARGS", f"--out {tmp_path} --bogus")
    with pytest.raises(LessonStopped) as info:
        Lesson("13_train_gan", "A test lesson.").parse()
    assert "TINYGAN_LESSON_ARGS=" in str(info.value) and "--bogus" in str(info.value) and "--quick" in str(info.value)
    assert info.value._render_traceback_() == [f"LessonStopped: {info.value}"]      # IPython: one line, no traceback
    monkeypatch.setenv("TINYGAN_LESSON_ARGS", f"--out {tmp_path} --quick")
    assert Lesson("99_test", "A test lesson.").parse().quick


def test_ipython_lines_are_skipped_only_where_a_statement_starts():
    cell = "%matplotlib inline\nif (a\n        != b):\n    %time f()\ns = \"\"\"\n%d items\n\"\"\"\n!ls"
    lines = parts.python_of_cell(cell).split("\n")
    assert [i for i, line in enumerate(lines) if parts.SKIPPED in line] == [0, 3, 7]
    assert parts.python_of_cell("x = (1\n     % 2)") == "x = (1\n     % 2)"      # Python already: untouched
