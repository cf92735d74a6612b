# %% [markdown]
# # Lesson 16: small data, and DiffAugment
#
# How much data does a GAN need? Train the same model with the same settings for the same number
# of steps on the first 100, 1,000 and 5,000 faces (`limit` in the Trainer's config), then compare
# what comes out.
#
# Settings of the source paper (Radford et al. 2016): Adam with lr 2e-4 and b1 = 0.5, batch 128,
# z ~ N(0, I), DCGAN initialisation. 100 images cannot fill a batch of 128, so that run uses a
# batch of 50. The same number of steps therefore means very different numbers of epochs: with
# N = 100 and 500 steps, D sees every face 250 times.
#
# **What goes wrong with little data** (Karras et al. 2020, "Training GANs with limited data"). D
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
# A plain nearest-neighbour distance would mislead: a blurry average face is close to every training
# face without copying any. Held-out real faces give the value a genuinely new face gets.
#
# **DiffAugment** (Zhao et al. 2020; `tinygan/augment.py`) is the cheapest cure: D sees every image,
# real or fake, only through a random colour change, shift and cutout, drawn anew each time, so it
# cannot memorise exact pixels; G's gradient flows back through the same augmentation, whose
# backward is written by hand (and gradient-checked) like every layer. The lesson trains the
# 1,000- and 5,000-face runs again with `augment="color,translation,cutout"` and the same steps,
# and scores every run with FID (lesson 15) against held-out real faces that no run saw.
#
# The full mode is long on a CPU: each run of 500 steps at batch 128 takes 30-40 minutes on an idle
# 2-core CPU (lesson 13 gives the speed), so use a GPU, or fewer --steps for a first look.
# --quick shrinks everything to seconds, shows the mechanics, and skips FID (Inception would
# dominate its run time; --inception scores anyway).

