"""The grader's side of running a student's part: a process of its own, kept small, ended, and read only through
a file descriptor that the grader owns.

Each part runs in a fresh ``python -m tinygan.course.harness`` (harness.py) that

- works in its own new, empty folder (its HOME and TMPDIR too), removed afterwards;
- fences itself in with Landlock where the kernel has it (harness.py, landlock.py): it reads Python's files,
  writes its own folder, and nothing else; no TCP, no signal to a process outside the fence;
- has limits on memory (address space), CPU time, file size and open files, and no new processes: where the
  grader runs as root and Python can be run by another user it runs as a user of its own (no rights to the
  project or the other students' files) with a process limit of 1; a grader that is not root gives it the
  same limit (counted over the grader's user, so it cannot fork or start a thread); root can not be limited so;
- leads a process group (a session) of its own, all of which is killed when it ends or its time is up;
- returns its outputs as an .npz through a pipe that the grader reads, never through stdout.
"""
import io
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import weakref
import zipfile
from pathlib import Path

import numpy as np

MEMORY_MB = 2048                   # address space of a part's process: numpy, tinygan and a small GAN fit in ~1 GB
MOST_OUTPUT = 64 << 20             # bytes of outputs a part may return
FIRST_UID = 50000                  # as root, part processes run as users from here on (one per grader and slot)


FOUND = {}                         # what a part's process found here, asked once per grader process


class Sandbox:
    """Runs parts for one grading run; ``workers`` parts at a time (each in a slot with a user of its own)."""

    def __init__(self, timeout, memory_mb=MEMORY_MB, workers=2, private=()):
        if os.name != "posix":
            raise RuntimeError("the grader runs each part in a POSIX process with limits (Linux or macOS); "
                               "grade on one of those (or in WSL)")
        self.timeout, self.memory_mb, self.private = timeout, memory_mb, [str(p) for p in private]
        self.slots = list(range(workers))
        self.lock = threading.Lock()
        self.workers = workers
        self.first_uid = FIRST_UID + (os.getpid() % 1000) * 8    # two graders at once use users of their own
        self.shared = tempfile.mkdtemp(prefix="tinygan-grader-")  # matplotlib's font cache, built once
        os.chmod(self.shared, 0o755)
        weakref.finalize(self, shutil.rmtree, self.shared, True)   # removed with the sandbox
        self.users = os.geteuid() == 0 and not any(self.uid_taken(self.first_uid + s) for s in self.slots) and \
            self.ping(self.first_uid) is not None
        found = self.ping(self.first_uid if self.users else None)
        if found is None:
            raise RuntimeError(f"the grader cannot start a process for a part: {FOUND.get('why', '')}")
        self.landlock = found.get("landlock", 0)

    def ping(self, uid):
        """A part's process that only starts, fences itself in and says what it found ({"landlock": ABI in force});
        None if it cannot start (Python may live where another user cannot go, e.g. under /root)."""
        if uid not in FOUND:
            received, status, errors = self.start({"ping": True, "private": self.private}, uid)
            try:
                FOUND[uid] = json.loads(received[8:]) if status == 0 else None
            except ValueError:
                FOUND[uid] = None
            FOUND["why"] = errors.strip().splitlines()[-1] if errors.strip() else f"exit status {status}"
        return FOUND[uid]

    def describe(self):
        """One line for the teacher: what keeps a student's code in."""
        fence = f"Landlock (ABI {self.landlock})" if self.landlock else "no Landlock here: an audit hook"
        user = "a user of its own" if self.users else "the grader's user"
        return (f"each part runs in a process of its own: {fence}, {user}, {self.memory_mb} MB, {self.timeout} s, "
                "an empty folder (lessons/README.md says what this does not protect against)")

    @staticmethod
    def uid_taken(uid):
        import pwd
        try:
            pwd.getpwuid(uid)
            return True
        except KeyError:
            return False

    def run(self, part, source, filename):
        """(outputs {name: array or str}, None), or (None, why there are none)."""
        with self.lock:
            slot = self.slots.pop()
        try:
            received, status, errors = self.start({"part": part, "source": source, "filename": filename,
                                                   "private": self.private},
                                                  self.first_uid + slot if self.users else None)
            if status is None:
                return None, f"took more than {self.timeout} s and was stopped (an endless loop?)"
            return result(received, status, errors)
        finally:
            with self.lock:
                self.slots.append(slot)

    def start(self, request, uid):
        """Run a part's process on ``request``: (the bytes it sent, its exit status or None if it was stopped,
        the end of what it wrote to stderr). The process sets its own limits first (harness.limit)."""
        workdir = tempfile.mkdtemp(prefix="tinygan-part-")
        if uid is not None:
            os.chown(workdir, uid, uid)
            if request.get("ping"):                      # the first process builds matplotlib's font cache
                os.chown(self.shared, uid, uid)
        read_end, write_end = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "TMPDIR": workdir,
               "MPLCONFIGDIR": self.shared, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TINYGAN_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONUSERBASE": site.getuserbase(),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                           os.environ.get("PYTHONPATH")])),
               **{k: os.environ[k] for k in ("LD_LIBRARY_PATH", "SYSTEMROOT") if k in os.environ}}
        limits = json.dumps({"memory_mb": self.memory_mb, "cpu_s": self.timeout + 1})
        command = [sys.executable, *(["-S"] if sys.flags.no_site else []), "-m", "tinygan.course.harness",
                   str(write_end), limits]
        user = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
        received, errors = bytearray(), tempfile.TemporaryFile()
        try:
            try:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                                           cwd=workdir, env=env, pass_fds=(write_end,), start_new_session=True,
                                           **user)
            except (OSError, subprocess.SubprocessError) as err:
                return b"", 1, f"the grader could not start a process for the part ({err})"
            finally:
                os.close(write_end)
            reader = threading.Thread(target=read_into, args=(read_end, received), daemon=True)
            reader.start()
            try:
                process.stdin.write(json.dumps(request).encode())
                process.stdin.close()
            except OSError:                              # it ended before it read its request
                pass
            try:
                status = process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                status = None
            end_group(process, uid)
            reader.join(5)
            errors.seek(0)
            if request.get("ping"):                      # the font cache the first process built: for all
                for root, folders, names in os.walk(self.shared):
                    for name in folders + names:
                        os.chmod(os.path.join(root, name), 0o755 if name in folders else 0o644)
            return bytes(received), status, errors.read(1 << 16).decode(errors="replace")
        finally:
            os.close(read_end)
            errors.close()
            shutil.rmtree(workdir, ignore_errors=True)


