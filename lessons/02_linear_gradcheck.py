"""Lesson 02: one layer's forward and backward (Linear), and how to check a backward numerically.

A Linear layer maps a batch x (N, in) to y (N, out):

    y = x W^T + b          W (out, in), b (out,);   y_nj = sum_i x_ni W_ji + b_j

Backward receives the upstream gradient G = dL/dy (N, out) and applies the chain rule
to y_nj, which is linear in each of x, W and b:

    dL/dW_ji = sum_n G_nj x_ni   ->   dL/dW = G^T x    (out, in)
    dL/db_j  = sum_n G_nj        ->   dL/db = sum_n G  (out,)
    dL/dx_ni = sum_j G_nj W_ji   ->   dL/dx = G W      (N, in)

Every gradient has the shape of the thing it differentiates. That is a good first test, but it
cannot tell W from W^T when the layer is square.

The numerical check. Take L = <f(x), G> = sum(f(x) * G) for a *random* G. Its exact gradient
is what backward(G) returns. Nudge one number at a time and use a central difference:

    dL/dtheta_k  ~  (L(theta + h e_k) - L(theta - h e_k)) / (2h)

The truncation error is about h^2 |f'''|/6 and the round-off error about eps |L| / h. In float64
(eps = 2.2e-16) a step h near 1e-6 leaves a relative error |a - n| / (|a| + |n|) around 1e-8
or smaller, so 1e-6 or more means a bug. In float32 (eps = 1.2e-7) even the best step leaves
an error near 1e-5, and a slightly wrong step far more: too blunt to catch bugs. That is why
checks run in float64 and training in float32.

Look at: tinygan/nn/linear.py (Linear.forward, Linear.backward) and tinygan/gradcheck.py
(check_module, check_array_gradient). Proved below: the layer matches the formulas, the
gradient check passes, and it catches a deliberately transposed dL/dW.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from _common import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.nn import Linear  # noqa: E402


class TransposedGradLinear(Linear):
    """A classic bug: dL/dW computed as (G^T x)^T. Square layers hide it from shape checks."""

    def backward(self, grad_output, need_input_grad=True):
        x, self.cache = self.cache, None
        self.weight.accumulate((grad_output.T @ x).T)      # wrong: should be grad_output.T @ x
        self.bias.accumulate(grad_output.sum(axis=0))
        return grad_output @ self.weight.data


lesson = Lesson("02_linear_gradcheck", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)
n, d_in, d_out = (4, 3, 2) if args.quick else (16, 5, 3)

print("\n1. Forward and backward against the formulas (float64)")
layer = Linear(d_in, d_out, rng=rng, dtype=np.float64)
x = rng.normal((n, d_in), dtype=np.float64)                 # (N, in)
G = rng.normal((n, d_out), dtype=np.float64)                # (N, out), a random upstream gradient
y = layer(x)
W, b = layer.weight.data, layer.bias.data
lesson.check("max |y - (x W^T + b)|", float(abs(y - (x @ W.T + b)).max()), abs(y - (x @ W.T + b)).max() < 1e-12,
             "should be 0")
dx = layer.backward(G)
for name, got, want in (("dL/dW", layer.weight.grad, G.T @ x), ("dL/db", layer.bias.grad, G.sum(0)),
                        ("dL/dx", dx, G @ W)):
    lesson.check(f"max |{name} - formula|, shape {tuple(got.shape)}", float(abs(got - want).max()),
                 got.shape == want.shape and abs(got - want).max() < 1e-12, "should be 0")

print("\n2. One central difference by hand: dL/dW[0, 0]")
def loss():
    return float((layer(x) * G).sum())                       # L = <f(x), G>
h = 1e-6
W[0, 0] += h
plus = loss()
W[0, 0] -= 2 * h
minus = loss()
W[0, 0] += h
numeric, analytic = (plus - minus) / (2 * h), float(layer.weight.grad[0, 0])
err = gradcheck.relative_error(analytic, numeric)
print(f"  analytic {analytic:.10f}   numeric {numeric:.10f}")
lesson.check("relative error of dL/dW[0, 0]", err, err < 1e-6, "should be < 1e-6")

print("\n3. tinygan.gradcheck.check_module: every input and parameter entry")
good = gradcheck.check_module(Linear(d_in, d_out, rng=args.seed), x, seed=args.seed)
lesson.check_gradients(good, "Linear")

print("\n4. The same check on a square layer with a transposed dL/dW")
buggy = gradcheck.check_module(TransposedGradLinear(d_in, d_in, rng=args.seed), x, seed=args.seed)
lesson.check("buggy layer: relative error of dL/dW", buggy["weight"], buggy["weight"] > 1e-2,
             "should be large (> 1e-2): the check caught the bug")
lesson.check("buggy layer: relative error of dL/dx", buggy["input"], buggy["input"] < 1e-6,
             "should be < 1e-6: dL/dx was written correctly, so it passes")

print("\n5. Why float64: error of a central difference against the step h")
# f(W) = sum(G * exp(x W^T + b)) is smooth, so we see truncation (large h) and round-off (small h).
direction = rng.normal(W.shape, dtype=np.float64)
steps = np.logspace(-1, -12, 23)
sweep = {}
for dtype in (np.float64, np.float32):
    xd, Gd, Wd, bd, dd = (a.astype(dtype) for a in (x, G, W, b, direction))
    exact = float((G * xp.exp(x @ W.T + b) * (x @ direction.T)).sum())       # float64 reference
    f = lambda w: float((Gd * xp.exp(xd @ w.T + bd)).sum(dtype=dtype))        # noqa: E731
    sweep[dtype] = [gradcheck.relative_error(exact, (f(Wd + dtype(s) * dd) - f(Wd - dtype(s) * dd)) / (2 * s))
                    for s in steps]
best64, best32 = min(sweep[np.float64]), min(sweep[np.float32])
lesson.check("best relative error in float64", best64, best64 < 1e-8, "should be < 1e-8")
lesson.check("best relative error in float32", best32, best32 > 1000 * best64,
             "should be > 1000x float64's: too blunt to check with")

fig, axes = lesson.figure(1, 2, size=(4.5, 3.5))
names = list(good)
positions = np.arange(len(names))
axes[0, 0].bar(positions - 0.2, [max(good[k], 1e-17) for k in names], 0.4, label="Linear")
axes[0, 0].bar(positions + 0.2, [max(buggy[k], 1e-17) for k in names], 0.4, label="transposed dL/dW (bug)")
axes[0, 0].axhline(1e-6, color="red", linestyle=":", label="1e-6: above = bug")
axes[0, 0].set(yscale="log", xticks=positions, xticklabels=names, ylabel="relative error",
               title="gradient check, float64")
axes[0, 0].legend(fontsize=7)
for dtype, colour in ((np.float64, "tab:blue"), (np.float32, "tab:orange")):
    axes[0, 1].loglog(steps, np.maximum(sweep[dtype], 1e-17), marker=".", color=colour, label=np.dtype(dtype).name)
axes[0, 1].set(xlabel="step h", ylabel="relative error", title="central difference vs h")
axes[0, 1].invert_xaxis()
axes[0, 1].legend(fontsize=7)
lesson.save_figure(fig, "gradient_check.png")
lesson.finish()
