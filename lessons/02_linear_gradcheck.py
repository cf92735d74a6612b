# %% [markdown]
# # Lesson 02: a layer's forward and backward, and the gradient check
#
# A Linear layer maps a batch x (N, in) to y (N, out):
#
#     y = x W^T + b          W (out, in), b (out,);   y_nj = sum_i x_ni W_ji + b_j
#
# Backward receives the upstream gradient G = dL/dy (N, out) and applies the chain rule to y_nj,
# which is linear in each of x, W and b:
#
#     dL/dW_ji = sum_n G_nj x_ni   ->   dL/dW = G^T x    (out, in)
#     dL/db_j  = sum_n G_nj        ->   dL/db = sum_n G  (out,)
#     dL/dx_ni = sum_j G_nj W_ji   ->   dL/dx = G W      (N, in)
#
# Every gradient has the shape of the thing it differentiates. That is a good first test, but it
# cannot tell W from W^T when the layer is square.
#
# **The numerical check.** Take L = <f(x), G> = sum(f(x) * G) for a *random* G. Its exact gradient is
# what backward(G) returns. Nudge one number at a time and use a central difference:
#
#     dL/dtheta_k  ~  (L(theta + h e_k) - L(theta - h e_k)) / (2h)
#
# The truncation error is about h^2 |f'''|/6 and the round-off error about eps |L| / h. In float64
# (eps = 2.2e-16) a step h near 1e-6 leaves a relative error |a - n| / (|a| + |n|) around 1e-8 or
# smaller, so 1e-6 or more means a bug. In float32 (eps = 1.2e-7) even the best step leaves an error
# near 1e-5: too blunt to catch bugs. That is why checks run in float64 and training in float32.
#
# This lesson writes the layer and the check itself, proves them, compares them with the library's
# versions (`tinygan/nn/linear.py`, `tinygan/gradcheck.py`) on the same arrays, and only then uses
# the library's check to catch a bug.

