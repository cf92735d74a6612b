"""The fast path's matrix products: ``gemm`` for a whole product, ``multiply`` and ``add_product`` inside a conv's
group loop (tinygan.nn.cpu.over_groups), where each thread multiplies its own group of images.

Every product of the fast path goes through these few functions, so that benchmarks/step_phases.py can time
them apart from the copies around them.
"""
import numpy as np

from ..backend import get_array_module
from ..blas import one_thread
from .cpu import MIN_SHARED_SIZE, over_batch, threads

GEMM_SPLIT_FLOPS = 1 << 22      # smaller products are not worth a hand-over to the threads
GEMM_PART_ROWS = 32             # a part of a split product has at least this many rows (or columns)


def gemm(a, b, out=None):
    """a @ b (into ``out`` if given), a whole product (a conv's products go through multiply, a group at a time).

    On the CPU, with two or more threads, OpenBLAS's own threads never wake (tinygan.blas.one_thread), so they
    never spin beside the copies that follow: a large product is split over the fast path's threads, by rows of
    a (or columns of b when the product is wider than tall), and OpenBLAS computes each part on its own thread;
    a small one (under GEMM_SPLIT_FLOPS, such as D's last layer, one logit per image) runs on the calling thread.
    A large product that cannot be split (too few rows for the threads, an ``out`` that is not a fresh (m, n)
    array), or a process where OpenBLAS is held to one thread by its user, or another BLAS, is NumPy's own.
    """
    xp = get_array_module(a)
    if xp is not np or a.ndim != 2 or b.ndim != 2 or threads() < 2:
        return xp.matmul(a, b, out=out)
    (m, k), n = a.shape, b.shape[1]
    small = m * k * n < GEMM_SPLIT_FLOPS
    if not small and not split_product(a, b, out):
        return np.matmul(a, b, out=out)
    with one_thread(most=threads()) as single:
        if not single or small:
            return np.matmul(a, b, out=out)
        if out is None:
            out = np.empty((m, n), dtype=np.result_type(a, b))
        if m >= n:
            over_batch(a, lambda rows: np.matmul(a[rows], b, out=out[rows]), items=m)
        else:
            over_batch(b, lambda columns: np.matmul(a, b[:, columns], out=out[:, columns]), items=n)
    return out


def split_product(a, b, out):
    """Whether gemm can split a large product a @ b (2-D NumPy arrays) over the fast path's threads."""
    (m, _), n = a.shape, b.shape[1]
    fresh_out = out is None or (out.shape == (m, n) and not np.may_share_memory(out, a)
                                and not np.may_share_memory(out, b))
    split = a if m >= n else b                      # what over_batch shares out: it must be large enough to share
    return fresh_out and max(m, n) >= GEMM_PART_ROWS * threads() and split.size >= MIN_SHARED_SIZE


def multiply(a, b, out=None):
    """a @ b on the calling thread's terms: inside a group loop (cpu.over_groups) each thread multiplies its own
    group, with OpenBLAS's workers asleep. (Like gemm, a name that benchmarks/step_phases.py can time.)"""
    return get_array_module(a).matmul(a, b, out=out)


def add_product(arrays, name, a, b):
    """The group loop's running total ``arrays.totals[name]`` += a @ b, in the thread's kept memory: the first
    group of a call writes the total, each next one its product into a kept scratch array, then adds it. a and b may
    be stacks of matrices (a product per matrix)."""
    shape, dtype = a.shape[:-1] + b.shape[-1:], get_array_module(a).result_type(a.dtype, b.dtype)
    if name not in arrays.totals:
        arrays.totals[name] = multiply(a, b, out=arrays.scratch(name, shape, dtype, a))
    else:
        arrays.totals[name] += multiply(a, b, out=arrays.scratch(name + " of a group", shape, dtype, a))


def add_sum(arrays, name, rows):
    """The group loop's running total ``arrays.totals[name]`` += the sum of ``rows`` over the first axis."""
    total = rows.sum(axis=0)
    arrays.totals[name] = total if name not in arrays.totals else arrays.totals[name] + total


def totals(parts, name):
    """The sum over the threads' parts of a group loop's running total ``name``, as a fresh array (the parts'
    totals are kept memory)."""
    first = parts[0].totals[name]
    return sum_into(get_array_module(first).empty_like(first), [part.totals[name] for part in parts])


def sum_into(out, arrays):
    """out[...] = the sum of ``arrays`` (each of out's shape, out may be a view), its rows shared out over the
    threads; returns out."""
    def add(rows):
        out[rows] = arrays[0][rows]
        for array in arrays[1:]:
            out[rows] += array[rows]
    over_batch(out, add)
    return out
