"""A training run's folder: what a run writes there, whether a folder holds a run, and taking it over.

A run folder belongs to one run. A new run refuses a folder where another run's checkpoints or log are (unless
told to overwrite them, and then it deletes only the files a run writes); a run resumed into another folder
starts with copies of the source run's logs; files of a killed run's unfinished writes are removed. The lock
that keeps a second run out while one trains is tinygan.files.RunLock.
"""
import shutil
from pathlib import Path

from . import checkpoint, files

RUN_FILES = ("config.json", "loss_log.csv", "fid_log.csv", "judge_log.csv", "loss_plot.png", "fid_plot.png",
             "training.gif", "fid_reference.npz")


def holds_a_run(folder):
    """True if ``folder`` holds a training run's checkpoints or log rows."""
    folder = Path(folder)
    if checkpoint.list_checkpoints(folder / "checkpoints"):
        return True
    log = folder / "loss_log.csv"
    return log.is_file() and bool(checkpoint.read_loss_log(log))


def run_folder_of(checkpoint_path):
    """The run folder a checkpoint belongs to: RUN for RUN/checkpoints/ckpt_N.npz, else its own folder."""
    checkpoint_path = Path(checkpoint_path).resolve()
    parent = checkpoint_path.parent
    return parent.parent if parent.name == "checkpoints" else parent


def refuse(out, resumed_from=None, overwrite=False, lock=True):
    """The refusals that need no data, made before any is decoded: ``out`` is a file, another process trains in
    it (its lock, unless ``lock`` is False), or it holds another run (unless ``overwrite``, or the run is resumed
    where it is)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a folder for the run")
    if lock:                             # (the run itself checks with its lock held)
        files.RunLock.check(out)
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
    refuse(out, resumed_from, overwrite, lock=False)
    if holds_another_run(out, resumed_from):
        remove_run_files(out, say)
    if resumed_from is not None and Path(resumed_from).resolve() != Path(out).resolve():
        copy_logs(resumed_from, out)
    for folder in (out, out / "checkpoints", out / "samples"):
        stale = files.remove_stale_temp_files(folder)
        if stale:
            say(f"removed {len(stale)} unfinished file(s) of a killed run from {folder}: "
                + ", ".join(path.name for path, _ in stale))


def remove_run_files(out, say):
    """--overwrite: delete the files a tinygan run writes (and nothing else) from the folder."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for _, path in checkpoint.list_checkpoints(out / "checkpoints"):
        path.unlink()
    (out / "checkpoints" / "best.npz").unlink(missing_ok=True)
    for path in (out / "samples").glob("step_*.png"):
        path.unlink()
    say(f"--overwrite: removed the previous run's checkpoints, samples and logs from {out}")


def copy_logs(source, out):
    """Resumed into a new folder: it starts with the source run's logs and best checkpoint (copies)."""
    for name in ("loss_log.csv", "fid_log.csv", "judge_log.csv", "fid_reference.npz", "checkpoints/best.npz"):
        if (source / name).is_file():
            with files.atomic_write(out / name) as handle, open(source / name, "rb") as original:
                shutil.copyfileobj(original, handle)
