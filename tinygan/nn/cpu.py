"""What the fast path does about the CPU it runs on: threads over the batch, kept work arrays, OpenBLAS.

* Threads over the batch. NumPy copies, computes elementwise and sums on one core and
  releases the GIL while it does, so im2col/col2im, the activations and BatchNorm split
  over the batch keep every core busy (on the CPU; on the GPU one call does the whole batch).
* Kept work arrays. A layer keeps its columns and canvases (its ``scratch`` dict) from step
  to step: a fresh 134 MB array costs page faults as long as the copy into it.
* OpenBLAS's idle threads asleep (BLAS_THREADS_ASLEEP, set when ``train`` starts).

``TINYGAN_THREADS`` sets the number of threads (default: one per core); ``with using_threads(1):``
changes it for a block (lesson 12 times one thread against two).
"""
import contextlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import get_array_module

# Threads for the copy loops of im2col / col2im on the CPU (BLAS has its own threads): read from
# TINYGAN_THREADS on first use (not at import, so that a bad value is an error the program can report).
THREADS = None


def threads():
    """How many threads the copy loops use: using_threads' number, else $TINYGAN_THREADS, else one per core."""
    global THREADS
    if THREADS is None:
        text = os.environ.get("TINYGAN_THREADS", "").strip()
        try:
            THREADS = int(text) if text else (os.cpu_count() or 1)
        except ValueError:
            raise ValueError(f"TINYGAN_THREADS={text!r} is not a number of threads; expected a whole number "
                             "such as 2") from None
    return THREADS
_executor, _executor_threads = None, 0


@contextlib.contextmanager
def using_threads(n):
    """Within the block, the fast path shares its copy loops out over n threads (1: no threads at all)."""
    global THREADS
    if int(n) < 1:
        raise ValueError(f"using_threads: expected at least 1 thread, got {n!r}")
    saved, THREADS = THREADS, int(n)
    try:
        yield
    finally:
        THREADS = saved


def _pool():
    global _executor, _executor_threads
    if _executor_threads < threads():         # created on first use, not at import; again for more threads
        if _executor is not None:
            _executor.shutdown(wait=False)
        _executor, _executor_threads = ThreadPoolExecutor(threads(), thread_name_prefix="tinygan-im2col"), threads()
    return _executor


# OpenBLAS's own threads, after each matrix product, spin for about 0.1 s (2^28 cycles) waiting for
# the next one, so they take a third of the CPU from the copy threads above (measured: the step's
# copies and elementwise passes 40% slower). With OPENBLAS_THREAD_TIMEOUT=4 they go to sleep at once.
# OpenBLAS reads the variable when NumPy loads it, so it has to be in the environment when the
# process starts: the train command restarts itself with it (restart_with_blas_threads_asleep).
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


def batch_parts(n):
    """The batch split into one slice per thread (a single slice when it is too small to share)."""
    chunks = threads()
    if chunks <= 1 or n < 2 * chunks:
        return [slice(0, n)]
    bounds = [n * k // chunks for k in range(chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def map_over_batch(work, n):
    """``[work(part) for part in batch_parts(n)]``, the parts run at the same time, one per CPU core.

    NumPy does its copies, elementwise arithmetic and sums on one core and releases the GIL
    while it runs them, so threads over disjoint parts of the batch keep both cores busy
    (up to twice as fast on 2 cores). On the GPU (CuPy) the callers skip this and run the work in one call.
    """
    parts = batch_parts(n)
    if len(parts) == 1:
        return [work(parts[0])]
    return list(_pool().map(work, parts))


def parallel_over_batch(work, n):
    """Run ``work(batch_slice)`` on every part of the batch at the same time (see :func:`map_over_batch`)."""
    map_over_batch(work, n)


MIN_SHARED_SIZE = 1 << 16      # smaller arrays are not worth a hand-over to the threads


def over_batch(x, work):
    """Run ``work(batch_slice)`` over all of x's batch: in threads on the CPU when x is large, in one call otherwise.
    Returns the list of the parts' results."""
    if get_array_module(x) is np and x.size >= MIN_SHARED_SIZE:
        return map_over_batch(work, x.shape[0])
    return [work(slice(None) if x.ndim else Ellipsis)]              # a 0-d array has no batch axis


def scratch_buffer(scratch, name, shape, dtype, like, key=None):
    """A work array that never leaves its layer, kept in the layer's ``scratch`` dict from call to call.

    A fresh 134 MB array (the columns of D's second conv at batch 128) costs about 11 ms in page
    faults the first time it is written, as much as the copy into it; a buffer kept from the
    last step is already in memory. New buffers are zeros; ``key`` names what else a reuse must
    match (im2col's canvas keeps a zero border only for the image size it was made for).
    ``scratch=None`` gives a fresh array every time.
    """
    xp = get_array_module(like)
    kept_key, buffer = (None, None) if scratch is None else scratch.get(name, (None, None))
    if (buffer is None or kept_key != key or buffer.shape != tuple(shape) or buffer.dtype != dtype
            or get_array_module(buffer) is not xp):
        buffer = xp.zeros(shape, dtype=dtype)
        if scratch is not None:
            scratch[name] = (key, buffer)
    return buffer
