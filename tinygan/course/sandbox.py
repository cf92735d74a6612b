"""The grader's side of running a student's part: a process of its own, kept small, ended, and read only through
a file descriptor that the grader owns.

Each part runs in a fresh ``python -m tinygan.course.harness`` (harness.py) that

- works in its own new, empty folder (its HOME and TMPDIR too), removed afterwards;
- has limits on memory (address space), CPU time, file size and open files, and no new processes: where the
  grader runs as root it runs as a user of its own (no rights to the project or the other students' files)
  with at most one process, elsewhere its process limit is 1 process beyond none: it cannot fork;
- leads a process group (a session) of its own, all of which is killed when it ends or its time is up;
- returns its outputs as an .npz through a pipe that the grader reads, never through stdout.
"""
import io
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

MEMORY_MB = 2048                   # address space of a part's process: numpy, tinygan and a small GAN fit in ~1 GB
MOST_OUTPUT = 64 << 20             # bytes of outputs a part may return
FIRST_UID = 61000                  # where the grader runs as root: part processes run as FIRST_UID + worker slot


class Sandbox:
    """Runs parts for one grading run; ``workers`` parts at a time (each in a slot with a user of its own)."""

    def __init__(self, timeout, memory_mb=MEMORY_MB, workers=2, private=()):
        self.timeout, self.memory_mb, self.private = timeout, memory_mb, [str(p) for p in private]
        self.slots = list(range(workers))
        self.lock = threading.Lock()
        self.users = os.geteuid() == 0 and self.users_work()
        self.workers = workers

    def users_work(self):
        """True when a part's process can run as a user of its own (Python may live where that user can't go)."""
        if any(self.uid_taken(FIRST_UID + slot) for slot in range(len(self.slots))):
            return False
        outputs, failure = self.start({"ping": True}, slot=0, uid=FIRST_UID)
        return failure is None

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
            return self.start({"part": part, "source": source, "filename": filename, "private": self.private},
                              slot, FIRST_UID + slot if self.users else None)
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

    def start(self, request, slot, uid):
        import json
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
                return None, f"the grader could not start a process for the part ({err})"
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
            if status is None:
                return None, f"took more than {self.timeout} s and was stopped (an endless loop?)"
            return result(bytes(received), status, errors)
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
    if size == 0 and len(received) == 8:                   # the ping that checks a part's process can start
        return {}, None
    if size > MOST_OUTPUT:
        return None, f"returned more than {MOST_OUTPUT >> 20} MB of outputs"
    if size < 0 or len(received) != 8 + size:
        errors.seek(0)
        last = [line for line in errors.read(1 << 16).decode(errors="replace").splitlines() if line.strip()]
        why = {-signal.SIGKILL: "was killed (memory or CPU time over its limit?)",
               -signal.SIGXCPU: "used more than its CPU time", -signal.SIGSEGV: "crashed (segmentation fault)",
               0: "did the part call exit() or os._exit()?"}
        return None, (f"the part's process ended without a result (exit status {status}"
                      + (f": {why[status]}" if status in why else "") + ")" + (f": {last[-1][:300]}" if last else ""))
    try:
        with np.load(io.BytesIO(received[8:]), allow_pickle=False) as npz:
            outputs = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError) as err:
        return None, f"the part's process returned something that is no result ({err})"
    return {name: str(value) if value.dtype.kind == "U" else value.astype(np.float64) if value.dtype.kind in "biuf"
            else f"an array of {value.dtype}" for name, value in outputs.items()}, None
