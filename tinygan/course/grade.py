"""The course as homework: ``python -m tinygan course assign`` and ``python -m tinygan course grade``.

    python -m tinygan course assign --out homework            # the students' copies of every lesson (.py, .ipynb)
    python -m tinygan course grade homework                   # a table of parts and points; the last line the total
    python -m tinygan course grade submissions/* --csv grades.csv     # one folder per student

``assign`` writes each lesson with its marked parts stubbed (parts.py), as a script and as a notebook. ``grade``
finds each lesson in a folder (the newer of script and notebook that holds work) and grades each part on its own:
the student's code for that part is put into the *teacher's* lesson (the given code and the other parts are the
teacher's), run in a sandboxed process of its own (sandbox.py, harness.py) that only computes the part's outputs,
and judged in the grader's own process (checks.py). A part that calls the library's implementation of itself
scores nothing, and the table says so; a change to the given code is reported, never charged to a part.
"""
import csv
import json
from collections import Counter
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import checks, parts, registry
from .sandbox import MEMORY_MB, Sandbox

TIMEOUT = 60                           # seconds for one part's checks
NOT_FOUND = ("the teacher's lessons are not installed with tinygan here: get the project's lessons/ folder (from "
             "its repository or source archive) and pass --teacher FOLDER, or set TINYGAN_LESSONS")


def lessons_folder():
    """Where the teacher's lessons are: $TINYGAN_LESSONS, the copy installed with the package, or the checkout's
    lessons/ beside the package; None if there are none."""
    package = Path(__file__).resolve().parents[1]
    for folder in (os.environ.get("TINYGAN_LESSONS"), package / "lessons", package.parent / "lessons"):
        if folder and any(Path(folder).glob("[0-9][0-9]_*.py")):
            return Path(folder)
    return None


def teacher_folder(teacher=None):
    folder = Path(teacher) if teacher else lessons_folder()
    if folder is None or not any(folder.glob("[0-9][0-9]_*.py")):
        raise ValueError(NOT_FOUND if teacher is None else f"{teacher} holds no lessons (NN_name.py)")
    return folder


@dataclass
class Grade:
    student: str
    lesson: str
    part: str
    points: int
    max_points: int
    message: str                       # "passed", or what failed: one line, then the details
    file: str = ""                     # the student's file that was graded
    note: str = ""                     # about the lesson as a whole: changed given code, skipped IPython lines

    @property
    def passed(self):
        return self.points == self.max_points


def lesson_files(folder=None):
    """{lesson name: teacher's text} of the lessons with marked parts, in order."""
    found = {}
    for path in sorted(teacher_folder(folder).glob("[0-9][0-9]_*.py")):
        if not path.is_file():                   # a folder, a FIFO, a device: no lesson, and never read
            continue
        text = path.read_text(encoding="utf-8")
        if parts.find_regions(text, path.name):
            found[path.stem] = text
    return found


# --- assign ------------------------------------------------------------------------------------------------

def assign(out, names=None, teacher=None):
    """Write the students' copy of every lesson (or of those in ``names``) into ``out``: .py and .ipynb.

    Refuses to write over a file that is there already (it may hold a student's work). Returns the paths."""
    out, teacher = Path(out), teacher_folder(teacher)
    sources = sorted(teacher.glob("[0-9][0-9]_*.py"))
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
        if path.is_symlink():                       # another's file (a classmate's, the teacher's) is no work
            raise ValueError(f"{path} is a link, not a file: hand in the lesson itself")
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


