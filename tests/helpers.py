"""Helpers that several test modules share: made-up face images, tiny training runs, and comparing
checkpoint trees. (Fixtures are in conftest.py, hypothesis strategies in strategies.py; no test module
imports another.)"""
import numpy as np

from tinygan import logs
from tinygan.train import Trainer, make_config


def face_images(n=12, size=64, seed=0):
    """uint8 (N, S, S, 3): a bright oval on a darker background, each a little different."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx, r = 0.5 + rng.normal(0, 0.03), 0.5 + rng.normal(0, 0.03), rng.uniform(0.25, 0.35)
        inside = ((yy - cy) / 1.3) ** 2 + (xx - cx) ** 2 < r * r
        colour = rng.integers(150, 250, 3)
        out[i] = np.where(inside[..., None], colour, rng.integers(0, 90, 3)).astype(np.uint8)
        out[i] = np.clip(out[i] + rng.integers(0, 20, (size, size, 3)), 0, 255)
    return out


FACES = face_images()        # 12 images, batch 4: 3 batches an epoch, so 4 steps cross an epoch boundary


def tiny(out, **overrides):
    options = dict(out=str(out), ngf=4, ndf=4, nz=8, batch_size=4, n_samples=4, max_steps=4, log_every=1,
                   sample_every=2, checkpoint_every=2, keep_last=10, judge_held_out=0)
    options.update(overrides)
    preset = options.pop("preset", "dcgan")
    return make_config(preset, **options)


def trainer(out, faces=FACES, **overrides):
    return Trainer(tiny(out, **overrides), dataset=faces, verbose=False)


def assert_trees_equal(a, b, path="", skip=()):
    assert sorted(a) == sorted(b), path
    for key in a:
        if key in skip:
            continue
        if isinstance(a[key], dict):
            assert_trees_equal(a[key], b[key], f"{path}/{key}", skip)
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{path}/{key}")
        else:
            assert a[key] == b[key], f"{path}/{key}"


def log_without_timing(run_dir):
    rows = logs.read_log(run_dir / "loss_log.csv")
    return [{k: v for k, v in row.items() if k != "img_per_s"} for row in rows]


def oval_faces(n, size=64, seed=0):
    """uint8 (N, S, S, 3): a light oval with two dark eyes on a darker background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    faces = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = 0.55 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02)
        face = ((yy - cy) / 1.3) ** 2 + (xx - cx) ** 2 < 0.3 ** 2
        eyes = sum((yy - cy + 0.08) ** 2 + (xx - cx - dx) ** 2 < 0.04 ** 2 for dx in (-0.1, 0.1))
        picture = np.where(face[..., None], rng.integers(150, 240, 3), rng.integers(0, 100, 3))
        faces[i] = np.where(eyes[..., None] > 0, 30, picture)
    return faces


class TinyFeatures:
    """A stand-in for the FID Inception network: a fixed random projection of a coarse image (2048-d)."""

    def __call__(self, x):                                   # (N, 3, 299, 299)
        coarse = np.asarray(x)[:, :, ::30, ::30].reshape(len(x), -1)
        projection = np.random.default_rng(0).normal(size=(coarse.shape[1], 2048)).astype(np.float32)
        return np.tanh(coarse @ projection / 10)
