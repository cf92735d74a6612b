"""Checkpoints as plain ``.npz`` files (no pickle), and a CSV loss log.

A checkpoint is a nested dict, for example::

    {"step": 400,
     "config": {"nz": 100, "ngf": 64},          # rebuilds the model
     "G": G.state_dict(), "D": D.state_dict(),  # name -> array
     "optim_G": {"m.0": ..., "v.0": ..., "steps": 400},
     "rng": rng.state()}

``save`` flattens it to keys joined with "/" (``G/main.0.weight``,
``optim_G/m.3``) and writes one array per key with ``np.savez``. A dict that
holds no arrays at all (like ``config``) is stored as one JSON string, in a
0-d unicode array, and so is every number or string that is not an array
(``"step": 400``). A small manifest under ``__tinygan__`` lists the JSON keys,
so ``load`` gives back the same kinds of values it was given.

Nothing here ever unpickles: ``load`` always passes ``allow_pickle=False``,
because loading a pickle runs whatever code the file's author put in it.

Writes are atomic (:func:`tinygan.files.atomic_write`): a crash mid-write
leaves the previous file untouched, never a half-written one.
"""
import csv
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .files import atomic_write

SEP = "/"                    # joins nested keys: "G/main.0.weight"
MANIFEST_KEY = "__tinygan__"
FORMAT_VERSION = 1
RESERVED_KEYS = (MANIFEST_KEY, "file", "allow_pickle")  # "file", "allow_pickle": np.savez's own arguments


# --- flatten / unflatten -----------------------------------------------------

def _is_array(value):
    return isinstance(value, (np.ndarray, np.generic)) or backend.is_cupy_array(value)


def _holds_arrays(tree):
    """True if any leaf of the nested dict ``tree`` is an array."""
    return any(_holds_arrays(v) if isinstance(v, dict) else _is_array(v) for v in tree.values())


def flatten(tree, prefix=""):
    """Nested dict -> (flat dict key -> numpy array, list of the keys that hold JSON text).

    Arrays stay arrays. A dict that holds arrays is flattened further. Any
    other value (a number, a string, a dict of them like ``config``) becomes
    JSON text in a 0-d unicode array; JSON keeps int, float, bool and str apart.
    """
    flat, json_keys = {}, []
    for name, value in tree.items():
        if not isinstance(name, str) or not name or SEP in name:
            raise ValueError(f"checkpoint keys must be non-empty strings without {SEP!r}, got {name!r}")
        key = prefix + name
        if isinstance(value, dict) and _holds_arrays(value):
            sub_flat, sub_json_keys = flatten(value, key + SEP)
            flat.update(sub_flat)
            json_keys += sub_json_keys
        elif _is_array(value):
            array = backend.to_numpy(value)
            if array.dtype.hasobject:
                raise ValueError(f"checkpoint key {key!r} has dtype object, which needs pickle; "
                                 "expected a numeric, bool or string array")
            flat[key] = array
        else:
            try:
                text = json.dumps(value, sort_keys=True)
            except (TypeError, ValueError) as err:
                raise ValueError(f"checkpoint key {key!r}: expected an array, a nested dict or a "
                                 f"JSON-able value, got {type(value).__name__} ({err})") from err
            flat[key] = np.array(text, dtype=np.str_)
            json_keys.append(key)
    return flat, json_keys


def unflatten(flat):
    """Flat dict with "/"-joined keys -> nested dict."""
    tree = {}
    for key, value in flat.items():
        *parents, leaf = key.split(SEP)
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return tree


# --- save / load -------------------------------------------------------------

def save(path, tree, keep_last=None, protect=()):
    """Write the nested dict ``tree`` to the ``.npz`` file ``path`` atomically.

    With ``keep_last=k`` and a name like ``ckpt_000400.npz``, the older
    checkpoints with the same prefix in the same directory are pruned
    afterwards, keeping the newest ``k`` and the steps in ``protect``.
    Returns the path as a ``Path``.
    """
    path = Path(path)
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: expected a dict to save, got {type(tree).__name__}")
    flat, json_keys = flatten(tree)
    clashes = [k for k in RESERVED_KEYS if k in flat]
    if clashes:
        raise ValueError(f"{path}: top-level keys {clashes} are reserved; rename them")
    manifest = {"format": FORMAT_VERSION, "json": json_keys}
    flat[MANIFEST_KEY] = np.array(json.dumps(manifest, sort_keys=True), dtype=np.str_)
    with atomic_write(path) as handle:
        np.savez(handle, **flat)   # a file handle, so numpy does not append ".npz" to the temp name
    if keep_last is not None:
        match = re.fullmatch(r"(.*?)\d+\.npz", path.name)
        if match is None:
            raise ValueError(f"{path}: keep_last needs a name like 'ckpt_000400.npz' (prefix, step, .npz)")
        prune(path.parent, keep_last, prefix=match.group(1), protect=protect)
    return path


