"""Ask a trained DCGAN's discriminator whether faces look real: D(x) = sigmoid(logit), the probability "real".

    python examples/real_or_fake.py --checkpoint runs/celeba photo1.jpg photo2.png
    python examples/real_or_fake.py --checkpoint runs/celeba        # real faces from --data vs G's fakes

Read the warning this script prints first. D only ever learned to separate
the training faces from the fakes of *one* generator, at one moment of
training; its scores drift as training goes on. It says nothing reliable about
photos from other sources, other generators or other editing tools. A generator
file packaged with --data holds a judge fitted for judging (tinygan/judge.py),
and this script uses it; a training checkpoint has only the GAN's own D.

Given image files, it scores them (each is centre-cropped and resized like the
training data). Given none, it scores --n real faces from --data and --n
faces from the checkpoint's own generator, and prints how often D is right.
The scores go to a CSV file.
"""
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from any directory, without installing

import numpy as np  # noqa: E402

import _common  # noqa: E402
from tinygan import data, judge, model_files, sampling  # noqa: E402
from tinygan.judge import JUDGE_WARNING  # noqa: E402


def build_parser():
    p = _common.make_parser(__doc__, epilog="WARNING: " + JUDGE_WARNING)
    p.add_argument("images", nargs="*", help="image files to score (none: real faces from --data vs fakes from G)")
    p.add_argument("--checkpoint", "-c",
                   help="training checkpoint (ckpt_*.npz), run directory, or a generator file saved with its D "
                        "(tinygan/pretrained/generator.npz is one; required unless --quick)")
    _common.add_data_arguments(p, n_default=16, what="real faces and fakes to score when no images are given")
    p.add_argument("--crop", type=float, default=data.CELEBA_CROP,
                   help="centred square crop of the given images, as a fraction of their width")
    p.add_argument("--out", default="real_or_fake.csv", help="CSV of the scores")
    _common.add_backend_argument(p)
    p.add_argument("--quick", action="store_true",
                   help="8 faces of each; with no --checkpoint, a tiny DCGAN trained for seconds")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.use_backend(args)
    print("WARNING:", JUDGE_WARNING, "\n")
    keep = None
    if args.checkpoint is None:
        if not args.quick:
            _common.fail("pass --checkpoint RUN_OR_CKPT, a training checkpoint or generator file that holds D, "
                         "or use --quick")
        args.checkpoint, keep = _common.quick_run()
    try:
        D = model_files.load_discriminator(args.checkpoint)
        size = D.config["image_size"]
        if args.images:
            rows = [("given", path, data.load_image(path, image_size=size, crop=args.crop)) for path in args.images]
        else:
            G = model_files.load_generator(args.checkpoint)
            real, described = _common.load_faces(args, image_size=size, quick_n=8)
            fakes = sampling.generate_images(G, range(len(real)))
            print(f"scoring {described} (D trained on these or on faces like them) "
                  f"and {len(fakes)} fakes from the same checkpoint's G (seeds 0..{len(fakes) - 1})")
            rows = [("real", f"real #{i}", face) for i, face in enumerate(real)]
            rows += [("fake", f"G seed {i}", face) for i, face in enumerate(fakes)]
    except (ValueError, FileNotFoundError) as err:
        _common.fail(str(err))
    probs = judge.probabilities(D, np.stack([face for _, _, face in rows]))   # P(real) per image

    for (kind, name, _), p in zip(rows, probs):
        print(f"{p:6.3f}  D says {judge.verdict(p)}  ({kind}) {name}")
    if not args.images:
        is_real = np.array([kind == "real" for kind, _, _ in rows])
        right = np.mean(judge.called_real(probs) == is_real)
        print(f"mean D(x) on real faces {probs[is_real].mean():.3f}, on fakes {probs[~is_real].mean():.3f}; "
              f"D is right on {right:.0%} of them (chance: 50%)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "image", "p_real"])
        writer.writerows([kind, name, f"{p:.6f}"] for (kind, name, _), p in zip(rows, probs))
    print(f"scored {len(rows)} images with D from {args.checkpoint}; wrote {out}")
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
