# %% [markdown]
# # Lesson 09: the discriminator, trained as a classifier of real faces against noise
#
# D maps an image to one logit, its evidence that the image is real (Radford et al. 2016):
#
#     3x64x64 -conv 4/2/1-> 64x32x32 -LReLU-> -conv-BN-LReLU-> 128x16x16 -> 256x8x8 -> 512x4x4
#             -conv 4/1/0-> 1x1x1 logit
#
# Each stride-2 conv halves the side and doubles the channels. The first layer has no BatchNorm
# (it would normalise away the input's own statistics), every hidden activation is LeakyReLU(0.2)
# (lesson 03), and there is no sigmoid at the end. The loss takes logits (lesson 07).
#
# Before D meets a generator, train it on an easy problem with the same loss it will use in the GAN:
#
#     L_D = BCE(D(x_real), 1) + BCE(D(x_fake), 0),      here x_fake = noise images
#
# Half of the noise images are white noise and half are smooth colour blobs. Both are far from
# faces, so accuracy should reach about 100% within a few dozen steps. In the GAN the fakes start
# out like noise and keep improving, so D never wins this easily again.
#
# Real and noise images go through D together, in one batch, so BatchNorm's batch statistics mix
# both kinds. A warning about eval mode: running_var starts at 1 and forgets that start as 0.9^t,
# but DCGAN's N(0, 0.02) weights make the first BatchNorm's true input variance about 1e-4, so
# even after 30 updates its running_var is ~100x too large. Early in training, eval mode is
# therefore meaningless, and we score D in train mode on a mixed batch, as it was trained.
#
# D's gradient with respect to its *input*, dlogit/dx, is the only thing G will ever learn from.
# Backward gives it to us for free. It shows which pixels would make the image look more "real" to D.
#
# Read `tinygan/dcgan.py: Discriminator`; lesson 13's training loop takes this same D step.
# Proved below: the layer shapes, the accuracy on held-out faces and noise, and that the gradient
# D hands back has the image's shape.