# %%
"""Lesson 16: small data. The same DCGAN trained on 100, 1,000 and 5,000 faces, with and without DiffAugment."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tinygan.course.lesson import DEFAULT_FID_WEIGHTS, Lesson  # noqa: E402
from tinygan import backend, fid, viz  # noqa: E402
from tinygan.data import FaceDataset, to_float  # noqa: E402
from tinygan.nn import sigmoid  # noqa: E402
from tinygan.sampling import generate_images  # noqa: E402
from tinygan.train import Trainer, make_config  # noqa: E402

POLICY = "color,translation,cutout"


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
lesson = Lesson("16_small_data", __doc__, default_backend="auto")
lesson.parser.add_argument("--steps", type=int, default=500, help="training steps per run (the same for every run)")
lesson.parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000], help="training-set sizes")
lesson.parser.add_argument("--augment-sizes", type=int, nargs="*", default=[1000, 5000],
                           help="sizes trained again with DiffAugment (none: skip)")
lesson.parser.add_argument("--fid-n", type=int, default=1000, help="generated faces per FID")
lesson.parser.add_argument("--fid-real", type=int, default=2000, help="held-out real faces for FID")
lesson.parser.add_argument("--fid-weights", default=DEFAULT_FID_WEIGHTS, help="FID Inception weights "
                           "(default: $TINYGAN_FID_WEIGHTS, else ../shared/weights/, else tinygan.fid's cache)")
lesson.parser.add_argument("--inception", action="store_true", help="score FID in --quick mode too")
args = lesson.parse()
if args.quick:
    sizes, augmented, steps, n_show, model = [20, 40, 80], [40, 80], 6, 8, dict(ngf=8, ndf=8)
    fid_n, fid_real = 8, 16
else:
    sizes, augmented, steps, n_show, model = sorted(args.sizes), sorted(args.augment_sizes), args.steps, 8, {}
    fid_n, fid_real = args.fid_n, args.fid_real
score_fid = not args.quick or args.inception
held_count = fid_real if score_fid else 64
source = lesson.data_source(synthetic_count=max(sizes) + held_count)
everything = FaceDataset(source, limit=max(sizes) + held_count, verbose=False)   # every run trains on a prefix
if len(everything) < max(sizes) + held_count:
    sys.exit(f"16_small_data: {source} has {len(everything)} images; the largest run needs {max(sizes)} "
             f"plus {held_count} held out. Lower --sizes or --fid-real.")
held_out = np.asarray(everything.images[-held_count:])              # real faces no run trains on
if score_fid:
    model_fid = fid.fid_inception_v3(fid.fid_weights_path(args.fid_weights))
    real_mu, real_sigma = fid.features_to_statistics(fid.images_to_features(held_out, model=model_fid))

# %% [markdown]
# ## The runs: every size plain, and the chosen sizes again with DiffAugment

# %%
results = {}
for size, policy in [(size, "") for size in sizes] + [(size, POLICY) for size in augmented]:
    name = f"{size:,}" + (" + DiffAugment" if policy else "")
    batch = min(128, size // 2)                                      # the paper's 128 when it fits
    print(f"\n=== {name}: batch {batch}, {steps} steps = {steps * batch / size:.1f} epochs ===")
    run_dir = lesson.out / (f"faces_{size}" + ("_diffaugment" if policy else ""))
    config = make_config("dcgan", out=str(run_dir), limit=size, batch_size=batch, max_steps=steps, seed=args.seed,
                         log_every=max(1, steps // 10), sample_every=steps if args.quick else max(1, steps // 5),
                         checkpoint_every=steps, augment=policy, **model)
    dataset = FaceDataset(source, limit=size, verbose=False)
    lesson.check(f"{name}: images in the training set", len(dataset), len(dataset) == size, f"should be {size}")
    trainer = Trainer(config, dataset=dataset)
    trainer.run(overwrite=True)                                      # a fresh run every time
    rows = trainer.log.read()
    finite = all(np.isfinite([r["d_loss"], r["g_loss"]]).all() for r in rows)
    lesson.check(f"{name}: losses finite in all {len(rows)} log rows", finite, finite, "should be True")
    with trainer.painting() as G:                                    # the averaged G (lesson 13), eval mode
        samples = viz.to_uint8_images(G(trainer.fixed_noise[:n_show]))
        fakes = generate_images(G, range(fid_n)) if score_fid else None
    train_faces = np.asarray(dataset.images)
    first, second, closest = two_nearest(samples, train_faces)
    real_first, real_second, _ = two_nearest(held_out[:64], train_faces)
    r = {"samples": samples, "copies": train_faces[closest], "ratio": float(np.mean(first / second)),
         "real_ratio": float(np.mean(real_first / real_second)), "epochs": steps * batch / size,
         "gap": mean_d(trainer.D, train_faces[:64]) - mean_d(trainer.D, held_out[:64]), "fid": float("nan")}
    if score_fid:
        r["fid"] = fid.statistics_to_fid(real_mu, real_sigma, *fid.features_to_statistics(
            fid.images_to_features(fakes, model=model_fid)))
    results[name] = r
    print(f"  copy ratio d1/d2 of samples {r['ratio']:.2f}, of held-out real faces {r['real_ratio']:.2f}; "
          f"D overfitting gap {r['gap']:+.3f}" + (f"; FID {r['fid']:.1f}" if score_fid else ""))

# %% [markdown]
# ## Summary

# %%
fid_what = f"FID ({fid_n} faces vs {len(held_out)} held-out)" if score_fid else "FID (skipped)"
print(f"\nSummary (the same model, settings and number of steps; {fid_what}):")
print(f"  {'run':>20s} {'epochs':>7s} {'copy ratio':>11s} {'held-out':>9s} {'D gap':>7s} {'FID':>7s}")
for name, r in results.items():
    print(f"  {name:>20s} {r['epochs']:7.1f} {r['ratio']:11.2f} {r['real_ratio']:9.2f} {r['gap']:+7.3f} "
          f"{r['fid']:7.1f}")
for size in augmented:
    plain, augmented_run = results[f"{size:,}"], results[f"{size:,} + DiffAugment"]
    lesson.check(f"{size:,} faces: D overfitting gap with DiffAugment - without",
                 augmented_run["gap"] - plain["gap"], np.isfinite(augmented_run["gap"] - plain["gap"]),
                 "a number: below 0 means DiffAugment kept D from memorising (measured, not asserted)")

# %%
names = list(results)
fig = Figure(figsize=(11, 1.6 * len(names) + 2.8), layout="constrained")
grid = fig.add_gridspec(len(names) + 1, 2, height_ratios=[1] * len(names) + [1.6])
for row, (name, r) in enumerate(results.items()):
    for col, (key, label) in enumerate((("samples", "samples"), ("copies", "nearest training face of each"))):
        ax = fig.add_subplot(grid[row, col])
        ax.imshow(viz.make_grid(r[key], nrow=n_show))
        ax.set_title(f"{name} faces ({r['epochs']:.1f} epochs): {label}", fontsize=8)
        ax.axis("off")
positions = np.arange(len(names))
ax = fig.add_subplot(grid[len(names), 0])
ax.bar(positions - 0.2, [r["gap"] for r in results.values()], 0.4, label="D(train) - D(held-out)",
       color="tab:purple")
ax.bar(positions + 0.2, [r["ratio"] for r in results.values()], 0.4, label="copy ratio of samples", color="gray")
ax.set(xticks=positions, xticklabels=names, title="overfitting (gap > 0) and copying (ratio << 1)")
ax.tick_params(axis="x", labelsize=7)
ax.legend(fontsize=7)
ax = fig.add_subplot(grid[len(names), 1])
ax.bar(positions, [r["fid"] if score_fid else 0 for r in results.values()], color="tab:purple")
ax.set(xticks=positions, xticklabels=names, title=fid_what + ", lower is better")
ax.tick_params(axis="x", labelsize=7)
lesson.save_figure(fig, "small_data.png")
lesson.finish()
