"""Winograd's minimal filtering for the DCGAN's stride-2 convs: 9 matrix products where im2col needs 16.

The DCGAN's layers are convs and transposed convs with a 4x4 kernel, stride 2 and padding 1 (but for the 1x1 ends).
The fast path computes those of 4 or more channels with fewer multiplications than im2col, in three exact steps
(lesson 12 times them):

1. **Space to depth.** Pad x by 1, then read pixel (2r + a, 2s + b) of the padded image as channel (a, b, c) of
   pixel (r, s) of an image half as high and wide, with 4C channels. The 4x4 kernel at stride 2 becomes a 2x2
   kernel at stride 1: ``W2[u, v][(a, b, c), o] = W[o, c, 2u + a, 2v + b]``. The padding is a copy (onto a kept
   canvas); the rest is a reshape: in NHWC memory the padded image (n, 2R, 2S, C) *is* the array (n, R, 2, S, 2C).
2. **Winograd F(2, 2).** Two outputs of a 2-tap filter g from three inputs d take 3 products instead of 4::

       y0 = d0 g0 + d1 g1 = (d0 - d1) g0 + d1 (g0 + g1)
       y1 = d1 g0 + d2 g1 =               d1 (g0 + g1) + (d2 - d1) g1

   that is ``y = A^T [(G g) * (B^T d)]`` with ``B^T d = (d0 - d1, d1, d2 - d1)``, ``G g = (g0, g0 + g1, g1)``
   and ``A^T m = (m0 + m1, m1 + m2)``. On both axes at once, a 2x2 tile of outputs comes from a 3x3 tile of
   inputs (neighbouring tiles share a row or column) in 9 products instead of 16. With channels, each of the 9
   is a matrix product over every tile of a group of images: ``(tiles, 4C) @ (4C, O)``, 9/16 of im2col's work.
3. **The backward runs the same steps backwards**, each linear map replaced by its transpose: ``A dy = (dy0,
   dy0 + dy1, dy1)``; ``dd = dy' W'^T`` and ``dW' = d'^T dy'`` (9 products each, as many as the forward);
   ``B dd = (dd0, dd1 - dd0 - dd2, dd2)`` added onto 3x3 tiles that overlap by one pixel; ``G^T dW' = (dW'0 +
   dW'1, dW'1 + dW'2)``. A transposed conv is the adjoint of a conv with the same weight, so its forward is the
   conv's backward-data steps and its backward-data the conv's forward.

The transforms only add and subtract, so the rounding is that of a plain conv within a few additions. Each
thread works a group of images at a time (cpu.over_groups: at least 512 tiles, or about 2 MB of them), with its
own kept work arrays, so that the transforms' work stays near the core between the steps. ``takes``
says which convs take this way (NumPy's only: on CuPy, untried on a GPU so far, every conv keeps im2col); the
others take im2col (tinygan.nn.fast).
"""
import contextlib
import contextvars

import numpy as np

from ..backend import get_array_module
from .cpu import over_batch, over_groups
from .fast_gemm import add_product, add_sum, multiply, totals

KERNEL, STRIDE, PADDING = (4, 4), (2, 2), (1, 1)
MIN_CHANNELS = 4          # an RGB side (3 channels) would make 12-wide products: those convs keep im2col
_im2col_only = contextvars.ContextVar("tinygan_im2col_only", default=False)


@contextlib.contextmanager
def im2col_only():
    """Within the block (per thread: a context variable) the fast path makes every conv by im2col, 16 products per
    2x2 tile: lesson 12 times one way against the other. A backward takes the way of its forward."""
    token = _im2col_only.set(True)
    try:
        yield
    finally:
        _im2col_only.reset(token)


def takes(x, weight, stride, padding, image_hw, small_hw):
    """Whether a conv (or convT) takes Winograd's way: NumPy arrays, a 4x4 kernel at stride 2 with padding 1, at least
    MIN_CHANNELS channels on each side, and whole 2x2 tiles of the small side (a conv's output, a convT's input),
    the large side (a conv's input, a convT's output) twice as high and wide."""
    return (not _im2col_only.get() and get_array_module(x) is np and tuple(weight.shape[2:]) == KERNEL
            and tuple(stride) == STRIDE and tuple(padding) == PADDING and min(weight.shape[:2]) >= MIN_CHANNELS
            and all(small > 0 and small % 2 == 0 and large == 2 * small for large, small in zip(image_hw, small_hw)))


def made(saved):
    """Whether a fast conv's forward took Winograd's way: its saved weight is the (9, ., .) tiles, not a matrix."""
    return saved[2].ndim == 3


