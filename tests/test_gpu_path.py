"""The whole 'cupy' path, end to end: training, checkpoints across backends, generating, judging, FID.

Every test takes the ``gpu`` fixture, so it runs on the CuPy emulation here (tests/emulated_cupy.py:
device arrays that refuse implicit host copies and count explicit ones) and, on a machine with a GPU,
on real CuPy as well. The layer-by-layer comparisons are in test_layers.py.
"""
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygan import backend, checkpoint, fid, judge, logs, model_files, sampling
from tinygan.train import resume
from helpers import FACES, assert_trees_equal, log_without_timing, trainer

pytestmark = pytest.mark.gpu



def window_values(stats):
    """One step's stats as the loss log reads them (tinygan.logs.LogWindow)."""
    window = logs.LogWindow()
    window.add(stats)
    return window.values()

def host_tree(module):
    return {k: backend.to_numpy(v) for k, v in module.state_dict().items()}


def assert_close_trees(a, b, rtol=1e-4, atol=1e-5):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=atol, err_msg=key)


def emulated(gpu):
    return hasattr(gpu, "transfers")


@pytest.mark.parametrize("augment", ["", "color,translation,cutout"])
def test_training_steps_on_the_device_match_numpy_and_never_copy_to_the_host(gpu, tmp_path, augment):
    results = {}
    for which in ("numpy", "cupy"):
        backend.use(which)
        t = trainer(tmp_path / which, augment=augment)
        assert all(backend.is_cupy_array(p.data) == (which == "cupy") for p in t.G.parameters() + t.D.parameters())
        if which == "cupy" and emulated(gpu):
            gpu.transfers.reset()
        stats = [t.train_step(t.loader.get_batch(0, i)) for i in range(3)]
        if which == "cupy" and emulated(gpu):
            # the batches went host -> device (images, flips are drawn on the host, and so are the z);
            # nothing came back: a device -> host read inside a step would stall the GPU every step
            assert gpu.transfers.to_host == 0
            assert gpu.transfers.to_device > 0
        rows = [logs.means(window_values(s)) for s in stats]
        results[which] = rows, host_tree(t.G), host_tree(t.D)
    (rows_cpu, g_cpu, d_cpu), (rows_gpu, g_gpu, d_gpu) = results["numpy"], results["cupy"]
    for a, b in zip(rows_cpu, rows_gpu):
        np.testing.assert_allclose([b[k] for k in sorted(b)], [a[k] for k in sorted(a)], rtol=1e-4)
    assert_close_trees(g_cpu, g_gpu)
    assert_close_trees(d_cpu, d_gpu)


def test_a_run_on_the_device_reads_back_once_per_log_row_not_per_step(gpu, tmp_path):
    if not emulated(gpu):
        pytest.skip("counts copies only on the emulation")
    counts = {}
    for steps in (2, 6):
        backend.use("cupy")
        t = trainer(tmp_path / str(steps), max_steps=steps, log_every=steps, sample_every=100, checkpoint_every=100)
        gpu.transfers.reset()
        t.run()
        counts[steps] = gpu.transfers.to_host
    # 4 more steps, the same single log row, sample grid and final checkpoint: no more reads back
    assert counts[6] == counts[2]


def test_checkpoints_move_between_backends_and_resume_bit_identically(gpu, tmp_path):
    backend.use("cupy")
    trainer(tmp_path / "straight").run()                      # 4 steps on the device
    trainer(tmp_path / "split", max_steps=2).run()            # 2 on the device ...
    backend.use("numpy")
    on_cpu = resume(tmp_path / "split", dataset=FACES, verbose=False, max_steps=4)
    assert not backend.is_cupy_array(on_cpu.G.parameters()[0].data) and on_cpu.step == 2
    backend.use("cupy")
    again = resume(tmp_path / "split", dataset=FACES, verbose=False, max_steps=4)   # ... and 2 more there
    assert backend.is_cupy_array(again.G.parameters()[0].data)
    assert all(backend.is_cupy_array(m) for m in again.opt_G.m + again.opt_D.v)
    again.run()
    a = checkpoint.load(tmp_path / "straight/checkpoints/ckpt_000004.npz")
    b = checkpoint.load(tmp_path / "split/checkpoints/ckpt_000004.npz")
    assert_trees_equal(a, b, skip=("config",))
    assert log_without_timing(tmp_path / "straight") == log_without_timing(tmp_path / "split")