def grade_part(student, lesson, part, points, text, teacher, filename, sandbox):
    """One part: the student's code in the teacher's lesson, run in the sandbox, judged here."""
    def failed(message):
        return Grade(student, lesson, part, 0, points, message, filename.name)
    if parts.is_stub(text, part):
        return failed("not done yet (the stub is still there)")
    notebook = filename.suffix == ".ipynb"
    source, origin = parts.into_teacher(text, teacher, part, filename.name, needs=registry.needs(part))
    graded_lines, student_lines = source.split("\n"), text.split("\n")

    def at(line_number):                                 # a line of the graded text, as the student finds it
        known = 0 < line_number <= len(origin)
        index = origin[line_number - 1] if known else None
        if index is None:
            return f"in the given code: {graded_lines[line_number - 1].strip() if known else ''}"
        return f"{parts.where(text, index, notebook)}: {student_lines[index].strip()}"
    try:
        calls = parts.library_calls(source, part)
    except SyntaxError as err:
        return failed(f"a syntax error in the part, {at(err.lineno or 0)}: {err.msg}")
    if calls:
        return failed(f"calls the library's own {', '.join(calls)} instead of writing the part: write it yourself")
    outputs, failure = sandbox.run(part, source, filename.name)
    if failure:
        return failed(failure)
    if "__refused__" in outputs:
        return failed(f"called the library's own {', '.join(json.loads(outputs['__refused__']))} while it ran "
                      "(the grader refuses it however it is reached): write the part yourself")
    if "__error__" in outputs:
        error = json.loads(outputs["__error__"])
        lines = error["lines"]
        hint = ("; a name defined outside the part is not there when it is graded (each part runs inside the "
                "teacher's code): define what the part needs inside it") if error["type"] == "NameError" else ""
        mine = [line for line in lines if 0 < line <= len(origin) and origin[line - 1] is not None]
        where = at(lines[-1]) + (f", called from the part at {at(mine[-1])}" if mine and mine[-1] != lines[-1]
                                 else "") if lines else ""
        return failed(f"the part stopped with {error['type']}: {redacted(error['message'], teacher)}" +
                      (f" ({where})" if where else "") + hint)
    results = checks.judge(part, outputs)
    wrong = [c for c in results if not c["passed"]]
    if not wrong:
        return Grade(student, lesson, part, points, points, "passed", filename.name)
    return failed("\n".join(f"{c['name']}: {c['value']}, should be {c['should']}" + (
        "\n" + c["detail"] if c["detail"] else "") for c in wrong))


def redacted(message, teacher):
    """A message from the student's process without any line of the teacher's solutions in it."""
    for line in sorted(parts.solution_lines(teacher), key=len, reverse=True):
        if len(line) >= 12:
            message = message.replace(line, "(the teacher's code)")
    return message


def lesson_note(text, teacher_text, filename):
    """What the grader says about a student's lesson as a whole: given code changed, IPython lines skipped."""
    notebook = filename.suffix == ".ipynb"
    copy = parts.student_version(teacher_text)
    if notebook:
        copy = parts.from_notebook(json.dumps(parts.to_notebook(copy)))
    changed, gone = parts.given_code_changes(text, copy, filename.name)
    skipped = [line for line in changed if parts.SKIPPED in line[1]]
    changed = [line for line in changed if parts.SKIPPED not in line[1]]
    notes = []
    if changed or gone:
        index, line = changed[0] if changed else (None, "")
        example = f", e.g. {parts.where(text, index, notebook)}: {line.strip()[:80]}" if changed else ""
        notes.append(f"the given code outside the parts differs from the students' copy ({len(changed)} line"
                     f"{'s' * (len(changed) != 1)} changed or added, {gone} removed{example}); the parts were graded "
                     "inside the teacher's code, so those changes cost nothing and count for nothing")
    if skipped:
        notes.append(f"skipped {len(skipped)} IPython line{'s' * (len(skipped) != 1)} outside the parts "
                     f"(e.g. {skipped[0][1].split(parts.SKIPPED)[1][:60]})")
    copies = Counter(region.part for region in parts.find_regions(text))
    for part, regions in Counter(region.part for region in parts.find_regions(teacher_text)).items():
        if copies[part] > regions:
            notes.append(f"part {part} is there {copies[part] // regions} times (a copied cell?): the last copy "
                         "was graded")
    inside = [line for r in parts.matching_regions(text, teacher_text)[0] for line in text.split("\n")[r.code:r.end]
              if parts.SKIPPED in line]
    if inside:
        notes.append(f"skipped {len(inside)} IPython line{'s' * (len(inside) != 1)} inside the parts "
                     f"(e.g. {inside[0].split(parts.SKIPPED)[1][:60]}): a graded part is plain Python")
    return "; ".join(notes)