def weight_tiles(weight):
    """G W2 G^T for every output and input channel: (O, C, 4, 4) -> (9, O, 4C), tile position (alpha, beta) first,
    then each output channel's 2x2 kernel over the (a, b, c) space-to-depth channels (the order of the image's
    tiles), the output channels shared out over the threads. A convT's weight (Cin, Cout, 4, 4) is read as a
    conv's from Cout to Cin channels."""
    xp = get_array_module(weight)
    o, c = weight.shape[:2]
    tiles = xp.empty((3, 3, o, 2, 2, c), dtype=weight.dtype)
    kernels = weight.reshape(o, c, 2, 2, 2, 2).transpose(2, 4, 0, 3, 5, 1)   # W2: (u, v, o, a, b, c), row 2u + a

    def channels(rows):
        tiles[0::2, 0::2, rows] = kernels[:, :, rows]                      # W2 at the corners
        _middles(tiles[:, :, rows])
    over_batch(weight, channels, items=o)
    return tiles.reshape(9, o, 4 * c)


def weight_gradient(parts, shape):
    """G^T dW' G, the adjoint of weight_tiles, of the sum of the threads' totals "dW" (9, O, 4C): a fresh
    (O, C, 4, 4) array, its output channels shared out over the threads."""
    o, c = shape[:2]
    totals = [part.totals["dW"].reshape(3, 3, o, 2, 2, c) for part in parts]
    xp = get_array_module(totals[0])
    dweight = xp.empty(shape, dtype=totals[0].dtype)
    corners = dweight.reshape(o, c, 2, 2, 2, 2).transpose(2, 4, 0, 3, 5, 1)        # (u, v, o, a, b, c): 2u + a

    def channels(rows):
        t = sum(total[:, :, rows] for total in totals)
        gu = t[:2] + t[1:]                                                 # G^T along alpha
        xp.add(gu[:, :2], gu[:, 1:], out=corners[:, :, rows])              # G^T along beta
    over_batch(dweight, channels, items=o)
    return dweight


def _middles(tiles):
    """The middle row and column of (3, 3, ...) tiles whose corners hold g: (g0, g0 + g1, g1) along each axis,
    the transform A of a 2-tap tile (and G of a 2-tap kernel)."""
    xp = get_array_module(tiles)
    xp.add(tiles[0, 0::2], tiles[2, 0::2], out=tiles[1, 0::2])
    xp.add(tiles[:, 0], tiles[:, 2], out=tiles[:, 1])


def _along(a, axis, start, stop, step=1):
    """a[start:stop:step] along ``axis`` (a view)."""
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop, step)
    return a[tuple(index)]


def _data_transform(a, axis, outs):
    """B^T d along ``axis`` (2T + 1 long) for each of its T tiles, tile t being a[2t : 2t + 3]:
    d0 - d1, d1, d2 - d1 into ``outs`` (three arrays, T long on that axis; outs[1] None: d1 is returned as a view)."""
    t = (a.shape[axis] - 1) // 2
    d0, d1, d2 = (_along(a, axis, start, start + 2 * t, 2) for start in (0, 1, 2))
    xp = get_array_module(a)
    xp.subtract(d0, d1, out=outs[0])
    if outs[1] is None:
        outs = (outs[0], d1, outs[2])
    else:
        outs[1][...] = d1
    xp.subtract(d2, d1, out=outs[2])
    return outs


def _data_adjoint(e, a, axis):
    """B e along ``axis``, the adjoint of _data_transform: from the tiles' three planes e (T long) onto a (2T + 1
    long), where neighbouring tiles share a pixel: a[2t] = e0[t] + e2[t - 1], a[2t + 1] = e1[t] - e0[t] - e2[t]."""
    xp = get_array_module(a)
    t = e[0].shape[axis]
    even, odd = _along(a, axis, 0, 2 * t + 1, 2), _along(a, axis, 1, 2 * t, 2)
    xp.add(_along(e[0], axis, 1, t), _along(e[2], axis, 0, t - 1), out=_along(even, axis, 1, t))
    _along(even, axis, 0, 1)[...] = _along(e[0], axis, 0, 1)              # the first pixel: the first tile's
    _along(even, axis, t, t + 1)[...] = _along(e[2], axis, t - 1, t)      # the last: the last tile's
    xp.add(e[0], e[2], out=odd)
    xp.subtract(e[1], odd, out=odd)


def _image_tiles(images, arrays, name):
    """B^T d B of every 3x3 tile of a group of NHWC images (k, 4T, 4T', C), padded by 1 and read as space to depth
    (step 1): a (9, k*T*T', 4C) array of the thread's kept memory."""
    k, h, w, c = images.shape
    th, tw = h // 4, w // 4
    canvas = arrays.canvas((k, h + 2, w + 2, c), images.dtype, images, image=("winograd", h, w, c))
    canvas[:, 1:-1, 1:-1] = images                                         # the border stays 0
    s2d = canvas.reshape(k, 2 * th + 1, 2, 2 * tw + 1, 2 * c)              # (k, row, a, column, (b, c))
    half = arrays.scratch("winograd rows", (2, k, th, 2, 2 * tw + 1, 2 * c), images.dtype, images)
    rows = _data_transform(s2d, 1, (half[0], None, half[1]))
    tiles = arrays.scratch(name, (3, 3, k, th, tw, 2, 2 * c), images.dtype, images)
    for alpha, row in enumerate(rows):
        _data_transform(row, 3, [tiles[alpha, beta].transpose(0, 1, 3, 2, 4) for beta in range(3)])
    return tiles.reshape(9, k * th * tw, 4 * c)


