"""OpenBLAS's own threads, kept from spinning: tinygan's matrix products run on its own threads, one BLAS thread each.

After each matrix product it computed on several threads, OpenBLAS keeps its worker threads spinning for about
0.1 s (2^28 cycles) in case another product follows. They take a core from the fast path's copy threads
(tinygan.nn.cpu), and the step's copies and elementwise passes run 40% slower beside them. OpenBLAS reads how
long they spin (OPENBLAS_THREAD_TIMEOUT) once, when NumPy loads it, so a library cannot change it for a notebook
whose NumPy is loaded already. What a library can change is the number of threads a product uses: within
``one_thread()`` every product runs on the thread that asks for it, so the workers are never woken and never
spin. The fast path's ``gemm`` splits each large product over its own threads (tinygan.nn.cpu.over_batch), each
asking OpenBLAS for one thread: both cores multiply, and nothing spins afterwards (lesson 12 times it).

``one_thread()`` finds OpenBLAS's ``set_num_threads`` in this process (NumPy's bundled copy, or a system one);
with another BLAS (MKL, Accelerate) it yields False and the fast path leaves the threading to that BLAS.

``python -m tinygan train`` also restarts itself with OPENBLAS_THREAD_TIMEOUT=4 (``restart_with_blas_threads_asleep``),
for the products outside the fast path (the reference path's); the fast path no longer needs it.
"""
import contextlib
import ctypes
import glob
import os
import sys
import threading

import numpy as np

# (setter, getter) symbol names: NumPy's bundled scipy-openblas (64-bit ints) and a plain OpenBLAS.
SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
           ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
           ("openblas_set_num_threads", "openblas_get_num_threads"))
_found = []                       # [(set, get)] or [None], once looked up
_lock = threading.Lock()
_users = 0                        # one_thread blocks open now (threads of the fast path may overlap)
_saved = None


def openblas_libraries():
    """The OpenBLAS libraries loaded in this process (Linux: from /proc/self/maps), else NumPy's bundled one."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        paths = set()
    numpy = os.path.dirname(np.__file__)
    bundled = [os.path.join(numpy, os.pardir, "numpy.libs", "*openblas*"),    # Linux and Windows wheels
               os.path.join(numpy, ".dylibs", "*openblas*")]                  # macOS wheels
    return sorted(paths) or sorted(path for pattern in bundled for path in glob.glob(pattern))


def thread_functions():
    """OpenBLAS's (set_num_threads, get_num_threads) as ctypes functions, or None where there is no OpenBLAS."""
    if not _found:
        found = None
        for path in openblas_libraries():
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            for setter, getter in SYMBOLS:
                if hasattr(library, setter) and hasattr(library, getter):
                    found = (getattr(library, setter), getattr(library, getter))
                    found[0].argtypes, found[0].restype, found[1].restype = [ctypes.c_int], None, ctypes.c_int
                    break
            if found:
                break
        if found is not None and hasattr(os, "register_at_fork"):     # on first use, not at import
            os.register_at_fork(after_in_child=_after_fork_in_child)
        _found.append(found)
    return _found[0]


@contextlib.contextmanager
def one_thread(most=2):
    """Within the block, OpenBLAS computes each product on the calling thread only (its workers stay asleep), so
    that the caller can run ``most`` products at once, one per core. Yields False, changing nothing, where there
    is no OpenBLAS or where OpenBLAS is held to fewer than ``most`` threads (OPENBLAS_NUM_THREADS, threadpoolctl:
    its user's limit stands). Blocks may overlap across threads: the count is put back when the last one ends.
    The count is the process's: while a block is open, a product of another thread runs on one core too."""
    global _users, _saved
    functions = thread_functions()
    if functions is None:
        yield False
        return
    set_threads, get_threads = functions
    with _lock:
        if _users == 0:
            _saved = get_threads()
        usable = _saved >= most
        if usable:
            if _users == 0:
                set_threads(1)
            _users += 1
    if not usable:
        yield False
        return
    try:
        yield True
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                set_threads(_saved)


def _after_fork_in_child():
    """A child forked inside a block has no thread in it: its lock is new and its OpenBLAS count put back."""
    global _lock, _users
    _lock = threading.Lock()
    if _users:
        _users = 0
        thread_functions()[0](_saved)


# --- the environment's way, for a whole program -------------------------------------------------
BLAS_THREADS_ASLEEP = {"OPENBLAS_THREAD_TIMEOUT": "4"}


def restart_with_blas_threads_asleep():
    """Re-run this program (same arguments) with BLAS_THREADS_ASLEEP in its environment, unless the
    variables are set already. For a program's entry point, before it does any work: the process is replaced."""
    if os.name != "posix" or not hasattr(sys, "orig_argv") or all(key in os.environ for key in BLAS_THREADS_ASLEEP):
        return
    for stream in (sys.stdout, sys.stderr):          # what was printed so far would be lost with the process
        stream.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, {**BLAS_THREADS_ASLEEP, **os.environ})
    except OSError:                                  # no interpreter to re-run (embedded Python): go on as it is
        return
