"""The EMA generator: the averaging rule with its warm-up, BatchNorm recalibration, training and resume."""
import numpy as np
import pytest

from tinygan import backend, checkpoint, ema
from tinygan.dcgan import Generator
from tinygan.nn import BatchNorm2d, Conv2d, Sequential

from helpers import FACES, assert_trees_equal, trainer


def test_beta_warms_up_then_stays_at_the_decay():
    average = ema.EMA(Generator(nz=4, ngf=2, rng=0), decay=0.9)
    betas = []
    for _ in range(200):
        betas.append(average.beta())
        average.updates += 1
    assert betas[0] == pytest.approx(2 / 11) and betas[1] == pytest.approx(3 / 12)
    assert all(a < b for a, b in zip(betas[:80], betas[1:80]))              # forgets fast early, slower later
    assert max(betas) == 0.9 and betas[-1] == 0.9                          # (1 + t) / (10 + t) passes 0.9 at t = 80


def test_update_is_the_running_average_written_out():
    G = Generator(nz=4, ngf=2, rng=0)
    average = ema.EMA(G, decay=0.5)
    expected = [p.data.astype(np.float64) for p in G.parameters()]
    rng = np.random.default_rng(0)
    for t in range(1, 6):
        for p in G.parameters():
            p.data += rng.normal(0, 0.1, p.shape).astype(np.float32)
        beta = min(0.5, (1 + t) / (10 + t))
        expected = [beta * e + (1 - beta) * p.data for e, p in zip(expected, G.parameters())]
        average.update(G)
    for got, want in zip(average.shadow, expected):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_constant_weights_are_their_own_average():
    G = Generator(nz=4, ngf=2, rng=0)
    average = ema.EMA(G)
    for _ in range(3):
        average.update(G)
    for got, p in zip(average.shadow, G.parameters()):
        np.testing.assert_array_equal(got, p.data)


def test_bad_decay_is_refused():
    for decay in (0.0, 1.0, -0.5, 2):
        with pytest.raises(ValueError, match="decay must be in"):
            ema.EMA(Generator(nz=4, ngf=2, rng=0), decay=decay)


def test_recalibration_sets_running_statistics_to_the_mean_of_batch_statistics():
    rng = backend.default_rng(0)
    model = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), BatchNorm2d(3))
    batches = [rng.normal((4, 2, 5, 5)) * (k + 1) + k for k in range(3)]
    conv_outputs = [model[0](x) for x in batches]
    ema.recalibrate_batchnorm(model, batches)
    norm = model[1]
    means = [y.mean(axis=(0, 2, 3)) for y in conv_outputs]
    variances = [y.var(axis=(0, 2, 3), ddof=1) for y in conv_outputs]   # running variances are unbiased
    np.testing.assert_allclose(norm.running_mean, np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.running_var, np.mean(variances, axis=0), rtol=1e-5)
    assert norm.momentum == 0.1 and not norm.training and norm.cache is None


def test_the_trainer_averages_g_after_every_step_and_samples_with_the_average(tmp_path):
    t = trainer(tmp_path, max_steps=3, ema_decay=0.9)
    snapshots = [[p.data.copy() for p in t.G.parameters()]]
    for step in range(3):
        t.train_step(t.loader.get_batch(0, step))
        snapshots.append([p.data.copy() for p in t.G.parameters()])
    expected = [w.astype(np.float64) for w in snapshots[0]]
    for step, weights in enumerate(snapshots[1:], start=1):
        beta = min(0.9, (1 + step) / (10 + step))
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, weights)]
    with t.painting() as G_ema:
        assert not G_ema.training and t.G.training
    assert t.G.training
    for p, want in zip(G_ema.parameters(), expected):
        np.testing.assert_allclose(p.data, want, rtol=1e-5, atol=1e-7)
    assert not any(np.array_equal(a.data, b.data) for a, b in zip(G_ema.parameters(), t.G.parameters()))


def test_ema_off_samples_with_g_itself(tmp_path):
    t = trainer(tmp_path, max_steps=2, ema_decay=0)
    t.run()
    state = checkpoint.load(tmp_path / "checkpoints/ckpt_000002.npz")
    assert "G_ema" not in state and "ema" not in state
    with t.painting() as G:
        assert G is t.G and not G.training
    assert t.G.training                          # back in train mode after the block


def test_an_old_checkpoint_without_ema_resumes_and_starts_averaging(tmp_path):
    from tinygan.train import resume
    trainer(tmp_path, max_steps=2).run()
    path = tmp_path / "checkpoints/ckpt_000002.npz"
    state = checkpoint.load(path)
    for key in ("G_ema", "ema", "model"):
        del state[key]
    checkpoint.save(path, state)
    again = resume(tmp_path, dataset=FACES, verbose=False, max_steps=3)
    again.run()
    after = checkpoint.load(tmp_path / "checkpoints/ckpt_000003.npz")
    assert after["ema"]["updates"] == 1
    assert_trees_equal(after["model"], {"nz": 8, "ngf": 4, "ndf": 4, "nc": 3, "image_size": 64, "z_dist": "normal"})