def _output_tiles(images, arrays, name):
    """A g A^T of every 2x2 tile of a group of NHWC images (k, 2T, 2T', C) (the outputs' side): (9, k*T*T', C)."""
    xp = get_array_module(images)
    k, h, w, c = images.shape
    tiles = arrays.scratch(name, (3, 3, k, h // 2, w // 2, c), images.dtype, images)
    quads = images.reshape(k, h // 2, 2, w // 2, 2, c).transpose(2, 4, 0, 1, 3, 5)   # (row in tile, column, ...)
    tiles[0::2, 0::2] = quads                                              # the 4 corners: g itself
    _middles(tiles)
    return tiles.reshape(9, -1, c)


def _tiles_to_outputs(products, out, arrays):
    """A^T m A: the 9 products (9, k*T*T', C) onto a group's NHWC outputs ``out`` (k, 2T, 2T', C)."""
    xp = get_array_module(out)
    k, h, w, c = out.shape
    m = products.reshape(3, 3, k, h // 2, w // 2, c)
    rows = arrays.scratch("winograd sums", (2, 3, k, h // 2, w // 2, c), out.dtype, out)
    xp.add(m[:2], m[1:], out=rows)                                         # along alpha
    xp.add(rows[:, :2], rows[:, 1:], out=out.reshape(k, h // 2, 2, w // 2, 2, c).transpose(2, 4, 0, 1, 3, 5))


def _tiles_to_images(products, arrays, k, h, w, c):
    """B e B^T, the adjoint of _image_tiles: the 9 products (9, k*T*T', 4C) added onto the padded, space-to-depth
    images; returns their inside (k, h, w, c), a view of the thread's kept scratch "winograd canvas" (the caller
    copies it out before the next group)."""
    th, tw = h // 4, w // 4
    e = products.reshape(3, 3, k, th, tw, 2, 2 * c)
    rows = arrays.scratch("winograd rows", (3, k, th, 2, 2 * tw + 1, 2 * c), products.dtype, products)
    _data_adjoint([e[:, beta].transpose(0, 1, 2, 4, 3, 5) for beta in range(3)], rows, 4)
    canvas = arrays.scratch("winograd canvas", (k, h + 2, w + 2, c), products.dtype, products)
    _data_adjoint(rows, canvas.reshape(k, 2 * th + 1, 2, 2 * tw + 1, 2 * c), 1)
    return canvas[:, 1:-1, 1:-1]


def _nhwc(x):
    return x.transpose(0, 2, 3, 1)


def _nhwc_empty(like, shape, dtype):
    """A fresh NHWC array for an (N, C, H, W) ``shape``, as its (N, H, W, C) view and its NCHW view."""
    n, c, h, w = shape
    out = get_array_module(like).empty((n, h, w, c), dtype=dtype)
    return out, out.transpose(0, 3, 1, 2)


def _input_gradient(need, like, shape, dtype):
    return _nhwc_empty(like, shape, dtype) if need else (None, None)


def _tiles_per_image(h, w):
    return (h // 2) * (w // 2)


def conv2d_forward(x, weight, bias, work_arrays=None):
    """y = conv2d(x, W) + b (fast.conv2d_forward's arguments, where ``takes``). saved: x, whether there is a
    bias, and the weight's tiles (the backward's)."""
    n, c, h, w = x.shape
    o, x4 = weight.shape[0], _nhwc(x)
    wt = weight_tiles(weight)                                              # (9, O, 4C)
    y4, y = _nhwc_empty(x, (n, o, h // 2, w // 2), x.dtype)
    rows = _tiles_per_image(h // 2, w // 2)

    def group(images, arrays):
        tiles = _image_tiles(x4[images], arrays, "winograd tiles")          # B^T d B: (9, tiles, 4C)
        products = multiply(tiles, wt.transpose(0, 2, 1),
                            out=arrays.scratch("winograd products", (9, tiles.shape[1], o), y.dtype, tiles))
        _tiles_to_outputs(products, y4[images], arrays)                    # A^T m A
        if bias is not None:
            y4[images] += bias
    over_groups(x, group, work_arrays, rows_per_image=rows, bytes_per_image=9 * rows * 4 * c * x.itemsize)
    return y, (x, bias is not None, wt)


def conv2d_backward(grad_output, saved, weight, need_input_grad=True, need_weight_grad=True, work_arrays=None):
    """Gradients of y = conv2d(x, W) + b: the forward's steps backwards (fast.conv2d_backward's arguments)."""
    x, has_bias, wt = saved
    n, c, h, w = x.shape
    o, x4, g4 = weight.shape[0], _nhwc(x), _nhwc(grad_output)
    dtype = get_array_module(x).result_type(grad_output.dtype, wt.dtype)
    dx4, dx = _input_gradient(need_input_grad, x, x.shape, dtype)
    rows = _tiles_per_image(h // 2, w // 2)

    def group(images, arrays):
        g_tiles = _output_tiles(g4[images], arrays, "winograd output tiles")        # A g A^T: (9, tiles, O)
        if need_weight_grad:
            tiles = _image_tiles(x4[images], arrays, "winograd tiles")
            add_product(arrays, "dW", g_tiles.transpose(0, 2, 1), tiles)            # (9, O, 4C)
            if has_bias:
                add_sum(arrays, "db", g4[images].reshape(-1, o))
        if need_input_grad:
            products = multiply(g_tiles, wt,
                                out=arrays.scratch("winograd products", (9, g_tiles.shape[1], 4 * c), dtype, g_tiles))
            dx4[images] = _tiles_to_images(products, arrays, g_tiles.shape[1] // rows, h, w, c)
    parts = over_groups(grad_output, group, work_arrays, rows_per_image=rows,
                        bytes_per_image=9 * rows * 4 * c * x.itemsize)
    dweight = weight_gradient(parts, weight.shape) if need_weight_grad else None
    dbias = totals(parts, "db") if need_weight_grad and has_bias else None
    return dx, dweight, dbias


def conv_transpose2d_forward(x, weight, bias, work_arrays=None):
    """y = convT(x, W) + b: the conv's backward-data steps, with x in the place of g (fast's arguments, less the
    output size: twice x's). saved: x, whether there is a bias, the weight's tiles (9, Cin, 4Cout)."""
    n, cin, h, w = x.shape
    cout, x4 = weight.shape[1], _nhwc(x)
    wt = weight_tiles(weight)
    y4, y = _nhwc_empty(x, (n, cout, 2 * h, 2 * w), x.dtype)
    rows = _tiles_per_image(h, w)

    def group(images, arrays):
        x_tiles = _output_tiles(x4[images], arrays, "winograd output tiles")        # (9, tiles, Cin)
        products = multiply(x_tiles, wt, out=arrays.scratch("winograd products", (9, x_tiles.shape[1], 4 * cout),
                                                             y.dtype, x_tiles))
        y4[images] = _tiles_to_images(products, arrays, x_tiles.shape[1] // rows, 2 * h, 2 * w, cout)
        if bias is not None:
            y4[images] += bias
    over_groups(x, group, work_arrays, rows_per_image=rows, bytes_per_image=9 * rows * 4 * cout * x.itemsize)
    return y, (x, bias is not None, wt)


def conv_transpose2d_backward(grad_output, saved, weight, need_input_grad=True, need_weight_grad=True,
                              work_arrays=None):
    """Gradients of y = convT(x, W) + b: dx = conv2d(g, W), the conv's forward steps; dW from g's tiles and x's."""
    x, has_bias, wt = saved
    n, cin, h, w = x.shape
    cout, x4, g4 = weight.shape[1], _nhwc(x), _nhwc(grad_output)
    dtype = get_array_module(x).result_type(grad_output.dtype, wt.dtype)
    dx4, dx = _input_gradient(need_input_grad, x, x.shape, dtype)
    rows = _tiles_per_image(h, w)

    def group(images, arrays):
        tiles = _image_tiles(g4[images], arrays, "winograd tiles")                  # (9, tiles, 4Cout)
        if need_weight_grad:
            x_tiles = _output_tiles(x4[images], arrays, "winograd output tiles")
            add_product(arrays, "dW", x_tiles.transpose(0, 2, 1), tiles)            # (9, Cin, 4Cout)
            if has_bias:
                add_sum(arrays, "db", g4[images].reshape(-1, cout))
        if need_input_grad:
            products = multiply(tiles, wt.transpose(0, 2, 1),
                                out=arrays.scratch("winograd products", (9, tiles.shape[1], cin), dtype, tiles))
            _tiles_to_outputs(products, dx4[images], arrays)
    parts = over_groups(grad_output, group, work_arrays, rows_per_image=rows,
                        bytes_per_image=9 * rows * 4 * cout * x.itemsize)
    dweight = weight_gradient(parts, weight.shape) if need_weight_grad else None
    dbias = totals(parts, "db") if need_weight_grad and has_bias else None
    return dx, dweight, dbias
