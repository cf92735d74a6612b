"""What the fast path does about the CPU it runs on: threads over the batch, groups of images that fit in the cache,
and kept work arrays. (OpenBLAS's own idle threads: tinygan.blas.)

* Threads over the batch (``over_batch``). NumPy copies, computes elementwise and sums on one core
  and releases the GIL while it does, so the activations and BatchNorm split over the batch keep
  every core busy (on the CPU; on the GPU one call does the whole batch).
* Groups of images (``over_groups``). A conv unfolds a few images at a time and multiplies their columns at
  once, while they are still in the core's cache: the batch's columns (134 MB for D's second conv at batch
  128) are never written to memory and read back. Each thread takes its part of the batch, group by group,
  with its own small work arrays, and OpenBLAS computes each product on the thread that asks for it.
* Kept work arrays (``WorkArrays``). A layer keeps its columns and canvases from step to step: a
  fresh array costs page faults as long as the copy into it.

The number of threads is chosen like the path (tinygan.nn.paths): ``with using_threads(1):`` for a block
(per thread: a context variable; lesson 12 times one thread against two), else $TINYGAN_THREADS, else one
per core.
"""
import contextlib
import contextvars
import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import get_array_module
from ..blas import one_thread

_chosen = contextvars.ContextVar("tinygan_threads", default=None)
MIN_SHARED_SIZE = 1 << 16      # smaller arrays are not worth a hand-over to the threads


@functools.lru_cache(maxsize=None)
def _cores():
    """os.cpu_count(), asked once (it reads the system's CPU list: 20 us a call, and a step asks 350 times)."""
    return os.cpu_count() or 1


