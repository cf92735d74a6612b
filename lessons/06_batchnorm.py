"""Lesson 06: BatchNorm in train mode and in eval mode.

BatchNorm2d normalises each channel with statistics of the current batch, then lets the network
rescale it. Per channel, over the M = N*H*W values of a batch:

    mu = mean(x)      var = mean((x - mu)^2)      xhat = (x - mu) / sqrt(var + eps)
    y = gamma * xhat + beta                       (gamma, beta learned; one pair per channel)

Train mode uses the batch's mu and var, so one image's output depends on the other images in its
batch. Eval mode uses running estimates instead, so each image is handled on its own and
deterministically. They are exponential moving averages with momentum m = 0.1:

    running_mean <- (1 - m) running_mean + m mu
    running_var  <- (1 - m) running_var  + m var * M / (M - 1)

The factor M / (M - 1) (Bessel's correction) makes the running variance unbiased. The batch
variance divides by M, so it underestimates the population variance by (M - 1) / M on average.
That factor is 1/2 for M = 2, and negligible for a batch of 128 images at 8x8 (M = 8192).

Backward in train mode has to account for mu and var depending on every x in the batch:

    dgamma = sum(g xhat)     dbeta = sum(g)
    dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g xhat))

In eval mode mu and var are constants, so dx = gamma / sqrt(running_var + eps) * g.

DCGAN puts BatchNorm after every layer except G's output and D's input. Train mode gives
G and D a batch-coupled signal that keeps activations in a healthy range. Sampling uses eval
mode (lesson 13), so a face does not depend on the faces generated beside it.

Look at: tinygan/nn/batchnorm.py (forward and backward). Proved below: the formulas, the
running-statistics update, unbiased vs biased estimates, eval mode, and gradient checks.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from _common import Lesson  # noqa: E402
from tinygan import backend, gradcheck  # noqa: E402
from tinygan.nn import BatchNorm2d  # noqa: E402

lesson = Lesson("06_batchnorm", __doc__)
args = lesson.parse()
xp = backend.xp
rng = backend.default_rng(args.seed)
shape = (8, 4, 4, 4) if args.quick else (16, 8, 8, 8)             # (N, C, H, W)
M = shape[0] * shape[2] * shape[3]
true_mean, true_std = 3.0, 2.0

print("\n1. Train mode against the formulas (float64)")
bn = BatchNorm2d(shape[1], dtype=np.float64)
bn.weight.data[...] = rng.normal(shape[1], 1.0, 0.5, dtype=np.float64)   # gamma
bn.bias.data[...] = rng.normal(shape[1], dtype=np.float64)               # beta
x = rng.normal(shape, true_mean, true_std, dtype=np.float64)
y = bn(x)
mu, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
gamma, beta = bn.weight.data.reshape(1, -1, 1, 1), bn.bias.data.reshape(1, -1, 1, 1)
by_hand = gamma * (x - mu) / xp.sqrt(var + bn.eps) + beta
lesson.check("max |y - (gamma xhat + beta)|", float(abs(y - by_hand).max()), abs(y - by_hand).max() < 1e-12,
             "should be ~0 (< 1e-12)")
xhat = (y - beta) / gamma
lesson.check("largest |mean of xhat| over channels", float(abs(xhat.mean(axis=(0, 2, 3))).max()),
             abs(xhat.mean(axis=(0, 2, 3))).max() < 1e-12, "should be ~0 (< 1e-12)")
lesson.check("largest |var of xhat - 1| over channels", float(abs(xhat.var(axis=(0, 2, 3)) - 1).max()),
             abs(xhat.var(axis=(0, 2, 3)) - 1).max() < 1e-3, "should be ~0 (eps = 1e-5 shrinks it a little)")

print(f"\n2. One update of the running statistics (momentum 0.1, M = {M})")
rm_want, rv_want = 0.1 * mu.ravel(), 0.9 + 0.1 * var.ravel() * M / (M - 1)
lesson.check("max |running_mean - 0.1 mu|", float(abs(bn.running_mean - rm_want).max()),
             abs(bn.running_mean - rm_want).max() < 1e-12, "should be ~0 (< 1e-12)")
lesson.check("max |running_var - (0.9 + 0.1 var M/(M-1))|", float(abs(bn.running_var - rv_want).max()),
             abs(bn.running_var - rv_want).max() < 1e-12, "should be ~0 (< 1e-12): the unbiased variance")

print(f"\n3. Many batches from N({true_mean}, {true_std}^2): the running statistics converge")
steps = 60 if args.quick else 200
history = []
for _ in range(steps):
    bn(rng.normal(shape, true_mean, true_std, dtype=np.float64))
    history.append((float(bn.running_mean.mean()), float(bn.running_var.mean())))
lesson.check("running_mean, averaged over channels", history[-1][0], abs(history[-1][0] - true_mean) < 0.15,
             f"should be {true_mean} +- 0.15")
lesson.check("running_var, averaged over channels", history[-1][1], abs(history[-1][1] - true_std ** 2) < 0.5,
             f"should be {true_std ** 2} +- 0.5")

print("\n4. Why M/(M-1): batches of M = 2 values per channel")
tiny = BatchNorm2d(64, dtype=np.float64)
biased = xp.ones(64)
tiny_history = []
for _ in range(100 if args.quick else 400):
    batch = rng.normal((2, 64, 1, 1), true_mean, true_std, dtype=np.float64)
    tiny(batch)
    biased = 0.9 * biased + 0.1 * batch.var(axis=(0, 2, 3))          # the same average without the correction
    tiny_history.append((float(tiny.running_var.mean()), float(biased.mean())))
late = np.mean(tiny_history[len(tiny_history) // 2:], axis=0)
lesson.check("unbiased running_var (tinygan), late average", late[0], abs(late[0] - 4) < 0.6, "should be 4 +- 0.6")
lesson.check("biased running var, late average", late[1], abs(late[1] - 2) < 0.4,
             "should be 4 (M-1)/M = 2 +- 0.4: half the truth")

print("\n5. Eval mode uses the running statistics: one image no longer depends on its batch")
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

print("\n6. Gradient checks (float64, random upstream gradient)")
small = rng.normal((3, 2, 3, 3) if args.quick else (4, 3, 4, 4), true_mean, true_std, dtype=np.float64)
check_bn = BatchNorm2d(small.shape[1], dtype=np.float64)
check_bn.weight.data[...] = rng.normal(small.shape[1], 1.0, 0.5, dtype=np.float64)
lesson.check_gradients(gradcheck.check_module(check_bn, small, seed=args.seed), "BatchNorm2d, train mode")
check_bn.running_var[...] = 2.0
lesson.check_gradients(gradcheck.check_module(check_bn.eval(), small, seed=args.seed), "BatchNorm2d, eval mode")

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