def read_into(fd, received):
    """Read the part's result; past MOST_OUTPUT keep draining but drop the bytes (a writer blocked on a full pipe
    would only time out), so that result() refuses it by the size its header gives."""
    while chunk := os.read(fd, 1 << 20):
        if len(received) <= MOST_OUTPUT + 8:
            received += chunk


def end_group(process, uid):
    """Kill the part's whole process group, and (as root) every process of the part's user."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    if uid is not None:                                  # a child that left the group still has the uid
        subprocess.run([sys.executable, "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
                       user=uid, group=uid, extra_groups=[], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def result(received, status, errors):
    """The outputs from the bytes the part's process sent: ({name: array or str}, None) or (None, why)."""
    size = int.from_bytes(received[:8], "little") if len(received) >= 8 else -1
    if size > MOST_OUTPUT:
        return None, f"returned more than {MOST_OUTPUT >> 20} MB of outputs"
    if size < 0 or len(received) != 8 + size:
        last = [line for line in errors.splitlines() if line.strip()]
        why = {-signal.SIGKILL: "was killed (memory or CPU time over its limit?)",
               -signal.SIGXCPU: "used more than its CPU time", -signal.SIGSEGV: "crashed (segmentation fault)",
               0: "did the part call exit() or os._exit()?"}
        return None, (f"the part's process ended without a result (exit status {status}"
                      + (f": {why[status]}" if status in why else "") + ")" + (f": {last[-1][:300]}" if last else ""))
    try:
        with zipfile.ZipFile(io.BytesIO(received[8:])) as archive:   # the sizes the arrays unpack to, first
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > MOST_OUTPUT:
            return None, f"returned more than {MOST_OUTPUT >> 20} MB of outputs (unpacked)"
        with np.load(io.BytesIO(received[8:]), allow_pickle=False) as npz:
            outputs = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        return None, f"the part's process returned something that is no result ({err})"
    return {name: str(value) if value.dtype.kind == "U" else value.astype(np.float64) if value.dtype.kind in "biuf"
            else f"an array of {value.dtype}" for name, value in outputs.items()}, None
