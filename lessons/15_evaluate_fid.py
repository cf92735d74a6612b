# %% [markdown]
# # Lesson 15: scoring a GAN with FID and KID
#
# Looking at samples tells you a lot, but not which of two checkpoints is better, or by how much.
# FID (Heusel et al. 2017) puts a number on it. Run every image, real or generated, through a
# fixed Inception-v3 network trained on ImageNet and keep its 2,048 pool features: they describe
# what is in the picture, not its exact pixels. Fit a Gaussian to the features of each set, with
# mean mu and covariance S, and measure the Frechet (2-Wasserstein) distance between the two:
#
#     FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))
#
# The first term says whether the typical image is right, the second whether the variety is: a
# generator that makes one perfect face over and over has the right mean and far too small a
# covariance. FID is 0 only when both Gaussians are the same; lower is better. The package tinygan/fid/
# builds the pipeline from scratch: images_to_features -> features_to_statistics -> statistics_to_fid.
#
# The sample size matters. mu and S are estimated from N images, and the estimation noise adds to
# the distance: FID is biased upwards, by roughly a constant / N (Chong & Forsyth 2020). Below
# N = 2,048 the covariance even has rank N - 1 < 2,048, so it is singular (the formula still works;
# the library keeps only the directions the data spans). A model scored with 500 images looks
# much worse than the same model scored with 50,000. So compare FIDs only at the same N, the same
# real set and the same preprocessing, and never with numbers from a paper unless all of those
# match (papers use N = 50,000). This lesson scores everything at one N against one real set.
#
# KID (Binkowski et al. 2018) is the unbiased alternative. It is the squared maximum mean
# discrepancy with the cubic kernel k(x, y) = (x.y / 2048 + 1)^3 on the same features. Its estimate
# averages k over pairs of *different* images, so its expected value does not depend on N and is
# 0 for two samples of the same distribution: it can come out slightly negative. It is averaged over
# random subsets, which gives an error bar. KID is noisier than FID, so we check that it ranks the
# models in the same order.
#
# Two samples of real faces are not at distance 0. Their FID is the floor that no generator can
# beat at that N: the reference for this data (../shared/weights/README.md) is 14.45 for 2,000 vs
# 2,000 aligned 89x109 CelebA faces (images 1-2,000 against 5,001-7,000). Read the scale from that
# floor: a model's FID minus the real-vs-real FID at the same N is how much worse than a fresh
# sample of real faces it is. The eigenface baseline (tinygan/pca.py: a Gaussian in pixel
# space) is the bar a GAN has to clear. Its faces are blurry, but their colours, poses and layout
# are right, and Inception features punish the GAN's high-frequency artefacts more than blur: a
# short CPU run can stay above the baseline for many epochs (lessons/README.md gives our numbers).
# Far from the real faces, FID saturates. In the hundreds it no longer ranks bad models
# reliably: noise-like early samples and the blurry faces a few hundred steps later can score the
# same, although anyone can see which is better. FID is a ruler for models that are already close.
#
# The lesson scores real faces A against real faces B (disjoint), PCA samples, every checkpoint of
# a training run (--checkpoints, in step order; evenly spaced when there are more than
# --max-checkpoints). All at the
# same N, against the same real faces A. Real features are cached (tinygan.fid.real_statistics),
# so a second run is faster. What dominates the run time is Inception-v3 on the CPU: 5.7 GMAC per
# image, about 10 images/s on a 2-core CPU, so the full mode's thousands of images take minutes.
# --quick uses 4 images per set, the first and the last checkpoint only, and a stand-in feature
# network instead of Inception (block means through one random layer), so that it runs in seconds
# on any machine: nothing but the mechanics. --inception runs the real network in quick mode too.
#
# Look at: tinygan/fid/ (preprocess.py: images_to_features; statistics.py: features_to_statistics,
# statistics_to_fid, trace_sqrt_product, kid; sources.py: real_statistics, generated_images) and tinygan/pca.py.
# Proved below: FID(x, x) = 0 and FID is symmetric; two real samples are much closer than the PCA
# faces or an early checkpoint; FID falls from an early to a late checkpoint and with growing N
# (full mode); KID orders the models the same way.

