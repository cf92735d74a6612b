"""What the demo reads from disk: the models, and a training run's progress, both trusted as little as possible.

A run folder changes while the demo reads it, and may be damaged: a checkpoint truncated by a crash, a loss-log
row with text in it, a sample grid that is a symlink to somewhere else. The demo keeps serving the last good
state: a checkpoint that does not load is passed over (and tried again only when the file changes), rows that
are not numbers are skipped, and only regular files inside the run folder are served. The page is told what was
skipped, by file name: it never sees an absolute path.
"""
import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .. import logs, model_files, run_folder
from ..run_folder import SAMPLE_NAME, RunFolder

LOG_TAIL_BYTES = 1 << 20            # the last MB of a log: about 4,000 rows of loss_log.csv
MAX_SAMPLE_BYTES = 16 << 20         # a sample grid larger than this is not one the run wrote


def file_stamp(path):
    """(size, mtime) of a file, or None: a file rewritten since it failed to load is tried again."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


class Models:
    """G and D of a run, a checkpoint or the pretrained file, reloaded when a run writes a newer checkpoint.

    Every use goes through ``with models.lock``: the modules are not thread-safe. ``problem`` says, in one line
    without a path, which newer checkpoint could not be read while an older one serves.
    """

    def __init__(self, source=None, raw=False):
        self.source, self.raw = (Path(source) if source else None), raw
        self.run = self.source if self.source is not None and self.source.is_dir() else None
        self.lock = threading.Lock()
        self.loaded_from, self.problem, self.failed = None, None, {}
        self.G = self.D = self.faces = None
        self.refresh()

    def candidates(self):
        """The files to load from, newest first."""
        if self.run is not None:
            return [path for _, path in reversed(run_folder.run_checkpoints(self.run))]
        return [self.source if self.source is not None else model_files.PRETRAINED]

    def refresh(self):
        """Load G (and D, if the file has one) from the newest checkpoint that loads, unless it is loaded already.

        Raises only when no model has loaded yet: then there is nothing to serve.
        """
        candidates = self.candidates()
        if not candidates and self.G is None:
            raise FileNotFoundError(f"no checkpoint found at {self.run} {run_folder.NOT_FOUND}")
        for path in candidates:
            if path == self.loaded_from or self.load(path):
                break
        if self.G is None:
            path, (_, err) = next(iter(self.failed.items()))
            raise ValueError(f"cannot load {path}: {err}")
        newer = candidates[:candidates.index(self.loaded_from)] if self.loaded_from in candidates else candidates
        skipped = [self.display_name(p) for p in newer if p in self.failed]
        self.problem = (f"{', '.join(skipped)} could not be read; {self.display_name(self.loaded_from)} serves "
                        "instead" if skipped else None if candidates else
                        "the run folder has no checkpoint now; the last one loaded still serves")

    def load(self, path):
        """Load G and D from ``path``; False if it fails (then it is tried again only once the file changes)."""
        stamp = file_stamp(path)
        if path in self.failed and self.failed[path][0] == stamp:
            return False
        try:
            G = model_files.load_generator(path, raw=self.raw)
            try:
                D = model_files.load_discriminator(path)
            except ValueError:                       # a generator file without D: Judge is off
                D = None
            faces = model_files.load_face_model(path) if D is not None and D.role == "judge" else None
        except (ValueError, OSError) as err:         # truncated, corrupt, or gone since it was listed
            self.failed[path] = (stamp, err)
            print(f"tinygan demo: cannot load {path}: {err}", file=sys.stderr)
            return False
        self.G, self.D, self.faces, self.loaded_from = G, D, faces, path
        return True

    def display_name(self, path):
        """A file as the page may see it: inside the run folder, or its name; never an absolute path."""
        path = Path(path)
        if path == model_files.PRETRAINED:
            return "tinygan's pretrained generator"
        if self.run is not None and path.is_relative_to(self.run):
            return f"{self.run.name}/{path.relative_to(self.run).as_posix()}"
        return path.name


# --- a run's progress --------------------------------------------------------------------------------------

def read_log_tail(path, max_bytes=LOG_TAIL_BYTES):
    """(rows, skipped) of a CSV log: its header and the rows of its last ``max_bytes``.

    A row is kept only when every field is a number (NaN and infinities become None, which JSON can carry);
    ``skipped`` counts the others. A missing file has no rows.
    """
    try:
        with open(path, "rb") as f:
            header = f.readline(1 << 16)
            end = f.seek(0, 2)
            start = max(len(header), end - max_bytes)
            f.seek(start)
            data = f.read(end - start)
    except OSError:
        return [], 0
    if start > len(header):
        data = data[data.find(b"\n") + 1:]                 # the first line read is a piece of a row
    rows = logs.parse_log((header + data).decode("utf-8", errors="replace"))
    kept = [{key: value if math.isfinite(value) else None for key, value in row.items()}
            for row in rows if None not in row and all(type(v) in (int, float) for v in row.values())]
    return kept, len(rows) - len(kept)


def read_config(run):
    try:
        config = json.loads(RunFolder(run).config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def newest_sample(run):
    """The newest sample grid step_N.png of the run: a regular file inside the run folder, or None."""
    inside = run.resolve()
    for _, path in reversed(RunFolder(run).sample_grids()):
        try:
            real = path.resolve(strict=True)
            if real.is_relative_to(inside) and real.is_file() and real.stat().st_size <= MAX_SAMPLE_BYTES:
                return path
        except (OSError, RuntimeError):                   # gone, or a symlink loop
            continue
    return None


def run_progress(run):
    """The run's log, FID log, judge log and timing, read from its folder: a JSON-able dict."""
    folder = RunFolder(run)
    rows, skipped = read_log_tail(folder.loss_log)
    fid_rows, fid_skipped = read_log_tail(folder.fid_log)
    judge_rows, judge_skipped = read_log_tail(folder.judge_log)
    config = read_config(run)
    progress = {"rows": rows[-2000:], "fid": fid_rows, "judge": judge_rows[-2000:],
                "step": rows[-1]["step"] if rows else 0,
                "skipped_rows": skipped + fid_skipped + judge_skipped, "updated_seconds_ago": None}
    if rows:
        stamp = file_stamp(folder.loss_log)
        progress["updated_seconds_ago"] = time.time() - stamp[1] / 1e9 if stamp else None
    if rows and rows[-1].get("epoch"):
        per_epoch = rows[-1]["step"] / rows[-1]["epoch"]
        total = config.get("max_steps") or round(number(config.get("epochs"), 0) * per_epoch)
        total = number(total, progress["step"])
        speeds = [r["img_per_s"] for r in rows[-10:] if r.get("img_per_s") is not None]
        img_per_s = float(np.median(speeds)) if speeds else None
        steps_left = max(total - progress["step"], 0)
        progress.update(total_steps=total, img_per_s=img_per_s,
                        eta_seconds=steps_left * number(config.get("batch_size"), 128) / img_per_s
                        if img_per_s else None)
    sample = newest_sample(run)
    progress["samples_step"] = int(SAMPLE_NAME.fullmatch(sample.name).group(1)) if sample else None
    return progress


def number(value, default):
    """A number from a run's config.json, or ``default`` where a damaged file holds something else."""
    return value if type(value) in (int, float) and math.isfinite(value) else default
