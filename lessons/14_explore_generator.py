# %% [markdown]
# # Lesson 14: exploring a trained generator: samples, interpolation, vector arithmetic, judging
#
# A trained G maps every point z of R^100 to a face. With BatchNorm in eval mode (lesson 06), a face
# depends only on its own z: seed s -> z_s -> G(z_s), the same face in a batch of 1 or of 1,000.
#
# Interpolation. If G has learned a smooth map instead of memorising photos, faces change gradually
# along a path from z0 to z1. The path matters. For z ~ N(0, I_100), |z|^2 is a sum of 100 squares,
# so |z| is about sqrt(100) = 10 +- 0.7: all of G's training z lie near a sphere of radius 10. Two
# such z are nearly orthogonal, so the midpoint of the straight line has |z| ~ 10 / sqrt(2) = 7.1, a
# region G never saw. Spherical interpolation follows the great circle instead:
#
#     slerp(z0, z1; t) = sin((1 - t) w) / sin w * z0 + sin(t w) / sin w * z1,   cos w = <z0, z1> / (|z0| |z1|)
#
# Vector arithmetic (Radford et al. 2016). Directions in z carry meaning: mean z(smiling women) -
# mean z(neutral women) + mean z(neutral men) gives smiling men. Averaging a few z per concept
# cancels the parts of each z that have nothing to do with the concept. (It also shrinks the norm:
# the mean of 3 z has |z| ~ 10 / sqrt(3) = 5.8, so G(mean z) of one group looks washed out. The
# result, a sum of three means, is back near 10.) Here, with no labels, we
# pick the concept by measuring the images ourselves: "light top of the picture" (blond hair, bright
# background) minus "dark top" (dark hair), added to some other faces.
#
# Judging. D(x) = sigmoid(logit) is D's probability that x is a real photo. D learned only to tell
# real faces from the fakes of *one* generator during training, and its scores drift as training
# goes on. It is NOT a deepfake detector; never use it to decide whether a photo is genuine.
# The D a GAN ends with is also a poor judge of one photo at a time: in training BatchNorm normalised
# real and fake batches apart, by their own statistics, and in eval mode both get the running average,
# which suits neither (the shipped run's D called 81% of its own training faces fake). So a generator
# file holds two discriminators: the D the GAN trained against, and a *judge*, that D fine-tuned for 100
# steps against the frozen G on mixed batches of real and generated faces (tinygan/judge.py), which calls
# more than 99% of held-out real faces real and of fresh fakes fake. load_discriminator(path) gives the
# judge; load_discriminator(path, which="gan") the GAN's own D.
#
# Where D looks (section 5). D's backward pass gives the gradient with respect to its input, not only
# to its weights: one backward of dlogit = 1 returns dlogit/dx, the change of the verdict per change of
# each pixel (Simonyan et al. 2013, "saliency maps"). You write it, check it against finite
# differences, and draw it over a face.
#
# The generator comes from --checkpoint (a training checkpoint, a run folder, or a generator file),
# else the pretrained tinygan/pretrained/generator.npz, else the run of lesson 13 in
# lesson_output/13_train_gan/run. With --quick and none of those, a tiny model is trained for a few steps.
#
# Look at: tinygan/sampling.py (generate_images, slerp, interpolate, vector_arithmetic),
# tinygan/model_files.py (load_generator, load_discriminator) and tinygan/judge.py (probabilities,
# fit_judge, input_gradient, saliency).
# Proved below: a face does not depend on its batch, slerp keeps |z| while the straight line does
# not, the arithmetic moves the chosen attribute (full mode), D's outputs are probabilities, and
# your dlogit/dx agrees with finite differences and with the library.

# %%
"""Lesson 14: exploring a trained generator. Samples, interpolation, vector arithmetic, judging."""
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, judge as judging  # noqa: E402
from tinygan.gradcheck import relative_error  # noqa: E402
from tinygan.data import FaceDataset  # noqa: E402
from tinygan.model_files import PRETRAINED, load_discriminator, load_generator  # noqa: E402
from tinygan.sampling import generate_images, interpolate, noise_for_seeds, slerp, vector_arithmetic  # noqa: E402
from tinygan.run_folder import find_checkpoint  # noqa: E402
from tinygan.train import Trainer, make_config  # noqa: E402

LESSON_13_RUN = Path("lesson_output") / "13_train_gan" / "run"


def train_tiny_model(lesson, steps):
    """A small GAN trained for a few steps, for when no trained model is around. Returns its checkpoint."""
    shutil.rmtree(lesson.out / "tiny_run", ignore_errors=True)            # a fresh run, not the last one's
    config = make_config("dcgan", out=str(lesson.out / "tiny_run"), ngf=16, ndf=16, batch_size=16, max_steps=steps,
                         sample_every=steps, checkpoint_every=steps, log_every=steps)
    trainer = Trainer(config, dataset=FaceDataset(lesson.data_source(), limit=512, verbose=False), verbose=False)
    trainer.run()
    return find_checkpoint(config["out"])


