# %% [markdown]
# # Lesson 06: BatchNorm, train mode and eval mode
#
# BatchNorm2d normalises each channel with statistics of the current batch, then lets the network
# rescale it. Per channel, over the M = N*H*W values of a batch:
#
#     mu = mean(x)      var = mean((x - mu)^2)      xhat = (x - mu) / sqrt(var + eps)
#     y = gamma * xhat + beta                       (gamma, beta learned; one pair per channel)
#
# Train mode uses the batch's mu and var, so one image's output depends on the other images in its
# batch. Eval mode uses running estimates instead, so each image is handled on its own and
# deterministically. They are exponential moving averages with momentum m = 0.1:
#
#     running_mean <- (1 - m) running_mean + m mu
#     running_var  <- (1 - m) running_var  + m var * M / (M - 1)
#
# The factor M / (M - 1) (Bessel's correction) makes the running variance unbiased. The batch
# variance divides by M, so it underestimates the population variance by (M - 1) / M on average.
# That factor is 1/2 for M = 2, and negligible for a batch of 128 images at 8x8 (M = 8192).
#
# Backward in train mode has to account for mu and var depending on every x in the batch:
#
#     dgamma = sum(g xhat)     dbeta = sum(g)
#     dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g xhat))
#
# In eval mode mu and var are constants, so dx = gamma / sqrt(running_var + eps) * g.
#
# DCGAN puts BatchNorm after every layer except G's output and D's input. Train mode gives
# G and D a batch-coupled signal that keeps activations in a healthy range. Sampling uses eval
# mode (lesson 14), so a face does not depend on the faces generated beside it.
#
# The lesson writes the layer, checks it, compares it with `tinygan/nn/batchnorm.py` on both paths
# (the fast path reuses its temporaries in place and computes eval mode as one affine map per
# channel), and then uses the library's layer to look at the running statistics.

