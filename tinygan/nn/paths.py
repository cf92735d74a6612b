"""Which set of array functions the layers call: the fast path (the default) or the reference path.

    tinygan.nn.reference   the textbook: NCHW, one thread, fresh arrays
    tinygan.nn.fast        the same functions, same signatures, same numbers, organised for speed

    with tinygan.nn.using_path("reference"):          # every layer called in the block
        fake = G(z)
    TINYGAN_PATH=reference python -m tinygan train ...    # a whole program

A layer asks for the path when its forward runs and keeps its name in its cache with what the
forward saved, so its backward always uses the set that made the forward, wherever the path changed
in between (a name, not the module: a model with a cache can still be copied with copy.deepcopy).
The choice is per thread (a context variable): a block in one thread leaves the others alone.
"""
import contextlib
import contextvars
import os

from . import fast, reference

PATHS = ("fast", "reference")
_SETS = {"fast": fast, "reference": reference}
# What the layers call: each path's module has these, with the same signatures (a test holds them to it).
FUNCTIONS = ("conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward",
             "batchnorm_forward", "batchnorm_backward", "relu_forward", "relu_backward", "leaky_relu_forward",
             "leaky_relu_backward", "pad", "concat_channels")
_chosen = contextvars.ContextVar("tinygan_path", default=None)


def _checked(name, where):
    if name not in _SETS:
        raise ValueError(f"{where}: unknown path {name!r}; expected one of {PATHS}")
    return name


def path():
    """The path the layers take now: "fast" or "reference" (``using_path``, else $TINYGAN_PATH, else "fast")."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen
    return _checked(os.environ.get("TINYGAN_PATH", "").strip().lower() or "fast", "TINYGAN_PATH")


def functions(name=None):
    """The module of array functions of path ``name``: tinygan.nn.fast or tinygan.nn.reference (default: the
    path the layers take now)."""
    return _SETS[path() if name is None else _checked(name, "functions")]


@contextlib.contextmanager
def using_path(name):
    """Within the block, the layers take path ``name`` ("fast" or "reference"); yields that module."""
    token = _chosen.set(_checked(name, "using_path"))
    try:
        yield _SETS[name]
    finally:
        _chosen.reset(token)
