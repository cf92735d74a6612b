"""Convolution as one big matrix product: im2col, col2im and their users.

Memory layout. Tensors have the NCHW *shape* that PyTorch users expect, but the
convolutions keep their *memory* in NHWC order: a conv returns
``out.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)``, an NCHW view of NHWC
memory. Elementwise NumPy/CuPy ops (BatchNorm, ReLU, ...) keep the memory order
of their input, so the next conv's ``x.transpose(0, 2, 3, 1)`` is free. In NHWC
the C values of one pixel are adjacent, so im2col copies whole C-long rows.

im2col. For a kernel offset (i, j), output pixel (ho, wo) reads input pixel
(s*ho + i - p, s*wo + j - p). Gathering that for every (i, j) is one strided
slice of the padded input, so the whole unfold is kh*kw slice copies:

    cols[n, ho, wo, i, j, c] = xpad[n, s*ho + i, s*wo + j, c]

and a conv is ``cols (N*Ho*Wo, kh*kw*C) @ Wmat.T (kh*kw*C, O)``.

col2im is the adjoint (transpose) of im2col: every column entry is *added*
back to the pixel it was read from, again one strided slice per (i, j).
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import get_array_module

# Threads for the copy loops of im2col / col2im on the CPU (BLAS has its own threads).
THREADS = int(os.environ.get("TINYGAN_THREADS", os.cpu_count() or 1))
_executor = None


def _pool():
    global _executor
    if _executor is None:           # created on first use, not at import
        _executor = ThreadPoolExecutor(THREADS, thread_name_prefix="tinygan-im2col")
    return _executor


def pair(v, name="value"):
    """2 -> (2, 2); (1, 3) -> (1, 3)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        out = (int(v[0]), int(v[1]))
    else:
        out = (int(v), int(v))
    return out


def conv_output_size(size, kernel, stride, padding):
    """Ho = floor((H + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def nhwc(x):
    """The (N, H, W, C) view of an (N, C, H, W) array (a free view if its memory is NHWC)."""
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    """The (N, C, H, W) view of an (N, H, W, C) array."""
    return x.transpose(0, 3, 1, 2)


def parallel_over_batch(work, n):
    """Run ``work(batch_slice)`` on the batch split into one chunk per CPU core.

    NumPy does its strided copies on one core and releases the GIL while it
    copies, so threads over disjoint parts of the batch keep both cores busy
    (twice as fast on 2 cores). On the GPU (CuPy) the callers skip this and run the work in one call.
    """
    chunks = THREADS
    if chunks <= 1 or n < 2 * chunks:
        work(slice(0, n))
        return
    bounds = [n * k // chunks for k in range(chunks + 1)]
    list(_pool().map(work, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]))


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


def im2col(x_nhwc, kernel, stride, padding):
    """Unfold an (N, H, W, C) image into columns (N, Ho, Wo, kh, kw, C)."""
    xp = get_array_module(x_nhwc)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, h, w, c = x_nhwc.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x_nhwc.reshape(n, h, w, 1, 1, c)          # a 1x1 conv needs no unfold
    xpad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype) if ph or pw else x_nhwc
    cols = xp.empty((n, ho, wo, kh, kw, c), dtype=x_nhwc.dtype)

    def unfold(b):                                       # b: a slice of the batch
        if ph or pw:
            xpad[b, ph:ph + h, pw:pw + w] = x_nhwc[b]
        for i, j, rows, columns in kernel_offsets(kernel, stride, (ho, wo)):
            cols[b, :, :, i, j] = xpad[b, rows, columns]
    parallel_over_batch(unfold, n) if xp is np else unfold(slice(None))
    return cols


def col2im(cols, image_hw, stride, padding):
    """Fold columns (N, Ho, Wo, kh, kw, C) back onto an (N, H, W, C) image, summing overlaps.

    This is the exact transpose of :func:`im2col`: <im2col(x), c> == <x, col2im(c)>.
    """
    xp = get_array_module(cols)
    n, ho, wo, kh, kw, c = cols.shape
    (h, w), (sh, sw), (ph, pw) = image_hw, stride, padding
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) and (ho, wo) == (h, w):
        return cols.reshape(n, h, w, c)
    xpad = xp.zeros((n,) + padded_canvas((h, w), (kh, kw), stride, padding, (ho, wo)) + (c,), dtype=cols.dtype)

    def fold(b):
        for i, j, rows, columns in kernel_offsets((kh, kw), stride, (ho, wo)):
            xpad[b, rows, columns] += cols[b, :, :, i, j]
    parallel_over_batch(fold, n) if xp is np else fold(slice(None))
    return xpad[:, ph:ph + h, pw:pw + w]


def weight_matrix(weight):
    """(O, C, kh, kw) -> (O, kh*kw*C), the row order that matches im2col's columns."""
    o = weight.shape[0]
    return weight.transpose(0, 2, 3, 1).reshape(o, -1)


