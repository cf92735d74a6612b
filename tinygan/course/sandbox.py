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
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np

MEMORY_MB = 2048                   # address space of a part's process: numpy, tinygan and a small GAN fit in ~1 GB
MOST_OUTPUT = 64 << 20             # bytes of outputs a part may return
FIRST_UID = 61000                  # where the grader runs as root: part processes run as FIRST_UID + worker slot


FOUND = {}                         # what a part's process found here, asked once per grader process


class Sandbox:
    """Runs parts for one grading run; ``workers`` parts at a time (each in a slot with a user of its own)."""

    def __init__(self, timeout, memory_mb=MEMORY_MB, workers=2, private=()):
        self.timeout, self.memory_mb, self.private = timeout, memory_mb, [str(p) for p in private]
        self.slots = list(range(workers))
        self.lock = threading.Lock()
        self.workers = workers
        self.users = os.geteuid() == 0 and not any(self.uid_taken(FIRST_UID + s) for s in self.slots) and \
            self.ping(FIRST_UID) is not None
        self.landlock = (self.ping(FIRST_UID if self.users else None) or {}).get("landlock", 0)

    def ping(self, uid):
        """A part's process that only starts and says what it found ({"landlock": ABI}); None if it cannot start
        (Python may live where another user cannot go, e.g. under /root)."""
        if uid not in FOUND:
            received, status, _ = self.start({"ping": True}, uid)
            try:
                FOUND[uid] = json.loads(received[8:]) if status == 0 else None
            except ValueError:
                FOUND[uid] = None
        return FOUND[uid]

    def describe(self):
        """One line for the teacher: what keeps a student's code in."""
        fence = f"Landlock (ABI {self.landlock})" if self.landlock else "no Landlock (an older kernel): an audit hook"
        user = "a user of its own" if self.users else "the grader's user"
        return (f"each part runs in a process of its own: {fence}, {user}, {self.memory_mb} MB, {self.timeout} s, "
                "an empty folder (lessons/README.md says what this does not protect against)")

    @staticmethod
    def uid_taken(uid):
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
                                                   "private": self.private}, FIRST_UID + slot if self.users else None)
            if status is None:
                return None, f"took more than {self.timeout} s and was stopped (an endless loop?)"
            return result(received, status, errors)
        finally:
            with self.lock:
                self.slots.append(slot)

    def limits(self, uid):
        import resource
        memory = self.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (self.timeout + 1, self.timeout + 2))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))    # counts the user's processes: no fork, no thread
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    def start(self, request, uid):
        """Run a part's process on ``request``: (the bytes it sent, its exit status or None if it was stopped,
        the end of what it wrote to stderr)."""
        workdir = tempfile.mkdtemp(prefix="tinygan-part-")
        if uid is not None:
            os.chown(workdir, uid, uid)
        read_end, write_end = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "TMPDIR": workdir,
               "MPLCONFIGDIR": workdir, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "TINYGAN_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                           os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, *(["-S"] if sys.flags.no_site else []), "-m", "tinygan.course.harness",
                   str(write_end)]
        received, errors = bytearray(), tempfile.TemporaryFile()
        try:
            try:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                                           cwd=workdir, env=env, pass_fds=(write_end,), start_new_session=True,
                                           preexec_fn=lambda: self.limits(uid))
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
            return bytes(received), status, errors.read(1 << 16).decode(errors="replace")
        finally:
            os.close(read_end)
            errors.close()
            shutil.rmtree(workdir, ignore_errors=True)


def read_into(fd, received):
    while len(received) <= MOST_OUTPUT + 8:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return
        received += chunk


def end_group(process, uid):
    """Kill the part's whole process group, and (as root) every process of the part's user."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    if uid is not None:                                  # a child that left the group still has the uid
        subprocess.run(["kill", "-9", "-1"], preexec_fn=lambda: (os.setgid(uid), os.setuid(uid)),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


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
