"""The course as homework: ``python -m tinygan course assign`` and ``python -m tinygan course grade``.

    python -m tinygan course assign --out homework            # the students' copies of every lesson (.py, .ipynb)
    python -m tinygan course grade homework                   # a table of parts and points; the last line the total
    python -m tinygan course grade submissions/* --csv grades.csv     # one folder per student

``assign`` writes each lesson with its marked parts stubbed (parts.py), as a script and as a notebook. ``grade``
finds each lesson in a folder (the newer of script and notebook that holds work), and runs the checks of each part
(checks.py) in a process of its own with a time limit: an endless loop or a crash costs that part only. Every
other part of the lesson is replaced by the teacher's solution for that run, so a part is graded on its own.
A part that names the library's own implementation of the same thing gets no points, and the table says so.
"""
import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import parts

LESSONS = Path(__file__).resolve().parents[2] / "lessons"
TIMEOUT = 60                           # seconds for one part's checks


@dataclass
class Grade:
    student: str
    lesson: str
    part: str
    points: int
    max_points: int
    message: str                       # "passed", or what failed: one line, then the details

    @property
    def passed(self):
        return self.points == self.max_points


def lesson_files(folder=LESSONS):
    """{lesson name: teacher's text} of the lessons with marked parts, in order."""
    found = {}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.py")):
        text = path.read_text(encoding="utf-8")
        if parts.find_regions(text, path.name):
            found[path.stem] = text
    return found


# --- assign ------------------------------------------------------------------------------------------------

def assign(out, names=None, teacher=LESSONS):
    """Write the students' copy of every lesson (or of those in ``names``) into ``out``: .py and .ipynb.

    Refuses to write over a file that is there already (it may hold a student's work). Returns the paths."""
    out = Path(out)
    sources = sorted(Path(teacher).glob("[0-9][0-9]_*.py"))
    if names:
        wanted = {name.removesuffix(".py") for name in names}
        unknown = wanted - {p.stem for p in sources} - {p.stem[:2] for p in sources}
        if unknown:
            raise ValueError(f"no lesson named {', '.join(sorted(unknown))} in {teacher} "
                             f"(expected names like 02 or 02_linear_gradcheck)")
        sources = [p for p in sources if p.stem in wanted or p.stem[:2] in wanted]
    targets = [out / f"{p.stem}{suffix}" for p in sources for suffix in (".py", ".ipynb")]
    taken = [t for t in targets if t.exists()]
    if taken:
        raise ValueError(f"{taken[0]} exists and may hold a student's work; choose another --out or remove it "
                         f"({len(taken)} such file{'s' * (len(taken) > 1)})")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        student = parts.student_version(path.read_text(encoding="utf-8"), path.name)
        (out / f"{path.stem}.py").write_text(student, encoding="utf-8")
        (out / f"{path.stem}.ipynb").write_text(json.dumps(parts.to_notebook(student), indent=1) + "\n",
                                                encoding="utf-8")
        written += [out / f"{path.stem}.py", out / f"{path.stem}.ipynb"]
    return written


# --- grade -------------------------------------------------------------------------------------------------

