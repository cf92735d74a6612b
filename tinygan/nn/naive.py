"""Convolution and transposed convolution straight from their definitions, one output pixel at a time.

Slow and obviously right: the yardstick the layers are checked against (tests,
lesson 04) and the first row of lesson 12's speed table. NCHW, NumPy or CuPy.
"""
from ..backend import get_array_module


def naive_conv2d(x, weight, bias, stride, padding):
    """y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] xpad[n, c, s*i + u, s*j + v]."""
    xp = get_array_module(x)
    (sh, sw), (ph, pw) = stride, padding
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = xp.zeros((n, o, ho, wo), dtype=x.dtype)
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    field = xpad[b, :, sh * i:sh * i + kh, sw * j:sw * j + kw]        # (C, kh, kw)
                    y[b, f, i, j] = (field * weight[f]).sum() + (0 if bias is None else bias[f])
    return y


def naive_conv_transpose2d(x, weight, bias, stride, padding, output_padding=(0, 0)):
    """Every input pixel paints its kernel, scaled by its value, onto the output; then the padding is cut off.

    weight (Cin, Cout, kh, kw); Hout = (H - 1) s - 2p + kh + output_padding.
    """
    xp = get_array_module(x)
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    full = xp.zeros((n, cout, (h - 1) * sh + kh + oph, (w - 1) * sw + kw + opw), dtype=x.dtype)
    for b in range(n):
        for c in range(cin):
            for i in range(h):
                for j in range(w):
                    full[b, :, sh * i:sh * i + kh, sw * j:sw * j + kw] += x[b, c, i, j] * weight[c]
    y = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
