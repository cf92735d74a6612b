# %% [markdown]
# # Lesson 07: BCE from probabilities and from logits
#
# D outputs a logit x. Its probability that the image is real is p = sigmoid(x). For a target
# t (1 = real, 0 = fake) the binary cross-entropy is
#
#     BCE(p, t) = -[t log p + (1 - t) log(1 - p)]
#
# (a) From probabilities: compute p first, then the logs. In float32, sigmoid(x) rounds to exactly
#     1 once x > ~17, because 1 - p drops below float32's spacing near 1 (6e-8). Then log(1 - p) =
#     log 0 = -inf. PyTorch's BCELoss (and tinygan's) clamps each log at -100, which is finite but
#     wrong. The gradient suffers worse. It flows as dL/dp * dp/dx = (p - t) / (p (1 - p)) * p (1 - p),
#     and with p (1 - p) = 0 that is inf * 0 = NaN, or 0 once clamped.
# (b) From logits: log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x), so
#
#         BCE(x, t) = softplus(x) - t x = max(x, 0) - t x + log(1 + e^-|x|)
#         dL/dx     = sigmoid(x) - t
#
#     There is no log of 0 and no overflow, and the gradient is exact and bounded. That is why D
#     returns logits and the sigmoid lives inside the loss.
#
# The saturation problem (Goodfellow et al. 2014). In the original minimax game, G minimises
# log(1 - D(G(z))). With x the logit that D gives a fake:
#
#     d/dx log(1 - sigmoid(x)) = -sigmoid(x)  ->  0   as x -> -inf
#
# Early in training D rejects fakes confidently (x << 0). That is exactly where this gradient
# vanishes, so G learns nothing. The non-saturating loss -log D(G(z)) = BCE(x, 1) has
# d/dx = sigmoid(x) - 1 -> -1 there, which is strongest where G is worst. The training loop of
# lesson 13 uses it: loss(g_logits, 1.0).
#
# The lesson writes both losses, checks their gradients, compares them with `tinygan/losses.py`
# (BCEWithLogitsLoss, BCELoss), then uses the library's versions at extreme logits.

# %%
"""Lesson 07: binary cross-entropy from probabilities and from logits."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.nn import sigmoid  # noqa: E402

lesson = Lesson("07_bce_logits", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)

# %% [markdown]
# ## 1. Build: both losses, each a mean over the batch, with a backward that returns dL/dinput
# (Lesson 03's sigmoid is the library's `tinygan.nn.sigmoid`.) Like every loss in tinygan, the
# loss object remembers its inputs, and `backward()` *returns* the gradient to pass on.

# %%
class MyBCEWithLogits:
    def __call__(self, x, t):
        self.cache = (x, t)
        ### BEGIN SOLUTION bce_with_logits (2 points)
        ### The mean over the batch of softplus(x) - t x, written as max(x, 0) - t x + log(1 + exp(-|x|)) so that no exp
        ### overflows.
        return (xp.maximum(x, 0) - t * x + xp.log1p(xp.exp(-xp.abs(x)))).mean()
        ### END SOLUTION

    def backward(self):
        x, t = self.cache
        ### BEGIN SOLUTION bce_with_logits (2 points)
        ### Return dL/dx = (sigmoid(x) - t) / n for a mean over n logits.
        return (sigmoid(x) - t) / x.size                     # the mean's 1/n
        ### END SOLUTION


class MyBCE:
    def __call__(self, p, t):
        self.cache = (p, t)
        with np.errstate(divide="ignore"):                   # log(0) = -inf, clamped at -100 like PyTorch
            return -(t * xp.maximum(xp.log(p), -100) + (1 - t) * xp.maximum(xp.log1p(-p), -100)).mean()

    def backward(self):
        p, t = self.cache
        return (p - t) / xp.maximum(p * (1 - p), 1e-12) / p.size

# %% [markdown]
# ## 2. Prove: both forms agree for moderate logits, and both gradients check

# %%
x = rng.normal(64 if args.quick else 4096, mean=0.0, std=3.0, dtype=np.float64)
t = rng.uniform(x.shape, dtype=np.float64)
from_logits, from_probs = float(MyBCEWithLogits()(x, t)), float(MyBCE()(sigmoid(x), t))
lesson.check("|BCEWithLogits(x, t) - BCE(sigmoid(x), t)|", abs(from_logits - from_probs),
             abs(from_logits - from_probs) < 1e-12, "should be < 1e-12")
lesson.check_gradients({"logits": gradcheck.check_loss(MyBCEWithLogits(), x[:16], t[:16])}, "MyBCEWithLogits")
probs = rng.uniform(16, low=0.05, high=0.95, dtype=np.float64)
lesson.check_gradients({"probabilities": gradcheck.check_loss(MyBCE(), probs, t[:16])}, "MyBCE")

# %% [markdown]
# ## 3. Compare with the library on the same arrays

# %%
from tinygan.losses import BCELoss, BCEWithLogitsLoss  # noqa: E402

for name, ours, lib, inputs in (("BCEWithLogitsLoss", MyBCEWithLogits(), BCEWithLogitsLoss(), x),
                                ("BCELoss", MyBCE(), BCELoss(), sigmoid(x))):
    diff = max(abs(float(ours(inputs, t)) - float(lib(inputs, t))), float(abs(ours.backward() - lib.backward()).max()))
    lesson.check(f"{name}: max |library - ours| over the loss and its gradient", diff, diff < 1e-12, "should be 0")


def scalar(value):
    """One float from a 0-d or 1-element array on any backend."""
    return float(backend.to_numpy(value).reshape(-1)[0])


def logits_grad(x, target):
    """dL/dx of BCE-with-logits at each x (as a host array): sigmoid(x) - t, via the library's backward."""
    loss = BCEWithLogitsLoss()
    loss(x, target)
    return backend.to_numpy(loss.backward()) * x.size      # the loss is a mean: undo the 1/n