def test_the_pretrained_generator_paints_the_same_faces_on_the_device(gpu):
    seeds = [0, 7, 42]
    faces = {}
    for which in ("numpy", "cupy"):
        backend.use(which)
        G = model_files.load_generator()
        assert backend.is_cupy_array(G.parameters()[0].data) == (which == "cupy")
        faces[which] = sampling.generate_images(G, seeds)
        assert faces[which].dtype == np.uint8 and faces[which].shape == (3, 64, 64, 3)
        path = sampling.interpolate(G, [0, 7], steps=3)
        assert path.shape == (3, 64, 64, 3)
    difference = np.abs(faces["numpy"].astype(int) - faces["cupy"].astype(int))
    assert difference.max() <= 1, "a seed must give the same face on the CPU and the GPU (up to rounding)"


def test_a_projection_and_its_z_file_run_on_the_device(gpu, tmp_path):
    from tinygan import projection
    trainer(tmp_path / "run", max_steps=1).run()
    ckpt = tmp_path / "run/checkpoints/ckpt_000001.npz"
    results = {}
    for which in ("numpy", "cupy"):
        backend.use(which)
        G, D = model_files.load_generator(ckpt), model_files.load_discriminator(ckpt)
        found = projection.project(G, FACES[0], D, steps=3, every=1)
        sampling.save_z(found["z"], tmp_path / f"{which}.npy")
        painted = sampling.generate_images(G, [str(tmp_path / f"{which}.npy"), 3])
        assert found["face"].dtype == np.uint8 and len(found["frames"]) == 4
        results[which] = found["z"] if isinstance(found["z"], np.ndarray) else backend.to_numpy(found["z"]), painted
    np.testing.assert_allclose(results["cupy"][0], results["numpy"][0], rtol=1e-3, atol=1e-4)
    assert np.abs(results["cupy"][1].astype(int) - results["numpy"][1]).max() <= 1


def test_judge_and_fid_features_run_on_the_device(gpu, tmp_path):
    trainer(tmp_path / "run", max_steps=1).run()
    ckpt = tmp_path / "run/checkpoints/ckpt_000001.npz"
    model = fid.FIDInceptionV3().astype(np.float32)
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data[...] = (rng.normal(size=p.data.shape) / np.sqrt(np.prod(p.data.shape[1:]))).astype(np.float32)
    state = model.state_dict()
    images = FACES[:3]
    results = {}
    for which in ("numpy", "cupy"):
        backend.use(which)
        D = model_files.load_discriminator(ckpt)
        on_backend = fid.FIDInceptionV3().load_state_dict(state)
        results[which] = judge.probabilities(D, images), fid.images_to_features(images, batch_size=2, model=on_backend)
    np.testing.assert_allclose(results["cupy"][0], results["numpy"][0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results["cupy"][1], results["numpy"][1], rtol=1e-3, atol=1e-5)
    assert results["numpy"][1].shape == (3, fid.FEATURE_DIM) and results["numpy"][1].std() > 0


def test_the_training_lesson_runs_on_the_device(gpu, tmp_path, monkeypatch, capsys):
    lessons = Path(__file__).resolve().parents[1] / "lessons"
    out = tmp_path / "out"
    (out / "run").mkdir(parents=True)
    (out / "run" / "loss_log.csv").write_text("step,stale\n1,2\n")   # a previous run's leftovers: removed first
    monkeypatch.syspath_prepend(str(lessons))
    monkeypatch.delitem(sys.modules, "_common", raising=False)      # examples/ has a _common.py too
    monkeypatch.setattr(sys, "argv", ["13_train_gan.py", "--quick", "--backend", "cupy", "--out", str(out)])
    try:
        runpy.run_path(str(lessons / "13_train_gan.py"), run_name="__main__")
    except SystemExit as stop:
        assert stop.code in (None, 0), capsys.readouterr().out[-3000:]
    finally:
        sys.modules.pop("_common", None)
    printed = capsys.readouterr().out
    assert "backend cupy" in printed and "all checks passed" in printed, printed[-3000:]
