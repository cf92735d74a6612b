"""What the fast path does about the CPU it runs on: threads over the batch, and kept work arrays. (OpenBLAS's own
idle threads: tinygan.blas.)

* Threads over the batch (``over_batch``). NumPy copies, computes elementwise and sums on one core
  and releases the GIL while it does, so im2col/col2im, the activations and BatchNorm split over the
  batch keep every core busy (on the CPU; on the GPU one call does the whole batch).
* Kept work arrays (``WorkArrays``). A layer keeps its columns and canvases from step to step: a
  fresh 134 MB array costs page faults as long as the copy into it.

The number of threads is chosen like the path (tinygan.nn.paths): ``with using_threads(1):`` for a block
(per thread: a context variable; lesson 12 times one thread against two), else $TINYGAN_THREADS, else one
per core.
"""
import contextlib
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import get_array_module

_chosen = contextvars.ContextVar("tinygan_threads", default=None)
MIN_SHARED_SIZE = 1 << 16      # smaller arrays are not worth a hand-over to the threads


def threads():
    """How many threads the fast path's loops use: using_threads' number, else $TINYGAN_THREADS, else one per core.
    Read when a loop runs (not at import, so that a bad value is an error the program can report)."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen
    text = os.environ.get("TINYGAN_THREADS", "").strip()
    try:
        return int(text) if text else (os.cpu_count() or 1)
    except ValueError:
        raise ValueError(f"TINYGAN_THREADS={text!r} is not a number of threads; expected a whole number "
                         "such as 2") from None


@contextlib.contextmanager
def using_threads(n):
    """Within the block, the fast path shares its loops out over n threads (1: no threads at all)."""
    if int(n) < 1:
        raise ValueError(f"using_threads: expected at least 1 thread, got {n!r}")
    token = _chosen.set(int(n))
    try:
        yield
    finally:
        _chosen.reset(token)


_executor, _executor_threads = None, 0


def _pool():
    global _executor, _executor_threads
    if _executor_threads < threads():         # created on first use, not at import; again for more threads
        if _executor is not None:
            _executor.shutdown(wait=False)
        _executor, _executor_threads = ThreadPoolExecutor(threads(), thread_name_prefix="tinygan-fast"), threads()
    return _executor


def batch_parts(n):
    """The batch split into one slice per thread (a single slice when it is too small to share)."""
    chunks = threads()
    if chunks <= 1 or n < 2 * chunks:
        return [slice(0, n)]
    bounds = [n * k // chunks for k in range(chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def over_batch(x, work, items=None):
    """``[work(part) for part in batch_parts(items)]``, the parts at the same time, one per thread, where x is a
    NumPy array of at least MIN_SHARED_SIZE elements; else one call over the whole batch (the GPU's way).

    x: the array the work reads (its module and size decide); items: how many images the batch has (default:
    x's first axis); work(part): does the work for a slice of the batch. Returns the parts' results.
    """
    if get_array_module(x) is not np or x.size < MIN_SHARED_SIZE or x.ndim == 0:
        return [work(slice(None) if x.ndim else Ellipsis)]              # a 0-d array has no batch axis
    parts = batch_parts(x.shape[0] if items is None else items)
    if len(parts) == 1:
        return [work(parts[0])]
    return list(_pool().map(work, parts))


class WorkArrays:
    """A layer's work arrays, kept from call to call: the fast path's columns and canvases.

    A fresh 134 MB array (the columns of D's second conv at batch 128) costs about 11 ms in page
    faults the first time it is written, as much as the copy into it; an array kept from the last
    step is already in memory. A conv layer holds one (``layer.work_arrays``) and passes it to its path;
    ``FRESH`` (keep=False) gives new arrays of zeros every time, for a call without a layer.
    """

    def __init__(self, keep=True):
        self.keep, self._kept = keep, {}          # name -> (key, array)

    def columns(self, shape, dtype, like):
        """A conv's unfolded input (im2col's output; the backward writes dcols over it), or a convT's x @ W."""
        return self._array("columns", shape, dtype, like)

    def canvas(self, shape, dtype, like, image):
        """The canvas im2col copies the image into. Only its inside is ever written, so its zero border holds
        only for the ``image`` (size and padding) it was made for: another one gets a new canvas."""
        return self._array("canvas", shape, dtype, like, key=image)

    def fold_canvas(self, shape, dtype, like):
        """The canvas col2im adds the columns onto (zeroed by col2im before each use)."""
        return self._array("fold canvas", shape, dtype, like)

    def holds_columns(self, array):
        """True if ``array`` is the kept columns array itself (not a view of another array, or a copy)."""
        return self._kept.get("columns", (None, None))[1] is array

    def _array(self, name, shape, dtype, like, key=None):
        xp = get_array_module(like)
        kept_key, array = self._kept.get(name, (None, None))
        if (array is None or kept_key != key or array.shape != tuple(shape) or array.dtype != dtype
                or get_array_module(array) is not xp):
            array = xp.zeros(shape, dtype=dtype)
            if self.keep:
                self._kept[name] = (key, array)
        return array


FRESH = WorkArrays(keep=False)


def kept_or_fresh(work_arrays):
    """A layer's WorkArrays, or FRESH where the caller passes none."""
    return FRESH if work_arrays is None else work_arrays
