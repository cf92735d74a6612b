"""What every lesson shares: its flags, its output folder, the faces it needs, and its printed checks.

A lesson is used like this::

    lesson = Lesson("05_conv_transpose", __doc__)
    args = lesson.parse()                 # --quick, --out, --data, --backend, --seed, plus the lesson's own flags
    lesson.check("relative error", err, err < 1e-6, "should be < 1e-6")
    lesson.save_figure(fig, "adjoint.png")
    lesson.finish()                       # exit status 1 if any check failed (in a notebook: LessonFailed)

Every lesson is a percent-format script (``# %%`` code cells, ``# %% [markdown]`` text
cells): it runs from the shell, and it opens cell by cell as a notebook in Jupyter (with
jupytext), VS Code or PyCharm. In a notebook the flags come from $TINYGAN_LESSON_ARGS
(default: none) and figures are shown inline as well as saved.

It is plumbing, not a lesson: nothing here teaches deep learning.
"""
import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import backend, viz
from ..options import HelpFormatter, add_backend, default_data, default_fid_weights, use_backend
from ..synthetic import write_synthetic_faces

DEFAULT_FID_WEIGHTS = default_fid_weights()    # $TINYGAN_FID_WEIGHTS, else ../shared's beside a checkout
FACES_LIMIT = {True: 512, False: 2000}   # images cached for the lessons that only look at faces (quick, full)


def in_notebook():
    """True inside a Jupyter kernel (then sys.argv holds the kernel's own arguments)."""
    return "ipykernel" in sys.modules


class LessonFailed(AssertionError):
    """A lesson's check failed, inside a notebook (a script exits with status 1 instead)."""


class LessonStopped(Exception):
    """A lesson cannot go on (a bad flag in $TINYGAN_LESSON_ARGS, no face data), inside a notebook: one line that
    says why, where a script prints it and exits (IPython shows ``_render_traceback_`` instead of a traceback)."""

    def _render_traceback_(self):
        return [f"LessonStopped: {self}"]


