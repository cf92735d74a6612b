"""The grader against its students (issue 31): a part's code runs in a process of its own that cannot reach the
library's implementation of the part, delete or write anything outside its own folder, start processes or forge
a grade; a broken file costs only its own points; the given code is the teacher's; each typical mistake is named;
and the course works from an installed package."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinygan.course import grade, parts
from tinygan.course.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
TEACHER = grade.lesson_files()
IM2COL_BODY = ("    n, c, h, w = x.shape\n    ho, wo", "    return cols\n")


def im2col_replaced(body):
    """Lesson 04 with the im2col part's code replaced by ``body`` (a function body, indented 4)."""
    text = TEACHER["04_conv_im2col"]
    start, end = text.index(IM2COL_BODY[0]), text.index(IM2COL_BODY[1]) + len(IM2COL_BODY[1])
    return text[:start] + body + text[end:]


def graded(tmp_path, files, name="student", **options):
    """{part: Grade} for a student folder holding ``files`` ({file name: text})."""
    folder = tmp_path / name
    folder.mkdir(parents=True)
    for filename, text in files.items():
        (folder / filename).write_text(text)
    return {g.part: g for g in grade.grade(folder, **options)}


# --- the student's process only computes ------------------------------------------------------------------

LIBRARY_BY_OTHER_NAMES = {
    "importlib": "    import importlib\n    return importlib.import_module('tinygan.nn.reference').im2col(x, (k, k), "
                 "(s, s), (p, p))\n",
    "a name built from strings": "    m = __import__('tinygan.nn.ref' + 'erence', fromlist=['x'])\n"
                                 "    return getattr(m, 'im2' + 'col')(x, (k, k), (s, s), (p, p))\n",
    "a function whose second output is the answer": "    import numpy\n    from tinygan.nn import reference as r\n"
        "    return r.conv2d_forward(x, numpy.ones((1, x.shape[1], k, k)), None, (s, s), (p, p))[1]\n",
    "the fast path, exceptions swallowed": "    try:\n        fast = __import__('tinygan.nn.fast_im2col', fromlist=['x'])\n"
        "        return fast.im2col(x.transpose(0, 2, 3, 1), (k, k), (s, s), (p, p))\n"
        "    except BaseException:\n        return x\n",
}


@pytest.mark.parametrize("how", LIBRARY_BY_OTHER_NAMES)
def test_the_librarys_part_is_refused_however_it_is_reached(tmp_path, how):
    got = graded(tmp_path, {"04_conv_im2col.py": im2col_replaced(LIBRARY_BY_OTHER_NAMES[how])})
    assert got["im2col"].points == 0 and "called the library's own tinygan.nn" in got["im2col"].message
    assert got["conv_backward"].points == 3                # the other part of the lesson is not touched


def test_a_helper_outside_the_part_is_not_there(tmp_path):
    text = im2col_replaced("    return helper(x, k, s, p)\n").replace(
        "def col2im(", "def helper(x, k, s, p):\n    return reference.im2col(x, (k, k), (s, s), (p, p))\n\n\n"
                      "def col2im(")
    message = graded(tmp_path, {"04_conv_im2col.py": text})["im2col"].message
    assert "NameError" in message and "defined outside the part" in message


def test_student_code_cannot_delete_or_write_outside_its_folder(tmp_path):
    keep = tmp_path / "classmate" / "04_conv_im2col.py"
    keep.parent.mkdir()
    keep.write_text("a classmate's work")
    teacher = tmp_path / "teacher"
    shutil.copytree(ROOT / "lessons", teacher)
    lesson = teacher / "04_conv_im2col.py"
    attacks = {"remove": f"    import os\n    os.remove({str(keep)!r})\n",
               "rmtree": f"    import shutil\n    shutil.rmtree({str(keep.parent)!r})\n",
               "overwrite": f"    open({str(lesson)!r}, 'w').write('')\n",
               "checks": "    import tinygan.course.checks as c\n    c.judge = lambda part, out: []\n",
               "read the teacher's": f"    exec(open({str(lesson)!r}).read())\n"}
    for name, body in attacks.items():
        got = graded(tmp_path / name, {"04_conv_im2col.py": im2col_replaced(body + "    return x\n")},
                     teacher=teacher)
        assert got["im2col"].points == 0 and "PermissionError" in got["im2col"].message, name
    assert keep.read_text() == "a classmate's work"
    assert lesson.read_text() == (ROOT / "lessons" / "04_conv_im2col.py").read_text()


