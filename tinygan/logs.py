"""A run's CSV logs: what their columns are, the file that is safe to append to across resumes, and the window of
steps that becomes one row of the loss log.

    loss_log.csv    LOG_FIELDS, one row per log_every steps: the means over those steps (LogWindow)
    fid_log.csv     FID_FIELDS, one row per FID score (tinygan.monitor.FIDTracker)
    judge_log.csv   JUDGE_FIELDS, one row per checkpoint: D as a judge (tinygan.monitor.JudgeTracker)

The files' names are tinygan.run_folder's; their columns are here, and nowhere else.
"""
import csv
import io
from pathlib import Path

import numpy as np

from . import backend
from .files import atomic_write

# d_real, d_fake: mean D(x) and D(G(z)). d_acc_real, d_acc_fake: D's accuracy, the share of real images it
# calls real (D(x) > 0.5) and of generated ones it calls fake (D(G(z)) < 0.5); d_acc: both together.
LOG_FIELDS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "d_acc_real", "d_acc_fake", "d_acc",
              "img_per_s")
ACCURACY_FIELDS = ("d_acc_real", "d_acc_fake", "d_acc")     # a log started before the accuracy was logged lacks them
# The columns tinygan.viz.plot_losses reads: "step", "d_loss", "g_loss" required, "d_real", "d_fake" optional.
LOSS_FIELDS = ("step", "d_loss", "g_loss", "d_real", "d_fake")
HEALTH_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")      # a non-finite one stops the run
STAT_KEYS = HEALTH_KEYS + ("d_acc_real", "d_acc_fake")       # what a training step returns, in this order
FID_FIELDS = ("step", "epoch", "fid", "n_fake", "n_real", "generator")
# D as a judge (tinygan.judge.accuracy): eval mode, one image at a time, on held-out real faces and fresh fakes
JUDGE_FIELDS = ("step", "epoch", "real_called_real", "fake_called_fake", "accuracy", "mean_p_real", "mean_p_fake",
                "n_real", "n_fake")


# --- reading ----------------------------------------------------------------------

def _parse_number(text):
    """'12' -> 12, '0.5' -> 0.5, 'nan' -> nan, anything else stays a string."""
    for parse in (int, float):
        try:
            return parse(text)
        except (TypeError, ValueError):
            pass
    return text


def read_log(path):
    """The rows of a CSV log as dicts, numbers parsed.

    An unfinished last line (no newline: the writer crashed mid-row) is ignored.
    """
    return parse_log(Path(path).read_text(encoding="utf-8"))


def parse_log(text):
    """The rows of a CSV log's text (header line first), numbers parsed; an unfinished last line is ignored."""
    text = text[:text.rfind("\n") + 1]
    return [{k: _parse_number(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


# --- writing ----------------------------------------------------------------------

class CsvLog:
    """A CSV file with one row per logged step, safe to append to across resumes.

    ``fields`` names the columns and must include ``"step"``. Each ``append``
    opens the file, writes one row and closes it, so the row is on disk even
    if the run is killed a moment later. ``optional`` fields may be missing from
    a log that an older version started: it keeps its own columns when resumed.
    """

    def __init__(self, path, fields, optional=()):
        self.path = Path(path)
        self.fields = tuple(fields)
        self.optional = tuple(optional)
        if "step" not in self.fields:
            raise ValueError(f"CsvLog({self.path}): fields must include 'step', got {self.fields}")

    def _existing_header(self):
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        with open(self.path, newline="", encoding="utf-8") as f:
            return tuple(next(csv.reader(f), ()))

    def _columns(self, header):
        """The columns rows are written with, given the existing log's header (None: no log yet): ``fields``,
        or the header of a log that lacks just the optional ones."""
        if header is None or header == self.fields:
            return self.fields
        if header == tuple(name for name in self.fields if name not in self.optional):
            return header
        raise ValueError(f"{self.path} has columns {header}, expected {self.fields}")

    def _write_rows(self, handle, rows, header, columns):
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)

    def append(self, row):
        """Write one row (a dict with exactly the log's fields) and flush it."""
        if set(row) != set(self.fields):
            raise ValueError(f"{self.path}: row has keys {sorted(row)}, expected {sorted(self.fields)}")
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}  # numpy/cupy scalars
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = self._existing_header()
        columns = self._columns(header)            # refuses a log with other columns before writing
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            self._write_rows(f, [row], header is None, columns)

    def read(self):
        """All rows as dicts with numeric values parsed; [] if the file does not exist yet."""
        return read_log(self.path) if self.path.is_file() else []

    def truncate_after(self, step):
        """Drop the rows logged after ``step`` (and an unfinished last line).

        Call it when resuming from the checkpoint at ``step``: rows the crashed
        run wrote past its last checkpoint will be logged again, so keeping them
        would duplicate them.
        """
        if not self.path.is_file():
            return
        columns = self._columns(self._existing_header())
        kept = [row for row in self.read() if row["step"] <= step]
        with atomic_write(self.path) as handle:
            text = io.StringIO()
            self._write_rows(text, kept, True, columns)
            handle.write(text.getvalue().encode("utf-8"))


# --- the steps of one row -------------------------------------------------------------

class LogWindow:
    """The steps since the last row of the loss log: each step's stats (0-d arrays on the backend, so that a
    GPU is not waited for every step) and the seconds they took. A checkpoint keeps an unfinished window, so
    that a resumed run logs the same means."""

    def __init__(self):
        self.steps, self.seconds = [], 0.0

    def add(self, stats):
        self.steps.append(stats)

    def values(self, last=None):
        """(steps, len(STAT_KEYS)) float64 array of the window's (or its ``last`` steps') stats, read in one go."""
        xp = backend.xp
        steps = self.steps if last is None else self.steps[-last:]
        return backend.to_numpy(xp.stack([xp.stack([xp.asarray(s[k], dtype=np.float64) for k in STAT_KEYS])
                                          for s in steps]))

    def clear(self):
        self.steps, self.seconds = [], 0.0

    def state(self):
        """What a checkpoint keeps of an unfinished window (None for an empty one)."""
        return {"stats": self.values(), "seconds": self.seconds} if self.steps else None

    def load_state(self, state):
        """Continue a checkpoint's window; one from before the accuracy was logged holds 4 stats a step, and
        the others are unknown (NaN)."""
        self.clear()
        if state:
            stats = pad_stats(state["stats"])
            self.steps, self.seconds = [dict(zip(STAT_KEYS, row)) for row in stats], float(state["seconds"])


def pad_stats(stats):
    """(steps, k) stats as (steps, len(STAT_KEYS)), the missing ones NaN."""
    stats = np.asarray(stats, dtype=np.float64)
    return np.pad(stats, ((0, 0), (0, len(STAT_KEYS) - stats.shape[1])), constant_values=np.nan)


def means(values):
    """The fields of a loss-log row from a window's values: the mean of each stat, and D's accuracy on both."""
    row = dict(zip(STAT_KEYS, values.mean(axis=0).tolist()))
    row["d_acc"] = (row["d_acc_real"] + row["d_acc_fake"]) / 2          # real and fake batches are equal
    return row
