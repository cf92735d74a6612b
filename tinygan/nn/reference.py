"""The reference path: every layer's arithmetic as the textbook writes it, arrays in and arrays out.

NCHW throughout, one thread, fresh arrays, no memory-layout tricks. tinygan.nn.fast has
the same functions with the same signatures, organised for speed; a layer calls the set
of the chosen path (tinygan.nn.paths) and keeps in its cache which set made its forward.
A forward returns its output and ``saved``, what its backward needs; a backward takes
``saved`` back and returns dL/dx and the parameters' gradients (None where not wanted).

A conv with kernel (kh, kw), stride s and padding p reads, for output pixel (ho, wo)
and kernel offset (i, j), the padded input pixel (s*ho + i, s*wo + j). For one
offset that is one strided slice of the padded image, for every output pixel at once:

    cols[n, c, i, j, ho, wo] = xpad[n, c, s*ho + i, s*wo + j]          (im2col)

so the whole unfold is kh*kw slice copies. col2im is its adjoint (transpose): every
column entry is *added* back onto the pixel it was read from, so <im2col(x), c> = <x, col2im(c)>.
Three functions then carry all of the convolutions' arithmetic:

    conv2d(x, W)            y[n, o, ho, wo] = sum_{c, i, j} W[o, c, i, j] cols[n, c, i, j, ho, wo]
    conv2d_adjoint(g, W)    the transpose of conv2d in x: dL/dx = col2im(W^T g)
    conv2d_weight_grad(g, cols)   dL/dW[o, c, i, j] = sum_{n, ho, wo} g[n, o, ho, wo] cols[n, c, i, j, ho, wo]

Conv2d uses them as forward, backward-to-x and backward-to-W. ConvTranspose2d *is*
the adjoint of Conv2d: its forward is conv2d_adjoint, and its backward is a plain
conv2d of the upstream gradient.
"""
from ..backend import get_array_module


