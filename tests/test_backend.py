"""The backend: choosing NumPy or CuPy, moving arrays, and seeded random numbers."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygan import backend


# --- choosing the backend ----------------------------------------------------------------------
def test_use_numpy_returns_numpy_and_xp_follows():
    assert backend.use("numpy") is np
    assert backend.xp is np
    assert backend.active_module() is np
    assert backend.name() == "numpy"
    assert backend.use("NumPy") is np          # names are case-insensitive


@pytest.mark.parametrize("bad", ["tensorflow", "", "cpu", 3, None])
def test_unknown_backend_raises_value_error(bad):
    with pytest.raises(ValueError) as info:
        backend.use(bad)
    message = str(info.value)
    assert repr(bad) in message and "numpy" in message and "cupy" in message


def test_use_cupy_without_cupy_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)      # makes `import cupy` raise ImportError
    monkeypatch.setattr(backend, "_cupy", None)
    with pytest.raises(RuntimeError) as info:
        backend.use("cupy")
    message = str(info.value)
    assert "CuPy is not installed" in message
    assert "pip install" in message and "[gpu]" in message
    assert backend.xp is np                             # a failed switch leaves the backend alone
    assert backend.gpu_available() is False             # and gpu_available() never raises


def test_env_var_is_read_lazily(lazy_backend, monkeypatch):
    monkeypatch.setenv("TINYGAN_BACKEND", "no-such-backend")
    # setting the variable does nothing by itself; the first use reads it
    with pytest.raises(ValueError, match="no-such-backend"):
        lazy_backend.active_module()
    monkeypatch.setenv("TINYGAN_BACKEND", "numpy")
    assert lazy_backend.xp is np
    assert lazy_backend.name() == "numpy"


def test_env_var_unset_or_blank_means_numpy(lazy_backend, monkeypatch):
    assert lazy_backend.xp is np
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv("TINYGAN_BACKEND", "  ")
    assert lazy_backend.xp is np


def test_env_var_cupy_without_cupy_raises_on_first_use(lazy_backend, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setenv("TINYGAN_BACKEND", "cupy")
    with pytest.raises(RuntimeError, match="pip install"):
        lazy_backend.xp


def test_importing_tinygan_has_no_backend_side_effects():
    # A bogus TINYGAN_BACKEND must not break `import`: the variable is read on first use only.
    code = ("import tinygan.backend as b, tinygan.nn, tinygan.losses, tinygan.optim, tinygan.init, "
            "tinygan.gradcheck; assert b._active is None and b._cupy is None; print('ok')")
    env = dict(os.environ, TINYGAN_BACKEND="no-such-backend")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        backend.no_such_thing


# --- moving arrays ------------------------------------------------------------------------------
@settings(deadline=None, max_examples=20)
@given(a=hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
                    hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)))
def test_to_device_to_numpy_round_trip(a):
    on_device = backend.to_device(a)
    assert isinstance(on_device, backend.xp.ndarray)
    back = backend.to_numpy(on_device)
    assert isinstance(back, np.ndarray)
    assert back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)


def test_to_device_casts_dtype_and_accepts_lists():
    a = backend.to_device([[1, 2], [3, 4]], dtype=np.float32)
    assert a.dtype == np.float32 and a.shape == (2, 2)
    assert backend.to_device(np.arange(3), dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("not_an_array", [[1.0, 2.0], 3.0, None, (1, 2)])
def test_check_array_rejects_non_arrays(not_an_array):
    with pytest.raises(TypeError) as info:
        backend.check_array(not_an_array, "MyLayer")
    message = str(info.value)
    assert "MyLayer" in message and "numpy.ndarray" in message and type(not_an_array).__name__ in message


def test_check_array_accepts_arrays_and_get_array_module_is_numpy():
    backend.check_array(np.zeros((2, 3), np.float32), "MyLayer")   # no error
    assert backend.get_array_module(np.zeros(2), 1.0, [1]) is np
    assert backend.get_array_module() is np
    assert not backend.is_cupy_array(np.zeros(2))


# --- seeded random numbers ----------------------------------------------------------------------
def draws(gen):
    return [gen.normal((3, 4)), gen.uniform((5,), -2.0, 3.0), gen.random((2, 2)),
            gen.normal((4,), 1.0, 0.02, dtype=np.float64), gen.permutation(7), gen.integers(0, 100, size=6)]


def test_same_seed_gives_the_same_bytes():
    first, second = draws(backend.default_rng(1234)), draws(backend.default_rng(1234))
    for a, b in zip(first, second):
        a, b = backend.to_numpy(a), backend.to_numpy(b)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    other = draws(backend.default_rng(1235))
    assert backend.to_numpy(first[0]).tobytes() != backend.to_numpy(other[0]).tobytes()


def test_generator_dtypes_and_ranges():
    gen = backend.default_rng(0)
    assert gen.normal((10,)).dtype == np.float32
    assert gen.normal((10,), dtype=np.float64).dtype == np.float64
    u = backend.to_numpy(gen.uniform((1000,), -0.5, 0.25))
    assert u.dtype == np.float32 and u.min() >= -0.5 and u.max() <= 0.25
    r = backend.to_numpy(gen.random((1000,)))
    assert r.min() >= 0 and r.max() < 1
    assert sorted(gen.permutation(9).tolist()) == list(range(9))


def test_default_rng_passes_a_generator_through():
    gen = backend.default_rng(5)
    assert backend.default_rng(gen) is gen
    assert isinstance(backend.default_rng(None), backend.Generator)


def test_seeded_layers_are_identical():
    from tinygan import nn
    a, b = nn.Conv2d(3, 4, 3, rng=7), nn.Conv2d(3, 4, 3, rng=7)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and va.tobytes() == vb.tobytes()
    c = nn.Conv2d(3, 4, 3, rng=8)
    assert a.state_dict()["weight"].tobytes() != c.state_dict()["weight"].tobytes()


@pytest.mark.parametrize("half_used_uint32", [False, True])
def test_generator_state_round_trip(half_used_uint32):
    gen = backend.default_rng(2024)
    gen.normal((17,))
    if half_used_uint32:   # leave a buffered 32-bit half in the state (has_uint32 = 1)
        gen.host.integers(0, 2 ** 31, dtype=np.int32)
    words = gen.state()
    assert words.dtype == np.uint64 and words.shape == (6,)
    expected = [backend.to_numpy(a) for a in draws(gen)] + [gen.host.integers(0, 2 ** 31, size=3, dtype=np.int32)]

    for restored in (gen, backend.default_rng(99)):   # the same generator, and a fresh one
        restored.set_state(np.array(words))           # as if loaded back from an .npz file
        np.testing.assert_array_equal(restored.state(), words)
        got = [backend.to_numpy(a) for a in draws(restored)] + [
            restored.host.integers(0, 2 ** 31, size=3, dtype=np.int32)]
        for a, b in zip(expected, got):
            assert a.tobytes() == b.tobytes()


def test_generator_set_state_rejects_wrong_length():
    with pytest.raises(ValueError, match="6 uint64 words"):
        backend.default_rng(0).set_state(np.zeros(5, np.uint64))


# --- CuPy (skipped without a GPU) ---------------------------------------------------------------
@pytest.mark.gpu
def test_xp_follows_use_cupy(gpu):
    assert backend.use("cupy") is gpu
    assert backend.xp is gpu and backend.name() == "cupy"
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    on_gpu = backend.to_device(host)
    assert isinstance(on_gpu, gpu.ndarray) and backend.get_array_module(on_gpu) is gpu
    np.testing.assert_array_equal(backend.to_numpy(on_gpu), host)
    with pytest.raises(TypeError, match="to_device"):
        backend.check_array(host, "MyLayer")          # a NumPy array into a CuPy computation
    backend.use("numpy")
    assert backend.xp is np
    with pytest.raises(TypeError, match="to_numpy"):
        backend.check_array(on_gpu, "MyLayer")
    assert isinstance(backend.to_device(on_gpu), np.ndarray)


@pytest.mark.gpu
def test_seeded_generator_gives_the_same_bytes_on_gpu(gpu):
    on_cpu = backend.default_rng(3).normal((4, 5))
    backend.use("cupy")
    on_gpu = backend.default_rng(3).normal((4, 5))
    assert isinstance(on_gpu, gpu.ndarray)
    assert backend.to_numpy(on_gpu).tobytes() == on_cpu.tobytes()


# --- the CuPy emulation that the `gpu` tests run on everywhere ---------------------------------
def test_the_cupy_emulation_enforces_the_host_device_boundary():
    import emulated_cupy as cp
    cp.transfers.reset()
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    dev = cp.asarray(host)
    assert cp.transfers.to_device == 1 and not isinstance(dev, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(dev)
    for mixes in (lambda: dev + host, lambda: cp.exp(host), lambda: cp.concatenate([dev, host]),
                  lambda: dev.reshape(3, 2) @ host, lambda: cp.maximum(dev, host, out=dev)):
        with pytest.raises(TypeError, match="Unsupported type"):
            mixes()
    total = (cp.exp(dev) * 2 + np.float32(1)).sum()
    assert isinstance(total, cp.ndarray) and total.shape == ()        # reductions stay on the device
    assert cp.transfers.to_host == 0
    assert float(total) == pytest.approx(float((np.exp(host) * 2 + 1).sum()))
    np.testing.assert_array_equal(cp.asnumpy(dev[:, 1:]), host[:, 1:])
    assert cp.transfers.to_host == 2
    dev[0] = cp.zeros(3, dtype=np.float32)
    np.maximum(dev, 1, out=dev)                                       # NumPy ufuncs on device arrays, in place
    assert dev.get().tolist() == [[1, 1, 1], [3, 4, 5]]