# %%
"""Lesson 15: scoring a GAN with the Frechet Inception Distance (FID), and with KID."""
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()   # a script, or a notebook
sys.path.insert(0, str(HERE.parent))          # a checkout's tinygan, without pip install -e .
import numpy as np  # noqa: E402

from tinygan.course.lesson import DEFAULT_FID_WEIGHTS, Lesson  # noqa: E402
from tinygan import pca, run_folder  # noqa: E402
from tinygan.data import FaceDataset  # noqa: E402
from tinygan.fid import (MIN_SAMPLES, features_to_statistics, fid_inception_v3, fid_weights_path,  # noqa: E402
                         generated_images, images_to_features, kid, load_images, real_statistics,
                         statistics_to_fid)
from tinygan.train import Trainer, make_config  # noqa: E402

REPO = HERE.parent                               # a checkout's root, where runs/ is
DEFAULT_RUN = REPO / "runs" / "celeba10k"
REFERENCE_REAL_FID = 14.45      # 2,000 vs 2,000 aligned CelebA faces, ../shared/weights/README.md
KID_SUBSETS = 10


def stand_in_features(images):
    """NOT Inception, for --quick: 8x8 block means of uint8 (N, 64, 64, 3) faces, in [-1, 1],
    through one fixed random ReLU layer -> (N, 128), features of order 1 like Inception's (whose 2,048
    would make every covariance square root cost seconds). The FID arithmetic is the same; the numbers mean little."""
    n = len(images)
    blocks = np.asarray(images, dtype=np.float32).reshape(n, 8, 8, 8, 8, 3).mean(axis=(2, 4)) / 127.5 - 1
    weight = np.random.default_rng(15).standard_normal((192, 128)).astype(np.float32) / np.sqrt(192)
    return np.maximum(blocks.reshape(n, 192) @ weight, 0)                                  # (N, 128)


def features_of(images, what, model):
    """(N, 2048) features of uint8 faces (N, 64, 64, 3), with the speed printed; model None: the stand-in."""
    start = time.perf_counter()
    features = (stand_in_features(images) if model is None
                else images_to_features(images, model=model, verbose=not lesson.args.quick))
    seconds = time.perf_counter() - start
    print(f"  features of {len(images)} {what}: {seconds:.1f} s ({len(images) / seconds:.1f} images/s)")
    return features


def train_tiny_run(lesson, source, steps):
    """A small GAN with a checkpoint at steps/2 and at steps, for --quick when no run is around."""
    shutil.rmtree(lesson.out / "tiny_run", ignore_errors=True)
    config = make_config("dcgan", out=str(lesson.out / "tiny_run"), ngf=16, ndf=16, batch_size=16, max_steps=steps,
                         sample_every=steps, checkpoint_every=steps // 2, log_every=steps)
    Trainer(config, dataset=FaceDataset(source, limit=64, verbose=False), verbose=False).run()
    return Path(config["out"])


def spread(items, most):
    """At most ``most`` items, evenly spaced, always the first and the last."""
    if len(items) <= most:
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, most).round().astype(int))]


def scores(reference, features, kid_subset):
    """FID and KID (mean, std over subsets) of a feature set against the reference features."""
    fid = statistics_to_fid(*features_to_statistics(reference), *features_to_statistics(features))
    subsets = KID_SUBSETS if kid_subset < len(features) else 1      # subsets of everything are all the same
    kid_mean, kid_std = kid(reference, features, subsets=subsets, subset_size=kid_subset)
    return {"fid": fid, "kid": kid_mean, "kid_std": kid_std}


