"""Writing files so that nothing is ever half-written or lost: one place for every rule.

* ``atomic_path`` / ``atomic_write``: every file tinygan writes goes to a temp
  file beside its target first (``.<name>.<pid>.<random>.tmp``), is flushed to
  disk, and then replaces the target with ``os.replace``, which is atomic. A
  crash leaves the previous file as it was, never a half-written one.
* ``remove_stale_temp_files``: the temp files of a process that was killed
  (its PID is in the name and no longer runs) are removed on the next start.
* ``cache_dir``: the one folder for caches (decoded images, FID weights and
  statistics). Never the user's data folder.
* ``RunLock``: an OS lock on a run folder for a training run's lifetime. The
  operating system drops it when the process dies, even on SIGKILL.
* ``check_free_space``: a clear error before a large write, instead of a full disk
  half-way through.
"""
import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path

TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{12}\.tmp")


# --- atomic writes -----------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path):
    """Yield a temp path beside ``path``; when the body succeeds, it replaces ``path``.

    If the body raises (or the temp file was never written), the temp file is
    removed and ``path`` is left as it was. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_directory(path.parent)


@contextlib.contextmanager
def atomic_write(path):
    """Open a binary temp file beside ``path``; on success its bytes are on disk and replace ``path``."""
    with atomic_path(path) as temp:
        # os.open with mode 0o666 lets the umask decide the permissions, as open() would.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())   # the bytes are on disk before the rename makes them visible


def write_text(path, text):
    """Write a text file atomically (UTF-8)."""
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    return Path(path)


def _fsync_directory(directory):
    """Make a rename durable (POSIX). Windows cannot open directories, so skip it there."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass   # some file systems refuse to fsync a directory; the rename itself still happened
    finally:
        os.close(fd)


def _running(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # it exists, it is someone else's
        return True
    return True


def remove_stale_temp_files(directory, recursive=False):
    """Delete the temp files that killed processes left in ``directory``; returns [(path, bytes)]."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in (directory.rglob(".*.tmp") if recursive else directory.glob(".*.tmp")):
        match = TEMP_PATTERN.fullmatch(path.name)
        if match and path.is_file() and not _running(int(match.group("pid"))):
            size = path.stat().st_size
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append((path, size))
    return removed


# --- the cache folder ----------------------------------------------------------

def cache_dir(override=None):
    """Where caches go: ``override``, else $TINYGAN_CACHE, else $XDG_CACHE_HOME/tinygan, else ~/.cache/tinygan."""
    if override:
        return Path(override).expanduser()
    if os.environ.get("TINYGAN_CACHE"):
        return Path(os.environ["TINYGAN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tinygan"
    return Path("~/.cache/tinygan").expanduser()


def check_free_space(directory, needed_bytes, what):
    """Raise OSError naming ``what`` if ``directory``'s disk has less than ``needed_bytes`` free."""
    directory = Path(directory)
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise OSError(f"not enough disk space for {what} in {directory}: it needs {needed_bytes / 1e6:,.0f} MB "
                      f"and {free / 1e6:,.0f} MB are free; free some space or choose another folder")


# --- one run per folder ----------------------------------------------------------

class RunLock:
    """An exclusive OS lock on the file ``path`` (a run folder's RunFolder.lock; ``fcntl.flock``), released when the
    process ends.

    ``acquire()`` raises RuntimeError naming the PID that holds the folder. The lock
    file itself stays; it is the lock on it that counts, so a killed run never leaves
    a stale lock behind.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.fd = None

    def acquire(self):
        try:
            import fcntl
        except ImportError:              # Windows: no flock; one run per folder is then up to the user
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.check(self.path)            # says who holds it
            raise RuntimeError(f"{self.path.parent} is in use by another training run") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    @staticmethod
    def check(path):
        """Raise acquire()'s RuntimeError if another process holds the lock ``path`` now; create nothing."""
        path = Path(path)
        try:
            import fcntl
            fd = os.open(path, os.O_RDWR)
        except (ImportError, OSError):   # no flock, or no lock file (or no folder): nobody holds it
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise RuntimeError(f"{path.parent} is in use by another training run (PID {holder}); "
                               "wait for it to finish, or choose another --out") from None
        finally:
            os.close(fd)                 # the probe's own lock, if it got one, ends here

    def release(self):
        if self.fd is not None:
            os.close(self.fd)            # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
