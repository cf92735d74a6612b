# %% [markdown]
# # Lesson 04: convolution as one matrix product
#
# A Conv2d layer slides O filters W (O, C, kh, kw) over an image x (N, C, H, W) that has been
# zero-padded by p, moving s pixels at a time. Deep-learning "convolution" is cross-correlation:
#
#     y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xpad[n, c, s*i + u, s*j + v]
#     Ho = floor((H + 2p - kh) / s) + 1          (the same for Wo)
#
# Written as loops (`tinygan/nn/naive.py`), that costs N*O*Ho*Wo small dot products, and Python
# loops are slow. **im2col** ("image to columns") copies every receptive field, the C*kh*kw numbers
# that one output pixel reads, into a column: for one kernel offset (u, v) the pixels read by *all*
# output pixels form one strided slice of the padded image,
#
#     cols[n, c, u, v, i, j] = xpad[n, c, s*i + u, s*j + v]  =  xpad[n, c, u : u + s*Ho : s, v : v + s*Wo : s]
#
# so the unfold is kh*kw slice copies, and the conv is one contraction (a matrix product) with W:
#
#     y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] cols[n, c, u, v, i, j]
#
# **Backward**, with G = dL/dy:
#
#     dL/dW[o, c, u, v] = sum_{n, i, j} G[n, o, i, j] cols[n, c, u, v, i, j]
#     dL/db[o] = sum_{n, i, j} G[n, o, i, j]
#     dL/dx = col2im(dcols),  dcols[n, c, u, v, i, j] = sum_o W[o, c, u, v] G[n, o, i, j]
#
# col2im is the transpose of im2col: each entry of a column is *added back* to the pixel it was
# copied from, one strided slice per offset. A pixel in several receptive fields collects several
# contributions. The lesson builds all of this, proves it, compares it with `tinygan/nn/reference.py`
# (im2col, col2im, conv2d) and `tinygan/nn/conv.py` (Conv2d), and then uses the library's layer.

# %%
"""Lesson 04: convolution as one matrix product (im2col)."""
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, gradcheck, nn  # noqa: E402
from tinygan.nn.module import Module, Parameter  # noqa: E402
from tinygan.nn.naive import naive_conv2d  # noqa: E402

lesson = Lesson("04_conv_im2col", __doc__, needs_faces=True)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)

# %% [markdown]
# ## 1. Build: im2col, col2im and a Conv2d layer

# %%
def im2col(x, k, s, p):
    """(N, C, H, W) -> cols (N, C, k, k, Ho, Wo): one strided slice per kernel offset (u, v)."""
    ### BEGIN SOLUTION im2col (2 points)
    ### Pad x by p on both sides of H and W; for each kernel offset (u, v), cols[:, :, u, v] is the padded image's
    ### strided slice starting at (u, v) with step s, Ho x Wo pixels.
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xpad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = xp.empty((n, c, k, k, ho, wo), dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            cols[:, :, u, v] = xpad[:, :, u:u + s * ho:s, v:v + s * wo:s]
    return cols
    ### END SOLUTION


def col2im(cols, h, w, s, p):
    """The transpose of im2col: add every column entry back onto its pixel."""
    n, c, k, _, ho, wo = cols.shape
    xpad = xp.zeros((n, c, max(h + 2 * p, s * (ho - 1) + k), max(w + 2 * p, s * (wo - 1) + k)), dtype=cols.dtype)
    for u in range(k):
        for v in range(k):
            xpad[:, :, u:u + s * ho:s, v:v + s * wo:s] += cols[:, :, u, v]
    return xpad[:, :, p:p + h, p:p + w]


class MyConv2d(Module):
    def __init__(self, weight, bias, stride, padding):
        super().__init__()
        self.weight, self.bias = Parameter(weight), Parameter(bias)    # (O, C, k, k), (O,)
        self.s, self.p = stride, padding

    def forward(self, x):
        cols = im2col(x, self.weight.shape[2], self.s, self.p)              # (N, C, k, k, Ho, Wo)
        self.cache = (cols, x.shape[2:])
        y = xp.tensordot(cols, self.weight.data, axes=((1, 2, 3), (1, 2, 3)))   # (N, Ho, Wo, O)
        return y.transpose(0, 3, 1, 2) + self.bias.data.reshape(1, -1, 1, 1)    # (N, O, Ho, Wo)

    def backward(self, G, need_input_grad=True):
        cols, (h, w) = self.cache
        ### BEGIN SOLUTION conv_backward (3 points)
        ### dL/dW contracts G (N, O, Ho, Wo) with cols (N, C, k, k, Ho, Wo) over N, Ho, Wo; dL/db sums G over N, Ho, Wo;
        ### dL/dx is col2im of W^T G, the columns laid out as (N, C, k, k, Ho, Wo).
        self.weight.accumulate(xp.tensordot(G, cols, axes=((0, 2, 3), (0, 4, 5))))   # (O, C, k, k)
        self.bias.accumulate(G.sum(axis=(0, 2, 3)))
        dcols = xp.tensordot(self.weight.data, G, axes=(0, 1))                       # (C, k, k, N, Ho, Wo)
        return col2im(dcols.transpose(3, 0, 1, 2, 4, 5), h, w, self.s, self.p)
        ### END SOLUTION

# %% [markdown]
# ## 2. Prove: columns by hand, the definition, and a gradient check
# First a 4x4 image with a 3x3 kernel: each row of the hand-made matrix is one output pixel's
# receptive field. Then the layer against the naive loops, and its backward against central differences.

# %%
tiny = backend.to_device(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4))     # (N, C, H, W)
by_hand = np.stack([backend.to_numpy(tiny)[0, 0, i:i + 3, j:j + 3].ravel() for i in range(2) for j in range(2)])
cols = backend.to_numpy(im2col(tiny, 3, 1, 0)).reshape(9, 4).T                    # (Ho*Wo, kh*kw)
print("  one row per output pixel, one column per kernel offset:\n" + str(by_hand.astype(int)))
lesson.check("max |hand-made columns - im2col|", float(abs(by_hand - cols).max()), np.array_equal(by_hand, cols),
             "should be 0")

