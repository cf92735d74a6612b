"""FID's convolution: inference only, y = ReLU(conv2d(x, W) + b) on NHWC arrays, organised for speed.

A 299x299 Inception-v3 costs about 5.7 GMAC per image, so its convolutions build their columns a
block of output rows at a time, into a small reused buffer, and apply bias and ReLU while the
block is still in the cache. tests/test_fast_path.py holds it to tinygan.nn.reference.conv2d.
"""
import numpy as np

from .. import backend
from ..nn.fast import gemm, weight_matrix
from ..nn.reference import pair

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

    The same arithmetic as :func:`tinygan.nn.reference.conv2d` (columns times the
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
