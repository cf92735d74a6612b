"""im2col and col2im: a convolution's sliding windows as strided slices (the reference path).

A conv with kernel (kh, kw), stride s and padding p reads, for output pixel (ho, wo)
and kernel offset (i, j), the padded input pixel (s*ho + i, s*wo + j). For one
offset that is one strided slice of the padded image, for every output pixel at once:

    cols[n, c, i, j, ho, wo] = xpad[n, c, s*ho + i, s*wo + j]

so the whole unfold is kh*kw slice copies, and a conv is one contraction of cols
with the weight (see tinygan.nn.conv). col2im is the adjoint (transpose) of im2col:
every column entry is *added* back onto the pixel it was read from, again one
strided slice per offset, so that <im2col(x), c> = <x, col2im(c)>.

NCHW throughout, one thread, no memory-layout tricks: tinygan.nn.fast has the
same arithmetic organised for speed.
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


def col2im(cols, image_hw, stride, padding):
    """Fold columns (N, C, kh, kw, Ho, Wo) back onto an (N, C, H, W) image, adding where windows overlap."""
    xp = get_array_module(cols)
    n, c, kh, kw, ho, wo = cols.shape
    (h, w), (sh, sw), (ph, pw) = image_hw, stride, padding
    # The padded canvas holds every slice, also the last window when (H + 2p - k) % s != 0.
    canvas = (max(h + 2 * ph, sh * (ho - 1) + kh), max(w + 2 * pw, sw * (wo - 1) + kw))
    xpad = xp.zeros((n, c) + canvas, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += cols[:, :, i, j]
    return xpad[:, :, ph:ph + h, pw:pw + w]
