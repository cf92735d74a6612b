# %% [markdown]
# # Lesson 03: activations
#
# Without a non-linearity between them, stacked linear layers collapse into one linear map.
# The four that DCGAN uses:
#
#     ReLU       f(x) = max(x, 0)                f'(x) = 1 if x > 0 else 0
#     LeakyReLU  f(x) = x if x > 0 else a x      f'(x) = 1 if x > 0 else a       (a = 0.2 in D)
#     Tanh       f(x) = tanh(x)                  f'(x) = 1 - f(x)^2                 (G's output layer)
#     Sigmoid    f(x) = 1 / (1 + e^-x)           f'(x) = f(x) (1 - f(x)) <= 1/4     (a probability)
#
# Backward is the chain rule, applied elementwise: dL/dx = dL/dy * f'(x). For ReLU, Tanh and Sigmoid
# f' can be written with y = f(x) alone, so those layers cache y. Sigmoid is computed as
# e^x / (1 + e^x) for x < 0, so exp never overflows. For |x| large it saturates: f'(x) ~ e^-|x|,
# and the gradient through it all but vanishes (lesson 07).
#
# **Why LeakyReLU in the discriminator?** G never sees a real image. It learns only through D's
# gradient with respect to the image, dD/dx. With ReLU, every unit whose pre-activation is negative
# passes back *exactly zero*, and for fakes that D rejects most of them are negative. LeakyReLU
# passes a * g instead, so some signal always reaches G. Radford et al. (2016) use LeakyReLU(0.2)
# in D, ReLU inside G, and tanh at G's output, which matches images scaled to [-1, 1].
#
# The lesson writes the four (forward and backward), checks them numerically, compares them with
# `tinygan/nn/activations.py` on both of its paths, and then uses the library's layers.

