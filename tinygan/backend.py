"""The array backend: NumPy on the CPU or CuPy on an NVIDIA GPU.

Every array in tinygan lives on exactly one backend. Library code asks an array
which module it belongs to (``get_array_module(x)``) and calls that module, so
one body of code runs on both. Arrays cross between host and device only at the
edges, through ``to_device`` and ``to_numpy``.

Choose the backend with ``tinygan.backend.use("cupy")`` or with the environment
variable ``TINYGAN_BACKEND=cupy``. The variable is read the first time the
backend is needed, never at import time. This is the only module that imports
cupy.

On the GPU, CuPy's default memory pool keeps freed device memory for reuse.
Every training step allocates arrays of the same shapes, so from the second
step on an allocation is a lookup in the pool, not a cudaMalloc; tinygan
leaves the pool at its defaults.

Random numbers are always drawn on the host with NumPy and then moved to the
active backend. The same seed therefore gives the same bytes on the CPU and the
GPU: a seeded face is the same face wherever it is generated.
"""
import os

import numpy as np

DEFAULT_DTYPE = np.float32
BACKENDS = ("numpy", "cupy")
INSTALL_HINT = (
    "install the GPU extra with `pip install -e .[gpu]` "
    "(or the CuPy wheel matching your CUDA version, e.g. `pip install cupy-cuda12x`)"
)

_active = None   # the active array module, chosen lazily
_cupy = None     # the cupy module once imported


def _import_cupy():
    """Import cupy and check that a GPU is usable; raise a clear error if not."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            f"tinygan backend 'cupy' was requested but CuPy is not installed ({err}); "
            + INSTALL_HINT) from err
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise RuntimeError(
            f"tinygan backend 'cupy' was requested and CuPy is installed, but no usable GPU was found "
            f"({type(err).__name__}: {err}). Use the 'numpy' backend on this machine.") from err
    if n_gpus == 0:
        raise RuntimeError("tinygan backend 'cupy' was requested, CuPy is installed, but no GPU was found. "
                           "Use the 'numpy' backend on this machine.")
    _cupy = cupy
    return cupy


def use(name):
    """Select the array backend: ``"numpy"`` (CPU) or ``"cupy"`` (GPU). Returns the module."""
    global _active
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise ValueError(f"unknown tinygan backend {name!r}; expected one of {BACKENDS}")
    _active = _import_cupy() if name.lower() == "cupy" else np
    return _active


def active_module():
    """The active array module (numpy or cupy)."""
    if _active is None:
        use(os.environ.get("TINYGAN_BACKEND", "numpy").strip() or "numpy")
    return _active


def name():
    """Name of the active backend: 'numpy' or 'cupy'."""
    return "cupy" if active_module() is not np else "numpy"


def gpu_available():
    """True when CuPy is installed and sees at least one GPU. Never raises."""
    try:
        _import_cupy()
        return True
    except RuntimeError:
        return False


def __getattr__(attr):
    # `backend.xp` always names the *current* module, even after use() switched it.
    if attr == "xp":
        return active_module()
    raise AttributeError(f"module 'tinygan.backend' has no attribute {attr!r}")


def is_cupy_array(a):
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*arrays):
    """numpy or cupy, whichever the arrays belong to (numpy for plain Python values)."""
    for a in arrays:
        if is_cupy_array(a):
            return _cupy
    return np


def to_device(a, dtype=None):
    """Copy ``a`` to the active backend (no copy if it is already there)."""
    xp = active_module()
    if xp is np:
        if is_cupy_array(a):
            a = a.get()
        return np.asarray(a, dtype=dtype)
    return xp.asarray(a, dtype=dtype)


def to_numpy(a):
    """A NumPy copy (or the array itself) of ``a``, wherever it lives."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def check_array(a, who):
    """Raise TypeError unless ``a`` is an array of the active backend.

    Mixing a NumPy array into a CuPy computation would otherwise trigger a
    silent host-to-device copy (or an obscure CuPy error) on every call.
    """
    xp = active_module()
    if xp is np:
        if is_cupy_array(a):
            raise TypeError(f"{who}: got a cupy array but the active backend is numpy; "
                            "move it with tinygan.backend.to_numpy(x)")
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{who}: expected a numpy.ndarray, got {type(a).__name__}")
    elif not isinstance(a, xp.ndarray):
        raise TypeError(f"{who}: got a {type(a).__module__}.{type(a).__name__} but the active backend is "
                        "cupy; move it to the GPU with tinygan.backend.to_device(x)")


class Generator:
    """A seeded random generator whose arrays land on the active backend.

    It wraps ``numpy.random.Generator`` so that a seed means the same numbers
    on the CPU and on the GPU. ``state()``/``set_state()`` give a plain array
    that fits in an ``.npz`` checkpoint.
    """

    def __init__(self, seed=None):
        self.host = np.random.default_rng(seed)

    def normal(self, size, mean=0.0, std=1.0, dtype=DEFAULT_DTYPE):
        return to_device(self.host.normal(mean, std, size).astype(dtype))

    def uniform(self, size, low=0.0, high=1.0, dtype=DEFAULT_DTYPE):
        return to_device(self.host.uniform(low, high, size).astype(dtype))

    def random(self, size, dtype=DEFAULT_DTYPE):
        return to_device(self.host.random(size).astype(dtype))

    def permutation(self, n):
        """A host (NumPy) permutation: indices are used to gather data on the host."""
        return self.host.permutation(n)

    def integers(self, low, high=None, size=None):
        return self.host.integers(low, high, size)

    def state(self):
        """The bit generator state as a uint64 array (PCG64: state, inc, has_uint32, uinteger)."""
        s = self.host.bit_generator.state
        if s["bit_generator"] != "PCG64":
            raise ValueError(f"only PCG64 states can be saved, got {s['bit_generator']}")
        words = []
        for big in (s["state"]["state"], s["state"]["inc"]):
            words += [big >> 64, big & 0xFFFFFFFFFFFFFFFF]
        words += [s["has_uint32"], s["uinteger"]]
        return np.array(words, dtype=np.uint64)

    def set_state(self, words):
        w = [int(v) for v in np.asarray(words, dtype=np.uint64)]
        if len(w) != 6:
            raise ValueError(f"a Generator state has 6 uint64 words, got {len(w)}")
        self.host.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
            "has_uint32": w[4], "uinteger": w[5]}


def default_rng(seed=None):
    """A :class:`Generator` seeded with ``seed`` (an int, a list of ints, or None for fresh entropy)."""
    if isinstance(seed, Generator):
        return seed
    return Generator(seed)
