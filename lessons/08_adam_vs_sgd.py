# %% [markdown]
# # Lesson 08: Adam against SGD
#
# An optimiser turns gradients into weight updates. With g = dL/dw:
#
#     SGD            w <- w - lr g
#     SGD+momentum   v <- mu v + g;   w <- w - lr v
#     Adam           m <- b1 m + (1 - b1) g           (a running mean of g)
#                    v <- b2 v + (1 - b2) g^2         (a running mean of g^2)
#                    w <- w - lr * [m / (1 - b1^t)] / (sqrt(v / (1 - b2^t)) + eps)
#
# SGD's step is proportional to the gradient. In a long, narrow valley the steep direction sets the
# largest stable lr (lr < 2 / curvature), so the flat direction crawls. Momentum averages out the
# zig-zag and builds up speed along consistent directions. Adam divides each coordinate by the
# root-mean-square of its own gradient, so every coordinate moves about lr per step whatever the
# scale of its gradient. The division by (1 - b^t) removes the bias of starting m and v at 0:
# Adam's first step is exactly lr * g / (|g| + eps), which is lr * sign(g). Multiplying the loss by
# 1000 changes nothing for Adam. For SGD it is a 1000x larger lr.
#
# GANs (Radford et al. 2016) use Adam with lr = 2e-4 and b1 = 0.5 instead of 0.9. The loss
# surface of each player moves as the other one learns, so a short momentum memory overshoots less.
#
# The lesson writes both update rules as plain functions, checks Adam's first step, compares both
# with `tinygan/optim.py` (SGD.step, Adam.step) step by step, then uses the library's optimisers.

# %%
"""Lesson 08: optimisers, Adam against SGD."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend  # noqa: E402
from tinygan.losses import BCEWithLogitsLoss  # noqa: E402
from tinygan.nn import Linear, Parameter, ReLU, Sequential  # noqa: E402

lesson = Lesson("08_adam_vs_sgd", __doc__)
args = lesson.parse()

# %% [markdown]
# ## 1. Build: one step of each, on plain arrays (w, g and the optimiser's memory)

# %%
def sgd_step(w, g, velocity, lr, momentum=0.0):
    """v <- mu v + g;  w <- w - lr v  (plain SGD when mu = 0). Returns the new (w, v)."""
    velocity = momentum * velocity + g
    return w - lr * velocity, velocity


def adam_step(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step number t (1, 2, ...). Returns the new (w, m, v)."""
    ### BEGIN SOLUTION adam_step (2 points)
    ### m and v are moving averages of g and g^2 (weights b1, b2); divide them by 1 - b1^t and 1 - b2^t (they started at
    ### 0); step by lr m_hat / (sqrt(v_hat) + eps).
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)            # undo the bias of starting at 0
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    ### END SOLUTION

# %% [markdown]
# ## 2. Prove: Adam's first step has size lr in every coordinate, whatever the gradient

# %%
g = np.array([1e-4, -0.1, 3.0, -50.0, 1e3])
w1, _, _ = adam_step(np.zeros(5), g, np.zeros(5), np.zeros(5), t=1, lr=0.01)
lesson.check("first-step sizes / lr", np.round(np.abs(w1) / 0.01, 6).tolist(), np.allclose(np.abs(w1), 0.01, rtol=1e-3),
             "should all be 1")

# %% [markdown]
# ## 3. Compare with the library: ten steps on the same weights and gradients
# tinygan's Adam writes the same rule in PyTorch's order (lr / (1 - b1^t) times m / (sqrt(v) /
# sqrt(1 - b2^t) + eps)): the two must agree to float64 round-off (here they agree exactly).

# %%
from tinygan.optim import SGD, Adam  # noqa: E402

rng = np.random.default_rng(args.seed)
gradients = rng.normal(size=(10, 6))
start = rng.normal(size=6)
for name, make in (("SGD+momentum 0.9, lr 0.1", lambda p: SGD(p, lr=0.1, momentum=0.9)),
                   ("Adam lr 0.01, b1 0.5", lambda p: Adam(p, lr=0.01, betas=(0.5, 0.999)))):
    param = Parameter(backend.to_device(start.copy()))
    optimiser = make([param])
    w, m, v = start.copy(), np.zeros(6), np.zeros(6)
    for t, grad in enumerate(gradients, start=1):
        param.grad = backend.to_device(grad)
        optimiser.step()
        if name.startswith("SGD"):
            w, m = sgd_step(w, grad, m, lr=0.1, momentum=0.9)
        else:
            w, m, v = adam_step(w, grad, m, v, t, lr=0.01, b1=0.5)
    diff = float(np.abs(backend.to_numpy(param.data) - w).max())
    lesson.check(f"{name}: max |library - ours| after 10 steps", diff, diff < 1e-13, "should be < 1e-13")

# %%
CURVATURE = np.array([1.0, 40.0])                    # f(w) = 0.5 * sum(c_i w_i^2): a long, narrow valley


def descend(make_optimiser, steps, scale=1.0, start=(-4.0, 1.0)):
    """Minimise scale * f from ``start``; returns the path (steps + 1, 2) on the host."""
    w = Parameter(backend.to_device(np.array(start)))
    optimiser = make_optimiser([w])
    path = [backend.to_numpy(w.data).copy()]
    for _ in range(steps):
        w.grad = scale * backend.to_device(CURVATURE) * w.data       # gradient of scale * f
        optimiser.step()
        path.append(backend.to_numpy(w.data).copy())
    return np.array(path)


def two_spirals(n, rng):
    """n points (n, 2) on two interleaved spirals, labels (n, 1) in {0, 1}."""
    turn = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    label = rng.integers(0, 2, n)
    angle = turn + np.pi * label
    points = np.stack([turn * np.cos(angle), turn * np.sin(angle)], axis=1) / (3 * np.pi)
    points += rng.normal(0, 0.02, points.shape)
    return points.astype(np.float32), label.reshape(-1, 1).astype(np.float32)


