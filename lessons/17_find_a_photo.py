# %% [markdown]
# # Lesson 17: finding a photo in the generator (projection)
#
# Every backward pass so far ended at the weights, or (lesson 14) at D's input. G's backward goes one
# step further down, to its own input: ``G.backward(dd/dfaces)`` returns dd/dz. So we can ask the question
# every user of a GAN asks: which z paints the face closest to *this* photo? That search is called
# projection, or GAN inversion (StyleGAN2's projector does it in PyTorch):
#
#     z* = argmin_z  d(G(z), photo),      d = mean over pixels of (G(z) - photo)^2
#
# with gradient descent on z, G's weights fixed and G in eval mode (each face depends on its own z only).
#
# The prior. z must stay where G's training noise lay, or G paints nonsense: z ~ N(0, I) in 100 dimensions
# lies near the sphere |z| = sqrt(100) = 10 (lesson 14). After each step we put z back onto that sphere,
# z <- z * sqrt(nz) / |z|. (A penalty on |z|^2 would pull z towards 0, where the Gaussian's density peaks
# but no training z ever lay.)
#
# The step. Adam (lesson 08) on z. Start from the best of a few random seeds: the distance has many local
# minima, and a good start avoids the worst of them.
#
# The distance. Pixels alone reward the blurry average of every face that fits. tinygan.projection adds D's
# inner features, each position's channels scaled to unit length (as LPIPS does), so that edges and
# features count too; benchmarks/projection.py measures both.
#
# Look at: tinygan/projection.py (Likeness, onto_prior, project), tinygan/sampling.py (z files are seeds)
# and `python -m tinygan project --help`.
# Proved below: dd/dz from G's backward agrees with finite differences, your loop lowers the distance and
# keeps z on the sphere, the projection beats many random seeds, and a projected z walks to a random face.