n, c, size, o = (2, 3, 9, 4) if args.quick else (8, 3, 32, 16)
x = rng.normal((n, c, size, size), dtype=np.float64)
weight, bias = rng.normal((o, c, 4, 4), dtype=np.float64), rng.normal((o,), dtype=np.float64)
conv = MyConv2d(weight, bias, stride=2, padding=1)
start = time.perf_counter()
y = conv(x)
fast = time.perf_counter() - start
start = time.perf_counter()
y_naive = naive_conv2d(x, weight, bias, (2, 2), (1, 1))
slow = time.perf_counter() - start
err = float(abs(y - y_naive).max())
lesson.check("max |im2col conv - naive loop conv|", err, err < 1e-12, "should be < 1e-12")
print(f"  {tuple(x.shape)} -> {tuple(y.shape)}: naive loops {slow * 1e3:.1f} ms, im2col {fast * 1e3:.2f} ms "
      f"({slow / fast:.0f}x faster)")
small = rng.normal((2, 2, 5, 5) if args.quick else (3, 3, 8, 8), dtype=np.float64)
checked = MyConv2d(rng.normal((3, small.shape[1], 3, 3), dtype=np.float64), rng.normal((3,), dtype=np.float64), 2, 1)
lesson.check_gradients(gradcheck.check_module(checked, small, seed=args.seed), "MyConv2d")

# %% [markdown]
# ## 3. Compare with the library on the same arrays
# `tinygan.nn.Conv2d` calls the functions of its path: on the reference path (`tinygan/nn/reference.py`) this
# same code; on the fast path (`tinygan/nn/fast.py`: NHWC memory, threads over the batch) functions with the
# same signatures that give the same numbers faster (lesson 12 takes them apart).

# %%
from tinygan.nn import reference  # noqa: E402

lib_cols = reference.im2col(x, (4, 4), (2, 2), (1, 1))
lesson.check("max |reference.im2col - im2col|", float(abs(lib_cols - im2col(x, 4, 2, 1)).max()),
             bool((lib_cols == im2col(x, 4, 2, 1)).all()), "should be 0")
G = rng.normal(y.shape, dtype=np.float64)
dx_mine = conv.backward(G)
for path in ("reference", "fast"):
    with nn.using_path(path):
        layer = nn.Conv2d(c, o, 4, stride=2, padding=1, dtype=np.float64)
        layer.weight.data[...], layer.bias.data[...] = weight, bias
        diff_y = float(abs(layer(x) - y).max())
        diff_dx = float(abs(layer.backward(G) - dx_mine).max())
        diff_dw = float(abs(layer.weight.grad - conv.weight.grad).max())
        lesson.check(f"{path} path: max |Conv2d - MyConv2d| over y, dL/dx, dL/dW", max(diff_y, diff_dx, diff_dw),
                     max(diff_y, diff_dx, diff_dw) < 1e-11, "should be < 1e-11 (float64 round-off)")

# %% [markdown]
# ## 4. Use the library: the output-size formula, and four hand-made filters on a face

# %%
for h, k, s, p in ((64, 4, 2, 1), (4, 4, 1, 0), (7, 3, 2, 1), (10, 5, 3, 2)):
    got = nn.Conv2d(1, 1, k, s, p, rng=0)(rng.normal((1, 1, h, h))).shape[2]
    lesson.check(f"H={h} k={k} s={s} p={p}: Ho", got, got == (h + 2 * p - k) // s + 1,
                 f"should be {(h + 2 * p - k) // s + 1}")

face = backend.to_device(lesson.faces(1).transpose(0, 3, 1, 2) / np.float32(127.5) - 1)   # (1, 3, 64, 64) in [-1, 1]
kernels = {"vertical edges (Sobel x)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
           "horizontal edges (Sobel y)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
           "blur": [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
           "outline (Laplacian)": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]}
filters = nn.Conv2d(3, len(kernels), 3, padding=1, bias=False, rng=0)
kernel_stack = np.array(list(kernels.values()), dtype=np.float32)
kernel_stack[2] /= 16
filters.weight.data[...] = backend.to_device(np.repeat(kernel_stack[:, None] / 3, 3, axis=1))   # same on R, G, B
maps = backend.to_numpy(filters(face))[0]                             # (4, 64, 64)
lesson.check("feature map shape with k=3, p=1", maps.shape, maps.shape == (4, 64, 64), "should be (4, 64, 64)")

# %%
fig, axes = lesson.figure(1, 2, size=(4, 3.4))
axes[0, 0].imshow(backend.to_numpy(tiny)[0, 0], cmap="viridis")
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
