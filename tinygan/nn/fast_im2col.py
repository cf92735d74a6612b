"""im2col and col2im on NHWC memory, for the fast path: a block of kernel offsets per strided copy.

The same unfold and fold as tinygan.nn.reference (tests/test_fast_path.py holds them equal),
organised for speed (lesson 12 times each trick):

* NHWC memory: the C values of one pixel are adjacent, so each copy moves whole C-long runs.
* Blocks of kernel offsets. At stride s, offsets i0 .. i0 + s - 1 of neighbouring output
  pixels touch disjoint, neighbouring rows, so an s x s block of offsets tiles the image:
  im2col and col2im move a whole block in one strided copy (4 instead of 16 for D's 4x4
  kernels at stride 2), in runs of s*C floats, a cache-sized group of images at a time.
* unfold and fold work on a few images on the calling thread: the fast convs call them for one group of
  images at a time, between the group's products (tinygan.nn.fast, tinygan.nn.cpu.over_groups). im2col
  unfolds a whole batch alone, shared out over the threads (lesson 12 times it).
* RGB: unfold_channels_first and fold_channels_first copy and add channel planes (rows of pixels)
  instead of runs of 3 floats.
"""

from ..backend import get_array_module
from .cpu import kept_or_fresh, over_batch
from .reference import conv_output_size, padded_canvas


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


def unfold(x_nhwc, kernel, stride, padding, arrays):
    """im2col of a few images on the calling thread: (k, H, W, C) -> columns (k, Ho, Wo, kh, kw, C) in
    ``arrays``' kept "columns", through its kept "canvas" (a 1x1 conv's columns are x itself)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    k, h, w, c = x_nhwc.shape
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x_nhwc.reshape(k, h, w, 1, 1, c)          # a 1x1 conv needs no unfold
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    canvas = arrays.canvas((k,) + tiled_canvas(kernel, stride, (ho, wo)) + (c,), x_nhwc.dtype, x_nhwc,
                           image=(h, w, ph, pw))
    cols = arrays.columns((k, ho, wo, kh, kw, c), x_nhwc.dtype, x_nhwc)
    unfold_into(x_nhwc, canvas, cols, stride, padding)
    return cols


def unfold_into(x_nhwc, canvas, cols, stride, padding):
    """Copy x (k, H, W, C) into the inside of ``canvas`` (its border: zeros) and unfold the canvas into ``cols``
    (k, Ho, Wo, kh, kw, C), one strided copy per block of kernel offsets."""
    k, h, w, c = x_nhwc.shape
    _, ho, wo, kh, kw, _ = cols.shape
    ph, pw = padding
    canvas[:, ph:ph + h, pw:pw + w] = x_nhwc
    tiles, cols5 = _tiles(canvas, stride), cols.reshape(k, ho, wo, kh, kw * c)
    for block in stride_blocks((kh, kw), stride):
        on_canvas, in_cols = _block_pair(tiles, cols5, block, stride, c, (ho, wo))
        in_cols[...] = on_canvas


def fold(cols, image, stride, padding, arrays):
    """col2im of a few images' columns (k, Ho, Wo, kh, kw, C) onto ``image`` (k, H, W, C), on the calling
    thread, through ``arrays``' kept "fold canvas"."""
    xp = get_array_module(cols)
    k, ho, wo, kh, kw, c = cols.shape
    h, w = image.shape[1:3]
    if (kh, kw, *stride, *padding) == (1, 1, 1, 1, 0, 0) and (ho, wo) == (h, w):
        xp.copyto(image, cols.reshape(k, h, w, c))
        return image
    canvas = arrays.fold_canvas((k,) + tiled_canvas((kh, kw), stride, (ho, wo)) + (c,), cols.dtype, cols)
    fold_into(cols, canvas, image, stride, padding)
    return image


