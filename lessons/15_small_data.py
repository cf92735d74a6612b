"""Lesson 15: small data. The same DCGAN trained on 100, 1,000 and 5,000 faces."""
# %% [markdown]
# # Lesson 15: small data. The same DCGAN trained on 100, 1,000 and 5,000 faces.
#
# How much data does a GAN need? Train the same model with the same settings for the same number
# of steps on the first 100, 1,000 and 5,000 faces (FaceDataset(..., limit=N), or `limit` in the
# Trainer's config), then compare what comes out.
#
# Settings of the source paper (Radford et al. 2016): Adam with lr 2e-4 and b1 = 0.5, batch 128,
# z ~ N(0, I), DCGAN initialisation. 100 images cannot fill a batch of 128, so that run uses a
# batch of 50: two full batches per epoch, every image seen once per epoch. The same number of
# steps therefore means very different numbers of epochs. With N = 100 and 500 steps, D sees every
# face 250 times.
#
# What goes wrong with little data (Karras et al. 2020, "Training GANs with limited data"). D
# *memorises* the training faces. Its output on them climbs towards 1, while on real faces it has
# never seen it falls. We measure that overfitting directly:
#
#     gap = mean D(training faces) - mean D(held-out real faces)      (~0 when D generalises)
#
# G then gets its gradient from a D that only knows those faces. It either copies them or
# collapses to a few. To spot a copy, find each sample's two nearest training faces in pixel space
# (RMS distance, 0..255) and take the ratio of the distances:
#
#     copy ratio = d(nearest) / d(second nearest)     ~1: a new face;  << 1: a copy of one training face
#
# A plain nearest-neighbour distance would mislead here. A blurry average face is close to every
# training face, so it scores as "near" without copying any of them. Held-out real faces give the
# value a genuinely new face gets.
#
# The full mode is long on a CPU. Each of the two larger runs takes about an hour at batch 128
# on an idle 2-core CPU (lesson 13 gives the speed), so use a GPU, or fewer --steps for a first look. --quick shrinks everything to seconds
# and only shows the mechanics.
#
# Look at: tinygan/data.py (FaceDataset's limit) and tinygan/train.py (Trainer, make_config).
# Proved below: each run trains on exactly N images and logs finite losses. The three runs go side by
# side into one figure.

# %%
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path[:0] = [str(HERE), str(HERE.parent)]
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from _common import Lesson  # noqa: E402
from tinygan import backend, viz  # noqa: E402
from tinygan.data import FaceDataset, to_float  # noqa: E402
from tinygan.nn import sigmoid  # noqa: E402
from tinygan.train import Trainer, make_config  # noqa: E402


def two_nearest(samples, pool, chunk=1024):
    """RMS pixel distances (0..255) from each uint8 sample to its two closest pool images; the closest's index."""
    flat = samples.reshape(len(samples), -1).astype(np.float32)
    d2 = np.concatenate([(flat ** 2).sum(1)[:, None] - 2 * flat @ block.T + (block ** 2).sum(1)[None]
                         for block in (np.asarray(pool[i:i + chunk]).reshape(-1, flat.shape[1]).astype(np.float32)
                                       for i in range(0, len(pool), chunk))], axis=1)      # (samples, pool)
    order = np.argsort(d2, axis=1)[:, :2]
    dist = np.sqrt(np.maximum(np.take_along_axis(d2, order, axis=1), 0) / flat.shape[1])
    return dist[:, 0], dist[:, 1], order[:, 0]


def mean_d(D, faces):
    """D's mean probability 'real' for uint8 faces, with BatchNorm in eval mode."""
    D.eval()
    p = float(backend.to_numpy(sigmoid(D(to_float(faces)))).mean())
    D.train()
    return p


# %%
lesson = Lesson("15_small_data", __doc__, default_backend="auto")
lesson.parser.add_argument("--steps", type=int, default=500, help="training steps per run (the same for every size)")
lesson.parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000], help="training-set sizes")
args = lesson.parse()
if args.quick:
    sizes, steps, n_show, model = [20, 40, 80], 6, 8, dict(ngf=8, ndf=8)
else:
    sizes, steps, n_show, model = sorted(args.sizes), args.steps, 8, {}