# %%
"""Lesson 17: finding a photo in the generator. dd/dz by G's backward, Adam on z, z kept on the sphere."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import Lesson  # noqa: E402
from tinygan import backend, projection  # noqa: E402
from tinygan.data import load_for_judging, to_float  # noqa: E402
from tinygan.gradcheck import relative_error  # noqa: E402
from tinygan.model_files import load_discriminator, load_generator  # noqa: E402
from tinygan.nn import Parameter  # noqa: E402
from tinygan.optim import Adam  # noqa: E402
from tinygan.sampling import interpolate, noise_for_seeds, to_uint8  # noqa: E402


def pixel_distance(faces, photo):
    """d for each face (N,): the mean over pixels of (face - photo)^2, faces (N, 3, S, S), photo (1, 3, S, S)."""
    diff = faces - photo
    return (diff * diff).reshape(len(diff), -1).mean(axis=1)


# %%
lesson = Lesson("17_find_a_photo", __doc__, default_backend="auto", needs_faces=True)
lesson.parser.add_argument("--checkpoint", help="generator file with D, training checkpoint or run folder "
                                                "(default: the pretrained generator)")
lesson.parser.add_argument("--photo", help="a photo of your own to find (framed as `python -m tinygan judge` "
                                           "frames it); default: a face of --data")
args = lesson.parse()
G = load_generator(args.checkpoint)
try:
    D = load_discriminator(args.checkpoint)
except ValueError as err:                            # a file with G alone: section 3 measures pixels only
    print(f"NOTE: {err}; the library's projection measures pixels only")
    D = None
nz = G.config["nz"]
photo_uint8 = (load_for_judging(args.photo, G.config["image_size"])[0] if args.photo else lesson.faces(1)[0])
photo = to_float(photo_uint8[None])                                  # (1, 3, 64, 64) in [-1, 1]
print(f"generator: {G.config}; the photo: {args.photo or 'the first face of the data'}")

# %% [markdown]
# ## 1. dd/dz from G's backward pass
#
# d = mean_p (x_p - y_p)^2 over the P numbers of a face, so dd/dx = 2 (x - y) / P. G's backward takes that
# to z, through every layer's backward of lessons 04-06. Checked in float64 against central differences
# along random directions: (d(z + h v) - d(z - h v)) / 2h = <dd/dz, v>.

# %%
print("\n1. dd/dz against finite differences")
G64 = load_generator(args.checkpoint).astype(np.float64)
G64.requires_grad_(False)                                           # dd/dz only: no dd/dW is wanted
y64 = photo.astype(np.float64)
z = backend.default_rng(args.seed).normal((2, nz, 1, 1)).astype(np.float64)
faces = G64(z)
dz = G64.backward(2 * (faces - y64) / faces[0].size)                 # (2, nz, 1, 1)
h, errors = 1e-7, []                  # small: G has thousands of ReLU kinks that a longer step would cross
for v in backend.default_rng(args.seed + 1).normal((3, 2, nz, 1, 1)).astype(np.float64):
    numeric = float((pixel_distance(G64(z + h * v), y64) - pixel_distance(G64(z - h * v), y64)).sum()) / (2 * h)
    errors.append(relative_error(float((dz * v).sum()), numeric))
lesson.check("<dd/dz, v> against central differences, 3 directions", max(errors), max(errors) < 1e-6,
             "should be < 1e-6")

# %% [markdown]
# ## 2. The loop
#
# Adam on z; after every step, z back onto the sphere. The distances are measured before each step, one per
# face, so that you can watch them fall.


# %%
def project_pixels(G, photo, z, steps, lr=0.1):
    """Adam (tinygan.optim.Adam, betas (0.9, 0.999)) on z (N, nz, 1, 1) so that G(z) (G in eval mode) comes
    close to photo (1, 3, S, S) in [-1, 1] by pixel_distance; after each step z goes back onto the sphere
    |z| = sqrt(nz); z keeps its dtype. Returns (z after the last step, the distances (steps, N) measured
    before each step)."""
    ### BEGIN SOLUTION project_pixels (3 points)
    ### z as a Parameter for Adam; per step: the faces, their distances, dd/dfaces = 2 (faces - photo) / P,
    ### z.grad = G.backward(that), Adam's step, then z.data scaled back to length sqrt(nz) (each z its own).
    nz = z.shape[1]
    z = Parameter(z.copy())
    opt = Adam([z], lr=lr, betas=(0.9, 0.999))
    G.requires_grad_(False)                                         # G's weights stay as they are
    distances = []
    for _ in range(steps):
        faces = G(z.data)                                           # (N, 3, S, S)
        distances.append(pixel_distance(faces, photo))
        z.grad = G.backward(2 * (faces - photo) / faces[0].size)    # dd/dz
        opt.step()
        length = backend.xp.sqrt((z.data * z.data).sum(axis=(1, 2, 3), keepdims=True))
        z.data = z.data * (nz ** 0.5 / length)                      # a Python float keeps float32
    G.requires_grad_(True)
    return z.data, backend.xp.stack(distances)
    ### END SOLUTION


# %%
print("\n2. Your loop, from the best of 64 random seeds")
steps = 30 if args.quick else 200
starts = noise_for_seeds(range(64), nz)
first = backend.to_numpy(pixel_distance(G(starts), photo))
best_seed = int(np.argmin(first))
z_found, distances = project_pixels(G, photo, starts[best_seed:best_seed + 1], steps)
distances = backend.to_numpy(distances)[:, 0]
final = float(backend.to_numpy(pixel_distance(G(z_found), photo))[0])
print(f"distance: seed {best_seed} (the best of 64) {first[best_seed]:.4f}, after {steps} steps {final:.4f}")
lesson.check("the distance after your loop, against its start", final / first[best_seed],
             final < 0.8 * first[best_seed], "should be < 0.8")
length = float(np.linalg.norm(backend.to_numpy(z_found)))
lesson.check("|z| after your loop", length, abs(length - np.sqrt(nz)) < 1e-4, f"should be sqrt({nz}) = {np.sqrt(nz):.3f}")
fig, axes = lesson.figure(size=(4, 2.6))
ax = axes[0, 0]
ax.plot(distances)
ax.set_xlabel("Adam step")
ax.set_ylabel("mean squared pixel difference")
ax.set_title("your projection: the distance falls")
lesson.save_figure(fig, "distance.png")

# %% [markdown]
# ## 3. The library's projection, with D's features, against many random seeds
#
# tinygan.projection.project is your loop with three additions: the distance also compares D's inner
# features, Adam improves the best 4 of 64 starts together, and its learning rate ramps up and down. Its
# face should beat the best of many random seeds under the same distance.

# %%
print("\n3. tinygan.projection.project against random seeds")
found = projection.project(G, photo_uint8, D, steps=40 if args.quick else projection.STEPS)
likeness = projection.Likeness(photo, D)
n_random = 256 if args.quick else 2000
random_best = min(float(likeness.distances(G(noise_for_seeds(range(k, min(k + 128, n_random)), nz))).min())
                  for k in range(0, n_random, 128))
lesson.check(f"the projection's distance against the best of {n_random} random seeds", found["distance"] / random_best,
             found["distance"] < random_best, "should be < 1")
print(f"PSNR against the photo: your loop {projection.psnr(to_uint8(G(z_found))[0], photo_uint8):.2f} dB, "
      f"the library's {found['psnr']:.2f} dB")
walk = interpolate(G, [found["z"], 42], steps=6)          # a projected z is a seed like any other
lesson.save_grid(np.concatenate([photo_uint8[None], to_uint8(G(z_found)), found["face"][None], walk[1:]]),
                 "photo_yours_library_walk.png", nrow=8)
print("the picture: the photo, your projection, the library's, then a walk from it to seed 42")
lesson.finish()