def top_brightness(faces):
    """Mean brightness (0..255) of the top quarter of each uint8 face (N, 64, 64, 3): hair and background."""
    return faces[:, :16].reshape(len(faces), -1).mean(axis=1)


# %%
lesson = Lesson("14_explore_generator", __doc__, default_backend="auto", needs_faces=True)
lesson.parser.add_argument("--checkpoint", help="training checkpoint, run folder or generator .npz")
args = lesson.parse()
source = args.checkpoint or (PRETRAINED if PRETRAINED.exists() else None)
if source is None and (LESSON_13_RUN / "checkpoints").is_dir():
    source = LESSON_13_RUN
    print(f"NOTE: no pretrained generator at {PRETRAINED}; using lesson 13's run in {source}")
if source is None and not args.quick:
    sys.exit(f"14_explore_generator: no trained generator found: not at {PRETRAINED}, nor in {LESSON_13_RUN}. "
             "Pass --checkpoint PATH (e.g. a run folder of `python -m tinygan train`), or run lesson 13 first.")
if source is None:
    print(f"NOTE: no trained generator found (not at {PRETRAINED}); --quick trains a tiny GAN for 10 steps. "
          "Its 'faces' are blurs: the point here is the mechanics.")
    source = train_tiny_model(lesson, 10)
    tiny = True
else:
    tiny = False
G = load_generator(source)
print(f"generator from {source}: {G.config}")

# %% [markdown]
# ## 1. Samples: one face per seed, independent of the batch

# %%
print("\n1. Samples: one face per seed, independent of the batch")
n = 16 if args.quick else 64
faces = generate_images(G, range(n))                                # uint8 (n, 64, 64, 3)
alone = generate_images(G, [7])[0]
differ = int(np.abs(alone.astype(int) - faces[7]).max())
lesson.check("max |face of seed 7 alone - face 7 of the batch| (0..255)", differ, differ <= 1,
             "should be 0 or 1: the same face (a batch of 1 sums in another order, which can flip a rounding)")
lesson.save_grid(faces, "samples.png")

# %% [markdown]
# ## 2. Interpolation: slerp keeps |z|, the straight line does not

# %%
print("\n2. Interpolation: slerp keeps |z|, the straight line does not")
z = noise_for_seeds(range(1000), G.config["nz"], G.config["z_dist"]).reshape(1000, -1)
norms = backend.to_numpy(backend.xp.linalg.norm(z, axis=1))
print(f"  |z| over 1000 seeds: {norms.mean():.2f} +- {norms.std():.2f}")
z0, z1 = z[0], z[1]
ends_ok = bool(backend.xp.allclose(slerp(z0, z1, 0.0), z0, atol=1e-5)
               and backend.xp.allclose(slerp(z0, z1, 1.0), z1, atol=1e-5))
lesson.check("slerp(t=0) == z0 and slerp(t=1) == z1", ends_ok, ends_ok, "should be True")
mid_slerp = float(backend.xp.linalg.norm(slerp(z0, z1, 0.5)) / norms[:2].mean())
mid_line = float(backend.xp.linalg.norm((z0 + z1) / 2) / norms[:2].mean())
lesson.check("|slerp midpoint| / |endpoints|", mid_slerp, mid_slerp > 0.95, "should be ~1")
lesson.check("|straight-line midpoint| / |endpoints|", mid_line, mid_line < 0.85, "should be ~1/sqrt(2) = 0.71")
steps = 8 if args.quick else 10
paths = {method: interpolate(G, [0, 1], steps=steps, method=method) for method in ("slerp", "linear")}
frames = paths["slerp"].astype(float)
step_change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
lesson.check("largest change between neighbouring frames / change end to end",
             float(step_change.max() / np.abs(frames[-1] - frames[0]).mean()),
             step_change.max() < np.abs(frames[-1] - frames[0]).mean(), "should be < 1: a gradual walk")

# %% [markdown]
# ## 3. Vector arithmetic: (light top) - (dark top) + (other faces)

