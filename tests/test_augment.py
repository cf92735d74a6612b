"""DiffAugment: hand-written backward passes checked numerically, what each part does, and training with it."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygan import checkpoint
from tinygan.augment import DiffAugment, parse_policy
from tinygan.gradcheck import check_module

from helpers import FACES, assert_trees_equal, trainer


def images(shape=(3, 3, 8, 8), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2 ** 16), n=st.integers(1, 3), c=st.integers(1, 3), size=st.integers(4, 9))
def test_gradient_check_of_every_policy(policy, seed, n, c, size):
    augment = DiffAugment(policy, rng=seed)
    x = images((n, c, size, size), seed)
    augment(x)
    augment.freeze()                                   # the check needs the same random numbers every call
    errors = check_module(augment, x, seed=seed)
    assert errors["input"] <= 1e-6, errors


def test_each_call_draws_new_numbers_and_the_seed_fixes_them():
    x = images()
    a, b = DiffAugment(rng=1), DiffAugment(rng=1)
    first = a(x)
    np.testing.assert_array_equal(first, b(x))
    assert not np.array_equal(first, a(x))


def test_translation_moves_the_image_and_shifts_zeros_in():
    x = images((64, 1, 16, 16), 3)
    augment = DiffAugment("translation", rng=0)
    y = augment(x)
    dy, dx, sh, sw = augment.cache["shift"]
    assert sh == sw == 2 and set(dy) <= set(range(-2, 3)) and len(set(dy)) > 1
    for k in range(len(x)):
        shifted = np.zeros_like(x[k])
        shifted[:, max(dy[k], 0):16 + min(dy[k], 0), max(dx[k], 0):16 + min(dx[k], 0)] = \
            x[k][:, max(-dy[k], 0):16 + min(-dy[k], 0), max(-dx[k], 0):16 + min(-dx[k], 0)]
        np.testing.assert_array_equal(y[k], shifted)


def test_cutout_zeroes_a_square_of_half_the_size_clipped_at_the_border():
    x = np.ones((200, 2, 10, 10))
    y = DiffAugment("cutout", rng=0)(x)
    zeros = (y == 0).all(axis=1).sum(axis=(1, 2))           # zeroed pixels per image, the same on every channel
    assert zeros.max() == 25 and zeros.min() > 0 and (zeros < 25).any()     # 5x5, sometimes partly outside
    assert set(np.unique(y)) <= {0.0, 1.0}


def test_colour_changes_brightness_saturation_and_contrast_per_image():
    x = images((500, 3, 4, 4), 5)
    y = DiffAugment("color", rng=0)(x)
    shift = (y - x).mean(axis=(1, 2, 3))
    assert -0.6 < shift.min() < -0.3 and 0.3 < shift.max() < 0.6             # brightness in (-0.5, 0.5)
    assert y.dtype == x.dtype and y.shape == x.shape


def test_bad_policies_are_refused():
    assert parse_policy("") == () and parse_policy(" color, cutout ") == ("color", "cutout")
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        parse_policy("color,rotation")


def test_training_with_diffaugment_resumes_bit_identically(tmp_path):
    from tinygan.train import resume
    trainer(tmp_path / "straight", max_steps=4, augment="color,translation,cutout").run()
    trainer(tmp_path / "split", max_steps=3, augment="color,translation,cutout").run()
    (tmp_path / "split/checkpoints/ckpt_000003.npz").unlink()
    resume(tmp_path / "split", dataset=FACES, verbose=False, max_steps=4).run()
    a = checkpoint.load(tmp_path / "straight/checkpoints/ckpt_000004.npz")
    b = checkpoint.load(tmp_path / "split/checkpoints/ckpt_000004.npz")
    assert "augment" in a["rng"]
    assert_trees_equal(a, b, skip=("config",))


def test_d_sees_augmented_images_and_g_learns_through_them(tmp_path):
    with_augment, without = trainer(tmp_path / "a", augment="color,translation,cutout"), trainer(tmp_path / "b")
    batch = with_augment.loader.get_batch(0, 0)
    for t in (with_augment, without):
        t.train_step(batch)
    for net in ("D", "G"):
        a, b = getattr(with_augment, net), getattr(without, net)
        assert not np.array_equal(a.main[0].weight.data, b.main[0].weight.data), net