# %%
"""Lesson 03: activations, elementwise non-linearities and their slopes."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, gradcheck, nn  # noqa: E402

lesson = Lesson("03_activations", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)       # tinygan's generator (lesson 01): the shape comes first,
# rng.normal(shape, mean=0.0, std=1.0); NumPy's rng.normal(loc, scale, size) puts it last, so we name mean and std

# %% [markdown]
# ## 1. Build: each activation as a forward that returns (y, what backward needs) and a backward

# %%
def relu(x):
    y = xp.maximum(x, 0)
    return y, y


def relu_backward(g, y):
    return g * (y > 0)


def leaky_relu(x, a=0.2):
    positive = x > 0
    return xp.where(positive, x, a * x), positive


def leaky_relu_backward(g, positive, a=0.2):
    return g * xp.where(positive, 1.0, a)


def tanh(x):
    y = xp.tanh(x)
    return y, y


def tanh_backward(g, y):
    return g * (1 - y * y)


def sigmoid(x):
    e = xp.exp(-xp.abs(x))                                     # exp of a number <= 0 never overflows
    y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, y


def sigmoid_backward(g, y):
    return g * y * (1 - y)


mine = {"ReLU": (relu, relu_backward), "LeakyReLU(0.2)": (leaky_relu, leaky_relu_backward),
        "Tanh": (tanh, tanh_backward), "Sigmoid": (sigmoid, sigmoid_backward)}

# %% [markdown]
# ## 2. Prove: backward(1) is the slope f'(x), against a central difference (away from the kink at 0)

# %%
x = backend.to_device(np.linspace(-5, 5, 41 if args.quick else 401))
x = x[abs(x) > 1e-3]                                          # (M,) float64; f' is undefined at 0 for ReLU
curves = {}
for name, (forward, backward) in mine.items():
    y, saved = forward(x)
    slope = backward(xp.ones_like(x), saved)                  # dL/dx with dL/dy = 1 is f'(x)
    h = 1e-6
    numeric = (forward(x + h)[0] - forward(x - h)[0]) / (2 * h)
    err = float(abs(slope - numeric).max())
    lesson.check(f"{name}: max |backward(1) - numerical f'|", err, err < 1e-6, "should be < 1e-6")
    curves[name] = tuple(backend.to_numpy(a) for a in (y, slope))

# %% [markdown]
# ## 3. Compare with the library, on its reference path and on its fast path
# The fast path (`tinygan/nn/fast.py`) computes LeakyReLU as max(x, a x) in two passes over memory;
# both paths must give what the formulas above give.

# %%
layers = {"ReLU": nn.ReLU(), "LeakyReLU(0.2)": nn.LeakyReLU(0.2), "Tanh": nn.Tanh(), "Sigmoid": nn.Sigmoid()}
shape = (2, 3, 4, 4) if args.quick else (4, 8, 8, 8)
batch = rng.normal(shape, dtype=np.float64)
g = rng.normal(shape, dtype=np.float64)
for path in ("reference", "fast"):
    with nn.using_path(path):
        for name, layer in layers.items():
            forward, backward = mine[name]
            y, saved = forward(batch)
            diff = max(float(abs(layer(batch) - y).max()), float(abs(layer.backward(g) - backward(g, saved)).max()))
            lesson.check(f"{path} path, {name}: max |library - ours| over y and dL/dx", diff, diff < 1e-15,
                         "should be 0")

# %% [markdown]
# ## 4. Use the library: gradient checks, Sigmoid's saturation, and ReLU's dead gradient

# %%
batch[abs(batch) < 1e-3] = 0.5                                # keep clear of the kink
for name, layer in layers.items():
    lesson.check_gradients(gradcheck.check_module(layer, batch, seed=args.seed), name)

sig = nn.Sigmoid()
sig(backend.to_device(np.array([0.0, 20.0])))
s0, s20 = (float(v) for v in sig.backward(backend.to_device(np.array([1.0, 1.0]))))
lesson.check("sigmoid'(0)", s0, abs(s0 - 0.25) < 1e-12, "should be 0.25")
lesson.check("sigmoid'(20)", s20, s20 < 1e-8, "should be about e^-20 = 2e-9")

pre = rng.normal((256, 512), mean=-1.0)                       # float32, as in training: a D that rejects a fake
upstream = rng.normal(pre.shape)
blocked = {}
for name in ("ReLU", "LeakyReLU(0.2)"):
    layer = nn.ReLU() if name == "ReLU" else nn.LeakyReLU(0.2)
    layer(pre)
    blocked[name] = float((layer.backward(upstream) == 0).mean())
lesson.check("ReLU: fraction of units passing exactly zero gradient", blocked["ReLU"],
             abs(blocked["ReLU"] - 0.841) < 0.01, "should be P(N(-1, 1) < 0) = 0.841")
lesson.check("LeakyReLU(0.2): fraction passing exactly zero", blocked["LeakyReLU(0.2)"],
             blocked["LeakyReLU(0.2)"] == 0, "should be 0")

# %%
fig, axes = lesson.figure(2, 4, size=(3, 2.6), sharex=True)
x_host = backend.to_numpy(x)
for col, (name, (y, slope)) in enumerate(curves.items()):
    axes[0, col].plot(x_host, y, color="tab:blue")
    axes[0, col].set_title(name)
    axes[1, col].plot(x_host, slope, color="tab:red")
    axes[1, col].set_xlabel("x")
    axes[1, col].set_ylim(bottom=-0.05)
    for ax in axes[:, col]:
        ax.grid(alpha=0.3)
axes[0, 0].set_ylabel("f(x)")
axes[1, 0].set_ylabel("f'(x) = backward(1)")
axes[1, 0].text(-4.8, 0.5, f"{blocked['ReLU']:.0%} of a rejecting\nD's units pass 0", fontsize=7)
axes[1, 1].text(-4.8, 0.5, f"{blocked['LeakyReLU(0.2)']:.0%} pass 0", fontsize=7)
lesson.save_figure(fig, "activations.png")
lesson.finish()