def test_no_process_is_started_and_none_outlives_the_part(tmp_path):
    marker = "41.31415"                                    # a sleep that no other process on the machine runs
    attacks = {"os.system": f"    import os\n    os.system('sleep {marker} &')\n",
               "subprocess.Popen": f"    import subprocess\n    subprocess.Popen(['sleep', '{marker}'])\n",
               "os.fork": "    import os\n    os.fork()\n",
               "_posixsubprocess.fork_exec": "    import _posixsubprocess\n    _posixsubprocess.fork_exec()\n"}
    for name, body in attacks.items():
        message = graded(tmp_path / name, {"04_conv_im2col.py": im2col_replaced(body + "    return x\n")})[
            "im2col"].message
        assert f"PermissionError: a graded part may not use {name}" in message, (name, message)
    running = [p for p in Path("/proc").iterdir() if p.name.isdigit() and marker in _cmdline(p)]
    assert not running


def _cmdline(process):
    try:
        return (process / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_a_fake_result_scores_nothing(tmp_path):
    fake = json.dumps([{"name": "x", "passed": True, "value": "", "should": "", "detail": ""}])
    attacks = {"printed at exit": f"    import atexit\n    atexit.register(print, {fake!r})\n    return None\n",
               "written to every descriptor": "    import os\n    for fd in range(3, 30):\n        try:\n"
                                              "            os.write(fd, b'\\x10' + b'\\x00' * 7 + b'PK' * 8)\n"
                                              "        except OSError:\n            pass\n    return x\n"}
    for name, body in attacks.items():
        assert graded(tmp_path / name.replace(" ", "_"), {"04_conv_im2col.py": im2col_replaced(body)})[
            "im2col"].points == 0, name


def test_what_a_hostile_tester_tried_is_refused(tmp_path):
    """dir_fd and symlinks past the path check, a FIFO or a database outside, killing the grader by pidfd, a zip
    bomb down the result pipe: each refused, nothing outside changed, the grader still here."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "work.py").write_text("a classmate's work")
    attacks = {
        "symlink": f"    import os\n    os.symlink({str(victim)!r}, 'v')\n    open('v/work.py', 'w')\n",
        "dir_fd": f"    import os\n    fd = os.open({str(victim)!r}, os.O_RDONLY)\n"
                  "    os.open('work.py', os.O_WRONLY | os.O_TRUNC, dir_fd=fd)\n",
        "dot_dot": "    import os\n    os.makedirs('a/b')\n    fd = os.open('a/b', os.O_RDONLY)\n"
                   f"    os.open('../..' + {str(victim / 'work.py')!r}, os.O_WRONLY | os.O_TRUNC, dir_fd=fd)\n",
        "fifo": f"    import os\n    os.mkfifo({str(victim / 'pipe')!r})\n",
        "sqlite": f"    import sqlite3\n    sqlite3.connect({str(victim / 'x.db')!r})\n",
        "pidfd": "    import os, signal\n    signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)\n",
        "proc": "    import os\n    os.readlink(f'/proc/{os.getppid()}/cwd')\n    open(f'/proc/{os.getppid()}/environ')\n",
    }
    for name, body in attacks.items():
        message = graded(tmp_path / name, {"04_conv_im2col.py": im2col_replaced(body + "    return x\n")})[
            "im2col"].message
        assert "PermissionError" in message or "Permission denied" in message or "not permitted" in message, \
            (name, message)
    assert sorted(p.name for p in victim.iterdir()) == ["work.py"] and (victim / "work.py").read_text() == \
        "a classmate's work"
    bomb = ("    import io, os, sys, zipfile\n    data = io.BytesIO()\n"
            "    with zipfile.ZipFile(data, 'w', zipfile.ZIP_DEFLATED) as z:\n"
            "        with z.open('cols 3 1 1.npy', 'w', force_zip64=True) as f:\n"
            "            for _ in range(100):\n                f.write(bytes(1 << 20))\n"
            "    out = data.getvalue()\n    os.write(int(sys.argv[1]), len(out).to_bytes(8, 'little') + out)\n"
            "    os._exit(0)\n")
    message = graded(tmp_path / "bomb", {"04_conv_im2col.py": im2col_replaced(bomb)})["im2col"].message
    assert "more than 64 MB of outputs (unpacked)" in message


def test_no_other_parts_solution_reaches_the_students_process(tmp_path):
    """A part's process holds the teacher's solution of another part only when its check runs that part: a
    student cannot print the g_step solution through an error in d_step."""
    text = TEACHER["13_train_gan"]
    start = text.index("    real_logits = D(real)\n    d_loss = loss(real_logits, 1.0)")
    end = text.index("    ### END SOLUTION", start)
    leak = ("    import linecache\n    source = ''.join(linecache.cache['13_train_gan.py'][2])\n"
            "    raise RuntimeError(source[source.index('BEGIN ' + 'SOLUTION g_step'):][:400])\n")
    message = graded(tmp_path, {"13_train_gan.py": text[:start] + leak + text[end:]})["d_step"].message
    assert "RuntimeError" in message and "g_logits = D(fake)" not in message and "loss(g_logits, 1.0)" not in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Landlock is Linux's")
def test_the_landlock_fence_holds_below_python(tmp_path):
    """Where the kernel has Landlock, the fence holds for calls no audit hook sees (here: C's own open)."""
    from tinygan.course import landlock
    if landlock.abi() == 0:
        pytest.skip("this kernel has no Landlock")
    (tmp_path / "inside").mkdir()
    (tmp_path / "secret.txt").write_text("the teacher's")
    code = ("import ctypes, os, sys\nfrom tinygan.course import landlock\n"
            "landlock.restrict([sys.prefix, sys.base_prefix, '/usr/lib', '/lib'], [sys.argv[1]])\n"
            "libc = ctypes.CDLL(None)\n"
            "print(libc.open(sys.argv[2].encode(), 0), libc.open((sys.argv[1] + '/new').encode(), 0o101, 0o600))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "inside"), str(tmp_path / "secret.txt")],
                          capture_output=True, text=True, timeout=60)
    outside, inside = map(int, done.stdout.split())
    assert outside == -1 and inside >= 0, done.stderr


def test_too_large_an_output_is_refused_at_once(tmp_path):
    body = "    import numpy\n    return numpy.ones((3000, 3000))\n"
    got = graded(tmp_path, {"04_conv_im2col.py": im2col_replaced(body)}, timeout=60)
    assert "returned more than 64 MB of outputs" in got["im2col"].message


def test_a_lesson_that_is_a_link_is_not_graded(tmp_path):
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "08_adam_vs_sgd.py").symlink_to(ROOT / "lessons" / "08_adam_vs_sgd.py")
    got = {g.part: g for g in grade.grade(tmp_path / "ada")}
    assert got["adam_step"].points == 0 and "is a link, not a file" in got["adam_step"].message


def test_memory_is_limited(tmp_path):
    body = "    import numpy\n    return numpy.ones(10 ** 10)\n"
    message = graded(tmp_path, {"04_conv_im2col.py": im2col_replaced(body)})["im2col"].message
    assert "MemoryError" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a part to a user of its own")
def test_as_root_a_part_runs_as_another_user(tmp_path):
    sandbox = Sandbox(timeout=60)
    if not sandbox.users:
        pytest.skip("this machine's Python cannot be run by another user (e.g. it lives under /root)")
    body = "    import os\n    assert os.getuid() != 0, 'root'\n    return x\n"
    got = graded(tmp_path, {"04_conv_im2col.py": im2col_replaced(body)}, sandbox=sandbox)
    assert "AssertionError" not in got["im2col"].message


# --- one broken file costs its own points; the given code is the teacher's ----------------------------------

def notebook(text, extra_cells=()):
    book = parts.to_notebook(text.replace("BEGIN SOLUTION", "BEGIN PART").replace("END SOLUTION", "END PART"))
    for position, source in extra_cells:
        book["cells"].insert(position, {"cell_type": "code", "id": f"x{position}", "metadata": {},
                                        "execution_count": None, "outputs": [], "source": source})
    return json.dumps(book)


def test_syntax_errors_magics_and_shell_lines_cost_only_their_part(tmp_path):
    text = TEACHER["04_conv_im2col"]
    in_part = text.replace("    return cols\n", "    return cols +\n")
    outside = text.replace("def col2im(cols, h, w, s, p):", "def col2im(cols, h, w, s, p)")
    got = graded(tmp_path / "a", {"04_conv_im2col.py": in_part})
    assert got["im2col"].points == 0 and "syntax error in the part, line" in got["im2col"].message
    assert "return cols +" in got["im2col"].message and got["conv_backward"].points == 3
    got = graded(tmp_path / "b", {"04_conv_im2col.py": outside})
    assert got["im2col"].points == 2 and got["conv_backward"].points == 3
    assert "differs from the students' copy" in got["im2col"].note
    magic = text.replace("    return cols\n", "    %timeit cols.sum()\n    return cols\n")
    got = graded(tmp_path / "c", {"04_conv_im2col.ipynb": notebook(magic, [(1, "%matplotlib inline"),
                                                                          (2, "!pip install numpy")])})
    assert got["im2col"].points == 2 and got["conv_backward"].points == 3
    assert got["im2col"].file == "04_conv_im2col.ipynb"
    assert "skipped 1 IPython line inside the parts (e.g. %timeit" in got["im2col"].note
    book = json.loads(notebook(magic))                 # the part's cell under %%time, and pasted again below
    cell = next(c for c in book["cells"] if "BEGIN PART im2col" in "".join(c["source"]))
    cell["source"] = "%%time\n" + "".join(cell["source"])
    book["cells"].append(dict(cell, id="copy", source="".join(cell["source"]).replace("%%time\n", "")))
    got = graded(tmp_path / "d", {"04_conv_im2col.ipynb": json.dumps(book)})
    assert got["im2col"].points == 2 and got["conv_backward"].points == 3, got["im2col"].message
    assert "part im2col is there 2 times" in got["im2col"].note


def test_changed_given_code_is_reported_not_charged(tmp_path):
    overwrite = TEACHER["04_conv_im2col"].replace("v:v + s * wo:s] += cols[:, :, u, v]", "v:v + s * wo:s] = cols[:, :, u, v]")
    unbiased = TEACHER["06_batchnorm"].replace("x.var(axis=(0, 2, 3))", "x.var(axis=(0, 2, 3), ddof=1)")
    scratch = [(5, "def im2col(x, k, s, p):\n    return x")]
    got = graded(tmp_path / "a", {"04_conv_im2col.py": overwrite, "06_batchnorm.py": unbiased})
    assert got["conv_backward"].points == 3 and got["batchnorm_backward"].points == 3
    assert "xpad[:, :, u:u + s * ho:s, v:v + s * wo:s] = cols" in got["conv_backward"].note
    assert "ddof=1" in got["batchnorm_backward"].note
    got = graded(tmp_path / "b", {"04_conv_im2col.ipynb": notebook(TEACHER["04_conv_im2col"], scratch)})
    assert got["im2col"].points == 2 and got["conv_backward"].points == 3
    assert "cell 6, line 1: def im2col(x, k, s, p):" in got["im2col"].note


def test_the_class_table_and_csv_survive_broken_files(tmp_path, capsys):
    from tinygan.cli import main
    for name, files in {"ada": {"02_linear_gradcheck.py": "def broken(:\n"},
                        "bob": {"02_linear_gradcheck.ipynb": "{ not json"},
                        "cy": {"02_linear_gradcheck.py": TEACHER["02_linear_gradcheck"].replace("### END", "")}}.items():
        (tmp_path / "class" / name).mkdir(parents=True)
        for filename, text in files.items():
            (tmp_path / "class" / name / filename).write_text(text)
    assert main(["course", "grade", str(tmp_path / "class"), "--csv", str(tmp_path / "g.csv")]) == 0
    out = capsys.readouterr().out
    assert out.count("total: 0 / ") == 3 and "== cy ==" in out and "graded: 02_linear_gradcheck.py" in out
    assert len((tmp_path / "g.csv").read_text().splitlines()) == 1 + 3 * len(
        [p for t in TEACHER.values() for p in parts.parts_of(t)])


# --- messages that name the mistake ---------------------------------------------------------------------------

NAMED = [  # (lesson, part, the teacher's code, the mistake, words the message must hold)
    ("04_conv_im2col", "im2col", "xpad[:, :, u:u + s * ho:s, v:v + s * wo:s]\n    return cols",
     "xpad[:, :, u:u + ho, v:v + wo]\n    return cols", "the stride s=2 is ignored"),
    ("04_conv_im2col", "conv_backward", "h, w, self.s, self.p)\n        ### END", "h, w, 1, self.p)\n        ### END",
     "the stride s=2 is not passed on to col2im"),
    ("05_conv_transpose", "conv_transpose_forward", "(self.p, self.p))\n        ### END",
     "(self.p + 1, self.p + 1))\n        ### END", "moved 1 row up and 1 column left"),
    ("05_conv_transpose", "conv_transpose_forward",
     "        return col2im(dcols.transpose(0, 3, 4, 5, 1, 2), out_hw, (self.s, self.s), (self.p, self.p))\n",
     "        cols = dcols.transpose(0, 3, 4, 5, 1, 2)\n        h, w = x.shape[2:]\n"
     "        canvas = xp.zeros((x.shape[0], cols.shape[1], (h - 1) * self.s + k, (w - 1) * self.s + k))\n"
     "        for u in range(k):\n            for v in range(k):\n"
     "                canvas[:, :, u:u + self.s * h:self.s, v:v + self.s * w:self.s] = cols[:, :, u, v]\n"
     "        return canvas[:, :, self.p:self.p + out_hw[0], self.p:self.p + out_hw[1]]\n",
     "windows that overwrite each other"),
    ("05_conv_transpose", "conv_transpose_forward", "out_hw, (self.s, self.s), (self.p, self.p))",
     "tuple(o + 2 * self.p for o in out_hw), (self.s, self.s), (0, 0))", "not cutting off the padding p=1"),
    ("08_adam_vs_sgd", "adam_step", "m / (1 - b1 ** t), v / (1 - b2 ** t)",
     "m / (1 - b1 ** (t - 1)), v / (1 - b2 ** (t - 1))", "the bias correction of the step before (t - 1)"),
    ("08_adam_vs_sgd", "adam_step", "(np.sqrt(v_hat) + eps)", "np.sqrt(v_hat + eps)", "eps inside the square root"),
    ("07_bce_logits", "bce_with_logits", "return (xp.maximum(x, 0) - t * x + xp.log1p(xp.exp(-xp.abs(x)))).mean()",
     "return (-t * xp.log(sigmoid(x)) - (1 - t) * xp.log(1 - sigmoid(x))).mean()",
     "log(sigmoid(x)) and log(1 - sigmoid(x)) give: they are inf or nan"),
    ("04_conv_im2col", "im2col", "    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1\n    xpad",
     "    ho, wo = (h + 2 * p - k) // s, (w + 2 * p - k) // s\n    xpad", "the output size without its + 1"),
    ("05_conv_transpose", "conv_transpose_forward", "xp.tensordot(x, self.weight.data, axes=(1, 0))",
     "xp.tensordot(x, self.weight.data[:, :, ::-1, ::-1], axes=(1, 0))", "the kernel turned by 180 degrees"),
    ("06_batchnorm", "batchnorm_backward", "        return scale * (g - g.mean",
     "        return per_channel(inv_std) * (g - g.mean", "leaving gamma out"),
    ("13_train_gan", "d_step", "    fake_logits = D(fake)\n    d_loss = d_loss",
     "    opt_D.zero_grad()\n    fake_logits = D(fake)\n    d_loss = d_loss", "zero_grad() between the two batches"),
    ("13_train_gan", "g_step", "    g_loss = loss(g_logits, 1.0)", "    g_loss = loss(g_logits, 0.0)", "the target 0"),
    ("14_explore_generator", "input_gradient", "grad = D.backward(backend.xp.ones_like(logits))",
     "p = 1 / (1 + backend.xp.exp(-logits))\n    grad = D.backward(p * (1 - p))", "the gradient of the probability"),
]


@pytest.mark.parametrize("lesson, part, right, wrong, words", NAMED, ids=[n[4].split(":")[0][:40] for n in NAMED])
def test_a_planted_mistake_is_named(tmp_path, lesson, part, right, wrong, words):
    text = TEACHER[lesson]
    assert text.count(right) == 1
    got = graded(tmp_path, {f"{lesson}.py": text.replace(right, wrong)})
    assert got[part].points == 0 and words in got[part].message, got[part].message
    assert all(g.passed for p, g in got.items() if p != part and g.file)


# --- the course from an installed package -----------------------------------------------------------------

def test_the_course_works_from_an_installed_package(tmp_path):
    """What a wheel installs (setup.py's build, lessons included), run with no site-packages' editable finder:
    assign writes every lesson, grade gives the teacher's copy full points; without the lessons, one error line."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "lessons", source / "lessons", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tinygan", source / "tinygan", ignore=shutil.ignore_patterns("__pycache__", "*.npz"))
    built = tmp_path / "installed"
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(built)], cwd=source,
                   check=True, capture_output=True)
    import numpy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(built), str(Path(numpy.__file__).parents[1])])}
    env.pop("TINYGAN_LESSONS", None)

    def course(*args):
        return subprocess.run([sys.executable, "-S", "-m", "tinygan", "course", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
    done = course("assign", "--out", "hw")
    assert done.returncode == 0 and f"wrote {len(list((ROOT / 'lessons').glob('[0-9][0-9]_*.py')))} lessons" in \
        done.stdout, done.stderr
    (tmp_path / "ada").mkdir()
    shutil.copy2(ROOT / "lessons" / "08_adam_vs_sgd.py", tmp_path / "ada")
    done = course("grade", "ada", "--csv", "g.csv")
    assert done.returncode == 0 and "adam_step                  2 / 2  passed" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"total: 2 / {sum(p for t in TEACHER.values() for p, _ in parts.parts_of(t).values())} points"
    shutil.rmtree(built / "tinygan" / "lessons")
    for args in (("assign", "--out", "hw2"), ("grade", "ada")):
        done = course(*args)
        assert done.returncode == 2 and "lessons are not installed" in done.stderr and "0 / 0" not in done.stdout
