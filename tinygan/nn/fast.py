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
* Fewer multiplications: the 4x4 stride-2 convs and convTs of 4 or more channels (the DCGAN's three middle
  layers of G and of D) make 9 matrix products per 2x2 tile of outputs where im2col makes 16: space to depth,
  then Winograd's F(2, 2) (tinygan.nn.fast_winograd). The other convs (the RGB and 1x1 ends) take im2col.
* im2col and col2im a block of kernel offsets per copy (tinygan.nn.fast_im2col).
* A conv works a group of images at a time (over_groups): it unfolds a group and multiplies its columns
  at once, while they are in the cache; the backward unfolds the group again instead of keeping the
  batch's columns, and folds each group's dcols as soon as they are made.
* Threads over the batch (over_batch, over_groups), and work arrays kept by the layer from step to step
  (WorkArrays, tinygan.nn.cpu). The products: tinygan.nn.fast_gemm.
* No branch per element: LeakyReLU's and ReLU's backward build the slope arithmetically.
* A 1x1 conv needs no unfold.
* RGB. A conv with an RGB input (D's first), and a convT with an RGB output (G's last), unfold and fold
  channel planes (rows of pixels) instead of runs of 3 floats.
* BatchNorm keeps x - mean and sums against it with einsum; in eval mode it is one affine
  map per channel (2 passes over memory instead of 4). LeakyReLU is max(x, a x): 2 passes.

The layers call this set unless the reference path is chosen (tinygan.nn.paths).
"""
import numpy as np

from . import fast_winograd, reference
from ..backend import get_array_module
from .cpu import over_batch, over_groups
from .fast_gemm import add_product, add_sum, gemm, multiply, sum_into, totals  # noqa: F401 (gemm: fid's)
from .fast_im2col import fold, fold_channels_first, im2col, unfold, unfold_channels_first  # noqa: F401 (im2col:
from .reference import conv_output_size                                                   # lesson 12 times it)


def nhwc(x):
    """The (N, H, W, C) view of an (N, C, H, W) array (a free view if its memory is NHWC)."""
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    """The (N, C, H, W) view of an (N, H, W, C) array."""
    return x.transpose(0, 3, 1, 2)


def as_matrix(a):
    """(N, H, W, ...) -> (N*H*W, ...): one row per pixel (a view of contiguous memory)."""
    n, h, w = a.shape[:3]
    return a.reshape(n * h * w, int(np.prod(a.shape[3:])))


def weight_matrix(weight):
    """(O, C, kh, kw) -> (O, kh*kw*C), the row order that matches im2col's columns: always a new array (a conv's
    forward keeps it for its backward, which so uses the weight of its forward, as autograd would)."""
    o = weight.shape[0]
    return weight.transpose(0, 2, 3, 1).copy().reshape(o, -1)


def weight_gradient(parts, shape):
    """The threads' running totals "dW" (O, kh*kw*C) of a group loop, summed into a fresh (O, C, kh, kw) array in
    the weight's own memory order (the layout change rides on the sum; Adam then reads it contiguously)."""
    o, c, kh, kw = shape
    matrices = [part.totals["dW"].reshape(o, kh, kw, c) for part in parts]
    dweight = get_array_module(matrices[0]).empty(shape, dtype=matrices[0].dtype)
    sum_into(dweight.transpose(0, 2, 3, 1), matrices)                 # through its (O, kh, kw, C) view
    return dweight


RGB_CHANNELS = 3   # up to this many channels (an RGB image), a conv's columns are made from channel planes


def pixel_columns(x, kernel, stride, padding, arrays):
    """im2col of a group of images x (k, C, H, W) as a (k*Ho*Wo, kh*kw*C) matrix, one row per output pixel: the
    NHWC unfold, or for an RGB image the transpose of its channels-first columns (a view, which BLAS reads as
    it is)."""
    if x.shape[1] <= RGB_CHANNELS:
        cols = unfold_channels_first(x, kernel, stride, padding, arrays)
        kh, kw, c, k, ho, wo = cols.shape
        return cols.reshape(kh * kw * c, k * ho * wo).T
    return as_matrix(unfold(nhwc(x), kernel, stride, padding, arrays))