def fold_into(cols, canvas, image, stride, padding):
    """Add the columns (k, Ho, Wo, kh, kw, C) onto ``canvas``, one strided add per block of kernel offsets, and copy
    its inside into ``image`` (k, H, W, C). The first block, when it covers whole tiles (the canvas's first
    s Ho rows and s Wo columns), is copied rather than added: only the rest of the canvas is zeroed first."""
    k, ho, wo, kh, kw, c = cols.shape
    (h, w), (ph, pw), (sh, sw) = image.shape[1:3], padding, stride
    tiles, cols5 = _tiles(canvas, stride), cols.reshape(k, ho, wo, kh, kw * c)
    blocks = list(stride_blocks((kh, kw), stride))
    if blocks[0][2:] == (sh, sw):
        canvas[:, sh * ho:] = 0
        canvas[:, :sh * ho, sw * wo:] = 0
        on_canvas, in_cols = _block_pair(tiles, cols5, blocks.pop(0), stride, c, (ho, wo))
        on_canvas[...] = in_cols
    else:
        canvas[...] = 0
    for block in blocks:
        on_canvas, in_cols = _block_pair(tiles, cols5, block, stride, c, (ho, wo))
        on_canvas += in_cols                             # the canvas stays in the cache for all blocks
    image[...] = canvas[:, ph:ph + h, pw:pw + w]


def im2col(x_nhwc, kernel, stride, padding, work_arrays=None):
    """Unfold a whole batch (N, H, W, C) into columns (N, Ho, Wo, kh, kw, C), a cache-sized group of images at a
    time, the groups shared out over the threads. With a layer's ``work_arrays`` the columns and the padded
    canvas are its kept "columns" and "canvas". (The fast convs unfold a group and multiply it at once,
    tinygan.nn.fast; this is the unfold of a batch alone, which lesson 12 times.)"""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, h, w, c = x_nhwc.shape
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
        return x_nhwc.reshape(n, h, w, 1, 1, c)
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    arrays = kept_or_fresh(work_arrays)
    canvas = arrays.canvas((n,) + tiled_canvas(kernel, stride, (ho, wo)) + (c,), x_nhwc.dtype, x_nhwc,
                           image=(h, w, ph, pw))
    cols = arrays.columns((n, ho, wo, kh, kw, c), x_nhwc.dtype, x_nhwc)

    over_batch(x_nhwc, lambda images: unfold_into(x_nhwc[images], canvas[images], cols[images], stride, padding),
               in_cache=True)                    # a cache-sized group: the canvas stays in the cache for every block
    return cols


def unfold_channels_first(x, kernel, stride, padding, arrays):
    """im2col of a few images with few channels (an RGB image), x (k, C, H, W) in any memory order: columns
    (kh, kw, C, k, Ho, Wo) in ``arrays``' kept "columns", through its kept NCHW "canvas", one strided copy per
    kernel offset. Each copy moves rows of Wo pixels; in NHWC memory it would move runs of C = 3 floats. The
    columns are a (kh*kw*C, k*Ho*Wo) matrix: its transpose is the usual (pixels, kh*kw*C) one."""
    (kh, kw), (ph, pw) = kernel, padding
    k, c, h, w = x.shape
    ho, wo = (conv_output_size(size, kk, s, p) for size, kk, s, p in zip((h, w), kernel, stride, padding))
    canvas = arrays.canvas((k, c) + padded_canvas((h, w), kernel, stride, padding, (ho, wo)), x.dtype, x,
                           image=(h, w, ph, pw))
    cols = arrays.columns((kh, kw, c, k, ho, wo), x.dtype, x)
    canvas[:, :, ph:ph + h, pw:pw + w] = x
    for i, j, rows, columns in kernel_offsets(kernel, stride, (ho, wo)):
        cols[i, j] = canvas[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols


def fold_channels_first(cols, image, stride, padding, arrays):
    """col2im of a few images' columns (kh, kw, C, k, Ho, Wo) onto ``image`` (k, C, H, W), any memory order,
    through ``arrays``' kept NCHW "fold canvas", one strided add per kernel offset."""
    kh, kw, c, k, ho, wo = cols.shape
    (h, w), (ph, pw) = image.shape[2:], padding
    canvas = arrays.fold_canvas((k, c) + padded_canvas((h, w), (kh, kw), stride, padding, (ho, wo)), cols.dtype,
                                cols)
    canvas[...] = 0
    for i, j, rows, columns in kernel_offsets((kh, kw), stride, (ho, wo)):
        canvas[:, :, rows, columns] += cols[i, j].transpose(1, 0, 2, 3)
    image[...] = canvas[:, :, ph:ph + h, pw:pw + w]
    return image
