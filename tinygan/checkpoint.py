"""Checkpoints as plain ``.npz`` files (no pickle). Which files a run keeps, and where: tinygan.run_folder.

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
import json
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

def save(path, tree):
    """Write the nested dict ``tree`` to the ``.npz`` file ``path`` atomically; returns the path as a ``Path``."""
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
