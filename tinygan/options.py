"""Command-line options that the CLI, the lessons, the examples and the benchmarks share: argparse types that
refuse a bad value with one line, the --backend and --checkpoint flags, output files, the help formatters, and
the default data and FID weights. Importing it loads nothing but argparse (and tinygan.sampling for the seed
lists), so a script can use it without importing the CLI."""
import argparse
import os
from pathlib import Path

from . import sampling

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}
# Beside a checkout of tinygan, a course may keep its data and weights in ../shared (this project does);
# an installed tinygan finds them through $TINYGAN_DATA and $TINYGAN_FID_WEIGHTS instead.
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data" / "celeba_align_89x109_10k.tar"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: ...)' unless the default is None, False or already in the help text."""

    def _get_help_string(self, action):
        if any(action.default is hidden for hidden in (None, False, argparse.SUPPRESS)) or "default" in (action.help
                                                                                                       or ""):
            return action.help
        return super()._get_help_string(action)


class DocstringHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """HelpFormatter for a script whose description is its docstring: its line breaks are kept."""


def default_data():
    """$TINYGAN_DATA, else the shared 10k CelebA tar beside a checkout (SHARED_DATA) if it is there, else None."""
    if os.environ.get("TINYGAN_DATA"):
        return os.environ["TINYGAN_DATA"]
    return str(SHARED_DATA) if SHARED_DATA.exists() else None


def default_fid_weights():
    """$TINYGAN_FID_WEIGHTS, else the shared FID Inception weights beside a checkout if they are there, else None
    (tinygan.fid then looks in its cache, or downloads)."""
    from .fid.weights import TORCHSCRIPT_NAME
    shared = SHARED / "weights" / TORCHSCRIPT_NAME
    return os.environ.get("TINYGAN_FID_WEIGHTS") or (str(shared) if shared.is_file() else None)


def parse_seeds(text):
    """sampling.parse_seeds, its ValueError told by argparse as one line."""
    try:
        return sampling.parse_seeds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def whole_number(text, low, high=None):
    """int(text), refused by argparse with one line unless low <= value (<= high)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        wanted = f">= {low}" if high is None else f"from {low} to {high}"
        raise argparse.ArgumentTypeError(f"expected a number {wanted}, got {value}")
    return value


def positive_int(text):
    return whole_number(text, 1)


def positive_float(text):
    """float(text), refused by argparse with one line unless it is a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def port_number(text):
    return whole_number(text, 0, 65535)


def add_backend(p, auto=False, default=None):
    """The one --backend flag of every command, lesson, example and benchmark ("auto": cupy if usable)."""
    choices = ("auto", "numpy", "cupy") if auto else ("numpy", "cupy")
    p.add_argument("--backend", choices=choices, default=default,
                   help="array backend: numpy (CPU) or cupy (GPU)" + ("; auto = cupy when a GPU is usable" if auto
                                                                       else "") +
                        (f" (default: {default})" if default else "; default: $TINYGAN_BACKEND, else numpy"))


def use_backend(name):
    """Select the backend named by --backend (None: leave it to $TINYGAN_BACKEND); returns its name."""
    from . import backend
    if name == "auto":
        name = "cupy" if backend.gpu_available() else "numpy"
    if name:
        backend.use(name)
    return backend.name()


def free_output(path, what="--out"):
    """Refuse an output path that is an existing folder (a file is replaced)."""
    if Path(path).is_dir():
        raise ValueError(f"{what} {path} is a folder; expected a file name")
    return Path(path)


def image_format(path, what="--out"):
    """The Pillow format for an output file's suffix; ValueError for a suffix tinygan does not write."""
    fmt = IMAGE_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{what} {path}: cannot tell the image format from its suffix; "
                         f"expected one of {', '.join(IMAGE_SUFFIXES)}")
    return fmt


def add_checkpoint(p, what="generator"):
    """--checkpoint (default: the pretrained generator), --raw and --backend."""
    p.add_argument("--checkpoint", "-c", help=f"training checkpoint, run folder or {what} .npz "
                   "(default: the pretrained generator shipped with tinygan)")
    p.add_argument("--raw", action="store_true", help="use a checkpoint's raw G, not its averaged G (G_ema)")
    add_backend(p)