# %% [markdown]
# ## 4. Use the library: a fake that D rejects with logit +30 (t = 0), in float32

# %%
print("\nA fake that D rejects with logit +30 (t = 0), in float32")
x30 = backend.to_device(np.array([30.0], dtype=np.float32))
p30 = sigmoid(x30)
lesson.check("sigmoid(30) in float32", scalar(p30), scalar(p30) == 1.0, "should round to exactly 1.0")
with np.errstate(divide="ignore", invalid="ignore"):
    naive_loss = scalar(-xp.log(1 - p30))
    naive_grad = scalar((p30 - 0) / (p30 * (1 - p30)) * (p30 * (1 - p30)))      # dL/dp * dp/dx
lesson.check("naive -log(1 - p)", naive_loss, np.isinf(naive_loss), "should be inf: log(0)")
lesson.check("naive dL/dp * dp/dx", naive_grad, np.isnan(naive_grad), "should be nan: inf * 0")
bce = BCELoss()
clamped = float(bce(p30, 0.0))
clamped_grad = scalar(bce.backward() * p30 * (1 - p30))
lesson.check("BCELoss(sigmoid(30), 0), log clamped at -100", clamped, clamped == 100, "should be 100 (the truth is 30)")
lesson.check("its gradient through sigmoid", clamped_grad, clamped_grad == 0, "should be 0 (the truth is 1): lost")
stable = float(BCEWithLogitsLoss()(x30, 0.0))
stable_grad = scalar(logits_grad(x30, 0.0))
lesson.check("BCEWithLogits(30, 0)", stable, abs(stable - 30) < 1e-5, "should be 30")
lesson.check("its gradient sigmoid(30) - 0", stable_grad, abs(stable_grad - 1) < 1e-6, "should be 1")

# %% [markdown]
# ## 5. G's two losses at a fake that D confidently rejects (logit -10)

# %%
print("\nG's two losses at a fake that D confidently rejects (logit -10)")
x_fake = backend.to_device(np.array([-10.0]))
minimax, nonsat = -logits_grad(x_fake, 0.0), logits_grad(x_fake, 1.0)     # log(1 - D) = -BCE(x, 0)
lesson.check("minimax log(1 - D): |dL/dx|", abs(scalar(minimax)), abs(scalar(minimax)) < 1e-4,
             "should be < 1e-4: sigmoid(-10) = 4.5e-5, vanished")
lesson.check("non-saturating -log D: |dL/dx|", abs(scalar(nonsat)), abs(abs(scalar(nonsat)) - 1) < 1e-4,
             "should be ~1: full strength")

# %%
grid = np.linspace(-10, 10, 201)
g = backend.to_device(grid)
fig, axes = lesson.figure(1, 3, size=(3.8, 3.3))
axes[0, 0].plot(grid, backend.to_numpy(-xp.logaddexp(0, g)), label="minimax: log(1 - D)  (minimise)")
axes[0, 0].plot(grid, backend.to_numpy(xp.logaddexp(0, -g)), label="non-saturating: -log D")
axes[0, 0].set(xlabel="D's logit for a fake", ylabel="G's loss", title="G's loss")
axes[0, 1].semilogy(grid, np.abs(-logits_grad(g, 0.0)), label="minimax")
axes[0, 1].semilogy(grid, np.abs(logits_grad(g, 1.0)), label="non-saturating")
axes[0, 1].axvspan(-10, -3, color="gray", alpha=0.15, label="D rejects the fake")
axes[0, 1].set(xlabel="D's logit for a fake", ylabel="|dL/dx|", title="G's gradient")
far = np.linspace(0, 40, 161).astype(np.float32)
p_far = backend.to_numpy(sigmoid(backend.to_device(far)))
with np.errstate(divide="ignore"):
    naive = -np.log1p(-p_far)
axes[0, 2].plot(far, naive, label="from probabilities (naive)", linewidth=3)
axes[0, 2].text(1, 60, f"naive: inf from x = {far[np.isinf(naive)][0]:.2f} on", fontsize=7)
axes[0, 2].plot(far, [float(BCELoss()(backend.to_device(p[None]), 0.0)) for p in p_far], label="BCELoss, clamped")
axes[0, 2].plot(far, backend.to_numpy(xp.logaddexp(0, backend.to_device(far))), "--", label="from logits")
axes[0, 2].set(xlabel="logit x (target 0)", ylabel="BCE, float32", title="extreme logits", ylim=(0, 110))
for ax in axes[0]:
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
lesson.save_figure(fig, "bce_logits.png")
lesson.finish()