def _read_arrays(path):
    """Every array of the ``.npz`` file ``path``, read eagerly, never unpickling."""
    flat = {}
    if Path(path).exists() and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a valid tinygan checkpoint: it is not an .npz (zip) archive")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not an .npz archive")
        with npz:
            for key in npz.files:
                try:
                    flat[key] = npz[key]
                except ValueError as err:
                    if "allow_pickle" not in str(err):
                        raise
                    raise ValueError(f"key {key!r} is a pickled object array, and tinygan "
                                     "never unpickles (allow_pickle=False)") from err
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a valid tinygan checkpoint: {err}") from err
    return flat


def load(path):
    """Read a checkpoint written by :func:`save`; returns the nested dict.

    Arrays come back as numpy arrays with their dtypes; everything else
    (Python numbers and strings, ``config``) as decoded JSON. Tuples come back
    as lists. A plain ``.npz`` of arrays (no manifest) loads too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    flat = _read_arrays(path)
    try:
        manifest = json.loads(flat.pop(MANIFEST_KEY).item()) if MANIFEST_KEY in flat else {"json": []}
        for key in manifest["json"]:
            flat[key] = json.loads(flat[key].item())
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a valid tinygan checkpoint: bad manifest ({err!r})") from err
    return unflatten(flat)


# --- finding and pruning checkpoints -----------------------------------------

def step_path(directory, step, prefix="ckpt_"):
    """The checkpoint path for ``step``: ``directory/ckpt_000400.npz``."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return Path(directory) / f"{prefix}{int(step):06d}.npz"


def list_checkpoints(directory, prefix="ckpt_"):
    """``[(step, path), ...]`` of the checkpoints in ``directory``, oldest first.

    Only names that are exactly ``<prefix><digits>.npz`` count, so temp files
    and unrelated files are never listed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.npz")
    found = []
    for path in directory.iterdir():
        match = pattern.fullmatch(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest(directory, prefix="ckpt_"):
    """The path of the checkpoint with the highest step, or None if there is none."""
    found = list_checkpoints(directory, prefix)
    return found[-1][1] if found else None


NOT_FOUND = "(expected a .npz file or a run directory with checkpoints/ckpt_*.npz)"


def run_checkpoints(path):
    """[(step, path), ...] of a run directory: its checkpoints/ folder, or the directory itself."""
    for folder in (Path(path) / "checkpoints", Path(path)):
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
        return load(path), path, []
    skipped = []
    for _, candidate in reversed(run_checkpoints(path)):
        try:
            return load(candidate), candidate, skipped
        except ValueError as err:
            skipped.append((candidate, str(err)))
    if skipped:
        raise ValueError(f"no checkpoint under {path} loads: " + "; ".join(reason for _, reason in skipped))
    raise FileNotFoundError(f"no checkpoint found at {path} {NOT_FOUND}")


def prune(directory, keep_last, prefix="ckpt_", protect=()):
    """Delete all but the newest ``keep_last`` checkpoints and those of the steps in ``protect``.

    Returns the deleted paths.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ValueError(f"keep_last must be an int >= 1 (the newest checkpoint is always kept), got {keep_last!r}")
    old = [path for step, path in list_checkpoints(directory, prefix)[:-keep_last] if step not in protect]
    for path in old:
        path.unlink()
    return old


# --- the CSV loss log --------------------------------------------------------

def _parse_number(text):
    """'12' -> 12, '0.5' -> 0.5, 'nan' -> nan, anything else stays a string."""
    for parse in (int, float):
        try:
            return parse(text)
        except (TypeError, ValueError):
            pass
    return text


def read_loss_log(path):
    """The rows of a CSV log as dicts, numbers parsed.

    An unfinished last line (no newline: the writer crashed mid-row) is ignored.
    """
    return parse_loss_log(Path(path).read_text(encoding="utf-8"))


def parse_loss_log(text):
    """The rows of a CSV log's text (header line first), numbers parsed; an unfinished last line is ignored."""
    text = text[:text.rfind("\n") + 1]
    return [{k: _parse_number(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


class LossLog:
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
            raise ValueError(f"LossLog({self.path}): fields must include 'step', got {self.fields}")

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
        return read_loss_log(self.path) if self.path.is_file() else []

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
