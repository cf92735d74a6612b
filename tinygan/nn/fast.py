"""The fast path: the reference path's functions (tinygan.nn.reference), organised for speed.

Every function here has the signature of the function of the same name in tinygan.nn.reference
and computes the same numbers; tests/test_fast_path.py holds each one to it on the same arrays.
What makes them faster (lessons/12_making_it_fast.py times each trick; benchmarks/step_phases.py
shows where a training step's time goes):

* NHWC memory. Tensors keep the NCHW *shape*, but a conv returns an NCHW *view* of
  NHWC memory: ``out.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)``. Elementwise
  NumPy/CuPy ops keep the memory order of their input, so the next conv's
  ``x.transpose(0, 2, 3, 1)`` is free, and im2col copies whole C-long rows
  (the C values of one pixel are adjacent in NHWC).
* im2col and col2im a block of kernel offsets per copy (tinygan.nn.fast_im2col).
* Threads over the batch (over_batch), and work arrays kept by the layer from step to step (WorkArrays,
  tinygan.nn.cpu).
* No branch per element: LeakyReLU's and ReLU's backward build the slope arithmetically.
* A 1x1 conv needs no unfold.
* RGB. A convT with fewer than 4 output channels folds in channels-first memory,
  where each strided add moves whole rows instead of runs of 3 floats.
* BatchNorm keeps x - mean and sums against it with einsum; in eval mode it is one affine
  map per channel (2 passes over memory instead of 4). LeakyReLU is max(x, a x): 2 passes.

The layers call this set unless the reference path is chosen (tinygan.nn.paths).
"""
import numpy as np

from . import reference
from ..backend import get_array_module
from ..blas import one_thread
from .cpu import MIN_SHARED_SIZE, kept_or_fresh, over_batch, threads
from .fast_im2col import col2im, col2im_channels_first, im2col
from .reference import padded_canvas


def nhwc(x):
    """The (N, H, W, C) view of an (N, C, H, W) array (a free view if its memory is NHWC)."""
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    """The (N, C, H, W) view of an (N, H, W, C) array."""
    return x.transpose(0, 3, 1, 2)


def as_matrix(a):
    """(N, H, W, ...) -> (N*H*W, ...): one row per pixel (a view of contiguous memory)."""
    n, h, w = a.shape[:3]
    return a.reshape(n * h * w, -1)


GEMM_SPLIT_FLOPS = 1 << 22      # smaller products are not worth a hand-over to the threads
GEMM_PART_ROWS = 32             # a part of a split product has at least this many rows (or columns)


def gemm(a, b, out=None):
    """a @ b (into ``out`` if given): every matrix product of the fast path goes through here, so that
    ``benchmarks/step_phases.py`` can time them apart from the copies around them.

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


def weight_matrix(weight):
    """(O, C, kh, kw) -> (O, kh*kw*C), the row order that matches im2col's columns."""
    o = weight.shape[0]
    return weight.transpose(0, 2, 3, 1).reshape(o, -1)


def weight_from_matrix(wmat, shape):
    """Inverse of :func:`weight_matrix`: (O, kh*kw*C) -> (O, C, kh, kw)."""
    o, c, kh, kw = shape
    return wmat.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)


def conv2d_forward(x, weight, bias, stride, padding, work_arrays=None):
    """y = conv2d(x, W) + b as one matrix product on NHWC columns; saved: the columns (in the layer's
    ``work_arrays`` if given) and x's size."""
    n = x.shape[0]
    o, _, kh, kw = weight.shape
    cols = im2col(nhwc(x), (kh, kw), stride, padding, work_arrays)
    ho, wo = cols.shape[1], cols.shape[2]
    out = gemm(as_matrix(cols), weight_matrix(weight).T)                # (N*Ho*Wo, O)
    if bias is not None:
        out += bias
    return nchw(out.reshape(n, ho, wo, o)), (cols, x.shape[2:])


