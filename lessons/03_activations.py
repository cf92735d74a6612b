"""Lesson 03: activations, elementwise non-linearities and their slopes.

Without a non-linearity between them, stacked linear layers collapse into one linear map.
The four that DCGAN uses:

    ReLU       f(x) = max(x, 0)                f'(x) = 1 if x > 0 else 0
    LeakyReLU  f(x) = max(x, a x), 0 < a < 1   f'(x) = 1 if x > 0 else a       (a = 0.2 in D)
    Tanh       f(x) = tanh(x)                  f'(x) = 1 - f(x)^2                 (G's output layer)
    Sigmoid    f(x) = 1 / (1 + e^-x)           f'(x) = f(x) (1 - f(x)) <= 1/4     (a probability)

Backward is the chain rule, applied elementwise: dL/dx = dL/dy * f'(x). Each f' above can be
written with y = f(x) alone, so the layers cache y, not x. Sigmoid is computed as
e^x / (1 + e^x) for x < 0, so exp never overflows. For |x| large it saturates:
f'(x) ~ e^-|x|, and the gradient through it all but vanishes (lesson 07).

Why LeakyReLU in the discriminator? G never sees a real image. It learns only through D's
gradient with respect to the image, dD/dx. With ReLU, every unit whose pre-activation is
negative passes back *exactly zero*, and for fakes that D rejects, most of them are negative.
LeakyReLU passes a * g instead, so some signal always reaches G. Radford et al. (2016) use
LeakyReLU(0.2) in D, ReLU inside G, and tanh at G's output, which matches the images
scaled to [-1, 1].

Look at: tinygan/nn/activations.py (each class's forward and backward, and sigmoid).
Proved below: backward(1) equals a numerical f'(x), each layer passes a gradient check, and
ReLU blocks the gradient where LeakyReLU passes it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from _common import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.nn import LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: E402

lesson = Lesson("03_activations", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)
layers = {"ReLU": ReLU(), "LeakyReLU(0.2)": LeakyReLU(0.2), "Tanh": Tanh(), "Sigmoid": Sigmoid()}

print("\n1. f'(x) from backward(1) against a central difference, away from the kink at 0")
x = backend.to_device(np.linspace(-5, 5, 41 if args.quick else 401))
x = x[abs(x) > 1e-3]                                          # (M,) float64; f' is undefined at 0 for ReLU
curves = {}
for name, layer in layers.items():
    y = layer(x)
    slope = layer.backward(xp.ones_like(x))                  # dL/dx with dL/dy = 1 is f'(x)
    h = 1e-6
    numeric = (layer(x + h) - layer(x - h)) / (2 * h)
    err = float(abs(slope - numeric).max())
    lesson.check(f"{name}: max |backward(1) - numerical f'|", err, err < 1e-6, "should be < 1e-6")
    curves[name] = tuple(backend.to_numpy(a) for a in (y, slope))

print("\n2. tinygan.gradcheck on a random batch (N, C, H, W) with a random upstream gradient")
shape = (2, 3, 4, 4) if args.quick else (4, 8, 8, 8)
batch = rng.normal(shape, dtype=np.float64)
batch[abs(batch) < 1e-3] = 0.5                                # keep clear of the kink
for name, layer in layers.items():
    lesson.check_gradients(gradcheck.check_module(layer, batch, seed=args.seed), name)

print("\n3. Sigmoid's slope is at most 1/4, and it saturates")
sig = Sigmoid()
sig(backend.to_device(np.array([0.0, 20.0])))
s0, s20 = (float(v) for v in sig.backward(backend.to_device(np.array([1.0, 1.0]))))
lesson.check("sigmoid'(0)", s0, abs(s0 - 0.25) < 1e-12, "should be 0.25")
lesson.check("sigmoid'(20)", s20, s20 < 1e-8, "should be about e^-20 = 2e-9")

print("\n4. Gradient through the units of a D that rejects a fake (pre-activations ~ N(-1, 1))")
pre = rng.normal((256, 512), mean=-1.0)                       # float32, as in training
g = rng.normal(pre.shape)
blocked = {}
for name in ("ReLU", "LeakyReLU(0.2)"):
    layer = ReLU() if name == "ReLU" else LeakyReLU(0.2)
    layer(pre)
    blocked[name] = float((layer.backward(g) == 0).mean())
lesson.check("ReLU: fraction of units passing exactly zero gradient", blocked["ReLU"],
             abs(blocked["ReLU"] - 0.841) < 0.01, "should be P(N(-1, 1) < 0) = 0.841")
lesson.check("LeakyReLU(0.2): fraction passing exactly zero", blocked["LeakyReLU(0.2)"],
             blocked["LeakyReLU(0.2)"] == 0, "should be 0")

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