# %%
"""Lesson 06: BatchNorm in train mode and in eval mode."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, gradcheck, nn  # noqa: E402
from tinygan.nn import BatchNorm2d  # noqa: E402
from tinygan.nn.module import Module, Parameter  # noqa: E402

lesson = Lesson("06_batchnorm", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)
shape = (8, 4, 4, 4) if args.quick else (16, 8, 8, 8)             # (N, C, H, W)
M = shape[0] * shape[2] * shape[3]
true_mean, true_std = 3.0, 2.0

# %% [markdown]
# ## 1. Build: BatchNorm2d's forward and backward

# %%
def per_channel(v):
    return v.reshape(1, -1, 1, 1)                                   # (C,) -> (1, C, 1, 1)


class MyBatchNorm2d(Module):
    def __init__(self, channels, eps=1e-5, momentum=0.1):
        super().__init__()
        self.weight = Parameter(xp.ones(channels))                  # gamma
        self.bias = Parameter(xp.zeros(channels))                   # beta
        self.running_mean, self.running_var = xp.zeros(channels), xp.ones(channels)
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        if self.training:
            mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            m = x.size // x.shape[1]
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mu
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var * m / (m - 1)
        else:
            mu, var = self.running_mean, self.running_var
        inv_std = 1 / xp.sqrt(var + self.eps)
        xhat = (x - per_channel(mu)) * per_channel(inv_std)
        self.cache = (xhat, inv_std)
        return per_channel(self.weight.data) * xhat + per_channel(self.bias.data)

    def backward(self, g, need_input_grad=True):
        xhat, inv_std = self.cache
        self.weight.accumulate((g * xhat).sum(axis=(0, 2, 3)))
        self.bias.accumulate(g.sum(axis=(0, 2, 3)))
        scale = per_channel(self.weight.data * inv_std)
        if not self.training:
            return scale * g
        ### BEGIN SOLUTION batchnorm_backward (3 points)
        ### In train mode the batch's mean and variance depend on x too: dL/dx = gamma / sigma * (g - mean of g - xhat *
        ### mean of (g * xhat)), the means per channel over N, H and W.
        return scale * (g - g.mean(axis=(0, 2, 3), keepdims=True)
                        - xhat * (g * xhat).mean(axis=(0, 2, 3), keepdims=True))
        ### END SOLUTION

# %% [markdown]
# ## 2. Prove: the normalised output has mean 0 and variance 1, and the gradients check

# %%
mine = MyBatchNorm2d(shape[1])
mine.weight.data[...] = rng.normal(shape[1], mean=1.0, std=0.5, dtype=np.float64)   # gamma
mine.bias.data[...] = rng.normal(shape[1], dtype=np.float64)               # beta
x = rng.normal(shape, mean=true_mean, std=true_std, dtype=np.float64)
y = mine(x)
xhat = mine.cache[0]
lesson.check("largest |mean of xhat| over channels", float(abs(xhat.mean(axis=(0, 2, 3))).max()),
             abs(xhat.mean(axis=(0, 2, 3))).max() < 1e-12, "should be ~0 (< 1e-12)")
lesson.check("largest |var of xhat - 1| over channels", float(abs(xhat.var(axis=(0, 2, 3)) - 1).max()),
             abs(xhat.var(axis=(0, 2, 3)) - 1).max() < 1e-3, "should be ~0 (eps = 1e-5 shrinks it a little)")
small = rng.normal((3, 2, 3, 3) if args.quick else (4, 3, 4, 4), mean=true_mean, std=true_std,
                   dtype=np.float64)
check_bn = MyBatchNorm2d(small.shape[1])
check_bn.weight.data[...] = rng.normal(small.shape[1], mean=1.0, std=0.5, dtype=np.float64)
lesson.check_gradients(gradcheck.check_module(check_bn, small, seed=args.seed), "MyBatchNorm2d, train mode")
check_bn.running_var = xp.full(small.shape[1], 2.0)
lesson.check_gradients(gradcheck.check_module(check_bn.eval(), small, seed=args.seed), "MyBatchNorm2d, eval mode")

# %% [markdown]
# ## 3. Compare with the library's BatchNorm2d, on both paths, in both modes

# %%
G = rng.normal(shape, dtype=np.float64)
for training in (True, False):
    for path in ("reference", "fast"):
        with nn.using_path(path):
            ours = MyBatchNorm2d(shape[1])
            lib = BatchNorm2d(shape[1], dtype=np.float64)
            for layer in (ours, lib):
                layer.weight.data[...], layer.bias.data[...] = mine.weight.data, mine.bias.data
                layer.running_mean[...], layer.running_var[...] = 0.5, 1.5
                layer.train(training)
            diffs = [float(abs(lib(x) - ours(x)).max()), float(abs(lib.backward(G) - ours.backward(G)).max()),
                     float(abs(lib.weight.grad - ours.weight.grad).max()),
                     float(abs(lib.running_var - ours.running_var).max())]
            lesson.check(f"{'train' if training else 'eval'} mode, {path} path: max |library - ours| over y, dL/dx, "
                         "dL/dgamma, running_var", max(diffs), max(diffs) < 1e-11, "should be < 1e-11")

# %% [markdown]
# ## 4. Use the library: the running statistics
# One update, then many batches from N(3, 2^2), then why the running variance needs M / (M - 1).

# %%
bn = BatchNorm2d(shape[1], dtype=np.float64)
bn.weight.data[...], bn.bias.data[...] = mine.weight.data, mine.bias.data
gamma, beta = bn.weight.data.reshape(1, -1, 1, 1), bn.bias.data.reshape(1, -1, 1, 1)
y = bn(x)
mu, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
print(f"\nOne update of the running statistics (momentum 0.1, M = {M})")
rm_want, rv_want = 0.1 * mu.ravel(), 0.9 + 0.1 * var.ravel() * M / (M - 1)
lesson.check("max |running_mean - 0.1 mu|", float(abs(bn.running_mean - rm_want).max()),
             abs(bn.running_mean - rm_want).max() < 1e-12, "should be ~0 (< 1e-12)")
lesson.check("max |running_var - (0.9 + 0.1 var M/(M-1))|", float(abs(bn.running_var - rv_want).max()),
             abs(bn.running_var - rv_want).max() < 1e-12, "should be ~0 (< 1e-12): the unbiased variance")

# %%
print(f"\nMany batches from N({true_mean}, {true_std}^2): the running statistics converge")
steps = 60 if args.quick else 200
history = []
for _ in range(steps):
    bn(rng.normal(shape, mean=true_mean, std=true_std, dtype=np.float64))
    history.append((float(bn.running_mean.mean()), float(bn.running_var.mean())))
lesson.check("running_mean, averaged over channels", history[-1][0], abs(history[-1][0] - true_mean) < 0.15,
             f"should be {true_mean} +- 0.15")
lesson.check("running_var, averaged over channels", history[-1][1], abs(history[-1][1] - true_std ** 2) < 0.5,
             f"should be {true_std ** 2} +- 0.5")

# %%
print("\nWhy M/(M-1): batches of M = 2 values per channel")
tiny = BatchNorm2d(64, dtype=np.float64)
biased = xp.ones(64)
tiny_history = []
for _ in range(100 if args.quick else 400):
    batch = rng.normal((2, 64, 1, 1), mean=true_mean, std=true_std, dtype=np.float64)
    tiny(batch)
    biased = 0.9 * biased + 0.1 * batch.var(axis=(0, 2, 3))          # the same average without the correction
    tiny_history.append((float(tiny.running_var.mean()), float(biased.mean())))
late = np.mean(tiny_history[len(tiny_history) // 2:], axis=0)
lesson.check("unbiased running_var (tinygan), late average", late[0], abs(late[0] - 4) < 0.6, "should be 4 +- 0.6")
lesson.check("biased running var, late average", late[1], abs(late[1] - 2) < 0.4,
             "should be 4 (M-1)/M = 2 +- 0.4: half the truth")

# %% [markdown]
# ## 5. Eval mode uses the running statistics: one image no longer depends on its batch

# %%
bn.eval()
y_eval = bn(x)
running_mean, running_var = bn.running_mean.reshape(1, -1, 1, 1), bn.running_var.reshape(1, -1, 1, 1)
expected = gamma * (x - running_mean) / xp.sqrt(running_var + bn.eps) + beta
lesson.check("eval: max |y - (gamma (x - running_mean) / sqrt(running_var + eps) + beta)|",
             float(abs(y_eval - expected).max()), abs(y_eval - expected).max() < 1e-12, "should be ~0 (< 1e-12)")
alone = float(abs(bn(x[:1]) - y_eval[:1]).max())
lesson.check("eval: max |bn(x[:1]) - bn(x)[:1]|", alone, alone == 0, "should be 0")
bn.train()
coupled = float(abs(bn(x[:2]) - bn(x)[:2]).max())
lesson.check("train: max |bn(x[:2]) - bn(x)[:2]|", coupled, coupled > 1e-3, "should be clearly > 0: batch-coupled")

# %%
fig, axes = lesson.figure(1, 3, size=(3.8, 3.2))
axes[0, 0].hist(backend.to_numpy(x[:, 0]).ravel(), bins=30, alpha=0.6, label="x, channel 0")
axes[0, 0].hist(backend.to_numpy(xhat[:, 0]).ravel(), bins=30, alpha=0.6, label="xhat, channel 0")
axes[0, 0].set_title("train mode normalises", fontsize=9)
axes[0, 0].legend(fontsize=7)
history = np.array(history)
axes[0, 1].plot(history[:, 0], label="running_mean")
axes[0, 1].plot(history[:, 1], label="running_var")
for value in (true_mean, true_std ** 2):
    axes[0, 1].axhline(value, color="gray", linestyle=":")
axes[0, 1].set(xlabel="batch", title=f"running statistics, M = {M}")
axes[0, 1].legend(fontsize=7)
tiny_history = np.array(tiny_history)
axes[0, 2].plot(tiny_history[:, 0], label="with M/(M-1) (tinygan)")
axes[0, 2].plot(tiny_history[:, 1], label="without")
axes[0, 2].axhline(true_std ** 2, color="gray", linestyle=":", label="true variance")
axes[0, 2].set(xlabel="batch", title="running variance, M = 2")
axes[0, 2].legend(fontsize=7)
lesson.save_figure(fig, "batchnorm.png")
lesson.finish()