# %%
lesson = Lesson("15_evaluate_fid", __doc__, default_backend="auto")
lesson.parser.add_argument("--checkpoints", help="run directory whose checkpoints/ckpt_*.npz are scored in step "
                           f"order (default: {DEFAULT_RUN.relative_to(REPO)} in the repository if it exists; "
                           "with --quick otherwise a tiny GAN trained here)")
lesson.parser.add_argument("--max-checkpoints", type=int, default=6,
                           help="score at most this many checkpoints, evenly spaced, always the first and the last")
lesson.parser.add_argument("--fid-weights", default=DEFAULT_FID_WEIGHTS,
                           help="FID Inception weights (.pt/.pth/.npz); default: $TINYGAN_FID_WEIGHTS, else "
                                "../shared/weights/ beside the repository, else tinygan.fid's cache or download")
lesson.parser.add_argument("--inception", action="store_true", help="with --quick: the real Inception network, "
                           "not the stand-in (slower: Inception dominates the run time on a CPU)")
lesson.parser.add_argument("--n", type=int, help="images per FID, the same for every set (default: 1000; "
                           "--quick: 4). Needs 2n real faces")
args = lesson.parse()
n = args.n or (4 if args.quick else 1000)
if n < 2:
    sys.exit(f"15_evaluate_fid: --n must be at least 2 (a covariance needs two images), got {n}")
kid_subset = n if n < 16 else n // 2
show = min(8, n)
if n < MIN_SAMPLES:
    print(f"WARNING: N = {n} < {MIN_SAMPLES}: every FID below is biased upwards and the covariances are singular. "
          "The numbers compare with each other (same N), not with FIDs at other N or in papers.")

# %% [markdown]
# ## 1. The feature network and the real faces

# %%
print("\n1. The feature network and the real faces")
source = lesson.data_source(synthetic_count=max(2 * n, 64))
# the runs to score are found first, so that a missing one stops the lesson before minutes of Inception
run = Path(args.checkpoints) if args.checkpoints else (DEFAULT_RUN if DEFAULT_RUN.is_dir() else None)
if run is None and not args.quick:
    sys.exit(f"15_evaluate_fid: no run to score: {DEFAULT_RUN} does not exist. Pass --checkpoints RUN_DIR "
             "(a folder of `python -m tinygan train`, or lesson 13's lesson_output/13_train_gan/run).")
if run is None:
    print("NOTE: no training run found; --quick trains a tiny GAN for 4 steps (checkpoints at steps 2 and 4)")
    run = train_tiny_run(lesson, source, 4)
found = run_folder.list_checkpoints(run / "checkpoints")
if not found:
    sys.exit(f"15_evaluate_fid: {run} holds no checkpoints/ckpt_*.npz; expected a run directory of `tinygan train`")
weights = model = None
if args.quick and not args.inception:
    print("NOTE: --quick uses a stand-in feature network (block means, one random layer), not Inception: "
          "the numbers below show the mechanics only (--inception for the real network).")
else:
    try:
        weights = fid_weights_path(args.fid_weights, download=not args.quick)
    except FileNotFoundError as err:
        if not args.quick:
            raise
        print(f"NOTE: {err}\n  --quick uses a stand-in feature network (block means, one random layer), not Inception.")
if weights is not None:
    model = fid_inception_v3(weights)
    print(f"  Inception-v3 (pytorch-fid's weights, BatchNorm folded into the convs) from {weights}")
real_faces = np.asarray(load_images(source, 2 * n, verbose=False))           # uint8 (2n, 64, 64, 3)
if weights is not None:
    start = time.perf_counter()
    cached = real_statistics(source, 2 * n, weights=weights, verbose=not args.quick)
    real = cached["features"]
    print(f"  features of {2 * n} real faces: {time.perf_counter() - start:.1f} s (cached in {cached['path']})")
else:
    real = features_of(real_faces, "real faces", model)
real_a, real_b = real[:n], real[n:]
print(f"  real faces A = the first {n} faces of {source}, B = the next {n}; every set below is scored against A")