class Lesson:
    def __init__(self, name, doc, default_backend="numpy", needs_faces=False):
        self.name = name
        self.needs_faces = needs_faces       # full mode: say at once when there are no faces, not after the checks
        self.failures = []
        self.start = time.perf_counter()
        self.args = self.out = None
        summary = (doc or "").strip().split("\n\n")[0]
        self.parser = argparse.ArgumentParser(prog=f"{name}.py", description=summary,
                                              formatter_class=HelpFormatter)
        p = self.parser
        p.add_argument("--quick", action="store_true", help="tiny shapes and few steps (seconds, for CI); "
                       "every check still runs and every figure is still written")
        p.add_argument("--out", default=str(Path("lesson_output") / name), help="folder for the figures")
        p.add_argument("--data", default=default_data(), help="CelebA folder, .zip or .tar; "
                       "$TINYGAN_DATA, else ../shared/data/celeba_align_89x109_10k.tar")
        add_backend(p, auto=True, default=default_backend)
        p.add_argument("--seed", type=int, default=0, help="seed for every random number in the lesson")

    # --- start and end ---------------------------------------------------------
    def parse(self):
        argv = None
        if in_notebook():                  # the flags come from $TINYGAN_LESSON_ARGS; a bad one is named there
            text = os.environ.get("TINYGAN_LESSON_ARGS", "")
            try:
                argv = shlex.split(text)
            except ValueError as err:
                self.stop(f"TINYGAN_LESSON_ARGS={text!r} cannot be read: {err}")
            flags = " ".join(sorted({o for a in self.parser._actions for o in a.option_strings if o != "-h"}))
            self.parser.error = lambda message: self.stop(f"TINYGAN_LESSON_ARGS={text!r}: {message} (this "
                                                          f"lesson's flags: {flags})")
            self.parser.exit = lambda status=0, message=None: self.stop(
                message or "the help is printed above; take --help out of TINYGAN_LESSON_ARGS to run the lesson")
        args = self.args = self.parser.parse_args(argv)
        try:
            use_backend(args.backend)
        except RuntimeError as err:
            self.stop(str(err))
        if self.needs_faces and not args.quick:
            self.data_source()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        mode = "quick" if args.quick else "full"
        print(f"== lesson {self.name} ({mode} mode, backend {backend.name()}) ==")
        return args

    def stop(self, message):
        """The lesson cannot go on: a script prints why and exits with status 1; a notebook raises LessonStopped."""
        if in_notebook():
            raise LessonStopped(f"{self.name}: {message}")
        sys.exit(f"{self.name}: {message}")

    def finish(self):
        seconds = time.perf_counter() - self.start
        print(f"\nfigures are in {self.out.resolve()}")
        if self.failures:
            message = f"{len(self.failures)} check(s) FAILED: {'; '.join(self.failures)} ({seconds:.1f} s)"
            print(message)
            if in_notebook():              # a notebook ("Run all", nbclient, a grader) must stop with an error
                raise LessonFailed(message)
            sys.exit(1)
        print(f"all checks passed ({seconds:.1f} s)")

    # --- checks ----------------------------------------------------------------
    def check(self, what, value, ok, should):
        """Print ``what: value (should ...)`` with ok/FAIL in front, and remember failures.

        Returns nothing, like every printing method here: a notebook cell that ends in one shows no Out[]."""
        ok = bool(ok)
        shown = f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)
        print(f"  {'ok  ' if ok else 'FAIL'}  {what}: {shown} ({should})")
        if not ok:
            self.failures.append(what)

    def check_gradients(self, errors, of="module", tol=1e-6):
        """One check per entry of a tinygan.gradcheck result {"input": err, "weight": err, ...}."""
        for name, err in errors.items():
            self.check(f"{of}: relative gradient error of {name}", err, err < tol, f"should be < {tol:g}")

    # --- figures -----------------------------------------------------------------
    def figure(self, nrows=1, ncols=1, size=(4, 3.2), **kwargs):
        """A matplotlib Figure (no pyplot, no display) and its axes; ``size`` is per panel."""
        fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
        return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)

    def save_figure(self, fig, filename):
        """Save a figure as a PNG in the lesson's folder (and show it, in a notebook)."""
        path = self.out / filename
        FigureCanvasAgg(fig)
        fig.savefig(path, dpi=100)
        print(f"wrote {path}")
        self.show(path)

    def show(self, png_path):
        if in_notebook():
            try:
                from IPython.display import Image, display
            except ImportError:            # a kernel without IPython's display: the file is written all the same
                return
            display(Image(filename=str(png_path)))

    def save_grid(self, images, filename, nrow=8):
        """Images (float (N, 3, H, W) in [-1, 1] or uint8 (N, H, W, 3)) as one PNG grid."""
        path = viz.save_grid(images, self.out / filename, nrow=nrow)
        print(f"wrote {path}")
        self.show(path)

    # --- data ------------------------------------------------------------------
    def data_source(self, synthetic_count=256):
        """The face images to read: --data, or in quick mode a folder of synthetic faces written here."""
        if self.args.data and Path(self.args.data).expanduser().exists():
            return Path(self.args.data).expanduser()
        missing = f"--data {self.args.data} does not exist" if self.args.data else "no face data was found"
        if not self.args.quick:
            from tinygan.download import CELEBA_HELP
            self.stop(f"{missing}. This lesson needs face photos: pass --data PATH or set TINYGAN_DATA (or run "
                      f"with --quick to use drawn faces).\n\n{CELEBA_HELP}")
        folder = self.out / "synthetic_faces"
        print(f"NOTE: {missing}; --quick uses {synthetic_count} synthetic faces drawn with PIL in {folder}. "
              "They only look like faces from far away.")
        if len(list(folder.glob("*.jpg"))) != synthetic_count:
            write_synthetic_faces(folder, synthetic_count, seed=self.args.seed)
        return folder

    def faces(self, n):
        """n faces as uint8 (n, 64, 64, 3), through tinygan.data (cropped, resized, cached)."""
        from tinygan.data import FaceDataset
        limit = max(n, FACES_LIMIT[self.args.quick])
        source = self.data_source(synthetic_count=max(n, 128))
        dataset = FaceDataset(source, limit=limit, verbose=False)
        if len(dataset) < n:
            self.stop(f"{source} holds {len(dataset)} usable images, the lesson needs {n}")
        return np.asarray(dataset.images[:n])