def grade(folder, teacher=None, timeout=TIMEOUT, student=None, workers=2, memory_mb=MEMORY_MB, sandbox=None,
          lessons=None):
    """Every part of every lesson in ``folder``: a list of Grade, in lesson order. A class shares one
    ``sandbox`` (Sandbox(timeout, memory_mb, workers, private=[the teacher's folder])) and the teacher's
    ``lessons`` (lesson_files(), read once)."""
    folder = Path(folder)
    student = student or folder.name
    teacher_dir = teacher_folder(teacher)
    sandbox = sandbox or Sandbox(timeout, memory_mb, workers, private=[teacher_dir])
    jobs = []
    for lesson, teacher_text in (lessons or lesson_files(teacher_dir)).items():
        filename, note = None, ""
        try:
            text, filename = student_text(folder, lesson)
            missing = None if text is not None else f"no {lesson}.py or {lesson}.ipynb in {folder}"
            if text is not None:
                parts.matching_regions(text, teacher_text, filename.name)
                note = lesson_note(text, teacher_text, filename)
        except (ValueError, UnicodeDecodeError) as err:  # a notebook that is not JSON, markers removed, not text
            text, missing = None, str(err)
        for part, (points, _) in parts.parts_of(teacher_text).items():
            if text is None:
                jobs.append(lambda p=part, n=points, lesson=lesson, why=missing, f=filename: Grade(
                    student, lesson, p, 0, n, why, f.name if f else ""))
            else:
                jobs.append(lambda p=part, n=points, lesson=lesson, text=text, t=teacher_text, f=filename, note=note:
                            _with_note(grade_part(student, lesson, p, n, text, t, f, sandbox), note))
    with ThreadPoolExecutor(sandbox.workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def grade_or_say(folder, teacher, sandbox, lessons):
    """grade(), and if the grader itself fails on a folder, a row per part that says so (the class goes on)."""
    try:
        return grade(folder, teacher, sandbox=sandbox, lessons=lessons)
    except Exception as err:                             # a bug of the grader's must not cost the other students
        return [Grade(folder.name, lesson, part, 0, points, f"the grader failed on this folder "
                      f"({type(err).__name__}: {err}); please report it")
                for lesson, text in lessons.items() for part, (points, _) in parts.parts_of(text).items()]


def _with_note(grade, note):
    grade.note = note
    return grade


def table(grades):
    """The grades as printed lines: a line per lesson (the file graded, the grader's note), then its parts with
    points and result; failures with their details indented."""
    lines = [f"{'lesson':22} {'part':24} {'points':>7}  result"]
    shown = None
    for g in grades:
        if g.lesson != shown:
            shown = g.lesson
            lines.append(f"{g.lesson:22} graded: {g.file or '(no file)'}")
            if g.note:
                lines.append(" " * 8 + "note: " + g.note)
        first, *details = g.message.split("\n")
        lines.append(f"{'':22} {g.part:24} {g.points:>3} / {g.max_points:<2} "
                     f"{'passed' if g.passed else 'FAILED: ' + first}")
        lines += [" " * 8 + line for line in details]
    return lines


def total(grades):
    return sum(g.points for g in grades), sum(g.max_points for g in grades)


def write_csv(grades, path):
    """The grade book: one row per student and part."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "lesson", "part", "points", "max_points", "passed", "message", "file", "note"])
        for g in grades:
            writer.writerow([g.student, g.lesson, g.part, g.points, g.max_points, g.passed,
                             " | ".join(g.message.split("\n")), g.file, g.note])
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