def student_text(folder, lesson):
    """(text, file) of a student's lesson, or (None, None) if there is none.

    Of the script and the notebook, the newer one that holds any work: a notebook that Jupyter saved after
    the work was done in the script still holds only stubs, and is passed over."""
    found = []
    for path in (Path(folder) / f"{lesson}.py", Path(folder) / f"{lesson}.ipynb"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            text = parts.from_notebook(text, str(path)) if path.suffix == ".ipynb" else text
            try:
                worked = any(not parts.is_stub(text, part) for part in parts.parts_of(text, str(path)))
            except ValueError:                          # broken markers: graded, and the grader says so
                worked = True
            found.append((worked, path.stat().st_mtime, text, path))
    if not found:
        return None, None
    _, _, text, path = max(found, key=lambda f: f[:2])
    return text, path


def run_checks(part, source, filename, timeout):
    """The checks of one part in a fresh Python process: (list of check dicts, or None, and why not)."""
    command = [sys.executable, "-m", "tinygan.course.checks", part, f"--file={filename}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LESSONS.parent), os.environ.get("PYTHONPATH", "")]),
           "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    try:
        done = subprocess.run(command, input=source, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"took more than {timeout} s and was stopped (an endless loop?)"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"the checks crashed: {last}"
    return json.loads(lines[-1]), None


def grade_part(student, lesson, part, points, text, teacher, filename, timeout):
    if parts.is_stub(text, part):
        return Grade(student, lesson, part, 0, points, "not done yet (the stub is still there)")
    calls = parts.library_calls(text, part)
    if calls:
        return Grade(student, lesson, part, 0, points, f"calls the library's own {', '.join(calls)} instead of "
                     "writing the part: write it yourself")
    checks, failure = run_checks(part, parts.splice(text, teacher, part, str(filename)), str(filename), timeout)
    if failure:
        return Grade(student, lesson, part, 0, points, failure)
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return Grade(student, lesson, part, points, points, "passed")
    lines = [f"{c['name']}: {c['value']}, should be {c['should']}" + (
        "\n" + c["detail"] if c["detail"] else "") for c in failed]
    return Grade(student, lesson, part, 0, points, "\n".join(lines))


def grade(folder, teacher=LESSONS, timeout=TIMEOUT, student=None, workers=2):
    """Every part of every lesson in ``folder``: a list of Grade, in lesson order."""
    folder = Path(folder)
    student = student or folder.name
    jobs = []
    for lesson, teacher_text in lesson_files(teacher).items():
        try:
            text, filename = student_text(folder, lesson)
            missing = None if text is not None else f"no {lesson}.py or {lesson}.ipynb in {folder}"
        except ValueError as err:                       # a notebook that is not JSON, a file that is not text
            text, missing = None, str(err)
        for part, (points, _) in parts.parts_of(teacher_text).items():
            if text is None:
                jobs.append(lambda p=part, n=points, lesson=lesson, why=missing: Grade(student, lesson, p, 0, n, why))
                continue
            try:
                parts.splice(text, teacher_text, part, str(filename))
            except ValueError as err:
                jobs.append(lambda p=part, n=points, lesson=lesson, err=err: Grade(student, lesson, p, 0, n, str(err)))
                continue
            jobs.append(lambda p=part, n=points, lesson=lesson, text=text, t=teacher_text, f=filename: grade_part(
                student, lesson, p, n, text, t, f, timeout))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def table(grades):
    """The grades as printed lines: lesson, part, points, result; failures with their details indented."""
    lines = [f"{'lesson':22} {'part':24} {'points':>7}  result"]
    for g in grades:
        first, *details = g.message.split("\n")
        lines.append(f"{g.lesson:22} {g.part:24} {g.points:>3} / {g.max_points:<2} "
                     f"{'passed' if g.passed else 'FAILED: ' + first}")
        lines += [" " * 8 + line for line in details]
    return lines


def total(grades):
    return sum(g.points for g in grades), sum(g.max_points for g in grades)


def write_csv(grades, path):
    """The grade book: one row per student and part."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "lesson", "part", "points", "max_points", "passed", "message"])
        for g in grades:
            writer.writerow([g.student, g.lesson, g.part, g.points, g.max_points, g.passed,
                             " | ".join(g.message.split("\n"))])
    return path


def submissions(folders):
    """The folders to grade: a folder that holds lessons is one student; one that holds only folders, many."""
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder (expected a student's lessons, or a folder of students)")
        if any(folder.glob("[0-9][0-9]_*.py")) or any(folder.glob("[0-9][0-9]_*.ipynb")):
            found.append(folder)
        else:
            inner = sorted(p for p in folder.iterdir() if p.is_dir() and (
                any(p.glob("[0-9][0-9]_*.py")) or any(p.glob("[0-9][0-9]_*.ipynb"))))
            if not inner:
                raise ValueError(f"{folder} holds no lessons (NN_name.py or .ipynb), nor folders of them")
            found += inner
    return found
