# %% [markdown]
# # Lesson 05: transposed convolution is the adjoint of convolution
#
# A convolution with fixed weights is a linear map, so it has a matrix: y = C x, where x is
# flattened to C*H*W numbers and y to O*Ho*Wo. With stride 2 the map goes from a large image to a
# small one. The generator needs the opposite direction, small to large. The transpose C^T goes that
# way. Applying C^T is *transposed convolution*. It is not an inverse (C^T C != I); "deconvolution"
# is a misnomer. What defines it is the adjoint identity
#
#     <C x, y> = <x, C^T y>          for every x and every y.
#
# We already wrote C^T in lesson 04: it is the conv's **input gradient**, dL/dx = col2im(W^T G).
# So a transposed conv's forward is that computation with x in the place of G: each input pixel
# paints a copy of the kernel, scaled by its value, onto the output, s pixels apart, and overlaps add
# up. Its backward is the adjoint of the adjoint, an ordinary conv of the upstream gradient:
#
#     forward   y = col2im(W^T x)                     weight (Cin, Cout, k, k), read as a conv Cout -> Cin
#     backward  cols = im2col(G);  dL/dx = W . cols (a conv);  dL/dW = x . cols
#
# (A bias would add b to every output pixel, and dL/db would sum G. DCGAN's transposed convolutions have
# none: a BatchNorm follows each of them and would subtract it again; lesson 10.)
#
# **Output size.** Solving Ho = floor((H + 2p - k) / s) + 1 for H gives
# Hout = (H - 1) s - 2p + k (+ output_padding, to choose among the H with the same Ho).
# DCGAN's generator uses k=4, s=2, p=1, so Hout = 2H: 4 -> 8 -> 16 -> 32 -> 64. Its first layer
# uses k=4, s=1, p=0 and turns a 1x1 noise "image" into 4x4.
#
# **Checkerboards** (Odena et al. 2016). When s does not divide k, neighbouring output pixels receive
# different numbers of kernel contributions. With k=3, s=2 the counts alternate 1, 2, 4, so the
# output carries a grid pattern that the network must learn to cancel. With k=4, s=2 every interior
# pixel receives exactly 4.
#
# The lesson builds the layer from the library's im2col and col2im (`tinygan/nn/reference.py`: lesson
# 04's two functions, which take the kernel, stride and padding as (height, width) pairs where lesson
# 04's took one number each), proves it, compares it with `tinygan/nn/conv.py: ConvTranspose2d`, then
# uses the library's layer.

