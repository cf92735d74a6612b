"""A training run's folder: the name of every file a run writes (RunFolder), its checkpoints, and taking it over.

    RUN/config.json                    the run's settings (rebuilds it on --resume)
    RUN/loss_log.csv                   one row per log window      } columns: tinygan.logs
    RUN/fid_log.csv, judge_log.csv     one row per score           }
    RUN/loss_plot.png, fid_plot.png    their plots
    RUN/samples/step_000400.png        the fixed-noise grid of a step
    RUN/training.gif                   the grids, animated
    RUN/fid_reference.npz              Inception statistics of the real faces, computed once per run
    RUN/checkpoints/ckpt_000400.npz    everything that decides the next step; the newest few are kept
    RUN/checkpoints/best.npz           the checkpoint of the best FID so far
    RUN/.lock                          held while a run trains here (tinygan.files.RunLock)

Every module asks a RunFolder for these paths: this file is the only one that spells them.

A run folder belongs to one run. A new run refuses a folder where another run's checkpoints or log are (unless
told to overwrite them, and then it deletes only the files a run writes); a run resumed into another folder
starts with copies of the source run's logs; files of a killed run's unfinished writes are removed.
"""
import re
import shutil
from pathlib import Path

import numpy as np

from . import checkpoint, files, logs

CONFIG, LOSS_LOG, FID_LOG, JUDGE_LOG = "config.json", "loss_log.csv", "fid_log.csv", "judge_log.csv"
LOSS_PLOT, FID_PLOT, GIF, FID_REFERENCE = "loss_plot.png", "fid_plot.png", "training.gif", "fid_reference.npz"
SAMPLES, CHECKPOINTS, BEST, LOCK = "samples", "checkpoints", "best.npz", ".lock"
CHECKPOINT_NAME, SAMPLE_NAME = re.compile(r"ckpt_(\d+)\.npz"), re.compile(r"step_(\d+)\.png")
CHECKPOINT_PATTERN, SAMPLE_PATTERN = f"{CHECKPOINTS}/ckpt_*.npz", f"{SAMPLES}/step_*.png"    # as messages show them
NOT_FOUND = f"(expected a .npz file or a run directory with {CHECKPOINT_PATTERN})"


class RunFolder:
    """The paths of one run's files (see the module's docstring); building one touches nothing on disk."""

    def __init__(self, root):
        root = self.root = Path(root)
        self.config, self.loss_log, self.fid_log, self.judge_log = (root / name for name in
                                                                    (CONFIG, LOSS_LOG, FID_LOG, JUDGE_LOG))
        self.loss_plot, self.fid_plot, self.gif, self.fid_reference = (root / name for name in
                                                                       (LOSS_PLOT, FID_PLOT, GIF, FID_REFERENCE))
        self.samples, self.checkpoints, self.lock = root / SAMPLES, root / CHECKPOINTS, root / LOCK
        self.best = self.checkpoints / BEST

    def __repr__(self):
        return f"RunFolder({str(self.root)!r})"

    def run_files(self):
        """The files a run writes at the top of its folder (what --overwrite deletes, with checkpoints and grids)."""
        return (self.config, self.loss_log, self.fid_log, self.judge_log, self.loss_plot, self.fid_plot, self.gif,
                self.fid_reference)

    def carried_files(self):
        """What a run resumed into another folder starts with: copies of these."""
        return (self.loss_log, self.fid_log, self.judge_log, self.fid_reference, self.best)

    def sample(self, step):
        """samples/step_000400.png: the fixed-noise grid of ``step``."""
        return self.samples / f"step_{int(step):06d}.png"

    def sample_grids(self):
        """[(step, path), ...] of the sample grids by name, oldest first (what is behind a name is not checked)."""
        return numbered_files(self.samples, SAMPLE_NAME)

    def checkpoint(self, step):
        """checkpoints/ckpt_000400.npz: the checkpoint of ``step``."""
        return step_path(self.checkpoints, step)

    def checkpoint_files(self):
        """[(step, path), ...] of the run's checkpoints, oldest first."""
        return list_checkpoints(self.checkpoints)

    def holds_a_run(self):
        """True if the folder holds a training run's checkpoints or log rows."""
        if self.checkpoint_files():
            return True
        return self.loss_log.is_file() and bool(logs.read_log(self.loss_log))


def numbered_files(folder, pattern):
    """[(number, path), ...] of the regular files in ``folder`` whose whole name ``pattern`` matches, sorted."""
    folder = Path(folder)
    try:
        names = [(int(match.group(1)), path) for path in folder.iterdir() if (match := pattern.fullmatch(path.name))]
    except OSError:                       # no folder (yet), or not readable
        return []
    return sorted((number, path) for number, path in names if path.is_file())


# --- checkpoints: finding, pruning ----------------------------------------------------------

def step_path(directory, step):
    """The checkpoint path for ``step``: ``directory/ckpt_000400.npz``."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return Path(directory) / f"ckpt_{int(step):06d}.npz"


def list_checkpoints(directory):
    """``[(step, path), ...]`` of the checkpoints in ``directory``, oldest first.

    Only names that are exactly ``ckpt_<digits>.npz`` count, so temp files and unrelated files are never listed.
    """
    return numbered_files(directory, CHECKPOINT_NAME)


def latest(directory):
    """The path of the checkpoint with the highest step, or None if there is none."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def run_checkpoints(path):
    """[(step, path), ...] of a run directory: its checkpoints/ folder, or the directory itself."""
    for folder in (RunFolder(path).checkpoints, Path(path)):
        found = list_checkpoints(folder)
        if found:
            return found
    return []


