"""OpenBLAS's idle threads, put to sleep for training: a program restarts itself with OPENBLAS_THREAD_TIMEOUT set.

OpenBLAS's own threads, after each matrix product, spin for about 0.1 s (2^28 cycles) waiting for the next one,
so they take a third of the CPU from the fast path's copy threads (tinygan.nn.cpu; measured: the step's copies
and elementwise passes 40% slower). With OPENBLAS_THREAD_TIMEOUT=4 they go to sleep at once. OpenBLAS reads
the variable when NumPy loads it, so it has to be in the environment when the process starts: ``python -m
tinygan train`` restarts itself with it (lesson 12 times the difference).
"""
import os
import sys

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
