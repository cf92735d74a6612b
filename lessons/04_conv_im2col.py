"""Lesson 04: convolution as one matrix product (im2col).

A Conv2d layer slides O filters W (O, C, kh, kw) over an image x (N, C, H, W) that has been
zero-padded by p, moving s pixels at a time. Deep-learning "convolution" is cross-correlation:

    y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xpad[n, c, s*i + u, s*j + v]
    Ho = floor((H + 2p - kh) / s) + 1          (the same for Wo)

Written as loops, that costs N*O*Ho*Wo small dot products, and Python loops are slow.
im2col ("image to columns") copies every receptive field, the C*kh*kw numbers that one output
pixel reads, into one row of a matrix:

    cols (N*Ho*Wo, kh*kw*C),   Wmat (O, kh*kw*C)   ->   y = cols @ Wmat^T + b    (N*Ho*Wo, O)

One large matrix product runs at BLAS speed. tinygan builds cols with kh*kw strided slices,
one per kernel offset (u, v), instead of one loop step per output pixel. Backward, with
G = dL/dy reshaped to (N*Ho*Wo, O):

    dL/dW = G^T cols       dL/db = sum of G over n, i, j       dL/dx = col2im(G @ Wmat)

col2im is the transpose of im2col: each entry of a column is *added back* to the pixel it was
copied from. A pixel that sits in several receptive fields collects several contributions.

Look at: tinygan/nn/functional.py (im2col, col2im, conv2d_forward, conv2d_backward) and
tinygan/nn/conv.py (Conv2d). Proved below: hand-made columns equal im2col's, im2col's conv
equals a naive loop, the output-size formula holds, and Conv2d passes a gradient check.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from _common import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.data import to_float  # noqa: E402
from tinygan.nn import Conv2d, functional as F  # noqa: E402


def naive_conv2d(x, weight, bias, stride, padding):
    """The definition, one output pixel at a time. x (N, C, H, W), weight (O, C, k, k)."""
    n, _, h, w = x.shape
    o, _, k, _ = weight.shape
    ho, wo = F.conv_output_size(h, k, stride, padding), F.conv_output_size(w, k, stride, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((n, o, ho, wo), dtype=x.dtype)
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    field = xpad[b, :, stride * i:stride * i + k, stride * j:stride * j + k]   # (C, k, k)
                    y[b, f, i, j] = (field * weight[f]).sum() + bias[f]
    return y


lesson = Lesson("04_conv_im2col", __doc__)
args = lesson.parse()
rng = backend.default_rng(args.seed)

print("\n1. im2col by hand: a 4x4 image, a 3x3 kernel, stride 1, no padding -> 2x2 outputs")
tiny = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)           # (N, C, H, W)
by_hand = np.stack([tiny[0, 0, i:i + 3, j:j + 3].ravel() for i in range(2) for j in range(2)])   # (Ho*Wo, 9)
cols = backend.to_numpy(F.im2col(backend.to_device(tiny), (3, 3), (1, 1), (0, 0)))     # (N, C, kh, kw, Ho, Wo)
cols = cols.reshape(9, 4).T
print("  one row per output pixel, one column per kernel offset:\n" + str(by_hand.astype(int)))
lesson.check("max |hand-made columns - F.im2col|", float(abs(by_hand - cols).max()), np.array_equal(by_hand, cols),
             "should be 0")

print("\n2. im2col's conv against the naive loop (float64)")
n, c, size, o = (2, 3, 9, 4) if args.quick else (8, 3, 32, 16)
x = rng.normal((n, c, size, size), dtype=np.float64)
conv = Conv2d(c, o, 4, stride=2, padding=1, rng=rng, dtype=np.float64)
start = time.perf_counter()
y_fast = backend.to_numpy(conv(x))
fast = time.perf_counter() - start
start = time.perf_counter()
y_slow = naive_conv2d(*(backend.to_numpy(a) for a in (x, conv.weight.data, conv.bias.data)), 2, 1)
slow = time.perf_counter() - start
lesson.check("max |im2col conv - naive conv|", float(abs(y_fast - y_slow).max()), abs(y_fast - y_slow).max() < 1e-12,
             "should be < 1e-12")
print(f"  {tuple(x.shape)} -> {y_fast.shape}: naive loop {slow * 1e3:.1f} ms, im2col {fast * 1e3:.2f} ms "
      f"({slow / fast:.0f}x faster)")

print("\n3. The output size Ho = floor((H + 2p - k) / s) + 1")
for h, k, s, p in ((64, 4, 2, 1), (4, 4, 1, 0), (7, 3, 2, 1), (10, 5, 3, 2)):
    got = Conv2d(1, 1, k, s, p, rng=0)(rng.normal((1, 1, h, h))).shape[2]
    lesson.check(f"H={h} k={k} s={s} p={p}: Ho", got, got == (h + 2 * p - k) // s + 1,
                 f"should be {(h + 2 * p - k) // s + 1}")

print("\n4. Gradient check of Conv2d (stride 2, padding 1)")
small = rng.normal((2, 2, 5, 5) if args.quick else (3, 3, 8, 8), dtype=np.float64)
lesson.check_gradients(gradcheck.check_module(Conv2d(small.shape[1], 3, 3, stride=2, padding=1, rng=rng), small,
                                              seed=args.seed), "Conv2d")

print("\n5. Four hand-made filters on a face")
face = to_float(lesson.faces(1))                                     # (1, 3, 64, 64) in [-1, 1]
kernels = {"vertical edges (Sobel x)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
           "horizontal edges (Sobel y)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
           "blur": [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
           "outline (Laplacian)": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]}
filters = Conv2d(3, len(kernels), 3, padding=1, bias=False, rng=0)
kernel_stack = np.array(list(kernels.values()), dtype=np.float32)
kernel_stack[2] /= 16
filters.weight.data[...] = backend.to_device(np.repeat(kernel_stack[:, None] / 3, 3, axis=1))   # same on R, G, B
maps = backend.to_numpy(filters(face))[0]                             # (4, 64, 64)
lesson.check("feature map shape with k=3, p=1", maps.shape, maps.shape == (4, 64, 64), "should be (4, 64, 64)")

fig, axes = lesson.figure(1, 2, size=(4, 3.4))
axes[0, 0].imshow(tiny[0, 0], cmap="viridis")
axes[0, 0].set_title("4x4 image (values 0..15)")
axes[0, 1].imshow(by_hand, cmap="viridis")
axes[0, 1].set(title="im2col: rows = output pixels", xlabel="kernel offset (u, v)", ylabel="output pixel")
lesson.save_figure(fig, "im2col.png")
fig, axes = lesson.figure(2, 5, size=(2.2, 2.4))
axes[0, 0].imshow((backend.to_numpy(face)[0].transpose(1, 2, 0) + 1) / 2)
axes[0, 0].set_title("input", fontsize=8)
axes[1, 0].axis("off")
for k, (name, kernel) in enumerate(kernels.items()):
    extent = np.abs(kernel).max()
    axes[0, k + 1].imshow(np.array(kernel), cmap="RdBu_r", vmin=-extent, vmax=extent)   # white = 0
    axes[0, k + 1].set_title(name, fontsize=8)
    axes[1, k + 1].imshow(maps[k], cmap="gray")
    axes[1, k + 1].set_title("feature map", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
lesson.save_figure(fig, "face_feature_maps.png")
lesson.finish()
