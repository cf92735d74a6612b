"""A CuPy look-alike built on NumPy, to check tinygan's GPU code path on a machine without a GPU.

It imitates CuPy's *host/device boundary*, not its speed or its kernels:

- Its arrays are ``emulated_cupy.ndarray``, which is not a ``numpy.ndarray``.
- ``numpy.asarray(device_array)`` raises TypeError, as CuPy's "Implicit conversion to a NumPy array
  is not allowed" does.
- Its functions, ufuncs and array methods refuse NumPy arrays as arguments, as CuPy's
  "Unsupported type <class 'numpy.ndarray'>" does. Only ``asarray`` / ``array`` copy host -> device.
- Reductions return 0-d device arrays, not NumPy scalars, so reading one is a device -> host copy.
- Every device -> host copy (``.get()``, ``asnumpy``, ``float()``, ``int()``, ``bool()``, ``.item()``,
  ``.tolist()``, printing, and indexing with a boolean mask, whose size CuPy must read) adds one to
  ``transfers.to_host``; host -> device copies count in
  ``transfers.to_device``. On a real GPU each device -> host read waits for the GPU to finish.

Code that passes with this module can still fail on real CuPy where CuPy lacks a NumPy function;
code that fails here would fail on CuPy too (or silently copy across the bus on every call).
"""
import sys
import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


class Transfers:
    """Counts of copies across the host/device boundary."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.to_host = 0
        self.to_device = 0


transfers = Transfers()


def _device(values, who):
    """Replace emulated device arrays by their NumPy storage; refuse host arrays like CuPy does."""
    if isinstance(values, ndarray):
        return values._a
    if isinstance(values, np.ndarray):
        raise TypeError(f"Unsupported type {type(values)} in {who}: a NumPy (host) array was passed to a "
                        "CuPy function; move it with cupy.asarray first")
    if isinstance(values, (list, tuple)):
        return type(values)(_device(v, who) for v in values)
    if isinstance(values, dict):
        return {k: _device(v, who) for k, v in values.items()}
    return values


def _wrap(result):
    """NumPy results -> emulated device arrays (NumPy scalars become 0-d arrays, as in CuPy)."""
    if isinstance(result, np.ndarray):
        return ndarray(result)
    if isinstance(result, np.generic) and result.dtype.kind in "biufc":
        return ndarray(np.asarray(result))
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    return result


class ndarray(NDArrayOperatorsMixin):
    """An array 'on the device': NumPy storage that only crosses to the host explicitly."""

    __slots__ = ("_a",)

    def __init__(self, storage):
        self._a = storage

    # --- the boundary ---------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None):
        transfers.to_host += 1
        return np.array(self._a, order=order)

    def _read(self):
        transfers.to_host += 1
        return self._a

    def __float__(self):
        return float(self._read())

    def __int__(self):
        return int(self._read())

    def __bool__(self):
        return bool(self._read())

    def __complex__(self):
        return complex(self._read())

    def item(self, *args):
        return self._read().item(*args)

    def tolist(self):
        return self._read().tolist()

    def __repr__(self):
        return f"emulated_cupy.{self._read()!r}"

    __str__ = __repr__

    # --- NumPy protocols: NumPy functions called on device arrays stay on the device --
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = out
        return _call(getattr(ufunc, method), inputs, kwargs, f"{ufunc.__name__}.{method}")

    def __array_function__(self, func, types_, args, kwargs):
        who = func.__name__
        return _wrap(func(*_device(args, who), **_device(kwargs, who)))

    # --- the array API ------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __getitem__(self, key):
        if isinstance(key, ndarray) and key.dtype == bool:
            transfers.to_host += 1           # CuPy reads the mask's count back to size the result
        return _wrap(self._a[_device(key, "__getitem__")])

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray):        # CuPy copies a host array in here
            transfers.to_device += 1
        else:
            value = _device(value, "__setitem__")
        self._a[_device(key, "__setitem__")] = value

    def __getattr__(self, attr):                 # reshape, transpose, sum, astype, ...
        if attr == "_a" or attr.startswith("__"):     # no __array_interface__ & co.: no implicit copies
            raise AttributeError(attr)
        value = getattr(self._a, attr)
        if not callable(value):
            return _wrap(value)

        def method(*args, **kwargs):
            return _wrap(value(*_device(args, attr), **_device(kwargs, attr)))
        return method


class _Ufunc:
    """A NumPy ufunc that only takes device arrays (plus Python and NumPy scalars)."""

    def __init__(self, ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        return _call(self._ufunc, args, kwargs, self._ufunc.__name__)

    def __getattr__(self, attr):
        value = getattr(self._ufunc, attr)
        if not callable(value):
            return value
        return lambda *args, **kwargs: _call(value, args, kwargs, f"{self._ufunc.__name__}.{attr}")


def _call(func, args, kwargs, who):
    out = kwargs.get("out")
    result = func(*_device(args, who), **_device(kwargs, who))
    if out is not None:
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    return _wrap(result)


class _Namespace:
    """cupy.linalg & co.: the NumPy submodule with device-only functions."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, attr):
        return _lookup(self._module, attr)


def _lookup(module, attr):
    value = getattr(module, attr)
    if isinstance(value, np.ufunc):
        return _Ufunc(value)
    if isinstance(value, types.ModuleType):
        return _Namespace(value)
    if isinstance(value, type) or not callable(value):
        return value                              # dtypes (cupy.float32 is numpy.float32), constants
    return lambda *args, **kwargs: _call(value, args, kwargs, attr)


# --- the module-level API CuPy has beyond NumPy's ------------------------------------------
def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else ndarray(a._a.astype(dtype))
    transfers.to_device += 1
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return ndarray(np.array(a._a, dtype=dtype, copy=copy, order=order))
    transfers.to_device += 1
    return ndarray(np.array(a, dtype=dtype, order=order, copy=True))


def ascontiguousarray(a, dtype=None):
    return ndarray(np.ascontiguousarray(_device(a, "ascontiguousarray"), dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None):
    return a.get(order=order) if isinstance(a, ndarray) else np.asarray(a, order=order)


def get_array_module(*arrays):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else np


class _Device:
    """cupy.cuda.Device(): synchronize() waits for the GPU; here everything has already run."""

    def __init__(self, device=0):
        self.id = device

    def synchronize(self):
        pass


cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1), Device=_Device)


def __getattr__(attr):
    return _lookup(np, attr)
