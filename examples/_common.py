"""What the examples share: the default data, synthetic faces for --quick, a tiny training run, --help layout.

Each example puts the repository root on ``sys.path`` before it imports this
file, so the examples run from any directory without installing tinygan.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
SHARED_CELEBA = REPO.parent / "shared" / "data" / "celeba_align_89x109_10k.tar"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help keeps the docstring's line breaks and shows every default, but not None (the help text
    says what happens then) or the False of an on/off flag."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def make_parser(docstring, epilog=None):
    return argparse.ArgumentParser(description=docstring, epilog=epilog, formatter_class=HelpFormatter)


def default_data():
    """$TINYGAN_DATA, else the project's 10k CelebA tar if it is there, else None."""
    if os.environ.get("TINYGAN_DATA"):
        return os.environ["TINYGAN_DATA"]
    return str(SHARED_CELEBA) if SHARED_CELEBA.exists() else None


def add_data_argument(parser):
    parser.add_argument("--data", default=default_data(),
                        help="CelebA img_align_celeba folder, .zip or .tar, or any folder of face images "
                             "(falls back on $TINYGAN_DATA, then on the project's shared 10k CelebA tar if present)")
    parser.add_argument("--synthetic", action="store_true",
                        help="use drawn face-like images instead of --data (implied by --quick when no data is found)")


def add_data_arguments(parser, n_default, what="faces to load"):
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=n_default, help=what)


def add_generator_argument(parser):
    from tinygan.sampling import PRETRAINED
    parser.add_argument("--checkpoint", "-c", help="training checkpoint, run directory or generator .npz "
                                                   f"(default: the pretrained generator, {PRETRAINED})")


def add_backend_argument(parser):
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy", help="array backend")


def use_backend(args):
    from tinygan import backend
    backend.use(args.backend)


def fail(message):
    """Print an error that says what to do, and exit with status 2 (like argparse)."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    sys.exit(2)


# --- faces --------------------------------------------------------------------------------
def synthetic_faces(n, size=64, seed=0):
    """uint8 (n, size, size, 3): cartoon faces drawn with PIL, each with its own skin, hair, eyes and mouth.

    They are no substitute for CelebA, but they have the structure of a face
    (symmetric, eyes above a mouth) so that --quick runs show something.
    """
    rng = np.random.default_rng(seed)
    big = 4 * size                                  # draw large, then shrink: smooth (antialiased) edges
    faces = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        u = lambda lo, hi: float(rng.uniform(lo, hi)) * big    # noqa: E731 - a length in pixels
        colour = lambda lo, hi: tuple(int(c) for c in rng.integers(lo, hi, 3))   # noqa: E731
        img = Image.new("RGB", (big, big), colour(40, 200))
        draw = ImageDraw.Draw(img)
        cx, cy, w, h = u(0.46, 0.54), u(0.52, 0.58), u(0.26, 0.32), u(0.34, 0.40)
        skin = tuple(int(c) for c in np.array([225, 180, 150]) * rng.uniform(0.55, 1.1) + rng.integers(-15, 15, 3))
        hair = colour(10, 120)
        draw.ellipse([cx - w * 1.12, cy - h * 1.15, cx + w * 1.12, cy + h * 0.5], fill=hair)   # hair behind the face
        draw.ellipse([cx - w, cy - h, cx + w, cy + h], fill=skin)
        eye_y, eye_dx, eye_r = cy - u(0.04, 0.09), u(0.09, 0.13), u(0.025, 0.04)
        for side in (-1, 1):
            ex = cx + side * eye_dx
            draw.ellipse([ex - eye_r * 1.6, eye_y - eye_r, ex + eye_r * 1.6, eye_y + eye_r], fill=(245, 245, 245))
            draw.ellipse([ex - eye_r * 0.8, eye_y - eye_r * 0.8, ex + eye_r * 0.8, eye_y + eye_r * 0.8],
                         fill=colour(20, 110))
            draw.line([ex - eye_r * 2, eye_y - eye_r * 2.2, ex + eye_r * 2, eye_y - eye_r * 2.4], fill=hair,
                      width=max(1, int(u(0.01, 0.02))))
        nose = tuple(int(c * 0.8) for c in skin)
        draw.line([cx, eye_y + u(0.03, 0.05), cx - u(0.0, 0.02), cy + u(0.06, 0.09)], fill=nose,
                  width=max(1, int(u(0.01, 0.015))))
        mouth_y, mouth_w, smile = cy + u(0.14, 0.19), u(0.06, 0.11), u(0.01, 0.05)
        draw.arc([cx - mouth_w, mouth_y - smile, cx + mouth_w, mouth_y + smile], 10, 170, fill=(150, 40, 50),
                 width=max(1, int(u(0.012, 0.02))))
        img = img.filter(ImageFilter.GaussianBlur(big / 128)).resize((size, size), Image.LANCZOS)
        faces[i] = np.asarray(img)
    return faces


def load_faces(args, image_size=64, quick_n=64):
    """uint8 (N, S, S, 3) and a description: the first --n faces of --data, or synthetic faces.

    --synthetic asks for drawn faces; --quick takes them when there is no data,
    and loads only ``quick_n`` faces either way.
    """
    n = min(args.n, quick_n) if args.quick else args.n
    if args.synthetic or (args.quick and not args.data):
        return synthetic_faces(n, image_size), f"{n} synthetic faces"
    if not args.data:
        from tinygan.download import CELEBA_HELP
        fail(f"no face images: pass --data PATH (a CelebA folder, .zip or .tar), set $TINYGAN_DATA, "
             f"or use --synthetic.\n\n{CELEBA_HELP}")
    from tinygan.data import FaceDataset
    try:
        dataset = FaceDataset(args.data, image_size=image_size, limit=n)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    return np.asarray(dataset.images), f"the first {len(dataset)} faces of {args.data}"


# --- a tiny training run, for --quick when no checkpoint is given ---------------------------
def quick_run(steps=4, sample_every=None):
    """Train a tiny DCGAN (ngf = ndf = 8) on synthetic faces in a temporary folder; returns (run dir, tmp).

    It saves a sample grid every ``sample_every`` steps (default: only at the end).

    Keep ``tmp`` (a TemporaryDirectory) alive while the run is used; it is deleted with it.
    """
    from tinygan.train import Trainer, make_config
    tmp = tempfile.TemporaryDirectory(prefix="tinygan-quick-")
    run = Path(tmp.name) / "run"
    config = make_config(out=str(run), nz=16, ngf=8, ndf=8, batch_size=8, max_steps=steps, log_every=1,
                         sample_every=sample_every or steps, checkpoint_every=steps, n_samples=16)
    Trainer(config, dataset=synthetic_faces(32), verbose=False).run()
    print(f"--quick: trained a tiny DCGAN (ngf=ndf=8) for {steps} steps on 32 synthetic faces in {run} "
          "(deleted on exit)")
    return run, tmp


def generator_or_quick(args):
    """The generator from --checkpoint (default: the pretrained one); with --quick and none, a tiny one."""
    from tinygan import sampling
    keep = None
    path = args.checkpoint
    if path is None and args.quick and not sampling.PRETRAINED.exists():
        path, keep = quick_run()
    try:
        G = sampling.load_generator(path)
    except (FileNotFoundError, ValueError) as err:
        fail(f"{err}. (Train a generator with examples/train_celeba.py, or try --quick.)")
    return G, path or sampling.PRETRAINED, keep