def weight_from_matrix(wmat, shape):
    """Inverse of :func:`weight_matrix`: (O, kh*kw*C) -> (O, C, kh, kw)."""
    o, c, kh, kw = shape
    return wmat.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)


def conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
    """y = W * x (cross-correlation). x (N, C, H, W), weight (O, C, kh, kw) -> (N, O, Ho, Wo)."""
    out, _ = conv2d_forward(x, weight, bias, stride, padding)
    return out


def conv2d_forward(x, weight, bias, stride, padding):
    """The conv and the columns its backward reuses."""
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    cols = im2col(nhwc(x), (kh, kw), stride, padding)
    ho, wo = cols.shape[1], cols.shape[2]
    out = cols.reshape(n * ho * wo, -1) @ weight_matrix(weight).T    # (N*Ho*Wo, O)
    if bias is not None:
        out += bias
    return nchw(out.reshape(n, ho, wo, o)), cols


def conv2d_backward(grad_out, cols, weight, x_hw, stride, padding, need_input_grad=True, need_weight_grad=True):
    """Gradients of y = conv2d(x, W) + b.

        dW = g^T @ cols           (O, kh*kw*C)
        db = sum of g over N, Ho, Wo
        dx = col2im(g @ Wmat)     the adjoint of the unfold
    """
    n, o, ho, wo = grad_out.shape
    g = nhwc(grad_out).reshape(n * ho * wo, o)
    dweight = dbias = dx = None
    if need_weight_grad:
        dweight = weight_from_matrix(g.T @ cols.reshape(n * ho * wo, -1), weight.shape)
        dbias = g.sum(axis=0)
    if need_input_grad:
        kh, kw = weight.shape[2:]
        dcols = (g @ weight_matrix(weight)).reshape(n, ho, wo, kh, kw, weight.shape[1])
        dx = nchw(col2im(dcols, x_hw, stride, padding))
    return dx, dweight, dbias


def conv_transpose2d_output_size(size, kernel, stride, padding, output_padding=0):
    """Hout = (H - 1) s - 2p + k + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def conv_transpose2d_forward(x, weight, bias, stride, padding, out_hw):
    """Transposed conv = the adjoint of conv2d with the same weight.

    The weight (Cin, Cout, kh, kw) read as a conv weight maps Cout channels to
    Cin channels; its adjoint maps our Cin-channel input to Cout channels:
    ``cols = x @ Wmat`` then ``col2im``. Returns the output and x's NHWC matrix.
    """
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    x_mat = nhwc(x).reshape(n * h * w, cin)
    if cout < FEW_CHANNELS:
        return _conv_transpose2d_few_channels(x_mat, weight, bias, (n, h, w), stride, padding, out_hw), x_mat
    cols = (x_mat @ weight_matrix(weight)).reshape(n, h, w, kh, kw, cout)
    out = col2im(cols, out_hw, stride, padding)
    if bias is not None:
        out += bias
    return nchw(out), x_mat


FEW_CHANNELS = 4   # below this many output channels (RGB), convT folds in channels-first memory


def _conv_transpose2d_few_channels(x_mat, weight, bias, nhw, stride, padding, out_hw):
    """convT for an RGB output layer. In NHWC memory every strided add of col2im
    would move runs of only 3 floats; in (C, N, H, W) memory the runs are whole rows."""
    xp = get_array_module(x_mat)
    n, h, w = nhw
    _, cout, kh, kw = weight.shape
    ph, pw = padding
    cols = (weight_matrix(weight).T @ x_mat.T).reshape(kh, kw, cout, n, h, w)
    canvas = xp.zeros((cout, n) + padded_canvas(out_hw, (kh, kw), stride, padding, (h, w)), dtype=x_mat.dtype)
    for i, j, rows, columns in kernel_offsets((kh, kw), stride, (h, w)):     # col2im, channels first
        canvas[:, :, rows, columns] += cols[i, j]
    out = canvas[:, :, ph:ph + out_hw[0], pw:pw + out_hw[1]]
    if bias is not None:
        out += bias.reshape(-1, 1, 1, 1)
    return out.transpose(1, 0, 2, 3)                                  # NCHW view of CNHW memory


def conv_transpose2d_backward(grad_out, x_mat, weight, x_hw, stride, padding,
                              need_input_grad=True, need_weight_grad=True):
    """Gradients of y = convT(x, W) + b. The adjoint of the adjoint is a plain conv:

        cols = im2col(g)         dx = cols @ Wmat^T      dW = x_mat^T @ cols
    """
    n = grad_out.shape[0]
    cin, cout, kh, kw = weight.shape
    cols = im2col(nhwc(grad_out), (kh, kw), stride, padding).reshape(n * x_hw[0] * x_hw[1], -1)
    dweight = dbias = dx = None
    if need_weight_grad:
        dweight = weight_from_matrix(x_mat.T @ cols, weight.shape)
        dbias = grad_out.sum(axis=(0, 2, 3))
    if need_input_grad:
        dx = nchw((cols @ weight_matrix(weight).T).reshape(n, x_hw[0], x_hw[1], cin))
    return dx, dweight, dbias