# %%
"""Lesson 05: transposed convolution, the adjoint of convolution."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, gradcheck, nn  # noqa: E402
from tinygan.nn import Conv2d, ConvTranspose2d  # noqa: E402
from tinygan.nn.reference import col2im, im2col  # noqa: E402
from tinygan.nn.module import Module, Parameter  # noqa: E402

lesson = Lesson("05_conv_transpose", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)

# %% [markdown]
# ## 1. Build: the transposed conv, forward = a conv's input gradient, backward = a conv

# %%
class MyConvTranspose2d(Module):
    def __init__(self, weight, stride, padding, output_padding=0):
        super().__init__()
        self.weight = Parameter(weight)                               # (Cin, Cout, k, k)
        self.s, self.p, self.op = stride, padding, output_padding

    def forward(self, x):                                             # (N, Cin, H, W)
        self.cache = x
        k, (h, w) = self.weight.shape[2], x.shape[2:]
        out_hw = tuple((size - 1) * self.s - 2 * self.p + k + self.op for size in (h, w))
        ### BEGIN SOLUTION conv_transpose_forward (3 points)
        ### A conv's input gradient with x in the place of G: W^T x for every pixel (contract x's channels with the
        ### weight's first axis), laid out as columns (N, Cout, k, k, H, W), then col2im onto the output of size out_hw.
        dcols = xp.tensordot(x, self.weight.data, axes=(1, 0))       # (N, H, W, Cout, k, k): W^T x
        return col2im(dcols.transpose(0, 3, 4, 5, 1, 2), out_hw, (self.s, self.s), (self.p, self.p))
        ### END SOLUTION

    def backward(self, G, need_input_grad=True):                      # G (N, Cout, Hout, Wout)
        x, k = self.cache, self.weight.shape[2]
        cols = im2col(G, (k, k), (self.s, self.s), (self.p, self.p))   # (N, Cout, k, k, H, W)
        self.weight.accumulate(xp.tensordot(x, cols, axes=((0, 2, 3), (0, 4, 5))))       # (Cin, Cout, k, k)
        dx = xp.tensordot(cols, self.weight.data, axes=((1, 2, 3), (1, 2, 3)))            # (N, H, W, Cin)
        return dx.transpose(0, 3, 1, 2)


def transpose_of(conv, in_size):
    """Our transposed conv that is conv's adjoint on in_size x in_size images: the same weight, k, s, p."""
    (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
    leftover = (in_size + 2 * p - k) % s                     # rows the conv's floor() dropped
    return MyConvTranspose2d(conv.weight.data.copy(), s, p, output_padding=leftover)

# %% [markdown]
# ## 2. Prove: the adjoint identity, the matrices, and a gradient check

# %%
c_in, c_out, size = (2, 3, 9) if args.quick else (3, 8, 32)
for k, s, p in ((4, 2, 1), (3, 2, 1), (4, 1, 0), (5, 3, 2)):
    conv = Conv2d(c_in, c_out, k, s, p, bias=False, rng=rng, dtype=np.float64)
    x = rng.normal((2, c_in, size, size), dtype=np.float64)
    cx = conv(x)
    y = rng.normal(cx.shape, dtype=np.float64)
    lhs, rhs = float((cx * y).sum()), float((x * transpose_of(conv, size)(y)).sum())
    lesson.check(f"k={k} s={s} p={p}: |<Cx, y> - <x, C^T y>| / |<Cx, y>|", abs(lhs - rhs) / abs(lhs),
                 abs(lhs - rhs) <= 1e-12 * abs(lhs), "should be < 1e-12")

conv = Conv2d(1, 1, 4, 2, 1, bias=False, rng=rng, dtype=np.float64)       # a 4x4 -> 2x2 conv and its transpose
convT = transpose_of(conv, 4)
basis_in, basis_out = np.eye(16).reshape(16, 1, 1, 4, 4), np.eye(4).reshape(4, 1, 1, 2, 2)
C = np.stack([backend.to_numpy(conv(backend.to_device(e))).ravel() for e in basis_in], axis=1)      # (4, 16)
T = np.stack([backend.to_numpy(convT(backend.to_device(e))).ravel() for e in basis_out], axis=1)    # (16, 4)
lesson.check("shape of conv's matrix C and convT's matrix T", f"{C.shape}, {T.shape}",
             C.shape == (4, 16) and T.shape == (16, 4), "should be (4, 16), (16, 4)")
lesson.check("max |T - C^T|", float(abs(T - C.T).max()), abs(T - C.T).max() < 1e-15, "should be 0")

small = rng.normal((2, 3, 3, 3) if args.quick else (3, 4, 5, 5), dtype=np.float64)
mine = MyConvTranspose2d(rng.normal((small.shape[1], 2, 4, 4), dtype=np.float64), 2, 1)
lesson.check_gradients(gradcheck.check_module(mine, small, seed=args.seed), "MyConvTranspose2d")

# %% [markdown]
# ## 3. Compare with the library's ConvTranspose2d, on both paths
# The fast path has a special case for RGB outputs (G's last layer): 3 output channels are folded in
# channels-first memory. Both Cout = 3 and Cout = 8 are compared.

# %%
for cout in (3, 8):
    weight = rng.normal((4, cout, 4, 4), dtype=np.float64)
    x = rng.normal((2, 4, 5, 5), dtype=np.float64)
    ours = MyConvTranspose2d(weight.copy(), 2, 1)
    y = ours(x)
    G = rng.normal(y.shape, dtype=np.float64)
    dx = ours.backward(G)
    for path in ("reference", "fast"):
        with nn.using_path(path):
            layer = ConvTranspose2d(4, cout, 4, 2, 1, bias=False, dtype=np.float64)
            layer.weight.data[...] = weight
            diff = max(float(abs(layer(x) - y).max()), float(abs(layer.backward(G) - dx).max()),
                       float(abs(layer.weight.grad - ours.weight.grad).max()))
            lesson.check(f"Cout={cout}, {path} path: max |ConvTranspose2d - ours| over y, dL/dx, dL/dW", diff,
                         diff < 1e-11, "should be < 1e-11 (float64 round-off)")

# %% [markdown]
# ## 4. Use the library: the generator's output sizes, and checkerboards

# %%
def overlap_counts(k, layers, size=8):
    """How many kernel taps land on each output pixel: convT with all-ones input and weights."""
    x = backend.xp.ones((1, 1, size, size), dtype=np.float32)
    for _ in range(layers):
        convT = ConvTranspose2d(1, 1, k, 2, 1, output_padding=k % 2, bias=False)
        convT.weight.data[...] = 1
        x = convT(x)
    return backend.to_numpy(x)[0, 0]


print("\nOutput size Hout = (H - 1) s - 2p + k: the generator's layers")
h = 1
for k, s, p in [(4, 1, 0)] + [(4, 2, 1)] * 4:
    out = ConvTranspose2d(1, 1, k, s, p, rng=0)(rng.normal((1, 1, h, h))).shape[2]
    want = (h - 1) * s - 2 * p + k
    lesson.check(f"H={h} k={k} s={s} p={p}: Hout", out, out == want, f"should be {want}")
    h = out

print("\nCheckerboards: kernel taps per output pixel, away from the border")
counts = {(k, layers): overlap_counts(k, layers) for k in (3, 4) for layers in (1, 3)}
for (k, layers), c in counts.items():
    edge = c.shape[0] // 4                                     # the border's effect reaches inwards
    interior = c[edge:-edge, edge:-edge]
    values = sorted({int(v) for v in np.unique(interior)})
    expect_flat = k == 4
    lesson.check(f"k={k}, s=2, {layers} layer(s): distinct interior counts", values[:6],
                 (len(values) == 1) == expect_flat, "should be one value" if expect_flat else "should be several")

# %%
fig, axes = lesson.figure(1, 2, size=(4, 3.4))
for ax, m, title in ((axes[0, 0], C, "conv matrix C (4 x 16)"), (axes[0, 1], T, "convT matrix T = C^T (16 x 4)")):
    ax.imshow(m, cmap="RdBu_r", vmin=-abs(C).max(), vmax=abs(C).max())
    ax.set_title(title, fontsize=9)
lesson.save_figure(fig, "adjoint_matrices.png")
fig, axes = lesson.figure(1, 4, size=(2.8, 3))
for ax, ((k, layers), c) in zip(axes[0], counts.items()):
    ax.imshow(c, cmap="magma")
    ax.set_title(f"k={k}, s=2, {layers} layer(s)\n{c.shape[0]}x{c.shape[1]} overlap counts", fontsize=8)
    ax.axis("off")
lesson.save_figure(fig, "checkerboard.png")
lesson.finish()
