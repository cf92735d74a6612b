"""im2col and col2im on NHWC memory, for the fast path: a block of kernel offsets per strided copy.

The same unfold and fold as tinygan.nn.reference (tests/test_fast_path.py holds them equal),
organised for speed (lesson 12 times each trick):

* NHWC memory: the C values of one pixel are adjacent, so each copy moves whole C-long runs.
* Blocks of kernel offsets. At stride s, offsets i0 .. i0 + s - 1 of neighbouring output
  pixels touch disjoint, neighbouring rows, so an s x s block of offsets tiles the image:
  im2col and col2im move a whole block in one strided copy (4 instead of 16 for D's 4x4
  kernels at stride 2), in runs of s*C floats, a cache-sized group of images at a time.
* Threads over the batch and a layer's kept work arrays (tinygan.nn.cpu: over_batch, WorkArrays).
* RGB: col2im_channels_first folds in (C, N, H, W) memory, where each strided add moves whole
  rows instead of runs of 3 floats.
"""
import numpy as np

from ..backend import get_array_module
from .cpu import kept_or_fresh, over_batch
from .reference import conv_output_size


def kernel_offsets(kernel, stride, out_hw):
    """For each kernel offset (i, j): i, j and the strided slices of the padded image it touches."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * ho, sh), slice(j, j + sw * wo, sw)


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


def im2col(x_nhwc, kernel, stride, padding, work_arrays=None):
    """Unfold an (N, H, W, C) image into columns (N, Ho, Wo, kh, kw, C), one copy per block of offsets.
    With a layer's ``work_arrays`` the columns and the padded canvas are its kept "columns" and "canvas"."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, h, w, c = x_nhwc.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x_nhwc.reshape(n, h, w, 1, 1, c)          # a 1x1 conv needs no unfold
    arrays = kept_or_fresh(work_arrays)
    canvas = arrays.canvas((n,) + tiled_canvas(kernel, stride, (ho, wo)) + (c,), x_nhwc.dtype, x_nhwc,
                           image=(h, w, ph, pw))
    cols = arrays.columns((n, ho, wo, kh, kw, c), x_nhwc.dtype, x_nhwc)

    def unfold(part):                                    # a slice of the batch
        for images in cache_sized_groups(part, canvas):
            canvas[images, ph:ph + h, pw:pw + w] = x_nhwc[images]
            tiles, cols5 = _tiles(canvas[images], stride), cols[images].reshape(-1, ho, wo, kh, kw * c)
            for block in stride_blocks(kernel, stride):
                on_canvas, in_cols = _block_pair(tiles, cols5, block, stride, c, (ho, wo))
                in_cols[...] = on_canvas
    over_batch(x_nhwc, unfold)
    return cols


def col2im(cols, image_hw, stride, padding, work_arrays=None):
    """Fold columns (N, Ho, Wo, kh, kw, C) back onto a fresh (N, H, W, C) image, summing overlaps.

    This is the exact transpose of :func:`im2col`: <im2col(x), c> == <x, col2im(c)>. With a layer's
    ``work_arrays`` the padded canvas is its kept "fold canvas", and each group of images is
    copied out of it while the group is in the cache.
    """
    xp = get_array_module(cols)
    n, ho, wo, kh, kw, c = cols.shape
    (h, w), (ph, pw) = image_hw, padding
    if (kh, kw, *stride, ph, pw) == (1, 1, 1, 1, 0, 0) and (ho, wo) == (h, w):
        return cols.reshape(n, h, w, c)
    canvas = kept_or_fresh(work_arrays).fold_canvas((n,) + tiled_canvas((kh, kw), stride, (ho, wo)) + (c,),
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
    over_batch(cols, fold)
    return image


def col2im_channels_first(cols, canvas_hw, stride):
    """col2im of cols (kh, kw, C, N, H, W) onto a (C, N, Hp, Wp) canvas, one strided add per kernel offset."""
    xp = get_array_module(cols)
    kh, kw, c, n, h, w = cols.shape
    canvas = xp.zeros((c, n) + tuple(canvas_hw), dtype=cols.dtype)

    def fold(images):                                    # a slice of the batch (axis 1)
        for i, j, rows, columns in kernel_offsets((kh, kw), stride, (h, w)):
            canvas[:, images, rows, columns] += cols[i, j, :, images]
    over_batch(cols, fold, items=n)
    return canvas
