# %% [markdown]
# # Lesson 10: the generator and its shapes, 100 -> 4 -> 8 -> 16 -> 32 -> 64
#
# G turns a noise vector z ~ N(0, I_100), viewed as a 100-channel 1x1 image, into a 3x64x64 face.
# It uses the transposed convolutions of lesson 05:
#
#     z (100, 1, 1)  -convT 4/1/0-> 512x4x4  -BN-ReLU-convT 4/2/1-> 256x8x8  -> 128x16x16  -> 64x32x32
#                    -convT 4/2/1-> 3x64x64  -tanh->  image in [-1, 1]
#
# The first layer paints a 4x4 kernel per input channel (Hout = (1 - 1) 1 - 0 + 4 = 4). Each later
# layer doubles the side, Hout = (H - 1) 2 - 2 + 4 = 2H, and halves the channels. A ConvTranspose2d
# (Cin, Cout, 4, 4) has Cin * Cout * 16 weights. There are no biases: BatchNorm subtracts each
# channel's mean right afterwards, so a bias would be cancelled exactly, BN(x + b) = BN(x).
#
#     512x4x4 layer: 100 * 512 * 16 = 819,200 weights     (+ 2 * 512 for BN's gamma and beta)
#     total: 3,576,704 parameters (D has 2,765,568), about 14 MB in float32
#
# DCGAN initialisation (Radford et al.): every conv weight ~ N(0, 0.02), BN gamma ~ N(1, 0.02),
# beta = 0. An untrained G in train mode already makes images with the right shape and range,
# but its "faces" are faint, grid-like texture.
#
# Look at: tinygan/dcgan.py (Generator), tinygan/init.py (dcgan_init). Proved below: every layer's
# output shape, the parameter count, the output range, the initialisation, BN cancelling a bias,
# and a gradient check of a tiny generator.

# %%
"""Lesson 10: the generator and its shapes, 100 -> 4 -> 8 -> 16 -> 32 -> 64."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.dcgan import Discriminator, Generator  # noqa: E402
from tinygan.nn import BatchNorm2d, ConvTranspose2d  # noqa: E402


def describe(layer):
    """'ConvT(100->512, k4 s1 p0)', 'BatchNorm2d(512)', 'ReLU'."""
    if isinstance(layer, ConvTranspose2d):
        (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
        return f"ConvT({layer.in_channels}->{layer.out_channels}, k{k} s{s} p{p})"
    if isinstance(layer, BatchNorm2d):
        return f"BatchNorm2d({layer.num_features})"
    return type(layer).__name__


# %%
lesson = Lesson("10_generator", __doc__)
args = lesson.parse()
rng = backend.default_rng(args.seed)
n = 4 if args.quick else 16

# %% [markdown]
# ## 1. Every layer of the DCGAN generator

# %%
print("\n1. Every layer of the DCGAN generator, for a batch of", n)
G = Generator(rng=rng)
x = rng.normal((n, 100, 1, 1))                                          # z
print(f"  {'layer':28s} {'output (C, H, W)':18s} {'parameters':>10s}")
sides = []
for layer in G.main:
    x = layer(x)
    count = sum(p.data.size for p in layer.parameters())
    print(f"  {describe(layer):28s} {str(tuple(x.shape[1:])):18s} {count:10,d}")
    if isinstance(layer, ConvTranspose2d):
        sides.append((x.shape[1], x.shape[2]))
lesson.check("(channels, side) after each transposed conv", sides,
             sides == [(512, 4), (256, 8), (128, 16), (64, 32), (3, 64)],
             "should be [(512, 4), (256, 8), (128, 16), (64, 32), (3, 64)]")
g_params = sum(p.data.size for p in G.parameters())
d_params = sum(p.data.size for p in Discriminator(rng=0).parameters())
lesson.check("G's parameters", f"{g_params:,}", g_params == 3_576_704, "should be 3,576,704")
lesson.check("D's parameters", f"{d_params:,}", d_params == 2_765_568, "should be 2,765,568")
images = x                                                              # (n, 3, 64, 64)
lo, hi = float(images.min()), float(images.max())
lesson.check("output range", f"[{lo:.3f}, {hi:.3f}]", -1 <= lo and hi <= 1, "should lie inside [-1, 1] (tanh)")

# %% [markdown]
# ## 2. DCGAN initialisation

# %%
print("\n2. DCGAN initialisation")
weights = backend.to_numpy(backend.xp.concatenate([m.weight.data.ravel() for m in G.modules()
                                                   if isinstance(m, ConvTranspose2d)]))
gammas = backend.to_numpy(backend.xp.concatenate([m.weight.data for m in G.modules() if isinstance(m, BatchNorm2d)]))
lesson.check("std of all conv weights", float(weights.std()), abs(weights.std() - 0.02) < 5e-4, "should be 0.02")
lesson.check("mean of BN gamma", float(gammas.mean()), abs(gammas.mean() - 1) < 5e-3, "should be 1")

# %% [markdown]
# ## 3. Why the transposed convs have no bias: train-mode BatchNorm cancels it

# %%
print("\n3. Why the transposed convs have no bias: train-mode BatchNorm cancels it")
bn, h = BatchNorm2d(8), rng.normal((4, 8, 4, 4))
shift = float(abs(bn(h + rng.normal((1, 8, 1, 1))) - bn(h)).max())
lesson.check("max |BN(x + b) - BN(x)|", shift, shift < 1e-5, "should be ~0 (float32 round-off)")

# %% [markdown]
# ## 4. Gradient check of a tiny generator (nz=4, ngf=2), float64, BatchNorm in train mode

# %%
print("\n4. Gradient check of a tiny generator (nz=4, ngf=2), float64, BatchNorm in train mode")
tiny = Generator(nz=4, ngf=2, rng=rng)
z = rng.normal((3, 4, 1, 1), dtype=np.float64)
lesson.check_gradients(gradcheck.check_module(tiny.main, z, seed=args.seed), "tiny G")

lesson.save_grid(images, "untrained_samples.png", nrow=8)
stretched = (images - images.mean()) / (3 * images.std())             # the same images, contrast stretched
lesson.save_grid(backend.xp.clip(stretched, -1, 1), "untrained_samples_contrast.png", nrow=8)
# %%
fig, axes = lesson.figure(1, 2, size=(4.5, 3.2))
layer_names = ["z", "4x4", "8x8", "16x16", "32x32", "64x64"]
counts = [0] + [sum(p.data.size for p in m.parameters()) for m in G.modules() if isinstance(m, ConvTranspose2d)]
activations = [100] + [c * s * s for c, s in sides]
axes[0, 0].bar(layer_names[1:], counts[1:], color="tab:blue")
axes[0, 0].set(title="weights per transposed conv", yscale="log")
axes[0, 1].bar(layer_names, activations, color="tab:orange")
axes[0, 1].set(title="numbers per image after each layer", yscale="log")
lesson.save_figure(fig, "generator_sizes.png")
lesson.finish()