def conv2d_backward(grad_output, saved, weight, stride, padding, need_input_grad=True, need_weight_grad=True,
                    work_arrays=None):
    """Gradients of y = conv2d(x, W) + b.

        dW = g^T @ cols           (O, kh*kw*C)
        db = sum of g over N, Ho, Wo
        dx = col2im(g @ Wmat)     the adjoint of the unfold

    When cols is the layer's kept "columns" array, dcols is written over it (the same shape, not needed after dW).
    """
    xp = get_array_module(grad_output)
    cols, x_hw = saved
    n, o, ho, wo = grad_output.shape
    g = nhwc(grad_output).reshape(n * ho * wo, o)
    dx = dweight = dbias = None
    if need_weight_grad:
        dweight = weight_from_matrix(gemm(g.T, as_matrix(cols)), weight.shape)
        dbias = g.sum(axis=0)
    if need_input_grad:
        owned = work_arrays is not None and work_arrays.holds_columns(cols)    # not x (a 1x1 conv)
        # Not empty_like: for a 1x1 conv cols is a view of x in x's memory order, and as_matrix of such a view
        # would be a copy, so the product would land in a temporary and dcols stay unwritten.
        dcols = cols if owned else xp.empty(cols.shape, dtype=cols.dtype)
        gemm(g, weight_matrix(weight), out=as_matrix(dcols))
        dx = nchw(col2im(dcols, x_hw, stride, padding, work_arrays))
    return dx, dweight, dbias


def conv_transpose2d_forward(x, weight, bias, stride, padding, out_hw, work_arrays=None):
    """Transposed conv = the adjoint of conv2d with the same weight.

    The weight (Cin, Cout, kh, kw) read as a conv weight maps Cout channels to
    Cin channels; its adjoint maps our Cin-channel input to Cout channels:
    ``cols = x @ Wmat`` then ``col2im``. saved: x's NHWC matrix and x's size.
    """
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    x_mat = nhwc(x).reshape(n * h * w, cin)
    if cout <= RGB_CHANNELS:
        return _conv_transpose2d_rgb(x_mat, weight, bias, (n, h, w), stride, padding, out_hw), (x_mat, (h, w))
    cols = kept_or_fresh(work_arrays).columns((n, h, w, kh, kw, cout), x.dtype, x)
    gemm(x_mat, weight_matrix(weight), out=as_matrix(cols))
    out = col2im(cols, out_hw, stride, padding, work_arrays)
    if bias is not None:
        out += bias
    return nchw(out), (x_mat, (h, w))


RGB_CHANNELS = 3   # up to this many output channels (an RGB image), convT folds in channels-first memory


def _conv_transpose2d_rgb(x_mat, weight, bias, nhw, stride, padding, out_hw):
    """convT for an RGB output layer. In NHWC memory every strided add of col2im
    would move runs of only 3 floats; in (C, N, H, W) memory the runs are whole rows."""
    n, h, w = nhw
    _, cout, kh, kw = weight.shape
    ph, pw = padding
    cols = gemm(weight_matrix(weight).T, x_mat.T).reshape(kh, kw, cout, n, h, w)
    canvas = col2im_channels_first(cols, padded_canvas(out_hw, (kh, kw), stride, padding, (h, w)), stride)
    out = canvas[:, :, ph:ph + out_hw[0], pw:pw + out_hw[1]]
    if bias is not None:
        out += bias.reshape(-1, 1, 1, 1)
    return out.transpose(1, 0, 2, 3)                                  # NCHW view of CNHW memory


def conv_transpose2d_backward(grad_output, saved, weight, stride, padding, need_input_grad=True,
                              need_weight_grad=True, work_arrays=None):
    """Gradients of y = convT(x, W) + b. The adjoint of the adjoint is a plain conv:

        cols = im2col(g)         dx = cols @ Wmat^T      dW = x_mat^T @ cols
    """
    x_mat, x_hw = saved
    n = grad_output.shape[0]
    cin, cout, kh, kw = weight.shape
    cols = im2col(nhwc(grad_output), (kh, kw), stride, padding, work_arrays).reshape(n * x_hw[0] * x_hw[1], -1)
    dx = dweight = dbias = None
    if need_weight_grad:
        dweight = weight_from_matrix(gemm(x_mat.T, cols), weight.shape)
        dbias = grad_output.sum(axis=(0, 2, 3))
    if need_input_grad:
        dx = nchw(gemm(cols, weight_matrix(weight).T).reshape(n, x_hw[0], x_hw[1], cin))
    return dx, dweight, dbias


def _channel_sums(*arrays_per_part):
    """Sum per-part (C,) vectors from the threads into one (C,) vector per quantity."""
    return [sum(values) for values in zip(*arrays_per_part)]


