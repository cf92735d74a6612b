"""Image grids, PNG/GIF files and plots: layout, value mapping, determinism, errors."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinygan import logs, viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def constant_images(values, h=4, w=5):
    """One (3, h, w) image per value, every pixel equal to it: (N, 3, h, w) float32."""
    return np.stack([np.full((3, h, w), v, dtype=np.float32) for v in values])


def random_images(n=6, seed=0, h=8, w=8):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, h, w)).astype(np.float32)


def test_value_mapping_and_layout():
    images = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, -3.0, 3.0], dtype=np.float32).reshape(1, 1, 1, 7)
    pixels = viz.to_uint8_images(np.repeat(images, 3, axis=1))
    assert pixels.shape == (1, 1, 7, 3) and pixels.dtype == np.uint8
    # -1 -> 0, 1 -> 255, half-way values round half to even, out of range is clipped
    assert pixels[0, 0, :, 0].tolist() == [0, 64, 128, 191, 255, 0, 255]


def test_channels_become_last_axis_for_any_memory_layout():
    images = random_images(3)
    rgb_last = viz.to_uint8_images(images)
    assert rgb_last.flags.c_contiguous
    assert np.array_equal(rgb_last[0, 2, 5], np.rint((images[0, :, 2, 5].astype(np.float64) + 1) * 127.5))
    assert np.array_equal(viz.to_uint8_images(np.asfortranarray(images)), rgb_last)
    assert np.array_equal(viz.to_uint8_images(images[::-1])[::-1], rgb_last)
    assert np.array_equal(viz.to_uint8_images(images.astype(np.float64)), rgb_last)
    assert np.array_equal(viz.to_uint8_images(rgb_last), rgb_last)   # uint8 (N, H, W, 3) passes through


@settings(deadline=None, max_examples=30)
@given(n=st.integers(1, 10), nrow=st.integers(1, 5), padding=st.integers(0, 3), pad_value=st.integers(0, 255))
def test_grid_layout_matches_torchvision(n, nrow, padding, pad_value):
    h, w = 3, 4
    values = np.linspace(-1, 1, n)
    grid = viz.make_grid(constant_images(values, h, w), nrow=nrow, padding=padding, pad_value=pad_value)
    cols = min(nrow, n)
    rows = -(-n // cols)
    assert grid.dtype == np.uint8
    assert grid.shape == (rows * (h + padding) + padding, cols * (w + padding) + padding, 3)
    expected_tiles = viz.to_uint8_images(constant_images(values, h, w))
    for k in range(n):
        top = (k // cols) * (h + padding) + padding
        left = (k % cols) * (w + padding) + padding
        assert np.array_equal(grid[top:top + h, left:left + w], expected_tiles[k])
    if padding:
        assert (grid[:padding] == pad_value).all() and (grid[:, :padding] == pad_value).all()


def test_save_grid_writes_deterministic_png(tmp_path):
    images = random_images(6)
    first = viz.save_grid(images, tmp_path / "a" / "grid.png", nrow=3)
    second = viz.save_grid(images.copy(), tmp_path / "b" / "grid.png", nrow=3)
    assert first.read_bytes()[:8] == PNG_SIGNATURE
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as picture:
        assert np.array_equal(np.asarray(picture), viz.make_grid(images, nrow=3))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["grid.png"]   # no temp files left


def test_save_image_and_strip(tmp_path):
    images = random_images(4)
    with Image.open(viz.save_image(images[0], tmp_path / "one.png")) as picture:
        assert np.array_equal(np.asarray(picture), viz.to_uint8_images(images)[0])
    with Image.open(viz.save_image(viz.to_uint8_images(images)[1], tmp_path / "u8.png")) as picture:
        assert picture.size == (8, 8)
    with Image.open(viz.save_strip(images, tmp_path / "strip.png")) as picture:
        assert picture.size == (4 * 10 + 2, 12)   # one row of four 8x8 tiles, padding 2


def test_gif_has_one_frame_per_input(tmp_path):
    frames = [viz.save_grid(random_images(4, seed=s), tmp_path / f"step_{s}.png", nrow=2) for s in range(3)]
    gif = viz.save_gif(frames, tmp_path / "train.gif", duration_ms=100)
    with Image.open(gif) as picture:
        assert picture.n_frames == 3 and picture.info["loop"] == 0

    arrays = [viz.make_grid(random_images(4, seed=s), nrow=2) for s in range(4)]
    labelled = viz.save_gif(arrays, tmp_path / "labelled.gif", captions=[f"step {s * 400}" for s in range(4)])
    with Image.open(labelled) as picture:
        assert picture.n_frames == 4
        assert picture.size[1] > arrays[0].shape[0]   # the caption band sits above the grid


@pytest.mark.parametrize("bad, expected", [
    (np.zeros((2, 2, 4, 4), np.float32), r"\(N, 3, H, W\)"),              # 2 channels
    (np.zeros((3, 4, 4), np.float32), r"\(N, 3, H, W\)"),                 # wrong rank
    (np.zeros((2, 4, 4, 3), np.int64), "float in \\[-1, 1\\] or uint8"),
    (np.zeros((2, 4, 4, 2), np.uint8), r"\(N, H, W, 3\)"),
    (np.full((1, 3, 2, 2), np.nan, np.float32), "NaN"),
    ([], r"\(N, 3, H, W\)"),
    (np.zeros((0, 3, 4, 4), np.float32), "at least one image"),
])
def test_bad_images_raise_value_error(bad, expected):
    with pytest.raises(ValueError, match=expected):
        viz.make_grid(bad)


def test_bad_gif_and_grid_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least one frame"):
        viz.save_gif([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="same shape"):
        viz.save_gif([random_images(1, h=4)[0], random_images(1, h=6)[0]], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="captions"):
        viz.save_gif([random_images(1)[0]], tmp_path / "x.gif", captions=["a", "b"])
    with pytest.raises(ValueError, match="nrow"):
        viz.make_grid(random_images(2), nrow=0)


def loss_rows(n=30, with_d_outputs=True):
    rng = np.random.default_rng(0)
    rows = []
    for step in range(0, n * 10, 10):
        row = {"step": step, "d_loss": float(rng.uniform(0.5, 1.5)), "g_loss": float(rng.uniform(1, 3))}
        if with_d_outputs:
            row.update(d_real=float(rng.uniform(0.6, 0.9)), d_fake=float(rng.uniform(0.1, 0.4)))
        rows.append(row)
    return rows


def test_plot_losses_from_rows_and_from_csv(tmp_path):
    assert viz.plot_losses(loss_rows(), tmp_path / "losses.png").read_bytes()[:8] == PNG_SIGNATURE
    assert viz.plot_losses(loss_rows(3, False), tmp_path / "l2.png", title="t").read_bytes()[:8] == PNG_SIGNATURE

    log = logs.CsvLog(tmp_path / "losses.csv", logs.LOSS_FIELDS)
    for row in loss_rows(5):
        log.append(row)
    assert viz.plot_losses(log.path, tmp_path / "from_csv.png").read_bytes()[:8] == PNG_SIGNATURE


def test_plot_losses_survives_a_nan_loss(tmp_path):
    rows = loss_rows(10)
    rows[4]["g_loss"] = float("nan")
    assert viz.plot_losses(rows, tmp_path / "nan.png").read_bytes()[:8] == PNG_SIGNATURE


def test_plot_losses_rejects_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="at least one row"):
        viz.plot_losses([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="g_loss"):
        viz.plot_losses([{"step": 0, "d_loss": 1.0}], tmp_path / "x.png")


def test_plot_fid(tmp_path):
    path = viz.plot_fid([0, 1000, 2000], [250.0, 120.5, 90.2], tmp_path / "fid.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match="same length"):
        viz.plot_fid([0, 1], [1.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="finite"):
        viz.plot_fid([0, 1], [1.0, float("nan")], tmp_path / "x.png")


def test_moving_average():
    assert viz.moving_average([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    assert viz.moving_average([5.0], 10).tolist() == [5.0]


def test_importing_viz_has_no_side_effects():
    # dict.__getitem__ reads the raw rcParam, without asking matplotlib to resolve a backend
    code = ("import sys, matplotlib; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); "
            "before = raw(); import tinygan.viz; print('matplotlib.pyplot' in sys.modules, raw() == before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]   # pyplot never imported, backend untouched