# %% [markdown]
# ## 2. FID is a distance: zero for the same set, and symmetric

# %%
print("\n2. FID is a distance: zero for the same set, and symmetric")
ab = scores(real_a, real_b, kid_subset)
fid_aa = statistics_to_fid(*features_to_statistics(real_a), *features_to_statistics(real_a))
lesson.check("FID(real A, real A) / FID(real A, real B)", fid_aa / ab["fid"], fid_aa <= 1e-6 * ab["fid"],
             "should be ~0: round-off only")
fid_ba = statistics_to_fid(*features_to_statistics(real_b), *features_to_statistics(real_a))
asymmetry = abs(fid_ba - ab["fid"]) / ab["fid"]
lesson.check("|FID(B, A) - FID(A, B)| / FID(A, B)", asymmetry, asymmetry < 1e-6, "should be < 1e-6")

# %% [markdown]
# ## 3. The sample size: FID's bias, KID's lack of it

# %%
print("\n3. The sample size: FID's bias, KID's lack of it")
sizes = sorted({max(2, n // 2 ** k) for k in range(4)})
by_size = [(m, statistics_to_fid(*features_to_statistics(real_a[:m]), *features_to_statistics(real_b[:m])),
            kid(real_a[:m], real_b[:m], subsets=1, subset_size=m)[0]) for m in sizes]
for m, fid_m, kid_m in by_size:
    print(f"  real vs real at N = {m:5d}: FID {fid_m:8.2f}   KID {kid_m * 1e3:+8.3f} x 1e-3")
print(f"  (reference: FID {REFERENCE_REAL_FID} at N = 2,000 for uncropped 89x109 faces, ../shared/weights/README.md)")
if args.quick:
    print("  (not checked with --quick: at N <= 4 the estimates are too noisy)")
else:
    lesson.check(f"real-vs-real FID at N = {sizes[0]} / at N = {n}", by_size[0][1] / by_size[-1][1],
                 by_size[0][1] > by_size[-1][1], "should be > 1: fewer images, larger FID for the same faces")

print("\n4. Baselines: real vs real, eigenfaces" + (", noise" if args.quick else ""))
mean, components, eigenvalues = pca.fit_pca(pca.faces_to_matrix(real_faces))
k = min(64, len(eigenvalues))
pca_faces = pca.matrix_to_faces(pca.sample_pca(mean, components[:k], eigenvalues[:k], n,
                                               np.random.default_rng(args.seed)), real_faces.shape[1])
results = {"real B": ab, f"PCA (k={k})": scores(real_a, features_of(pca_faces, "PCA faces", model), kid_subset)}
if args.quick:
    noise = np.random.default_rng(args.seed).integers(0, 256, real_faces[:n].shape, dtype=np.uint8)
    results["noise"] = scores(real_a, features_of(noise, "noise images", model), kid_subset)

# %% [markdown]
# ## 5. Checkpoints of a training run, in step order

# %%
print("\n5. Checkpoints of a training run, in step order")
chosen = spread(found, 2 if args.quick else max(2, args.max_checkpoints))
print(f"  {run}: {len(found)} checkpoints, scoring {len(chosen)} (steps {', '.join(str(s) for s, _ in chosen)})")
over_training, sample_rows = [], []
for step, path in chosen:
    fakes = generated_images(path, n, seed=args.seed)                       # the same seeds at every step
    over_training.append((step, scores(real_a, features_of(fakes, f"faces of step {step}", model), kid_subset)))
    sample_rows.append((f"step {step}", fakes[:show]))
    print(f"  step {step:6d}: FID {over_training[-1][1]['fid']:8.2f}")

kid_over = f"{KID_SUBSETS} subsets of {kid_subset}" if kid_subset < n else f"all {n}, no error bar"
print(f"\nScores at N = {n} against real faces A (KID over {kid_over}):")
table = list(results.items()) + [(f"step {s}", r) for s, r in over_training]
for name, r in table:
    print(f"  {name:>18s}: FID {r['fid']:9.2f}   KID {r['kid'] * 1e3:9.3f} +- {r['kid_std'] * 1e3:.3f} x 1e-3")

print("\nChecks (KID in units of 1e-3)")
pca_result = results[f"PCA (k={k})"]
if args.quick:
    for metric in ("fid", "kid"):
        scale, name = (1, "FID") if metric == "fid" else (1e3, "KID")
        lesson.check(f"{name}(real A, noise) - {name}(real A, real B)", (results["noise"][metric] - ab[metric]) * scale,
                     results["noise"][metric] > ab[metric], "should be > 0: noise is farther from faces than faces are")
    print("  (the real-vs-model orderings are checked in full mode only: at N = 4 they say nothing)")
else:
    (first_step, first), (last_step, last) = over_training[0], over_training[-1]
    for other, r in (("PCA faces", pca_result), (f"step {first_step}", first)):
        lesson.check(f"FID(real A, {other}) / FID(real A, real B)", r["fid"] / ab["fid"], r["fid"] > 2 * ab["fid"],
                     "should be > 2: two samples of real faces are much closer")
        lesson.check(f"KID(real A, {other}) - KID(real A, real B)", (r["kid"] - ab["kid"]) * 1e3, r["kid"] > ab["kid"],
                     "should be > 0: KID orders them the same way")
    lesson.check(f"FID at step {last_step} / at step {first_step}", last["fid"] / first["fid"],
                 last["fid"] < first["fid"], "should be < 1: training made the faces better")
    lesson.check(f"KID at step {last_step} - at step {first_step}", (last["kid"] - first["kid"]) * 1e3,
                 last["kid"] < first["kid"], "should be < 0: KID agrees")

# %%
fig, axes = lesson.figure(1, 2, size=(4.6, 3.6))
steps = [s for s, _ in over_training]
for ax, metric, scale, label in ((axes[0, 0], "fid", 1, "FID"), (axes[0, 1], "kid", 1e3, "KID x 1e3")):
    values = [r[metric] * scale for _, r in over_training]
    errors = [r["kid_std"] * scale for _, r in over_training] if metric == "kid" else None
    ax.errorbar(steps, values, yerr=errors, marker="o", color="tab:purple", label="generator")
    ax.axhline(pca_result[metric] * scale, color="tab:orange", linestyle="--", label=f"PCA (k={k})")
    ax.axhline(ab[metric] * scale, color="gray", linestyle=":", label="real vs real")
    ax.set(xlabel="training step", ylabel=label, title=f"{label} over training (N = {n})")
    ax.legend(fontsize=7)
lesson.save_figure(fig, "fid_over_training.png")

fig, axes = lesson.figure(1, 2, size=(4, 3.2))
axes[0, 0].plot(sizes, [f for _, f, _ in by_size], marker="o", color="gray")
axes[0, 0].set(ylabel="FID", title="real vs real: FID falls with N")
axes[0, 1].plot(sizes, [kd * 1e3 for _, _, kd in by_size], marker="o", color="gray")
axes[0, 1].axhline(0, color="black", linewidth=0.5)
axes[0, 1].set(ylabel="KID x 1e3", title="real vs real: KID stays near 0")
for ax in axes[0]:
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(m) for m in sizes], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_xlabel("N (images per set)")
lesson.save_figure(fig, "sample_size.png")

rows = [("real faces", real_faces[:show]), (f"PCA (k={k})", pca_faces[:show])] + sample_rows
fig, axes = lesson.figure(len(rows), 1, size=(show + 0.5, 1.3))
for ax, (title, faces) in zip(axes[:, 0], rows):
    ax.imshow(np.concatenate(list(faces), axis=1))
    ax.set_title(title, fontsize=8)
    ax.axis("off")
lesson.save_figure(fig, "samples_scored.png")
lesson.finish()