# %%
"""Lesson 02: one layer's forward and backward (Linear), and how to check a backward numerically."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402

lesson = Lesson("02_linear_gradcheck", __doc__)
args = lesson.parse()
rng = np.random.default_rng(args.seed)
n, d_in, d_out = (4, 3, 2) if args.quick else (16, 5, 3)

# %% [markdown]
# ## 1. Build: the layer, written out
# Forward keeps what backward needs (x) in a cache; backward *adds* dL/dW and dL/db into the
# parameters' gradients (two backward passes, say on a real and a fake batch, sum up) and returns dL/dx.

# %%
class MyLinear:
    def __init__(self, W, b):
        self.W, self.b = W, b                                   # (out, in), (out,)
        self.dW, self.db = np.zeros_like(W), np.zeros_like(b)

    def forward(self, x):
        self.x = x                                              # (N, in): what backward needs
        return x @ self.W.T + self.b                            # (N, out)

    def backward(self, G):
        ### BEGIN SOLUTION linear_backward (2 points)
        ### Add dL/dW = G^T x into self.dW and dL/db = G summed over the batch into self.db; return dL/dx = G W.
        self.dW += G.T @ self.x                                 # (out, in)
        self.db += G.sum(axis=0)                                # (out,)
        return G @ self.W                                       # dL/dx (N, in)
        ### END SOLUTION


W, b = rng.normal(size=(d_out, d_in)), rng.normal(size=d_out)
x, G = rng.normal(size=(n, d_in)), rng.normal(size=(n, d_out))   # G: a random upstream gradient
mine = MyLinear(W.copy(), b.copy())
y = mine.forward(x)
dx = mine.backward(G)

# %% [markdown]
# ## 2. Prove: a central difference for every entry of W, b and x

# %%
def numerical_gradient(loss, theta, h=1e-6):
    """d loss / d theta by central differences, one entry at a time (theta is changed and restored)."""
    grad = np.zeros_like(theta)
    for k in np.ndindex(theta.shape):
        saved = theta[k]
        theta[k] = saved + h
        plus = loss()
        theta[k] = saved - h
        minus = loss()
        theta[k] = saved
        grad[k] = (plus - minus) / (2 * h)
    return grad


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def loss():                                                     # L = <f(x), G>
    return float((mine.forward(x) * G).sum())


print("\nThe layer's gradients against central differences (float64)")
for name, analytic, theta in (("dL/dW", mine.dW, mine.W), ("dL/db", mine.db, mine.b), ("dL/dx", dx, x)):
    err = relative_error(analytic, numerical_gradient(loss, theta))
    lesson.check(f"MyLinear: relative error of {name}", err, err < 1e-6, "should be < 1e-6")

# %% [markdown]
# ## 3. Compare with the library on the same arrays
# `tinygan.nn.Linear` is the same layer inside the framework, and `tinygan.gradcheck.check_module` is the
# same check, run along every coordinate (small tensors) or random directions (large ones). From here on
# the lessons use them, and the framework's few rules with them (`tinygan/nn/module.py`):
# - a layer is a `Module`: `layer(x)` calls its `forward(x)`, which keeps what backward needs in
#   `self.cache`; `backward(grad_output, need_input_grad=True)` returns dL/dx (or skips computing it when
#   `need_input_grad` is False: the first layer of a network has nobody to pass it to);
# - its weights are `Parameter`s: `.data` holds the values, `.grad` the gradient, and backward calls
#   `.accumulate(g)`, which *adds* g to `.grad` (as `MyLinear` adds into `dW`); an optimiser's `zero_grad()`
#   clears them before the next step;
# - `parameters()` lists every Parameter of a module and of the modules inside it, for the optimiser;
#   `train()` and `eval()` switch BatchNorm's mode (lesson 06).

# %%
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.nn import Linear  # noqa: E402

layer = Linear(d_in, d_out, dtype=np.float64)
layer.weight.data[...], layer.bias.data[...] = W, b
lib_y = backend.to_numpy(layer(backend.to_device(x)))
lib_dx = backend.to_numpy(layer.backward(backend.to_device(G)))
for name, got, want in (("y", lib_y, y), ("dL/dx", lib_dx, dx), ("dL/dW", backend.to_numpy(layer.weight.grad), mine.dW),
                        ("dL/db", backend.to_numpy(layer.bias.grad), mine.db)):
    diff = float(np.abs(got - want).max())
    lesson.check(f"max |Linear {name} - MyLinear {name}|", diff, diff < 1e-12, "should be 0")
errors = gradcheck.check_module(Linear(d_in, d_out, rng=args.seed), backend.to_device(x), seed=args.seed)
lesson.check_gradients(errors, "tinygan.gradcheck on Linear")

# %% [markdown]
# ## 4. Use it: the check catches a transposed dL/dW
# A classic bug: dL/dW computed as (G^T x)^T. On a square layer the shapes fit, so only the
# numbers can tell, and the check says which gradient is wrong.

# %%
class TransposedGradLinear(Linear):
    def backward(self, grad_output, need_input_grad=True):
        x, self.cache = self.cache, None
        self.weight.accumulate((grad_output.T @ x).T)      # wrong: should be grad_output.T @ x
        self.bias.accumulate(grad_output.sum(axis=0))
        return grad_output @ self.weight.data


buggy = gradcheck.check_module(TransposedGradLinear(d_in, d_in, rng=args.seed), backend.to_device(x), seed=args.seed)
lesson.check("buggy layer: relative error of dL/dW", buggy["weight"], buggy["weight"] > 1e-2,
             "should be large (> 1e-2): the check caught the bug")
lesson.check("buggy layer: relative error of dL/dx", buggy["input"], buggy["input"] < 1e-6,
             "should be < 1e-6: dL/dx was written correctly, so it passes")

# %% [markdown]
# ## 5. Why float64: the error of a central difference against the step h
# f(W) = sum(G * exp(x W^T + b)) is smooth, so a large h shows truncation and a small h round-off.

# %%
direction = rng.normal(size=W.shape)
steps = np.logspace(-1, -12, 23)
exact = float((G * np.exp(x @ W.T + b) * (x @ direction.T)).sum())
sweep = {}
for dtype in (np.float64, np.float32):
    xd, Gd, Wd, bd, dd = (a.astype(dtype) for a in (x, G, W, b, direction))
    f = lambda w: float((Gd * np.exp(xd @ w.T + bd)).sum(dtype=dtype))        # noqa: E731
    sweep[dtype] = [relative_error(np.array(exact), np.array((f(Wd + dtype(s) * dd) - f(Wd - dtype(s) * dd)) / (2 * s)))
                    for s in steps]
best64, best32 = min(sweep[np.float64]), min(sweep[np.float32])
lesson.check("best relative error in float64", best64, best64 < 1e-8, "should be < 1e-8")
lesson.check("best relative error in float32", best32, best32 > 1000 * best64,
             "should be > 1000x float64's: too blunt to check with")

fig, axes = lesson.figure(1, 2, size=(4.5, 3.5))
names = list(errors)
positions = np.arange(len(names))
axes[0, 0].bar(positions - 0.2, [max(errors[k], 1e-17) for k in names], 0.4, label="Linear")
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
