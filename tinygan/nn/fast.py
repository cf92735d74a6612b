"""The fast path: the same layers, organised for speed. The reference path is the textbook.

Every function here computes what a layer of tinygan.nn computes on its reference
path, and tests/test_fast_path.py holds each one to its reference on the same arrays.
What makes them faster (lessons/12_making_it_fast.py times each trick; benchmarks/step_phases.py
shows where a training step's time goes):

* NHWC memory. Tensors keep the NCHW *shape*, but a conv returns an NCHW *view* of
  NHWC memory: ``out.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)``. Elementwise
  NumPy/CuPy ops keep the memory order of their input, so the next conv's
  ``x.transpose(0, 2, 3, 1)`` is free, and im2col copies whole C-long rows
  (the C values of one pixel are adjacent in NHWC).
* Blocks of kernel offsets. At stride s, offsets i0 .. i0 + s - 1 of neighbouring output
  pixels touch disjoint, neighbouring rows, so an s x s block of offsets tiles the image:
  im2col and col2im move a whole block in one strided copy (4 instead of 16 for D's 4x4
  kernels at stride 2), in runs of s*C floats, a cache-sized group of images at a time.
* Threads over the batch. NumPy copies, computes elementwise and sums on one core and
  releases the GIL while it does, so im2col/col2im, the activations and BatchNorm split
  over the batch keep every core busy (on the CPU).
* Kept work arrays. A layer keeps its columns and canvases (``layer._scratch``) from step
  to step: a fresh 134 MB array costs page faults as long as the copy into it.
* No branch per element: LeakyReLU's and ReLU's backward build the slope arithmetically.
* A 1x1 conv needs no unfold.
* RGB. A convT with fewer than 4 output channels folds in channels-first memory,
  where each strided add moves whole rows instead of runs of 3 floats.
* BatchNorm keeps x - mean and sums against it with einsum; in eval mode it is one affine
  map per channel (2 passes over memory instead of 4). LeakyReLU is max(x, a x): 2 passes.
* FID's inference conv (conv2d_relu) builds columns a block at a time into a small
  reused buffer and applies bias and ReLU while the block is in the cache.
* OpenBLAS's idle threads asleep (BLAS_THREADS_ASLEEP, set when ``train`` starts).

The switch: the layers use this path unless ``use("reference")`` or the environment
variable ``TINYGAN_PATH=reference`` selects the reference path everywhere. Switch
between steps, not between a layer's forward and its backward.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import backend
from ..backend import get_array_module
from .functional import conv_output_size, pair

PATHS = ("fast", "reference")
_path = None                     # chosen on first use: TINYGAN_PATH, else "fast"


def use(path):
    """Select the path every layer takes: "fast" (default) or "reference" (the textbook code)."""
    global _path
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; expected one of {PATHS}")
    _path = path


def path():
    """The path the layers take now: "fast" or "reference"."""
    if _path is None:
        use(os.environ.get("TINYGAN_PATH", "fast").strip().lower() or "fast")
    return _path


def enabled():
    return path() == "fast"


# Threads for the copy loops of im2col / col2im on the CPU (BLAS has its own threads).
THREADS = int(os.environ.get("TINYGAN_THREADS", os.cpu_count() or 1))
_executor = None


def _pool():
    global _executor
    if _executor is None:           # created on first use, not at import
        _executor = ThreadPoolExecutor(THREADS, thread_name_prefix="tinygan-im2col")
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


def nhwc(x):
    """The (N, H, W, C) view of an (N, C, H, W) array (a free view if its memory is NHWC)."""
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    """The (N, C, H, W) view of an (N, H, W, C) array."""
    return x.transpose(0, 3, 1, 2)


def batch_parts(n):
    """The batch split into one slice per thread (a single slice when it is too small to share)."""
    chunks = THREADS
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


def kernel_offsets(kernel, stride, out_hw):
    """For each kernel offset (i, j): i, j and the strided slices of the padded image it touches."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * ho, sh), slice(j, j + sw * wo, sw)


def padded_canvas(image_hw, kernel, stride, padding, out_hw):
    """(Hp, Wp) of the canvas col2im folds onto. It must hold every slice, also when (H + 2p - k) % s != 0."""
    return tuple(max(size + 2 * p, s * (o - 1) + k)
                 for size, k, s, p, o in zip(image_hw, kernel, stride, padding, out_hw))