def conv2d_forward(x, weight, bias, stride, padding, work_arrays=None):
    """y = conv2d(x, W) + b, a group of images at a time (cpu.over_groups): the group's columns (im2col) and at
    once their product with the weight matrix, while they are still in the cache.

    saved: x, whether there is a bias, and the weight matrix (the backward's too: a copy of the weight is 20 ms a
    step). The backward unfolds x again, group by group, rather than keep the batch's columns (134 MB for D's
    second conv at batch 128, written once and read back).
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = (conv_output_size(size, k, s, p) for size, k, s, p in zip((h, w), (kh, kw), stride, padding))
    if fast_winograd.takes(x, weight, stride, padding, (h, w), (ho, wo)):
        return fast_winograd.conv2d_forward(x, weight, bias, work_arrays)
    y = xp.empty((n, ho, wo, o), dtype=x.dtype)
    wmat = weight_matrix(weight)                                       # (O, kh*kw*C)

    def group(images, arrays):
        out = multiply(pixel_columns(x[images], (kh, kw), stride, padding, arrays), wmat.T,
                       out=as_matrix(y[images]))
        if bias is not None:
            out += bias
    over_groups(x, group, work_arrays, rows_per_image=ho * wo, bytes_per_image=y.itemsize * ho * wo * kh * kw * c)
    return nchw(y), (x, bias is not None, wmat)


def conv2d_backward(grad_output, saved, weight, stride, padding, need_input_grad=True, need_weight_grad=True,
                    work_arrays=None):
    """Gradients of y = conv2d(x, W) + b, a group of images at a time:

        dW += g^T @ cols          (O, kh*kw*C), cols = im2col of the group (again, into the cache)
        db += sum of g over the group's pixels
        dx  = col2im(g @ Wmat)    the adjoint of the unfold, folded while dcols is in the cache
    An RGB input's dcols are made as (g @ Wmat)^T, the channels-first columns, and its dx is in (C, N, H, W) memory.
    """
    xp = get_array_module(grad_output)
    x, has_bias, wmat = saved                                          # wmat: (O, kh*kw*C), the forward's
    n, c, h, w = x.shape
    _, o, ho, wo = grad_output.shape
    if fast_winograd.made(saved):
        return fast_winograd.conv2d_backward(grad_output, saved, weight, need_input_grad, need_weight_grad,
                                             work_arrays)
    kernel = weight.shape[2:]
    g4, rgb, dtype = nhwc(grad_output), c <= RGB_CHANNELS, xp.result_type(grad_output.dtype, wmat.dtype)
    dx = None
    if need_input_grad:
        dx = xp.empty((c, n, h, w), dtype=dtype).transpose(1, 0, 2, 3) if rgb else nchw(xp.empty((n, h, w, c),
                                                                                                  dtype=dtype))

    def group(images, arrays):
        g = as_matrix(g4[images])                                      # (k*Ho*Wo, O)
        if need_weight_grad:
            add_product(arrays, "dW", g.T, pixel_columns(x[images], kernel, stride, padding, arrays))
            if has_bias:
                add_sum(arrays, "db", g)
        if need_input_grad:
            k = g.shape[0] // (ho * wo)
            if rgb:
                dcols = arrays.columns(tuple(kernel) + (c, k, ho, wo), dtype, g)
                multiply(wmat.T, g.T, out=dcols.reshape(wmat.shape[1], k * ho * wo))
                fold_channels_first(dcols, dx[images], stride, padding, arrays)
            else:
                dcols = arrays.columns((k, ho, wo) + tuple(kernel) + (c,), dtype, g)
                multiply(g, wmat, out=as_matrix(dcols))
                fold(dcols, nhwc(dx[images]), stride, padding, arrays)
    parts = over_groups(grad_output, group, work_arrays, rows_per_image=ho * wo,
                        bytes_per_image=g4.itemsize * ho * wo * wmat.shape[1])
    dweight = weight_gradient(parts, weight.shape) if need_weight_grad else None
    dbias = totals(parts, "db") if need_weight_grad and has_bias else None
    return dx, dweight, dbias


def conv_transpose2d_forward(x, weight, bias, stride, padding, out_hw, work_arrays=None):
    """Transposed conv = the adjoint of conv2d with the same weight.

    The weight (Cin, Cout, kh, kw) read as a conv weight maps Cout channels to Cin channels; its adjoint maps
    our Cin-channel input to Cout channels: ``cols = x @ Wmat`` then ``col2im``, a group of images at a time
    (the group's columns folded while they are in the cache). An RGB output (G's last layer) is folded from
    channels-first columns, (x @ Wmat)^T, into (C, N, H, W) memory. saved: x, whether there is a bias, Wmat.
    """
    xp = get_array_module(x)
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    if fast_winograd.takes(x, weight, stride, padding, out_hw, (h, w)):
        return fast_winograd.conv_transpose2d_forward(x, weight, bias, work_arrays)
    x4, rgb = nhwc(x), cout <= RGB_CHANNELS
    if rgb:
        y = xp.empty((cout, n) + tuple(out_hw), dtype=x.dtype).transpose(1, 0, 2, 3)
    else:
        y = nchw(xp.empty((n,) + tuple(out_hw) + (cout,), dtype=x.dtype))
    wmat = weight_matrix(weight)                                       # (Cin, kh*kw*Cout)

    def group(images, arrays):
        k = y[images].shape[0]
        if rgb:
            cols = arrays.columns((kh, kw, cout, k, h, w), x.dtype, x)
            multiply(wmat.T, as_matrix(x4[images]).T, out=cols.reshape(wmat.shape[1], k * h * w))
            fold_channels_first(cols, y[images], stride, padding, arrays)
        else:
            cols = arrays.columns((k, h, w, kh, kw, cout), x.dtype, x)
            multiply(as_matrix(x4[images]), wmat, out=as_matrix(cols))
            fold(cols, nhwc(y[images]), stride, padding, arrays)
        if bias is not None:
            y[images] += bias.reshape(1, -1, 1, 1)
    over_groups(x, group, work_arrays, rows_per_image=h * w, bytes_per_image=y.itemsize * h * w * wmat.shape[1])
    return y, (x, bias is not None, wmat)


def conv_transpose2d_backward(grad_output, saved, weight, stride, padding, need_input_grad=True,
                              need_weight_grad=True, work_arrays=None):
    """Gradients of y = convT(x, W) + b. The adjoint of the adjoint is a plain conv, a group of images at a time:

        cols = im2col(g)         dx = cols @ Wmat^T      dW += x^T @ cols      db += sum of g
    """
    xp = get_array_module(grad_output)
    x, has_bias, wmat = saved
    n, cin, h, w = x.shape
    if fast_winograd.made(saved):
        return fast_winograd.conv_transpose2d_backward(grad_output, saved, weight, need_input_grad,
                                                       need_weight_grad, work_arrays)
    kernel = weight.shape[2:]
    x4, wmat = nhwc(x), wmat.T                                         # (kh*kw*Cout, Cin), the forward's
    dtype = xp.result_type(grad_output.dtype, wmat.dtype)
    dx = nchw(xp.empty((n, h, w, cin), dtype=dtype)) if need_input_grad else None

    def group(images, arrays):
        cols = pixel_columns(grad_output[images], kernel, stride, padding, arrays)   # (k*H*W, kh*kw*Cout)
        if need_weight_grad:
            add_product(arrays, "dW", as_matrix(x4[images]).T, cols)
            if has_bias:
                add_sum(arrays, "db", as_matrix(nhwc(grad_output[images])))
        if need_input_grad:
            multiply(cols, wmat, out=as_matrix(nhwc(dx[images])))
    parts = over_groups(grad_output, group, work_arrays, rows_per_image=h * w,
                        bytes_per_image=x.itemsize * h * w * wmat.shape[0])
    dweight = weight_gradient(parts, weight.shape) if need_weight_grad else None
    dbias = totals(parts, "db") if need_weight_grad and has_bias else None
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
        squares, = _channel_sums(*over_batch(x, centre, in_cache=True))
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
    over_batch(x, work, in_cache=True)
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
    sum_g, sum_gc = _channel_sums(*over_batch(grad_output, sums, in_cache=True))
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
    over_batch(grad_output, work, in_cache=True)
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
    over_batch(x, work, in_cache=True)
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
    over_batch(y, work, in_cache=True)
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