# %%
print("\n3. Vector arithmetic: (light top) - (dark top) + (other faces)")
pool = 48 if args.quick else 200
brightness = top_brightness(generate_images(G, range(pool)))
order = [int(i) for i in np.argsort(brightness)]
light, dark, others = order[-3:], order[:3], order[pool // 2 - 1:pool // 2 + 2]
(groups, means) = vector_arithmetic(G, light, dark, others)
before, after = top_brightness(groups[2]).mean(), top_brightness(means[3:4])[0]
print(f"  seeds light {light}, dark {dark}, others {others}; top brightness of the others' faces {before:.0f} "
      f"-> of the result {after:.0f}")
if tiny:
    print("  (not checked: the tiny model trained here has learned no directions yet)")
else:
    lesson.check("top brightness: result - the others' faces", float(after - before), after > before + 10,
                 "should be > +10: the picture got lighter at the top")

# %% [markdown]
# ## 4. Judging real and fake faces

# %%
print("\n4. Judging real and fake faces")
try:
    D = load_discriminator(source)
except ValueError:
    d_steps = 10 if args.quick else 100      # 100: BatchNorm's running statistics must forget their start (lesson 09)
    print(f"NOTE: {source} holds no discriminator; training a tiny GAN for {d_steps} steps to get one. "
          "It never saw this G's fakes, so its verdicts only show the mechanics.")
    D = load_discriminator(train_tiny_model(lesson, d_steps))
print(f"  judging with {'the judge fitted for judging' if D.role == 'judge' else 'the D the GAN trained against'}")
real = lesson.faces(n)
p_real, p_fake = judging.probabilities(D, real), judging.probabilities(D, faces)
in_range = bool(((0 <= p_real) & (p_real <= 1)).all() and ((0 <= p_fake) & (p_fake <= 1)).all())
lesson.check("D's outputs lie in [0, 1]", in_range, in_range, "should be True: probabilities")
print(f"  mean D(real) = {p_real.mean():.3f}, mean D(fake) = {p_fake.mean():.3f} "
      "(a weak signal of one training run, not a deepfake detector)")

lesson.save_grid(np.concatenate([paths["slerp"], paths["linear"]]), "interpolation_slerp_then_linear.png", nrow=steps)
# %%
fig, axes = lesson.figure(4, 4, size=(1.6, 1.7))
titles = ["light top", "dark top", "others"]
for row, (title, group, mean_face) in enumerate(zip(titles, groups, means[:3])):
    for col in range(3):
        axes[row, col].imshow(group[col])
    axes[row, 3].imshow(mean_face)
    axes[row, 0].set_title(title, fontsize=8)
    axes[row, 3].set_title("G(mean z)", fontsize=8)
axes[3, 3].imshow(means[3])
axes[3, 3].set_title("light - dark + others", fontsize=8)
for ax in axes.ravel():
    ax.axis("off")
lesson.save_figure(fig, "vector_arithmetic.png")
fig, axes = lesson.figure(2, 8, size=(1.3, 1.5))
for k in range(8):
    for row, (images, probs, kind) in enumerate(((real, p_real, "real"), (faces, p_fake, "fake"))):
        axes[row, k].imshow(images[k])
        axes[row, k].set_title(f"{kind}: D = {probs[k]:.2f}", fontsize=7)
        axes[row, k].axis("off")
lesson.save_figure(fig, "judge.png")

# %% [markdown]
# ## 5. Where D looks: backprop to the input
#
# The logit l = D(x) is a function of every pixel. Its gradient dl/dx comes from the same backward pass
# that trains D: start it with dl/dl = 1 for each image and keep going down to the input. D's weights
# take no part (freeze them, so no dL/dW is computed or added). In eval mode each image's logit depends
# on that image alone, so one backward of a whole batch gives every image its own map.


# %%
def input_gradient(D, images):
    """dlogit/dimages for float images (N, 3, S, S) in [-1, 1], D in eval mode: (N, 3, S, S)."""
    ### BEGIN SOLUTION input_gradient (2 points)
    ### Run D forward; switch its weight gradients off with requires_grad_, run its backward from a gradient
    ### of ones shaped like the logits, switch them on again, and return what the backward returns.
    logits = D(images)
    D.requires_grad_(False)
    grad = D.backward(backend.xp.ones_like(logits))
    D.requires_grad_(True)
    return grad
    ### END SOLUTION


# %%
print("\n5. Where D looks: backprop to the input")
D64 = load_discriminator(source) if source is not None else D
D64 = D64.eval().astype(np.float64)                    # float64: finite differences need the digits
x = backend.to_device(np.random.default_rng(5).uniform(-1, 1, (2, 3, 64, 64)))
ours = backend.to_numpy(input_gradient(D64, x.copy()))
h = 1e-6
pixels = [(0, 0, 20, 24), (1, 2, 40, 31), (0, 1, 5, 60)]
numeric = []
for i, c, row, col in pixels:
    plus, minus = x.copy(), x.copy()
    plus[i, c, row, col] += h
    minus[i, c, row, col] -= h
    numeric.append((float(D64(plus)[i].item()) - float(D64(minus)[i].item())) / (2 * h))
err = relative_error(np.array([ours[p] for p in pixels]), np.array(numeric))
lesson.check("dlogit/dx against central differences on 3 pixels", err, err < 1e-6, "should be < 1e-6")
library = backend.to_numpy(judging.input_gradient(D64, x.copy()))
err = relative_error(ours, library)
lesson.check("your dlogit/dx against tinygan.judge.input_gradient", err, err < 1e-12, "should be ~0")
D.eval()
fig, axes = lesson.figure(2, 3, size=(1.9, 2.0))
for row, (face, kind) in enumerate(((real[0], "real"), (faces[0], "generated"))):
    strength = judging.saliency(D, face)
    axes[row, 0].imshow(face)
    axes[row, 1].imshow(strength, cmap="inferno")
    axes[row, 2].imshow(face)
    axes[row, 2].imshow(strength, cmap="inferno", alpha=0.55)
    for col, title in enumerate((f"{kind} face", "|dlogit/dx|, 5x5 mean", "over the face")):
        axes[row, col].set_title(title, fontsize=8)
        axes[row, col].axis("off")
lesson.save_figure(fig, "where_d_looks.png")
lesson.finish()