source = lesson.data_source(synthetic_count=max(sizes) + 64)
everything = FaceDataset(source, limit=max(sizes) + 64, verbose=False)     # every run trains on a prefix of these
if len(everything) < max(sizes) + 64:
    sys.exit(f"15_small_data: {source} has {len(everything)} images; the largest run needs {max(sizes)} "
             "plus 64 held out. Lower --sizes.")
held_out = np.asarray(everything.images[-64:])                     # real faces no run trains on

results = {}
for size in sizes:
    batch = min(128, size // 2)                                      # the paper's 128 when it fits
    print(f"\n=== {size} training faces, batch {batch}, {steps} steps = {steps * batch / size:.1f} epochs ===")
    run_dir = lesson.out / f"faces_{size}"
    shutil.rmtree(run_dir, ignore_errors=True)                       # a fresh run every time
    config = make_config("dcgan", out=str(run_dir), limit=size, batch_size=batch, max_steps=steps, seed=args.seed,
                         log_every=max(1, steps // 10), sample_every=steps if args.quick else max(1, steps // 5),
                         checkpoint_every=steps, **model)
    dataset = FaceDataset(source, limit=size, verbose=False)
    lesson.check(f"N={size}: images in the training set", len(dataset), len(dataset) == size, f"should be {size}")
    trainer = Trainer(config, dataset=dataset)
    trainer.run()
    rows = trainer.log.read()
    finite = all(np.isfinite([r["d_loss"], r["g_loss"]]).all() for r in rows)
    lesson.check(f"N={size}: losses finite in all {len(rows)} log rows", finite, finite, "should be True")
    trainer.G.eval()
    samples = viz.to_uint8_images(trainer.G(trainer.fixed_noise[:n_show]))
    train_faces = np.asarray(dataset.images)
    first, second, closest = two_nearest(samples, train_faces)
    real_first, real_second, _ = two_nearest(held_out, train_faces)
    results[size] = {"samples": samples, "copies": train_faces[closest], "ratio": float(np.mean(first / second)),
                     "real_ratio": float(np.mean(real_first / real_second)),
                     "gap": mean_d(trainer.D, train_faces[:64]) - mean_d(trainer.D, held_out),
                     "epochs": steps * batch / size}
    print(f"  copy ratio d1/d2 of samples {results[size]['ratio']:.2f}, of held-out real faces "
          f"{results[size]['real_ratio']:.2f}; D overfitting gap {results[size]['gap']:+.3f}")

print("\nSummary (the same model, settings and number of steps):")
print(f"  {'faces':>6s} {'epochs':>7s} {'copy ratio, samples':>20s} {'held-out reals':>15s} "
      f"{'D(train) - D(held-out)':>23s}")
for size, r in results.items():
    print(f"  {size:6d} {r['epochs']:7.1f} {r['ratio']:20.2f} {r['real_ratio']:15.2f} {r['gap']:+23.3f}")

fig = Figure(figsize=(11, 1.6 * len(sizes) + 2.8), layout="constrained")
grid = fig.add_gridspec(len(sizes) + 1, 2, height_ratios=[1] * len(sizes) + [1.6])
for row, (size, r) in enumerate(results.items()):
    for col, (key, label) in enumerate((("samples", "samples"), ("copies", "nearest training face of each"))):
        ax = fig.add_subplot(grid[row, col])
        ax.imshow(viz.make_grid(r[key], nrow=n_show))
        ax.set_title(f"N = {size:,} ({r['epochs']:.1f} epochs): {label}", fontsize=8)
        ax.axis("off")
labels = [f"{size:,}" for size in results]
ax = fig.add_subplot(grid[len(sizes), 0])
positions = np.arange(len(labels))
ax.bar(positions - 0.2, [r["ratio"] for r in results.values()], 0.4, label="G's samples", color="tab:purple")
ax.bar(positions + 0.2, [r["real_ratio"] for r in results.values()], 0.4, label="held-out real faces", color="gray")
ax.set(xticks=positions, xticklabels=labels, xlabel="training faces", ylim=(0, 1.05),
       title="copy ratio d1/d2 (<< 1: a copy of one training face)")
ax.legend(fontsize=7)
ax = fig.add_subplot(grid[len(sizes), 1])
ax.bar(labels, [r["gap"] for r in results.values()], color="tab:purple")
ax.set(xlabel="training faces", title="D(train) - D(held-out) (> 0: D overfits)")
lesson.save_figure(fig, "small_data.png")
lesson.finish()