# %%
"""Lesson 09: the discriminator, trained as a classifier of real faces against noise."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend  # noqa: E402
from tinygan.dcgan import Discriminator  # noqa: E402
from tinygan.losses import BCEWithLogitsLoss  # noqa: E402
from tinygan.nn import BatchNorm2d, sigmoid  # noqa: E402
from tinygan.optim import Adam  # noqa: E402


def to_float(faces):
    """uint8 faces (N, 64, 64, 3) -> float32 (N, 3, 64, 64) in [-1, 1] on the backend (lesson 11 does it for real)."""
    return backend.to_device(faces.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - 1)


def to_uint8_images(images):
    """float (N, 3, 64, 64) in [-1, 1] -> uint8 (N, 64, 64, 3), to show them."""
    pixels = (backend.to_numpy(images).transpose(0, 2, 3, 1) + 1) * 127.5
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def noise_images(n, rng):
    """n images (n, 3, 64, 64) in [-1, 1]: white noise, then smooth blobs (random 4x4 colours, upsampled)."""
    white = rng.uniform((n // 2, 3, 64, 64), -1.0, 1.0)
    coarse = backend.to_numpy(rng.uniform((n - n // 2, 3, 4, 4), -1.0, 1.0))
    x = np.linspace(0, 3, 64)                                  # bilinear upsampling, separable
    lo, frac = np.minimum(x.astype(int), 2), x - np.minimum(x.astype(int), 2)
    rows = coarse[:, :, lo] * (1 - frac)[:, None] + coarse[:, :, lo + 1] * frac[:, None]     # (n, 3, 64, 4)
    blobs = rows[..., lo] * (1 - frac) + rows[..., lo + 1] * frac                             # (n, 3, 64, 64)
    return backend.xp.concatenate([white, backend.to_device(blobs.astype(np.float32))])


# %%
lesson = Lesson("09_discriminator", __doc__)
args = lesson.parse()
rng = backend.default_rng(args.seed)
ndf, half_batch, steps, n_train, n_test = (8, 16, 30, 128, 32) if args.quick else (64, 16, 40, 512, 64)

# %% [markdown]
# ## 1. The discriminator, layer by layer

# %%
print(f"\n1. The discriminator (ndf={ndf}) layer by layer")
D = Discriminator(ndf=ndf, rng=rng)
x = rng.normal((2, 3, 64, 64))
for layer in D.main:
    x = layer(x)
    print(f"  {type(layer).__name__:12s} -> {tuple(x.shape[1:])}")
lesson.check("D's output shape", tuple(x.shape), tuple(x.shape) == (2, 1, 1, 1), "should be (2, 1, 1, 1): one logit")

# %% [markdown]
# ## 2. Training on faces against noise: each step shows D half a batch of each

# %%
print(f"\n2. Training on {n_train} faces against noise, {steps} steps of {half_batch} + {half_batch} images")
faces = lesson.faces(n_train + n_test)
train_faces, test_faces = faces[:n_train], faces[n_train:]
optimiser, loss = Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)), BCEWithLogitsLoss()
history = []
targets = backend.to_device(np.repeat([1.0, 0.0], half_batch).astype(np.float32).reshape(-1, 1, 1, 1))
for step in range(steps):
    real = to_float(train_faces[backend.to_numpy(rng.integers(0, n_train, half_batch))])
    batch = backend.xp.concatenate([real, noise_images(half_batch, rng)])     # (2B, 3, 64, 64): real, then noise
    optimiser.zero_grad()
    logits = D(batch)
    d_loss = float(loss(logits, targets))
    D.backward(loss.backward(), need_input_grad=False)
    optimiser.step()
    correct = float(((logits > 0) == (targets > 0.5)).mean())
    history.append((d_loss, correct))
    if step % 5 == 0 or step == steps - 1:
        print(f"  step {step + 1:3d}: D loss {d_loss:.3f}, batch accuracy {correct:.0%}")

# %% [markdown]
# ## 3. Held-out faces and fresh noise, one mixed batch as in training

# %%
print("\n3. Held-out faces and fresh noise, one mixed batch as in training")
test_noise = noise_images(n_test, rng)
held_out = backend.xp.concatenate([to_float(test_faces), test_noise])          # (2n, 3, 64, 64)
logits = D(held_out)
p_real, p_noise = (backend.to_numpy(sigmoid(logits)).ravel()[part] for part in (slice(0, n_test), slice(n_test, None)))
accuracy = float(((p_real > 0.5).sum() + (p_noise < 0.5).sum()) / (2 * n_test))
lesson.check("held-out accuracy", accuracy, accuracy >= 0.97, "should be ~100% (>= 97%)")
print(f"  mean D(real) = {p_real.mean():.3f}, mean D(noise) = {p_noise.mean():.3f}")

# %% [markdown]
# ## 4. The gradient D gives back: dlogit/dimage

# %%
print("\n4. The gradient D gives back: dlogit/dimage")
saliency = D.backward(backend.xp.ones(logits.shape, dtype=np.float32))[:1]     # for the first held-out face
lesson.check("shape of dlogit/dx for one image", tuple(saliency.shape), saliency.shape == (1, 3, 64, 64),
             "should be (1, 3, 64, 64)")

first_bn = next(i for i, layer in enumerate(D.main) if isinstance(layer, BatchNorm2d))
h = held_out
for layer in list(D.main)[:first_bn]:                                    # conv, LeakyReLU, conv: no state
    h = layer(h)
true_var, running_var = float(h.var(axis=(0, 2, 3)).mean()), float(D.main[first_bn].running_var.mean())
D.eval()
p_eval = backend.to_numpy(sigmoid(D(held_out))).ravel()
eval_accuracy = float(((p_eval[:n_test] > 0.5).sum() + (p_eval[n_test:] < 0.5).sum()) / (2 * n_test))
print(f"  Eval mode (running statistics) gets {eval_accuracy:.0%}. After {steps} updates running_var still holds "
      f"0.9^{steps} = {0.9 ** steps:.2f}\n  of its start value 1, while the first BatchNorm's input variance is only "
      f"{true_var:.1e} (DCGAN's N(0, 0.02) weights):\n  running_var = {running_var:.1e} is "
      f"{running_var / true_var:.0f}x too large (lesson 06). Early in training, score D in train mode.")

# %%
fig, axes = lesson.figure(2, 8, size=(1.3, 1.5))
noise_pixels = to_uint8_images(test_noise)                               # (n, 64, 64, 3)
shown = list(range(4)) + list(range(n_test - 4, n_test))                # 4 white noise, 4 blobs
for k, j in enumerate(shown):
    axes[0, k].imshow(test_faces[k])
    axes[0, k].set_title(f"D = {p_real[k]:.2f}", fontsize=7)
    axes[1, k].imshow(noise_pixels[j])
    axes[1, k].set_title(f"D = {p_noise[j]:.2f}", fontsize=7)
for ax in axes.ravel():
    ax.axis("off")
lesson.save_figure(fig, "real_vs_noise.png")
fig, axes = lesson.figure(1, 3, size=(3.5, 3))
history = np.array(history)
axes[0, 0].plot(history[:, 0], label="D loss")
axes[0, 0].plot(history[:, 1], label="batch accuracy")
axes[0, 0].set(xlabel="step", title="training")
axes[0, 0].legend(fontsize=7)
axes[0, 1].imshow(test_faces[0])
axes[0, 1].set_title("a held-out face", fontsize=9)
axes[0, 2].imshow(np.abs(backend.to_numpy(saliency)[0]).sum(axis=0), cmap="inferno")
axes[0, 2].set_title("|dlogit/dx|, summed over RGB", fontsize=9)
for ax in axes[0, 1:]:
    ax.axis("off")
lesson.save_figure(fig, "training_and_gradient.png")
lesson.finish()
