"""Command-line options that the CLI, the lessons, the examples and the benchmarks share: argparse types that
refuse a bad value with one line, the --backend flag, and the help formatter. Importing it loads nothing but
argparse (and tinygan.sampling for the seed lists), so a script can use it without importing the CLI."""
import argparse
from pathlib import Path

from . import sampling


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: ...)' unless the default is None, False or already in the help text."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


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