def train_classifier(make_optimiser, points, labels, steps, width, seed):
    """A 2-width-width-1 ReLU network, full-batch; returns the loss curve and the model."""
    rng = backend.default_rng(seed)
    model = Sequential(Linear(2, width, rng=rng), ReLU(), Linear(width, width, rng=rng), ReLU(),
                       Linear(width, 1, rng=rng))
    optimiser, loss = make_optimiser(model.parameters()), BCEWithLogitsLoss()
    curve = []
    for _ in range(steps):
        optimiser.zero_grad()
        curve.append(float(loss(model(points), labels)))
        model.backward(loss.backward(), need_input_grad=False)
        optimiser.step()
    return np.array(curve), model


optimisers = {"SGD lr 0.045": lambda p: SGD(p, lr=0.045),
              "SGD+momentum 0.9, lr 0.01": lambda p: SGD(p, lr=0.01, momentum=0.9),
              "Adam lr 0.1": lambda p: Adam(p, lr=0.1)}

# %% [markdown]
# ## 4. Use the library: a narrow valley f(w) = 0.5 (w1^2 + 40 w2^2), and the same with the loss x 1000

# %%
print("\nA narrow valley f(w) = 0.5 (w1^2 + 40 w2^2), and the same with the loss x 1000")
steps = 60 if args.quick else 150
paths = {name: descend(make, steps) for name, make in optimisers.items()}
with np.errstate(over="ignore", invalid="ignore"):                   # SGD is about to blow up
    scaled = {name: descend(make, steps, scale=1000.0) for name, make in optimisers.items()}
for name in optimisers:
    print(f"  {name:28s} final f = {0.5 * (CURVATURE * paths[name][-1] ** 2).sum():.2e}")
drift = float(np.abs(paths["Adam lr 0.1"] - scaled["Adam lr 0.1"]).max())
lesson.check("Adam: max |path(loss) - path(1000 loss)|", drift, drift < 1e-3, "should be ~0: scale-free")
sgd_end = float(np.abs(scaled["SGD lr 0.045"][-1]).max())
lesson.check("SGD on 1000 loss: |w| at the end", sgd_end, not np.isfinite(sgd_end) or sgd_end > 1e6,
             "should be huge or inf: diverged")

# %% [markdown]
# ## 5. A small ReLU classifier on two spirals, full batch

# %%
width = 16 if args.quick else 64
print(f"\nA 2-{width}-{width}-1 classifier on two spirals, full batch")
points, labels = two_spirals(256 if args.quick else 600, np.random.default_rng(args.seed))
points_dev, labels_dev = backend.to_device(points), backend.to_device(labels)
train_steps = 150 if args.quick else 800
classifiers = {"SGD lr 0.1": lambda p: SGD(p, lr=0.1), "SGD+momentum 0.9, lr 0.1": lambda p: SGD(p, 0.1, 0.9),
               "Adam lr 0.01": lambda p: Adam(p, lr=0.01),
               "Adam lr 2e-4, b1 0.5 (DCGAN's)": lambda p: Adam(p, lr=2e-4, betas=(0.5, 0.999))}
curves, models = {}, {}
for name, make in classifiers.items():
    curves[name], models[name] = train_classifier(make, points_dev, labels_dev, train_steps, width, args.seed)
    print(f"  {name:32s} loss {curves[name][0]:.3f} -> {curves[name][-1]:.4f}")
lesson.check("final loss, Adam lr 0.01 / SGD lr 0.1", curves["Adam lr 0.01"][-1] / curves["SGD lr 0.1"][-1],
             curves["Adam lr 0.01"][-1] < curves["SGD lr 0.1"][-1], "should be < 1")
accuracy = float(((backend.to_numpy(models["Adam lr 0.01"](points_dev)) > 0) == (labels > 0.5)).mean())
lesson.check("Adam's training accuracy", accuracy, accuracy > (0.8 if args.quick else 0.97),
             f"should be > {0.8 if args.quick else 0.97}")

# %%
fig, axes = lesson.figure(1, 3, size=(4, 3.5))
u, v = np.meshgrid(np.linspace(-4.5, 1, 100), np.linspace(-1.2, 1.2, 100))
axes[0, 0].contour(u, v, 0.5 * (CURVATURE[0] * u ** 2 + CURVATURE[1] * v ** 2), levels=20, colors="lightgray")
for name, path in paths.items():
    axes[0, 0].plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=0.8, label=name)
axes[0, 0].set(title=f"a narrow valley, {steps} steps", xlabel="w1", ylabel="w2")
for name, curve in curves.items():
    axes[0, 1].semilogy(curve, label=name)
axes[0, 1].set(title="two spirals: training loss", xlabel="step", ylabel="BCE")
grid = np.stack(np.meshgrid(np.linspace(-1.1, 1.1, 150), np.linspace(-1.1, 1.1, 150)), axis=-1).reshape(-1, 2)
scores = backend.to_numpy(models["Adam lr 0.01"](backend.to_device(grid.astype(np.float32)))).reshape(150, 150)
axes[0, 2].contourf(grid[:, 0].reshape(150, 150), grid[:, 1].reshape(150, 150), scores > 0, cmap="coolwarm", alpha=0.3)
axes[0, 2].scatter(points[:, 0], points[:, 1], c=labels[:, 0], cmap="coolwarm", s=4)
axes[0, 2].set(title=f"Adam's classifier, accuracy {accuracy:.1%}")
for ax in axes[0, :2]:
    ax.legend(fontsize=7)
lesson.save_figure(fig, "adam_vs_sgd.png")
lesson.finish()