def batchnorm_forward(x, gamma, beta, eps, statistics=None):
    """BatchNorm on NHWC memory, its passes shared out over the threads.

    Train mode (statistics None) keeps x - mean (not xhat): the backward needs only sums against
    it, and xhat = (x - mean) inv_std folds into per-channel factors. With given statistics (eval
    mode) it is one affine map per channel (2 passes over memory instead of 4).
    """
    xp = get_array_module(x)
    batch_statistics = statistics is None
    if batch_statistics:
        m = x.size // x.shape[1]
        x4, centred = nhwc(x), xp.empty_like(nhwc(x))   # NHWC: the channel is the fastest axis
        total, = _channel_sums(*over_batch(x, lambda part: (x4[part].sum(axis=(0, 1, 2)),)))
        mean = total / m

        def centre(part):
            xp.subtract(x4[part], mean, out=centred[part])
            flat = centred[part].reshape(-1, centred.shape[3])
            return (xp.einsum("mc,mc->c", flat, flat),)
        squares, = _channel_sums(*over_batch(x, centre))
        var = squares / m
    else:
        mean, var = statistics
    inv_std = 1.0 / (var + eps) ** 0.5
    scale = inv_std if gamma is None else inv_std * gamma
    if batch_statistics:
        return _affine(nchw(centred), scale, beta), (mean, var), (nchw(centred), None, inv_std, True)
    shift = -mean * scale
    if beta is not None:
        shift += beta
    return _affine(x, scale, shift), (mean, var), (x, mean, inv_std, False)     # backward recomputes x - mean


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


def batchnorm_backward(grad_output, saved, gamma, need_input_grad=True):
    """With c = x - mean, xhat = c inv_std and k = gamma inv_std per channel:

        dgamma = sum(g xhat) = inv_std sum(g c),   dbeta = sum(g)
        dx = k g - (k/m) sum(g) - (k inv_std^2 / m) sum(g c) c      (the batch's statistics)
        dx = k g                                                    (constant statistics)
    """
    xp = get_array_module(grad_output)
    x_or_centred, mean, inv_std, batch_statistics = saved
    centred = x_or_centred if batch_statistics else x_or_centred - mean.reshape(1, -1, 1, 1)
    g4, c4 = nhwc(grad_output), nhwc(centred)

    def sums(part):
        g, c = g4[part].reshape(-1, g4.shape[3]), c4[part].reshape(-1, c4.shape[3])
        return g.sum(axis=0), xp.einsum("mc,mc->c", g, c)
    sum_g, sum_gc = _channel_sums(*over_batch(grad_output, sums))
    dgamma, dbeta = (None, None) if gamma is None else (sum_gc * inv_std, sum_g)
    if not need_input_grad:
        return None, dgamma, dbeta
    k = inv_std if gamma is None else gamma * inv_std
    if not batch_statistics:
        return _affine(grad_output, k, None), dgamma, dbeta
    m = grad_output.size // grad_output.shape[1]
    shift, slope = -k * sum_g / m, -k * inv_std * inv_std * sum_gc / m
    dx = xp.empty_like(g4)

    def work(part):
        xp.multiply(g4[part], k, out=dx[part])
        dx[part] += shift
        dx[part] += c4[part] * slope
    over_batch(grad_output, work)
    return nchw(dx), dgamma, dbeta


def leaky_relu_forward(x, negative_slope):
    """y = max(x, a x) for 0 <= a <= 1: two passes over memory instead of where()'s three; saved: y
    (y > 0 exactly where x > 0). Another slope takes the reference path's code."""
    if not 0 <= negative_slope <= 1:
        return reference.leaky_relu_forward(x, negative_slope)
    xp = get_array_module(x)
    a = x.dtype.type(negative_slope)
    y = xp.empty_like(x)                    # the memory order of x (NHWC after a fast conv)

    def work(part):
        xp.multiply(x[part], a, out=y[part])
        xp.maximum(y[part], x[part], out=y[part])
    over_batch(x, work)
    return y, y


def leaky_relu_backward(grad_output, saved, negative_slope):
    """dL/dx = g * (1 where y > 0, a elsewhere), see :func:`slope_backward`."""
    if not 0 <= negative_slope <= 1:
        return reference.leaky_relu_backward(grad_output, saved, negative_slope)
    return slope_backward(saved, grad_output, negative_slope)


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


def relu_forward(x):
    """y = max(x, 0), shared out over the threads; saved: y."""
    xp = get_array_module(x)
    y = xp.empty_like(x)
    over_batch(x, lambda part: xp.maximum(x[part], 0, out=y[part]))
    return y, y


def relu_backward(grad_output, saved):
    """dL/dx = g * [y > 0], see :func:`slope_backward`."""
    return slope_backward(saved, grad_output, 0.0)


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