def threads():
    """How many threads the fast path's loops use: using_threads' number, else $TINYGAN_THREADS, else one per core.
    Read when a loop runs (not at import, so that a bad value is an error the program can report)."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen
    text = os.environ.get("TINYGAN_THREADS", "").strip()
    try:
        return int(text) if text else _cores()
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


def over_batch(x, work, items=None, in_cache=False):
    """``[work(part) for part in batch_parts(items)]``, the parts at the same time, one per thread, where x is a
    NumPy array of at least MIN_SHARED_SIZE elements; else one call over the whole batch (the GPU's way).

    x: the array the work reads (its module and size decide); items: how many images the batch has (default:
    x's first axis); work(part): does the work for a slice of the batch. Returns the parts' results.
    in_cache: each thread calls work on its part a group of images at a time, each group at most
    CACHE_CHUNK_BYTES of x (all their results are returned): work that makes several passes over its slice
    (LeakyReLU's max(x, a x), BatchNorm's x - mean and its sums) then finds the second one in the cache.
    """
    if get_array_module(x) is not np or x.size < MIN_SHARED_SIZE or x.ndim == 0:
        return [work(slice(None) if x.ndim else Ellipsis)]              # a 0-d array has no batch axis
    n = x.shape[0] if items is None else items
    parts = batch_parts(n)
    if in_cache:
        step, whole = max(1, CACHE_CHUNK_BYTES * n // max(x.nbytes, 1)), work

        def work(part):
            start, stop, _ = part.indices(n)
            return [whole(slice(first, min(first + step, stop))) for first in range(start, stop, step)]
    if len(parts) == 1:
        results = [work(parts[0])]
    else:
        results = list(_pool().map(work, parts))
    return [result for part in results for result in part] if in_cache else results


CACHE_CHUNK_BYTES = 1 << 20     # over_batch(in_cache=True): a group of images whose slices of 3 arrays fit in L2


GROUP_ROWS = 512         # a group of images gives its matrix products at least this many rows (pixels) ...
GROUP_BYTES = 2 << 20    # ... or holds this many bytes of columns, whichever is more images


def over_groups(x, work, work_arrays=None, rows_per_image=1, bytes_per_image=0):
    """A conv's loop: ``work(images, arrays)`` for each group of images of the batch (a slice of x's first axis),
    where ``arrays`` are the work arrays of the thread that runs it. Returns each thread's WorkArrays, whose
    ``totals`` hold what the groups added up (a weight's gradient, part by part).

    A group has enough images for GROUP_ROWS rows (``rows_per_image``: the rows an image gives the products, the
    conv's pixels or Winograd's tiles) or GROUP_BYTES of columns or tiles (``bytes_per_image``), so that its
    products stay efficient, and few enough that what one step of ``work`` writes is still near the core (in its
    cache, or the shared L3) when the next reads it. On the CPU each thread takes its part of
    the batch (batch_parts) and OpenBLAS computes each product on that thread (tinygan.blas.one_thread); without
    that control (another BLAS), with one thread (``using_threads(1)``) or a batch too small to share, one thread
    runs every group and the BLAS threads each product as it does. On the GPU the whole batch is one group.
    Each thread keeps its own work arrays per layer, among them two arrays the size of the layer's dW (2.25 times
    it in Winograd's tiles).
    """
    arrays, n = kept_or_fresh(work_arrays), x.shape[0]
    on_cpu = get_array_module(x) is np
    per_group = max(1, GROUP_ROWS // max(rows_per_image, 1), GROUP_BYTES // max(bytes_per_image, 1)) if on_cpu else n
    parts = batch_parts(n) if on_cpu and threads() > 1 else [slice(0, n)]
    with one_thread(most=threads()) if len(parts) > 1 else contextlib.nullcontext(False) as shared:
        parts = parts if shared else [slice(0, n)]

        def run(k):
            mine = arrays.part(k).start_totals()
            start, stop, _ = parts[k].indices(n)
            for first in range(start, stop, per_group) if stop > start else [start]:   # no images: one empty group
                work(slice(first, min(first + per_group, stop)), mine)
            return mine
        if len(parts) == 1:
            return [run(0)]
        return list(_pool().map(run, range(len(parts))))


class WorkArrays:
    """A layer's work arrays, kept from call to call: the fast path's columns and canvases.

    A fresh 134 MB array (the columns of D's second conv at batch 128) costs about 11 ms in page
    faults the first time it is written, as much as the copy into it; an array kept from the last
    step is already in memory. A conv layer holds one (``layer.work_arrays``) and passes it to its path;
    ``FRESH`` (keep=False) gives new arrays of zeros every time, for a call without a layer. Each thread
    of a group loop has its own (``part(k)``), and its running ``totals`` (name -> array) for the call.
    A kept array serves any call up to its size (a group of fewer images, a smaller layer).
    """

    def __init__(self, keep=True):
        self.keep, self._kept, self._parts, self.totals = keep, {}, {}, {}      # _kept: name -> (key, array)

    def part(self, k):
        """The work arrays of thread k of a group loop (cpu.over_groups), kept with this layer's."""
        if not self.keep:
            return WorkArrays(keep=False)
        return self._parts.setdefault(k, WorkArrays())

    def start_totals(self):
        """Forget the last call's totals: the first group of a call writes each total, the next ones add to it."""
        self.totals = {}
        return self

    def columns(self, shape, dtype, like):
        """A conv's unfolded input (im2col's output; the backward writes dcols over it), or a convT's x @ W."""
        return self._array("columns", shape, dtype, like)

    def scratch(self, name, shape, dtype, like):
        """A named array for one group's work: its part of a total (a product, before it is added), Winograd's
        tiles and products. Two names never share memory; one name serves its next request."""
        return self._array(name, shape, dtype, like)

    def canvas(self, shape, dtype, like, image):
        """The canvas im2col (or Winograd's tiles) copies the image into. Only its inside is ever written, so its
        zero border holds only for the ``image`` (size and padding) it was made for: another one gets a new canvas."""
        return self._array("canvas", shape, dtype, like, key=image)

    def fold_canvas(self, shape, dtype, like):
        """The canvas col2im adds the columns onto (zeroed by col2im before each use)."""
        return self._array("fold canvas", shape, dtype, like)

    def _array(self, name, shape, dtype, like, key=None):
        """A kept array of this shape. A canvas (``key``: its image) keeps its shape, and serves a group of fewer
        images with its first ones, whose zero borders stay where they are; any other array is the first
        elements of a kept buffer at least that large, as a contiguous array of the shape asked for."""
        xp, shape, size = get_array_module(like), tuple(shape), int(np.prod(shape))
        kept_key, array = self._kept.get(name, (None, None))
        fits = (array is not None and kept_key == key and array.dtype == dtype and get_array_module(array) is xp
                and (array.shape[1:] == shape[1:] and array.shape[0] >= shape[0] if key is not None
                     else array.size >= size))
        if not fits:
            array = xp.zeros(shape if key is not None else size, dtype=dtype)
            if self.keep:
                self._kept[name] = (key, array)
        return array[:shape[0]] if key is not None else array[:size].reshape(shape)


FRESH = WorkArrays(keep=False)


def kept_or_fresh(work_arrays):
    """A layer's WorkArrays, or FRESH where the caller passes none."""
    return FRESH if work_arrays is None else work_arrays