def find_checkpoint(path):
    """A checkpoint file, or the newest one under a run directory (or its checkpoints/ folder)."""
    path = Path(path)
    if path.is_file():
        return path
    found = run_checkpoints(path)
    if not found:
        raise FileNotFoundError(f"no checkpoint found at {path} {NOT_FOUND}")
    return found[-1][1]


def load_newest(path):
    """Load the newest checkpoint of a run that loads; returns (tree, path, skipped).

    ``path`` is a checkpoint file (loaded as it is) or a run directory. In a
    directory, a newest checkpoint that is truncated or corrupt is skipped for
    the one before it; ``skipped`` lists ``(path, reason)`` for each one passed over.
    """
    path = Path(path)
    if path.is_file():
        return checkpoint.load(path), path, []
    skipped = []
    for _, candidate in reversed(run_checkpoints(path)):
        try:
            return checkpoint.load(candidate), candidate, skipped
        except ValueError as err:
            skipped.append((candidate, str(err)))
    if skipped:
        raise ValueError(f"no checkpoint under {path} loads: " + "; ".join(reason for _, reason in skipped))
    raise FileNotFoundError(f"no checkpoint found at {path} {NOT_FOUND}")


def prune(directory, keep_last, protect=()):
    """Delete all but the newest ``keep_last`` checkpoints and those of the steps in ``protect``.

    Returns the deleted paths.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ValueError(f"keep_last must be an int >= 1 (the newest checkpoint is always kept), got {keep_last!r}")
    old = [path for step, path in list_checkpoints(directory)[:-keep_last] if step not in protect]
    for path in old:
        path.unlink()
    return old


def run_folder_of(checkpoint_path):
    """The run folder a checkpoint belongs to: RUN for RUN/checkpoints/ckpt_N.npz, else its own folder."""
    checkpoint_path = Path(checkpoint_path).resolve()
    parent = checkpoint_path.parent
    return parent.parent if parent == RunFolder(parent.parent).checkpoints else parent


def stopped_before_first_checkpoint(path):
    """True for a run folder with a config but no checkpoint: a run stopped before it saved anything."""
    folder = RunFolder(path)
    return Path(path).is_dir() and not folder.checkpoint_files() and folder.config.is_file()


# --- taking a folder over ----------------------------------------------------------------

def holds_a_run(folder):
    """True if ``folder`` holds a training run's checkpoints or log rows."""
    return RunFolder(folder).holds_a_run()


def refuse(out, resumed_from=None, overwrite=False, lock=True):
    """The refusals that need no data, made before any is decoded: ``out`` is a file, another process trains in
    it (its lock, unless ``lock`` is False), or it holds another run (unless ``overwrite``, or the run is resumed
    where it is)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a folder for the run")
    if lock:                             # (the run itself checks with its lock held)
        files.RunLock.check(RunFolder(out).lock)
    if not overwrite and holds_another_run(out, resumed_from):
        what = f"continue it with --resume {out}" if resumed_from is None else "resume into another --out"
        raise ValueError(f"{out} already holds a training run (checkpoints or a loss log): {what}, "
                         "replace it with --overwrite, or choose another --out")


def holds_another_run(out, resumed_from):
    continues_here = resumed_from is not None and Path(resumed_from).resolve() == Path(out).resolve()
    return not continues_here and holds_a_run(out)


def take_over(out, resumed_from, overwrite, say):
    """Make ``out`` this run's folder: refuse another run's (or, with ``overwrite``, delete its files), copy the
    source run's logs when resuming into a new folder, and remove the unfinished files of a killed run."""
    folder = RunFolder(out)
    refuse(out, resumed_from, overwrite, lock=False)
    if holds_another_run(out, resumed_from):
        remove_run_files(folder, say)
    if resumed_from is not None and Path(resumed_from).resolve() != Path(out).resolve():
        copy_logs(RunFolder(resumed_from), folder)
    for where in (folder.root, folder.checkpoints, folder.samples):
        stale = files.remove_stale_temp_files(where)
        if stale:
            say(f"removed {len(stale)} unfinished file(s) of a killed run from {where}: "
                + ", ".join(path.name for path, _ in stale))


def remove_run_files(folder, say):
    """--overwrite: delete the files a tinygan run writes (and nothing else) from the folder."""
    for path in folder.run_files() + (folder.best,):
        path.unlink(missing_ok=True)
    for _, path in folder.checkpoint_files() + folder.sample_grids():
        path.unlink()
    say(f"--overwrite: removed the previous run's checkpoints, samples and logs from {folder.root}")


def copy_logs(source, folder):
    """Resumed into a new folder: it starts with the source run's logs and best checkpoint (copies)."""
    for original, copy in zip(source.carried_files(), folder.carried_files()):
        if original.is_file():
            with files.atomic_write(copy) as handle, open(original, "rb") as reading:
                shutil.copyfileobj(reading, handle)