def stride_blocks(kernel, stride):
    """The kernel offsets in blocks of (at most) stride x stride: (i0, j0, rows, columns) of each block.

    Offsets i0 .. i0 + s - 1 of neighbouring output pixels touch neighbouring, non-overlapping
    rows (s*ho + i0 + t), so within one block the windows of all output pixels *tile* the image.
    One strided copy then moves the whole block for every pixel, in runs of columns*C floats:
    a 4x4 kernel at stride 2 is 4 copies of runs of 2C instead of 16 copies of runs of C.
    """
    (kh, kw), (sh, sw) = kernel, stride
    for i0 in range(0, kh, sh):
        for j0 in range(0, kw, sw):
            yield i0, j0, min(sh, kh - i0), min(sw, kw - j0)


def tiled_canvas(kernel, stride, out_hw):
    """(Hc, Wc) of the canvas that im2col reads and col2im folds onto: a whole number of stride-sized
    tiles that holds every block (and so the padded image: s Ho + k > H + 2p)."""
    return tuple(s * (o + -(-k // s)) for k, s, o in zip(kernel, stride, out_hw))


def _tiles(canvas, stride):
    """(n, Hc, Wc, C) -> the view (n, Hc/sh, sh, Wc/sw, sw*C): tile row, row in the tile, tile column, (column, C)."""
    n, hc, wc, c = canvas.shape
    return canvas.reshape(n, hc // stride[0], stride[0], wc // stride[1], stride[1] * c)


def _block_pair(tiles, cols5, block, stride, c, out_hw):
    """The same block of kernel offsets as a view of the tiles and of the columns, both (n, Ho, rows, Wo, columns*C)."""
    i0, j0, ti, tj = block
    (sh, sw), (ho, wo) = stride, out_hw
    on_canvas = tiles[:, i0 // sh:i0 // sh + ho, :ti, j0 // sw:j0 // sw + wo, :tj * c]
    in_cols = cols5[:, :, :, i0:i0 + ti, j0 * c:(j0 + tj) * c].transpose(0, 1, 3, 2, 4)
    return on_canvas, in_cols


CACHE_BYTES = 1 << 19     # a group of images whose canvas stays in a core's cache while every block passes over it


def cache_sized_groups(part, canvas):
    """The images of a batch slice in groups whose part of ``canvas`` fits in CACHE_BYTES (one group on a GPU).

    Each block of offsets is one pass over the canvas; done group by group, the passes after the
    first find the group's canvas in the cache instead of in main memory.
    """
    start, stop, _ = part.indices(canvas.shape[0])
    per_image = canvas[0].nbytes
    step = stop - start if get_array_module(canvas) is not np else max(1, CACHE_BYTES // max(per_image, 1))
    for first in range(start, stop, max(step, 1)):
        yield slice(first, min(first + step, stop))


def im2col(x_nhwc, kernel, stride, padding, scratch=None):
    """Unfold an (N, H, W, C) image into columns (N, Ho, Wo, kh, kw, C), one copy per block of offsets.
    With a layer's ``scratch`` dict the columns and the padded canvas are its buffers "columns" and "canvas"."""
    xp = get_array_module(x_nhwc)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, h, w, c = x_nhwc.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x_nhwc.reshape(n, h, w, 1, 1, c)          # a 1x1 conv needs no unfold
    canvas = scratch_buffer(scratch, "canvas", (n,) + tiled_canvas(kernel, stride, (ho, wo)) + (c,), x_nhwc.dtype,
                            x_nhwc, key=(h, w, ph, pw))  # only this inside is ever written: the border stays 0
    cols = scratch_buffer(scratch, "columns", (n, ho, wo, kh, kw, c), x_nhwc.dtype, x_nhwc)

    def unfold(part):                                    # a slice of the batch
        for images in cache_sized_groups(part, canvas):
            canvas[images, ph:ph + h, pw:pw + w] = x_nhwc[images]
            tiles, cols5 = _tiles(canvas[images], stride), cols[images].reshape(-1, ho, wo, kh, kw * c)
            for block in stride_blocks(kernel, stride):
                on_canvas, in_cols = _block_pair(tiles, cols5, block, stride, c, (ho, wo))
                in_cols[...] = on_canvas
    parallel_over_batch(unfold, n) if xp is np else unfold(slice(None))
    return cols


def col2im(cols, image_hw, stride, padding, scratch=None):
    """Fold columns (N, Ho, Wo, kh, kw, C) back onto a fresh (N, H, W, C) image, summing overlaps.

    This is the exact transpose of :func:`im2col`: <im2col(x), c> == <x, col2im(c)>. With a layer's
    ``scratch`` dict the padded canvas is its buffer "fold canvas", and each group of images is
    copied out of it while the group is in the cache.
    """
    xp = get_array_module(cols)
    n, ho, wo, kh, kw, c = cols.shape
    (h, w), (ph, pw) = image_hw, padding
    if (kh, kw, *stride, ph, pw) == (1, 1, 1, 1, 0, 0) and (ho, wo) == (h, w):
        return cols.reshape(n, h, w, c)
    canvas = scratch_buffer(scratch, "fold canvas", (n,) + tiled_canvas((kh, kw), stride, (ho, wo)) + (c,),
                            cols.dtype, cols)
    image = xp.empty((n, h, w, c), dtype=cols.dtype)

    def fold(part):                                      # a slice of the batch
        for images in cache_sized_groups(part, canvas):
            canvas[images] = 0
            tiles, cols5 = _tiles(canvas[images], stride), cols[images].reshape(-1, ho, wo, kh, kw * c)
            for block in stride_blocks((kh, kw), stride):
                on_canvas, in_cols = _block_pair(tiles, cols5, block, stride, c, (ho, wo))
                on_canvas += in_cols                     # the group's canvas stays in the cache for all blocks
            image[images] = canvas[images, ph:ph + h, pw:pw + w]
    parallel_over_batch(fold, n) if xp is np else fold(slice(None))
    return image


def as_matrix(a):
    """(N, H, W, ...) -> (N*H*W, ...): one row per pixel (a view of contiguous memory)."""
    n, h, w = a.shape[:3]
    return a.reshape(n * h * w, -1)


def gemm(a, b, out=None):
    """a @ b (into ``out`` if given): every matrix product of the fast path goes through here, so that
    ``benchmarks/step_phases.py`` can time them apart from the copies around them."""
    return get_array_module(a).matmul(a, b, out=out)


def weight_matrix(weight):
    """(O, C, kh, kw) -> (O, kh*kw*C), the row order that matches im2col's columns."""
    o = weight.shape[0]
    return weight.transpose(0, 2, 3, 1).reshape(o, -1)


def weight_from_matrix(wmat, shape):
    """Inverse of :func:`weight_matrix`: (O, kh*kw*C) -> (O, C, kh, kw)."""
    o, c, kh, kw = shape
    return wmat.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)


def conv2d_forward(x, weight, bias, stride, padding, scratch=None):
    """The conv and the columns its backward reuses (in the layer's ``scratch`` buffers if given)."""
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    cols = im2col(nhwc(x), (kh, kw), stride, padding, scratch)
    ho, wo = cols.shape[1], cols.shape[2]
    out = gemm(as_matrix(cols), weight_matrix(weight).T)                # (N*Ho*Wo, O)
    if bias is not None:
        out += bias
    return nchw(out.reshape(n, ho, wo, o)), cols


def conv2d_backward(grad_out, cols, weight, x_hw, stride, padding, need_input_grad=True, need_weight_grad=True,
                    scratch=None):
    """Gradients of y = conv2d(x, W) + b.

        dW = g^T @ cols           (O, kh*kw*C)
        db = sum of g over N, Ho, Wo
        dx = col2im(g @ Wmat)     the adjoint of the unfold

    When cols is the layer's scratch buffer, dcols is written over it (the same shape, not needed after dW).
    """
    xp = get_array_module(grad_out)
    n, o, ho, wo = grad_out.shape
    g = nhwc(grad_out).reshape(n * ho * wo, o)
    dweight = dbias = dx = None
    if need_weight_grad:
        dweight = weight_from_matrix(gemm(g.T, as_matrix(cols)), weight.shape)
        dbias = g.sum(axis=0)
    if need_input_grad:
        owned = scratch is not None and scratch.get("columns", (None, None))[1] is cols    # not x (a 1x1 conv)
        dcols = cols if owned else xp.empty_like(cols)
        gemm(g, weight_matrix(weight), out=as_matrix(dcols))
        dx = nchw(col2im(dcols, x_hw, stride, padding, scratch))
    return dx, dweight, dbias


def conv_transpose2d_forward(x, weight, bias, stride, padding, out_hw, scratch=None):
    """Transposed conv = the adjoint of conv2d with the same weight.

    The weight (Cin, Cout, kh, kw) read as a conv weight maps Cout channels to
    Cin channels; its adjoint maps our Cin-channel input to Cout channels:
    ``cols = x @ Wmat`` then ``col2im``. Returns the output and x's NHWC matrix.
    """
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    x_mat = nhwc(x).reshape(n * h * w, cin)
    if cout <= RGB_CHANNELS:
        return _conv_transpose2d_rgb(x_mat, weight, bias, (n, h, w), stride, padding, out_hw), x_mat
    cols = scratch_buffer(scratch, "columns", (n, h, w, kh, kw, cout), x.dtype, x)
    gemm(x_mat, weight_matrix(weight), out=as_matrix(cols))
    out = col2im(cols, out_hw, stride, padding, scratch)
    if bias is not None:
        out += bias
    return nchw(out), x_mat


RGB_CHANNELS = 3   # up to this many output channels (an RGB image), convT folds in channels-first memory


def _conv_transpose2d_rgb(x_mat, weight, bias, nhw, stride, padding, out_hw):
    """convT for an RGB output layer. In NHWC memory every strided add of col2im
    would move runs of only 3 floats; in (C, N, H, W) memory the runs are whole rows."""
    n, h, w = nhw
    _, cout, kh, kw = weight.shape
    ph, pw = padding
    cols = gemm(weight_matrix(weight).T, x_mat.T).reshape(kh, kw, cout, n, h, w)
    canvas = _fold_channels_first(cols, padded_canvas(out_hw, (kh, kw), stride, padding, (h, w)), stride)
    out = canvas[:, :, ph:ph + out_hw[0], pw:pw + out_hw[1]]
    if bias is not None:
        out += bias.reshape(-1, 1, 1, 1)
    return out.transpose(1, 0, 2, 3)                                  # NCHW view of CNHW memory


def _fold_channels_first(cols, canvas_hw, stride):
    """col2im of cols (kh, kw, C, N, H, W) onto a (C, N, Hp, Wp) canvas, one strided add per kernel offset."""
    xp = get_array_module(cols)
    kh, kw, c, n, h, w = cols.shape
    canvas = xp.zeros((c, n) + tuple(canvas_hw), dtype=cols.dtype)

    def fold(images):                                    # a slice of the batch (axis 1)
        for i, j, rows, columns in kernel_offsets((kh, kw), stride, (h, w)):
            canvas[:, images, rows, columns] += cols[i, j, :, images]
    parallel_over_batch(fold, n) if xp is np else fold(slice(None))
    return canvas


def conv_transpose2d_backward(grad_out, x_mat, weight, x_hw, stride, padding,
                              need_input_grad=True, need_weight_grad=True, scratch=None):
    """Gradients of y = convT(x, W) + b. The adjoint of the adjoint is a plain conv:

        cols = im2col(g)         dx = cols @ Wmat^T      dW = x_mat^T @ cols
    """
    n = grad_out.shape[0]
    cin, cout, kh, kw = weight.shape
    cols = im2col(nhwc(grad_out), (kh, kw), stride, padding, scratch).reshape(n * x_hw[0] * x_hw[1], -1)
    dweight = dbias = dx = None
    if need_weight_grad:
        dweight = weight_from_matrix(gemm(x_mat.T, cols), weight.shape)
        dbias = grad_out.sum(axis=(0, 2, 3))
    if need_input_grad:
        dx = nchw(gemm(cols, weight_matrix(weight).T).reshape(n, x_hw[0], x_hw[1], cin))
    return dx, dweight, dbias


# --- the layers' fast forward and backward ----------------------------------------------

def layer_scratch(layer):
    """The dict of work buffers a layer keeps between calls (see :func:`scratch_buffer`)."""
    scratch = layer.__dict__.get("_scratch")
    if scratch is None:
        scratch = {}
        object.__setattr__(layer, "_scratch", scratch)
    return scratch


def conv2d_layer_forward(layer, x):
    bias = None if layer.bias is None else layer.bias.data
    y, cols = conv2d_forward(x, layer.weight.data, bias, layer.stride, layer.padding, layer_scratch(layer))
    layer.cache = (cols, x.shape[2:])
    return y


def conv2d_layer_backward(layer, grad_output, need_input_grad):
    cols, x_hw = layer.cache
    layer.cache = None
    dx, dw, db = conv2d_backward(grad_output, cols, layer.weight.data, x_hw, layer.stride, layer.padding,
                                 need_input_grad, layer.weight.requires_grad, layer_scratch(layer))
    layer.accumulate(dw, db)
    return dx


def conv_transpose2d_layer_forward(layer, x, out_hw):
    bias = None if layer.bias is None else layer.bias.data
    y, x_mat = conv_transpose2d_forward(x, layer.weight.data, bias, layer.stride, layer.padding, out_hw,
                                        layer_scratch(layer))
    layer.cache = (x_mat, x.shape[2:])
    return y


def conv_transpose2d_layer_backward(layer, grad_output, need_input_grad):
    x_mat, x_hw = layer.cache
    layer.cache = None
    dx, dw, db = conv_transpose2d_backward(grad_output, x_mat, layer.weight.data, x_hw, layer.stride,
                                           layer.padding, need_input_grad, layer.weight.requires_grad,
                                           layer_scratch(layer))
    layer.accumulate(dw, db)
    return dx


def _channel_sums(*arrays_per_part):
    """Sum per-part (C,) vectors from the threads into one (C,) vector per quantity."""
    return [sum(values) for values in zip(*arrays_per_part)]


def batchnorm_forward(bn, x):
    """BatchNorm2d.forward on NHWC memory, its passes shared out over the threads.

    Train mode keeps x - mean (not xhat): the backward needs only sums against it, and
    xhat = (x - mean) inv_std folds into per-channel factors. Eval mode is one affine map
    per channel (2 passes over memory instead of 4).
    """
    xp = get_array_module(x)
    inv_std_of = lambda var: 1.0 / (var + bn.eps) ** 0.5          # noqa: E731
    gamma = None if bn.weight is None else bn.weight.data
    if not bn.training:
        inv_std = inv_std_of(bn.running_var)
        scale = inv_std if gamma is None else inv_std * gamma
        shift = -bn.running_mean * scale
        if gamma is not None:
            shift += bn.bias.data
        bn.cache = ("x", x, inv_std)          # backward recomputes xhat from x if it needs it
        return _affine(x, scale, shift)
    m = x.size // x.shape[1]
    x4, centred = nhwc(x), xp.empty_like(nhwc(x))       # NHWC: the channel is the fastest axis
    total, = _channel_sums(*over_batch(x, lambda part: (x4[part].sum(axis=(0, 1, 2)),)))
    mean = total / m

    def centre(part):
        xp.subtract(x4[part], mean, out=centred[part])
        flat = centred[part].reshape(-1, centred.shape[3])
        return (xp.einsum("mc,mc->c", flat, flat),)
    squares, = _channel_sums(*over_batch(x, centre))
    var = squares / m
    bn.update_running_statistics(mean, var, m)
    inv_std = inv_std_of(var)
    bn.cache = ("centred", nchw(centred), inv_std)
    scale = inv_std if gamma is None else inv_std * gamma
    return _affine(nchw(centred), scale, None if gamma is None else bn.bias.data)


def _affine(x, scale, shift):
    """y = x * scale + shift with (C,) scale and shift (shift may be None), into fresh NHWC memory."""
    xp = get_array_module(x)
    x4 = nhwc(x)
    y = xp.empty_like(x4)                                # contiguous NHWC even where x is a view

    def work(part):
        xp.multiply(x4[part], scale, out=y[part])
        if shift is not None:
            y[part] += shift
    over_batch(x, work)
    return nchw(y)


def batchnorm_backward(bn, grad_output, need_input_grad):
    """With c = x - mean, xhat = c inv_std and k = gamma inv_std per channel:

        dgamma = sum(g xhat) = inv_std sum(g c),   dbeta = sum(g)
        dx = k g - (k/m) sum(g) - (k inv_std^2 / m) sum(g c) c      (train mode)
        dx = k g                                                    (eval mode)
    """
    xp = get_array_module(grad_output)
    kind, saved, inv_std = bn.cache
    bn.cache = None
    centred = saved if kind == "centred" else saved - bn.running_mean.reshape(1, -1, 1, 1)
    g4, c4 = nhwc(grad_output), nhwc(centred)

    def sums(part):
        g, c = g4[part].reshape(-1, g4.shape[3]), c4[part].reshape(-1, c4.shape[3])
        return g.sum(axis=0), xp.einsum("mc,mc->c", g, c)
    sum_g, sum_gc = _channel_sums(*over_batch(grad_output, sums))
    sum_gxhat = sum_gc * inv_std
    if bn.weight is not None:
        bn.weight.accumulate(sum_gxhat)
        bn.bias.accumulate(sum_g)
    if not need_input_grad:
        return None
    k = inv_std if bn.weight is None else bn.weight.data * inv_std
    if not bn.training:
        return _affine(grad_output, k, None)
    m = grad_output.size // grad_output.shape[1]
    shift, slope = -k * sum_g / m, -k * inv_std * inv_std * sum_gc / m
    dx = xp.empty_like(g4)

    def work(part):
        xp.multiply(g4[part], k, out=dx[part])
        dx[part] += shift
        dx[part] += c4[part] * slope
    over_batch(grad_output, work)
    return nchw(dx)


def leaky_relu_forward(layer, x):
    """y = max(x, a x) for 0 <= a <= 1: two passes over memory instead of where()'s three."""
    xp = get_array_module(x)
    a = x.dtype.type(layer.negative_slope)
    y = xp.empty_like(x)                    # the memory order of x (NHWC after a fast conv)

    def work(part):
        xp.multiply(x[part], a, out=y[part])
        xp.maximum(y[part], x[part], out=y[part])
    over_batch(x, work)
    layer.cache = y                         # y > 0 exactly where x > 0
    return y


def leaky_relu_backward(layer, grad_output):
    y, layer.cache = layer.cache, None
    return slope_backward(y, grad_output, layer.negative_slope)


def slope_backward(y, grad_output, negative_slope):
    """dx = g * slope, slope = 1 where y > 0 and a elsewhere (LeakyReLU; a = 0 for ReLU), built without a branch.

    A mask that picks between g and a g (``where``, ``copyto(where=)``) costs a branch per
    element, and with random signs the CPU mispredicts half of them: 50 ms for D's first
    activation at batch 128. As arithmetic, max([y > 0], a) is exactly 1 or a (0 <= a <= 1):
    three plain passes (compare, max, product).
    """
    xp = get_array_module(grad_output)
    a = grad_output.dtype.type(negative_slope)
    if xp is not np:
        return xp.where(y > 0, grad_output, grad_output * a)       # the GPU does not branch per element
    dx = np.empty_like(y)

    def work(part):
        slope = dx[part]
        np.greater(y[part], 0, out=slope, casting="unsafe")        # 1.0 where y > 0, else 0.0
        if a != 0:
            np.maximum(slope, a, out=slope)                        # 1.0 where y > 0, else a
        slope *= grad_output[part]
    over_batch(y, work)
    return dx


def relu_forward(layer, x):
    """y = max(x, 0), shared out over the threads."""
    xp = get_array_module(x)
    y = xp.empty_like(x)
    over_batch(x, lambda part: xp.maximum(x[part], 0, out=y[part]))
    layer.cache = y
    return y


def relu_backward(layer, grad_output):
    y, layer.cache = layer.cache, None
    return slope_backward(y, grad_output, 0.0)


def pad(x, padding, fill):
    """x (N, C, H, W) padded by ``fill``, as an NCHW view of NHWC memory (x itself when padding is 0):
    the pools' windows then read, and their outputs keep, the layout the fast convs use."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    xpad = xp.full((n, h + 2 * ph, w + 2 * pw, c), fill, dtype=x.dtype)
    xpad[:, ph:ph + h, pw:pw + w] = nhwc(x)
    return nchw(xpad)


def concat_channels(arrays):
    """Concatenate (N, C_k, H, W) arrays along channels into NHWC memory, the layout the next conv reads."""
    xp = get_array_module(arrays[0])
    n, _, h, w = arrays[0].shape
    out = xp.empty((n, h, w, sum(a.shape[1] for a in arrays)), dtype=arrays[0].dtype)
    start = 0
    for a in arrays:
        out[..., start:start + a.shape[1]] = nhwc(a)
        start += a.shape[1]
    return nchw(out)


# --- FID's inference convolution -------------------------------------------------------------

HOST_CHUNK_BYTES = 4 << 20      # conv2d_relu's column buffer on the CPU: stays in the cache
DEVICE_CHUNK_BYTES = 1 << 30    # on the GPU: whole batches, few kernel launches


def _kernel_row(xpad, i, n_images, n_rows, row0, out_w, kw, stride):
    """Kernel row i of im2col for a block of output rows, as a view (no copy).

        view[n, r, wo, j*C + c] = xpad[n, s*(row0 + r) + i, s*wo + j, c]

    In NHWC memory the kw*C values (j, c) under one kernel row are one contiguous
    run, so the view's last axis is contiguous and copying it moves kw*C floats
    at a time (im2col per offset would move only C).
    """
    xp = backend.get_array_module(xpad)
    _, hp, wp, c = xpad.shape
    s_c = xpad.itemsize                         # xpad is C-contiguous: strides follow from the shape
    s_w, s_h, s_n = c * s_c, wp * c * s_c, hp * wp * c * s_c
    first = xpad[:n_images, stride[0] * row0 + i:]
    return xp.lib.stride_tricks.as_strided(
        first, shape=(n_images, n_rows, out_w, kw * c), strides=(s_n, stride[0] * s_h, stride[1] * s_w, s_c))


def _product_bias_relu(cols, wmat, bias, out, relu):
    """out = max(cols @ W + b, 0) for one chunk, in place, while the chunk is still in the cache."""
    gemm(cols, wmat, out=out)
    if bias is not None:
        out += bias
    if relu:
        backend.get_array_module(out).maximum(out, 0, out=out)


def conv2d_relu(x_nhwc, weight, bias=None, stride=1, padding=0, relu=True, chunk_bytes=None):
    """Inference-only y = ReLU(conv2d(x, W) + b) on NHWC arrays: (N, H, W, C) -> (N, Ho, Wo, O).

    The same arithmetic as :func:`tinygan.nn.functional.conv2d` (columns times the
    weight matrix), organised for speed because FID runs 5.7 GMAC per image:

    * a 1x1 conv is a matrix product on the NHWC memory itself, no copy at all;
    * otherwise the columns are built kh slices at a time (:func:`_kernel_row`)
      into a small reused buffer of about ``chunk_bytes``, a block of output rows
      at a time, so they are still in the cache when the product reads them
      (the whole batch's columns would be hundreds of MB, written then re-read);
    * each product writes straight into the output, and the bias and ReLU are
      applied to that chunk right away, in place, before it leaves the cache.
    ``bias=None`` skips the bias, ``relu=False`` the ReLU.

    The default ``chunk_bytes`` is 4 MB on the CPU (a cache-sized block) and 1 GB on
    the GPU, where every chunk costs kernel launches and a large product is what is fast.
    """
    xp = backend.get_array_module(x_nhwc)
    if chunk_bytes is None:
        chunk_bytes = HOST_CHUNK_BYTES if xp is np else DEVICE_CHUNK_BYTES
    o, c, kh, kw = weight.shape
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    x_nhwc = xp.ascontiguousarray(x_nhwc)
    n, h, w, _ = x_nhwc.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    wmat = weight_matrix(weight).T                                   # (kh*kw*C, O)
    out = xp.empty((n, ho, wo, o), dtype=x_nhwc.dtype)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        pixels, out_rows = x_nhwc.reshape(-1, c), out.reshape(-1, o)
        step = max(1, chunk_bytes // (c * x_nhwc.itemsize))
        for p0 in range(0, len(pixels), step):
            _product_bias_relu(pixels[p0:p0 + step], wmat, bias, out_rows[p0:p0 + step], relu)
        return out
    xpad = x_nhwc
    if ph or pw:
        xpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype)
        xpad[:, ph:ph + h, pw:pw + w] = x_nhwc
    row_bytes = wo * kh * kw * c * x_nhwc.itemsize
    rows = max(1, min(ho, chunk_bytes // row_bytes))                      # output rows per chunk ...
    images = max(1, chunk_bytes // (row_bytes * ho)) if rows == ho else 1   # ... or whole images
    cols = xp.empty((images, rows, wo, kh, kw * c), dtype=x_nhwc.dtype)
    for n0 in range(0, n, images):
        for r0 in range(0, ho, rows):
            block = cols[:min(images, n - n0), :min(rows, ho - r0)]          # (k, r, Wo, kh, kw*C)
            k, r = block.shape[:2]
            for i in range(kh):
                block[:, :, :, i] = _kernel_row(xpad[n0:], i, k, r, r0, wo, kw, (sh, sw))
            # whole rows of whole images (r < Ho only when k == 1): contiguous, so reshape is a view
            _product_bias_relu(block.reshape(-1, kh * kw * c), wmat, bias,
                               out[n0:n0 + k, r0:r0 + r].reshape(-1, o), relu)
    return out


