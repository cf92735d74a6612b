"""The eigenface baseline (Turk & Pentland 1991): PCA on real faces, new faces from a Gaussian, beside the GAN's.

    python examples/pca_faces.py --n 2000 --k 64
    python examples/pca_faces.py --checkpoint runs/celeba --n-samples 10000 --samples-dir pca_samples
    python -m tinygan fid --real DATA --fake pca_samples          # then score the PCA faces like the GAN's

The model and the two ways to compute the eigenfaces (the Gram-matrix trick,
the default, or the thin SVD with --method svd) are explained in tinygan/pca.py.

Expect blurry, ghostly faces: a single Gaussian on the top k directions is
the mean face plus smooth variations. It cannot make sharp eyes and hair,
which are far from linear in the pixels. The DCGAN's faces, shown beside them
when --checkpoint is given, are the point of comparison.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import _common  # noqa: E402
from tinygan import model_files, pca, sampling, viz  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__)
    _common.add_data_arguments(p, n_default=2000, what="real faces to fit the PCA on")
    p.add_argument("--k", type=int, default=64, help="number of eigenfaces the samples are drawn in")
    p.add_argument("--method", choices=("gram", "svd"), default="gram", help="how to get the eigenfaces (see above)")
    p.add_argument("--n-samples", type=int, default=64, help="PCA faces to sample (use 10000 for FID)")
    p.add_argument("--samples-dir", help="folder for the PCA samples as PNGs (default: OUT/pca_samples)")
    p.add_argument("--checkpoint", "-c", help="training checkpoint, run directory or generator .npz, to show "
                                              "the GAN's faces beside the PCA ones")
    p.add_argument("--out", default="pca_faces", help="output folder for the pictures")
    p.add_argument("--seed", type=int, default=0, help="seeds the PCA samples (and the GAN's faces)")
    p.add_argument("--quick", action="store_true", help="64 faces, k = 16, 16 samples: seconds")
    return p


# --- pictures -----------------------------------------------------------------------------------
def save_comparison(rows, path):
    """A figure with one titled grid per row: [(title, uint8 faces), ...]."""
    fig = Figure(figsize=(10, 1.6 * len(rows) + 0.4), layout="constrained")
    for ax, (title, faces) in zip(fig.subplots(len(rows), 1, squeeze=False)[:, 0], rows):
        ax.imshow(viz.make_grid(faces, nrow=len(faces)))
        ax.set_title(title, fontsize="medium")
        ax.axis("off")
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)


def save_variance_plot(eigenvalues, k, path):
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    explained = np.cumsum(eigenvalues) / eigenvalues.sum()
    ax.plot(np.arange(1, len(explained) + 1), explained, color="tab:blue")
    ax.axvline(k, color="gray", linestyle=":")
    ax.annotate(f"k = {k}: {explained[k - 1]:.1%}", (k, explained[k - 1]), textcoords="offset points",
                xytext=(8, -12), fontsize="small")
    ax.set_xscale("log")
    ax.set_xlabel("number of eigenfaces")
    ax.set_ylabel("fraction of the variance explained")
    ax.set_title("PCA of faces")
    ax.grid(alpha=0.3)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)


def main(argv=None):
    args = build_parser().parse_args(argv)
    k, n_samples = (min(args.k, 16), min(args.n_samples, 16)) if args.quick else (args.k, args.n_samples)
    if args.n < 2 or k < 1 or n_samples < 1:
        _common.fail(f"need --n >= 2, --k >= 1 and --n-samples >= 1, got {args.n}, {args.k} and {args.n_samples}")
    out = Path(args.out)
    samples_dir = Path(args.samples_dir) if args.samples_dir else out / "pca_samples"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    faces, described = _common.load_faces(args, quick_n=64)                  # uint8 (N, 64, 64, 3)
    size = faces.shape[1]
    X = pca.faces_to_matrix(faces)
    start = time.perf_counter()
    mean, components, eigenvalues = pca.fit_pca(X, args.method)
    print(f"PCA ({args.method}) of {described}: D = {X.shape[1]:,}, {len(eigenvalues)} components with non-zero "
          f"variance, in {time.perf_counter() - start:.1f} s")
    if k > len(eigenvalues):
        print(f"only {len(eigenvalues)} components carry variance (at most N - 1 = {len(X) - 1}); using k = "
              f"{len(eigenvalues)} instead of {k}")
        k = len(eigenvalues)
    explained = eigenvalues[:k].sum() / eigenvalues.sum()
    print(f"the top {k} eigenfaces explain {explained:.1%} of the variance (the first one alone "
          f"{eigenvalues[0] / eigenvalues.sum():.1%})")

    shown = min(15, k)
    viz.save_grid(pca.eigenfaces_to_images(mean, components[:shown], size), out / "eigenfaces.png", nrow=shown + 1)
    real = faces[:8]
    rebuilt = pca.matrix_to_faces(pca.reconstruct(X[:8], mean, components[:k]), size)
    viz.save_grid(np.concatenate([real, rebuilt]), out / "reconstructions.png", nrow=len(real))
    save_variance_plot(eigenvalues, k, out / "variance.png")

    samples = pca.matrix_to_faces(pca.sample_pca(mean, components[:k], eigenvalues[:k], n_samples, rng), size)
    viz.save_grid(samples, out / "pca_samples.png")
    for i, face in enumerate(samples):
        viz.save_image(face, samples_dir / f"pca_{i:06d}.png")

    rows = [("real faces", real), (f"PCA: mean + Gaussian in the top {k} eigenfaces", samples[:8])]
    if args.checkpoint:
        try:
            G = model_files.load_generator(args.checkpoint)
        except (ValueError, FileNotFoundError) as err:
            _common.fail(str(err))
        gan = sampling.generate_images(G, range(args.seed, args.seed + 8))
        rows.append((f"DCGAN ({args.checkpoint})", gan))
        viz.save_grid(gan, out / "gan_samples.png")
    save_comparison(rows, out / "comparison.png")

    print(f"wrote {out}/: eigenfaces.png (the mean face, then the top {shown} eigenfaces), reconstructions.png "
          f"(real faces above, their projections on {k} eigenfaces below), variance.png, pca_samples.png, "
          f"comparison.png ({', '.join(title.split(':')[0] for title, _ in rows)})")
    print(f"wrote {n_samples} PCA faces as PNGs to {samples_dir}/ (score them with: python -m tinygan fid "
          f"--real DATA --fake {samples_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
