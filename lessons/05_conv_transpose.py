"""Lesson 05: transposed convolution, the adjoint of convolution.

A convolution with fixed weights is a linear map, so it has a matrix: y = C x, where x is
flattened to C*H*W numbers and y to O*Ho*Wo. With stride 2 the map goes from a large image
to a small one. The generator needs the opposite direction, small to large. The transpose
C^T goes that way. Applying C^T is *transposed convolution*. It is not an inverse
(C^T C != I); "deconvolution" is a misnomer. What defines it is the adjoint identity

    <C x, y> = <x, C^T y>          for every x and every y.

In code, C^T is col2im of a matrix product. Each input pixel of convT paints a copy of the
kernel, scaled by its value, onto the output, s pixels apart, and overlaps add up. The
weight (Cin, Cout, k, k) of a ConvTranspose2d is the weight of the conv it is the transpose
of, read the other way round. Its backward is an ordinary conv (the adjoint of the adjoint).

Output size. Solving Ho = floor((H + 2p - k) / s) + 1 for H gives

    Hout = (H - 1) s - 2p + k (+ output_padding, to choose among the H with the same Ho)

DCGAN's generator uses k=4, s=2, p=1, so Hout = 2H: 4 -> 8 -> 16 -> 32 -> 64. Its first
layer uses k=4, s=1, p=0 and turns a 1x1 noise "image" into 4x4.

Checkerboard artefacts (Odena et al. 2016). When s does not divide k, neighbouring output
pixels receive different numbers of kernel contributions. With k=3, s=2 the counts alternate
1, 2, 4, so the output carries a grid pattern that the network must learn to cancel, and
stacked layers compound it. With k=4, s=2 every interior pixel receives exactly 4.

Look at: tinygan/nn/functional.py (conv_transpose2d_forward / _backward) and
tinygan/nn/conv.py (ConvTranspose2d). Proved below: the adjoint identity, the matrix of convT
equals the transpose of the conv's matrix, the size formula, a gradient check, and the overlap counts.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from _common import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.nn import Conv2d, ConvTranspose2d  # noqa: E402


def transpose_of(conv, in_size):
    """The ConvTranspose2d that is conv's adjoint on in_size x in_size images: same weight, same k, s, p."""
    (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
    leftover = (in_size + 2 * p - k) % s                     # rows the conv's floor() dropped
    convT = ConvTranspose2d(conv.out_channels, conv.in_channels, k, s, p, output_padding=leftover, bias=False)
    convT.astype(conv.weight.data.dtype)
    convT.weight.data[...] = conv.weight.data                # (O, C, k, k): read as (Cin, Cout, k, k)
    return convT


def overlap_counts(k, layers, size=8):
    """How many kernel taps land on each output pixel: convT with all-ones input and weights."""
    x = backend.xp.ones((1, 1, size, size), dtype=np.float32)
    for _ in range(layers):
        convT = ConvTranspose2d(1, 1, k, 2, 1, output_padding=k % 2, bias=False)
        convT.weight.data[...] = 1
        x = convT(x)
    return backend.to_numpy(x)[0, 0]


lesson = Lesson("05_conv_transpose", __doc__)
args = lesson.parse()
rng = backend.default_rng(args.seed)

print("\n1. The adjoint identity <conv(x), y> = <x, convT(y)> (float64)")
c_in, c_out, size = (2, 3, 9) if args.quick else (3, 8, 32)
for k, s, p in ((4, 2, 1), (3, 2, 1), (4, 1, 0), (5, 3, 2)):
    conv = Conv2d(c_in, c_out, k, s, p, bias=False, rng=rng, dtype=np.float64)
    x = rng.normal((2, c_in, size, size), dtype=np.float64)
    cx = conv(x)
    y = rng.normal(cx.shape, dtype=np.float64)
    lhs, rhs = float((cx * y).sum()), float((x * transpose_of(conv, size)(y)).sum())
    lesson.check(f"k={k} s={s} p={p}: |<Cx, y> - <x, C^T y>| / |<Cx, y>|", abs(lhs - rhs) / abs(lhs),
                 abs(lhs - rhs) <= 1e-12 * abs(lhs), "should be < 1e-12")

print("\n2. The matrices: a 4x4 -> 2x2 conv (k=4, s=2, p=1) and its transpose")
conv = Conv2d(1, 1, 4, 2, 1, bias=False, rng=rng, dtype=np.float64)
convT = transpose_of(conv, 4)
basis_in, basis_out = np.eye(16).reshape(16, 1, 1, 4, 4), np.eye(4).reshape(4, 1, 1, 2, 2)
C = np.stack([backend.to_numpy(conv(backend.to_device(e))).ravel() for e in basis_in], axis=1)      # (4, 16)
T = np.stack([backend.to_numpy(convT(backend.to_device(e))).ravel() for e in basis_out], axis=1)    # (16, 4)
lesson.check("shape of conv's matrix C and convT's matrix T", f"{C.shape}, {T.shape}",
             C.shape == (4, 16) and T.shape == (16, 4), "should be (4, 16), (16, 4)")
lesson.check("max |T - C^T|", float(abs(T - C.T).max()), abs(T - C.T).max() < 1e-15, "should be 0")

print("\n3. Output size Hout = (H - 1) s - 2p + k: the generator's layers")
h = 1
for k, s, p in [(4, 1, 0)] + [(4, 2, 1)] * 4:
    out = ConvTranspose2d(1, 1, k, s, p, rng=0)(rng.normal((1, 1, h, h))).shape[2]
    want = (h - 1) * s - 2 * p + k
    lesson.check(f"H={h} k={k} s={s} p={p}: Hout", out, out == want, f"should be {want}")
    h = out

print("\n4. Gradient check of ConvTranspose2d (k=4, s=2, p=1)")
small = rng.normal((2, 3, 3, 3) if args.quick else (3, 4, 5, 5), dtype=np.float64)
lesson.check_gradients(gradcheck.check_module(ConvTranspose2d(small.shape[1], 2, 4, 2, 1, rng=rng), small,
                                              seed=args.seed), "ConvTranspose2d")

print("\n5. Checkerboards: kernel taps per output pixel, away from the border")
counts = {(k, layers): overlap_counts(k, layers) for k in (3, 4) for layers in (1, 3)}
for (k, layers), c in counts.items():
    edge = c.shape[0] // 4                                     # the border's effect reaches inwards
    interior = c[edge:-edge, edge:-edge]
    values = sorted({int(v) for v in np.unique(interior)})
    expect_flat = k == 4
    lesson.check(f"k={k}, s=2, {layers} layer(s): distinct interior counts", values[:6],
                 (len(values) == 1) == expect_flat, "should be one value" if expect_flat else "should be several")

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
