"""Shared fixtures: a clean backend for every test, and the `gpu` fixture and marker.

Tests marked ``@pytest.mark.gpu`` take the ``gpu`` fixture and compare the
'cupy' backend with NumPy. Each runs twice:

- ``[emulated]``: on ``tests/emulated_cupy.py``, a NumPy-based stand-in that
  enforces CuPy's host/device boundary and counts transfers. It runs
  everywhere, so the GPU code path is exercised on every machine.
- ``[cupy]``: on real CuPy and a real GPU; skipped cleanly when
  ``backend.gpu_available()`` is False (no CuPy, or no usable GPU).

``python -m pytest -m gpu`` runs just these. Inside such a test,
``backend.use("numpy")`` / ``backend.use("cupy")`` switch freely; the autouse
fixture below puts the backend back afterwards.
"""
import os

# The suite runs tiny models: one BLAS thread is faster for them, and it keeps OpenBLAS
# from stalling when the machine is busy. Set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

from tinygan import backend  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: compares the cupy backend with NumPy (emulated, and on a real GPU)")
    config.addinivalue_line("markers", "browser: drives the demo page in headless Chromium (skipped without it)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny 2-step training run: run/checkpoints/ckpt_000002.npz and its sample grids."""
    import numpy as np

    from tinygan.train import Trainer, make_config
    out = tmp_path_factory.mktemp("run")
    faces = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    config = make_config(out=str(out), nz=8, ngf=4, ndf=4, batch_size=4, n_samples=4, max_steps=2, log_every=1,
                         sample_every=1, checkpoint_every=2)
    Trainer(config, dataset=faces, verbose=False).run()
    return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Caches (decoded images, FID weights) go to a folder of this test session, not ~/.cache."""
    monkeypatch.setenv("TINYGAN_CACHE", str(tmp_path_factory.getbasetemp() / "tinygan-cache"))


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


@pytest.fixture(params=["emulated", "cupy"])
def gpu(request, monkeypatch):
    """The module behind ``backend.use("cupy")``: the emulation, or real CuPy (skipped without a GPU)."""
    if request.param == "cupy":
        if not backend.gpu_available():
            pytest.skip("CuPy with a usable GPU is not available (pip install -e .[gpu])")
        return backend._import_cupy()
    import emulated_cupy
    monkeypatch.setattr(backend, "_cupy", emulated_cupy)
    emulated_cupy.transfers.reset()
    return emulated_cupy
