"""What the examples share: the default data, synthetic faces for --quick, a tiny training run, --help layout.

Each example puts the repository root on ``sys.path`` before it imports this
file, so the examples run from any directory without installing tinygan.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tinygan.options import DocstringHelpFormatter, default_data  # noqa: E402, F401 - default_data: the examples'
from tinygan.synthetic import synthetic_faces  # noqa: E402


def make_parser(docstring, epilog=None):
    """--help keeps the docstring's line breaks and shows the defaults that say something."""
    return argparse.ArgumentParser(description=docstring, epilog=epilog, formatter_class=DocstringHelpFormatter)


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
    from tinygan.model_files import PRETRAINED
    parser.add_argument("--checkpoint", "-c", help="training checkpoint, run directory or generator .npz "
                                                   f"(default: the pretrained generator, {PRETRAINED})")


def add_backend_argument(parser):
    from tinygan.options import add_backend
    add_backend(parser)


def use_backend(args):
    from tinygan.options import use_backend
    use_backend(args.backend)


def fail(message):
    """Print an error that says what to do, and exit with status 2 (like argparse)."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    sys.exit(2)


def save_generator_file(G, out, provenance, D, judge=None):
    """Write a generator file (G and D, float16; the judge, (D, FaceModel), if given) and its provenance beside
    it as .json; both atomic.

    Returns the two paths. A path that cannot be written is one error line.
    """
    import json

    from tinygan import files, model_files
    try:
        out = model_files.save_generator(G, out, provenance=provenance, D=D, judge=judge)
        return out, files.write_text(Path(out).with_suffix(".json"), json.dumps(provenance, indent=2) + "\n")
    except OSError as err:
        fail(f"cannot write {out}: {err.strerror or err}")


# --- faces --------------------------------------------------------------------------------
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
    from tinygan import model_files
    keep = None
    path = args.checkpoint
    if path is None and args.quick and not model_files.PRETRAINED.exists():
        path, keep = quick_run()
    try:
        G = model_files.load_generator(path)
    except (FileNotFoundError, ValueError) as err:
        fail(f"{err}. (Train a generator with examples/train_celeba.py, or try --quick.)")
    return G, path or model_files.PRETRAINED, keep