def pair(v, name="value"):
    """2 -> (2, 2); (1, 3) -> (1, 3)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv_output_size(size, kernel, stride, padding):
    """Ho = floor((H + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose2d_output_size(size, kernel, stride, padding, output_padding=0):
    """Hout = (H - 1) s - 2p + k + output_padding: the size a conv maps back onto H."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def per_channel(v):
    """A (C,) vector as (1, C, 1, 1), to broadcast over (N, C, H, W)."""
    return v.reshape(1, -1, 1, 1)


# --- convolution ----------------------------------------------------------------------------

def im2col(x, kernel, stride, padding):
    """Unfold (N, C, H, W) into columns (N, C, kh, kw, Ho, Wo), one strided slice per kernel offset."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = xp.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw]
    return cols


def padded_canvas(image_hw, kernel, stride, padding, out_hw):
    """(Hp, Wp) of the canvas col2im folds onto: the padded image, and also every window's slice when
    (H + 2p - k) % s != 0 (the last window then reaches past the padded image)."""
    return tuple(max(size + 2 * p, s * (o - 1) + k) for size, k, s, p, o in zip(image_hw, kernel, stride, padding, out_hw))


def col2im(cols, image_hw, stride, padding):
    """Fold columns (N, C, kh, kw, Ho, Wo) back onto an (N, C, H, W) image, adding where windows overlap."""
    xp = get_array_module(cols)
    n, c, kh, kw, ho, wo = cols.shape
    (h, w), (sh, sw), (ph, pw) = image_hw, stride, padding
    xpad = xp.zeros((n, c) + padded_canvas((h, w), (kh, kw), stride, padding, (ho, wo)), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += cols[:, :, i, j]
    return xpad[:, :, ph:ph + h, pw:pw + w]


def conv2d(x, weight, stride, padding):
    """(N, C, H, W) conv (O, C, kh, kw) -> y (N, O, Ho, Wo), and the columns of x for the weight gradient."""
    xp = get_array_module(x)
    cols = im2col(x, weight.shape[2:], stride, padding)                  # (N, C, kh, kw, Ho, Wo)
    y = xp.tensordot(cols, weight, axes=((1, 2, 3), (1, 2, 3)))           # (N, Ho, Wo, O)
    return y.transpose(0, 3, 1, 2), cols


def conv2d_adjoint(g, weight, image_hw, stride, padding):
    """The adjoint of conv2d in x: (N, O, Ho, Wo) -> (N, C, H, W), so <conv2d(x), g> = <x, conv2d_adjoint(g)>."""
    xp = get_array_module(g)
    dcols = xp.tensordot(g, weight, axes=(1, 0))                          # (N, Ho, Wo, C, kh, kw)
    return col2im(dcols.transpose(0, 3, 4, 5, 1, 2), image_hw, stride, padding)


def conv2d_weight_grad(g, cols):
    """dL/dW (O, C, kh, kw) from g = dL/dy (N, O, Ho, Wo) and the columns (N, C, kh, kw, Ho, Wo)."""
    return get_array_module(g).tensordot(g, cols, axes=((0, 2, 3), (0, 4, 5)))


def conv2d_forward(x, weight, bias, stride, padding, work_arrays=None):
    """y = conv2d(x, W) + b; saved: the columns of x and its size. (``work_arrays``, the layer's kept arrays,
    are for the fast path: the textbook makes fresh arrays.)"""
    y, cols = conv2d(x, weight, stride, padding)
    if bias is not None:
        y = y + per_channel(bias)
    return y, (cols, x.shape[2:])


def conv2d_backward(grad_output, saved, weight, stride, padding, need_input_grad=True, need_weight_grad=True,
                    work_arrays=None):
    """dL/dx = conv2d_adjoint(g, W), dL/dW = conv2d_weight_grad(g, cols), dL/db = sum of g."""
    cols, x_hw = saved
    dx = dweight = dbias = None
    if need_weight_grad:
        dweight, dbias = conv2d_weight_grad(grad_output, cols), grad_output.sum(axis=(0, 2, 3))
    if need_input_grad:
        dx = conv2d_adjoint(grad_output, weight, x_hw, stride, padding)
    return dx, dweight, dbias


def conv_transpose2d_forward(x, weight, bias, stride, padding, out_hw, work_arrays=None):
    """y = conv2d_adjoint(x, W) + b onto an out_hw image (x in the place of a conv's g); saved: x."""
    y = conv2d_adjoint(x, weight, out_hw, stride, padding)
    if bias is not None:
        y = y + per_channel(bias)
    return y, x


def conv_transpose2d_backward(grad_output, saved, weight, stride, padding, need_input_grad=True,
                              need_weight_grad=True, work_arrays=None):
    """With cols = im2col(g): dL/dx = conv2d(g, W) (a plain conv), dL/dW = x . cols, dL/db = sum of g."""
    x = saved
    dx, cols = conv2d(grad_output, weight, stride, padding)
    dweight = dbias = None
    if need_weight_grad:
        dweight, dbias = conv2d_weight_grad(x, cols), grad_output.sum(axis=(0, 2, 3))
    return (dx if need_input_grad else None), dweight, dbias


# --- BatchNorm ------------------------------------------------------------------------------

def batchnorm_forward(x, gamma, beta, eps, statistics=None):
    """y = gamma xhat + beta (just xhat when gamma is None), xhat = (x - mean) / sqrt(var + eps) per channel.

    gamma, beta: (C,) each, or both None; statistics: the (mean, var) to use (eval mode: the running ones);
    None: the batch's own (train mode).
    Returns y, the (mean, var) used, and saved.
    """
    batch_statistics = statistics is None
    if batch_statistics:
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))      # (C,), over the M = N*H*W values
    else:
        mean, var = statistics
    inv_std = 1 / (var + eps) ** 0.5
    xhat = (x - per_channel(mean)) * per_channel(inv_std)
    y = xhat if gamma is None else per_channel(gamma) * xhat + per_channel(beta)
    return y, (mean, var), (xhat, inv_std, batch_statistics)


def batchnorm_backward(grad_output, saved, gamma, need_input_grad=True):
    """dgamma = sum(g xhat), dbeta = sum(g) (None without gamma), and

        dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat mean(g xhat))    with the batch's statistics
        dx = gamma / sqrt(var + eps) * g                                    with constant (running) ones
    """
    xhat, inv_std, batch_statistics = saved
    g = grad_output
    dx = dgamma = dbeta = None
    if gamma is not None:
        dgamma, dbeta = (g * xhat).sum(axis=(0, 2, 3)), g.sum(axis=(0, 2, 3))
    if need_input_grad:
        scale = per_channel(inv_std if gamma is None else gamma * inv_std)
        if batch_statistics:
            mean_g = g.mean(axis=(0, 2, 3), keepdims=True)
            mean_g_xhat = (g * xhat).mean(axis=(0, 2, 3), keepdims=True)
            dx = scale * (g - mean_g - xhat * mean_g_xhat)
        else:
            dx = scale * g
    return dx, dgamma, dbeta


# --- activations ------------------------------------------------------------------------------

def relu_forward(x):
    """y = max(x, 0); saved: y (y > 0 exactly where x > 0)."""
    y = get_array_module(x).maximum(x, 0)
    return y, y


def relu_backward(grad_output, saved):
    """dL/dx = g * [x > 0]."""
    return grad_output * (saved > 0)


def leaky_relu_forward(x, negative_slope):
    """y = x where x > 0, a x elsewhere; saved: where x > 0."""
    positive = x > 0
    return get_array_module(x).where(positive, x, x * x.dtype.type(negative_slope)), positive


def leaky_relu_backward(grad_output, saved, negative_slope):
    """dL/dx = g * (1 where x > 0, a elsewhere)."""
    dtype = grad_output.dtype.type
    slope = get_array_module(grad_output).where(saved, dtype(1), dtype(negative_slope))
    return grad_output * slope         # slope named: NumPy may put a product into a temporary operand's memory


# --- what the pools and Concat need ----------------------------------------------------------

def pad(x, padding, fill):
    """x (N, C, H, W) padded by ``fill`` on every side (x itself when padding is 0)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return get_array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def concat_channels(arrays):
    """Stack (N, C_k, H, W) arrays along channels into one (N, sum C_k, H, W) array."""
    return get_array_module(arrays[0]).concatenate(arrays, axis=1)
