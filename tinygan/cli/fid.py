"""tinygan fid: Frechet Inception Distance (and KID) between real and generated faces (tinygan.fid)."""
from pathlib import Path

from ..options import HelpFormatter, add_backend, whole_number


def add_fid(sub):
    from ..fid import MIN_SAMPLES, PREPROCESSING
    p = sub.add_parser("fid", help="Frechet Inception Distance (and KID) between real and generated faces",
                       formatter_class=HelpFormatter,
                       description="FID with pytorch-fid's Inception-v3 weights (read without torch). The reals are "
                                   "cropped and resized like the training data; their statistics are cached.")
    at_least_2 = lambda text: whole_number(text, 2)              # noqa: E731 - a covariance needs two samples
    p.add_argument("--real", required=True, help="folder, .zip or .tar of real face images")
    p.add_argument("--fake", required=True,
                   help="folder/.zip/.tar of generated images, or a checkpoint .npz / run folder / generator file")
    p.add_argument("-n", type=at_least_2, default=MIN_SAMPLES,
                   help="generated images, at least 2 (FID is biased upwards for small n)")
    p.add_argument("--n-real", type=at_least_2, help="real images, the first of --real (default: n)")
    p.add_argument("--raw", action="store_true", help="score a checkpoint's raw G, not its averaged G_ema")
    p.add_argument("--batch-size", type=int, default=32, help="images per Inception forward pass")
    p.add_argument("--preprocessing", choices=PREPROCESSING, default="pytorch-fid",
                   help="resize and scaling convention (see tinygan.fid.preprocess)")
    p.add_argument("--weights", help="FID weights .npz/.pth/.pt (default: $TINYGAN_FID_WEIGHTS, the cache, "
                                     "else download pytorch-fid's file)")
    p.add_argument("--image-size", type=int, default=64, help="side the real images are resized to first")
    p.add_argument("--crop", type=float, help="centre crop of the reals as a fraction of the width "
                                              "(default: the training crop, 128/178)")
    p.add_argument("--seed", type=int, default=0, help="first seed when --fake is a checkpoint")
    p.add_argument("--cache-dir", help="cache for weights and statistics (default: $TINYGAN_CACHE, "
                                       "$XDG_CACHE_HOME/tinygan or ~/.cache/tinygan)")
    add_backend(p)
    p.set_defaults(func=fid_score)


def fid_score(args):
    from .. import fid
    for option, path in (("--real", args.real), ("--fake", args.fake)):
        if not Path(path).exists():
            raise ValueError(f"{option} {path} does not exist")
    if args.n < fid.MIN_SAMPLES:
        print(f"warning: n={args.n} < {fid.MIN_SAMPLES}: the covariance is rank-deficient and FID is strongly "
              f"biased upwards; compare FIDs only at the same n")
    result = fid.fid_between(args.real, args.fake, n=args.n, image_size=args.image_size, crop=args.crop,
                             preprocessing=args.preprocessing, batch_size=args.batch_size, weights=args.weights,
                             cache=args.cache_dir, seed=args.seed, n_real=args.n_real, raw=args.raw)
    print(f"FID {result['fid']:.3f}  (n={result['n_real']} real vs {result['n']} fake, {args.preprocessing})")
    spread = f" +- {result['kid_std'] * 1e3:.3f}" if result["kid_subsets"] > 1 else " (one subset: every image)"
    print(f"KID {result['kid'] * 1e3:.3f}{spread} x 1e-3")
    return 0
