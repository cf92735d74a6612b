"""Shared fixtures: a clean backend for every test, and the `gpu` marker.

Tests marked ``@pytest.mark.gpu`` compare CuPy with NumPy. They skip cleanly
when ``backend.gpu_available()`` is False (no CuPy, or no usable GPU). Inside
such a test, ``backend.use("numpy")`` / ``backend.use("cupy")`` switch freely;
the autouse fixture below puts the backend back afterwards.
"""
import os

# The suite runs tiny models: one BLAS thread is faster for them, and it keeps OpenBLAS
# from stalling when the machine is busy. Set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

from tinygan import backend  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: compares CuPy with NumPy; skipped when no GPU is usable")


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None and not backend.gpu_available():
        pytest.skip("CuPy with a usable GPU is not available (pip install -e .[gpu])")


@pytest.fixture(autouse=True)
def restore_backend():
    """Every test starts on NumPy and leaves the backend module as it found it."""
    saved = backend._active, backend._cupy
    backend.use("numpy")
    yield
    backend._active, backend._cupy = saved


@pytest.fixture
def lazy_backend(monkeypatch):
    """The backend as a fresh process sees it: nothing chosen yet, TINYGAN_BACKEND unset."""
    monkeypatch.delenv("TINYGAN_BACKEND", raising=False)
    monkeypatch.setattr(backend, "_active", None)
    return backend


@pytest.fixture
def gpu():
    """The cupy module, for tests marked ``gpu`` (skips when there is no usable GPU)."""
    if not backend.gpu_available():
        pytest.skip("CuPy with a usable GPU is not available (pip install -e .[gpu])")
    return backend._import_cupy()
