"""Where the images come from (a folder/zip/tar, or a generator), cached real statistics, and FID between two sets."""
import hashlib
import json
from pathlib import Path

import numpy as np

from .. import files, run_folder
from ..data import CELEBA_CROP, FaceDataset, source_signature
from .preprocess import images_to_features
from .statistics import KID_SUBSET_SIZE, MIN_SAMPLES, features_to_statistics, kid, statistics_to_fid
from .weights import fid_inception_v3, fid_weights_path


def _is_generator_source(source):
    """True for a checkpoint .npz, or a run directory that holds checkpoints."""
    source = Path(source)
    if source.is_file():
        return source.suffix == ".npz"
    try:
        run_folder.find_checkpoint(source)
    except FileNotFoundError:
        return False
    return True


def load_images(source, n=None, image_size=64, crop=None, cache=None, verbose=True):
    """uint8 images (N, S, S, 3) from a folder/zip/tar (via :class:`tinygan.data.FaceDataset`).

    ``crop`` defaults to the training crop (CelebA's 128/178 of the width); use 1.0 for images that are
    already framed, such as saved generator samples.
    """
    dataset = FaceDataset(source, image_size=image_size, crop=CELEBA_CROP if crop is None else crop,
                          cache_dir=cache, verbose=verbose, limit=n)
    if n is not None and len(dataset) < n:
        raise ValueError(f"{source} gave only {len(dataset)} usable images, expected n={n}")
    return dataset.images


def generated_images(checkpoint, n, seed=0, batch_size=64, raw=False):
    """n uint8 faces (seeds seed .. seed + n - 1) from a checkpoint, run directory or generator file.

    A checkpoint's averaged generator (G_ema) paints them, unless ``raw``.
    """
    from ..model_files import load_generator
    from ..sampling import generate_images
    return generate_images(load_generator(checkpoint, raw=raw), list(range(seed, seed + n)), batch_size=batch_size)


def real_statistics(source, n=None, image_size=64, crop=None, preprocessing="pytorch-fid", batch_size=32,
                    weights=None, cache=None, rebuild=False, verbose=True):
    """Features and (mu, sigma) of real images, cached under ``<cache>/fid_stats``.

    The cache key is the source's signature (path, size, mtime or folder listing), n,
    image_size, crop, preprocessing and the weight file, so changing any of them recomputes.
    Returns a dict with ``features`` (N, 2048) float32, ``mu``, ``sigma`` and ``path``.
    """
    weights_file = fid_weights_path(weights, cache, verbose=verbose)
    settings = {"source": source_signature(source), "n": n, "image_size": image_size,
                "crop": CELEBA_CROP if crop is None else crop, "preprocessing": preprocessing,
                "weights": weights_file.name, "version": 1}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = files.cache_dir(cache) / "fid_stats" / f"{Path(source).name}-{key}.npz"
    if path.is_file() and not rebuild:
        with np.load(path, allow_pickle=False) as f:
            if verbose:
                print(f"real statistics from cache {path}")
            return {"features": f["features"], "mu": f["mu"], "sigma": f["sigma"], "path": path}
    images = load_images(source, n, image_size, crop, cache, verbose)
    features = images_to_features(images, batch_size, preprocessing,
                                  model=fid_inception_v3(weights_file, cache, verbose=verbose), verbose=verbose)
    mu, sigma = features_to_statistics(features)
    with files.atomic_write(path) as handle:
        np.savez(handle, features=features, mu=mu, sigma=sigma, settings=json.dumps(settings))
    if verbose:
        print(f"cached real statistics of {len(features)} images -> {path}")
    return {"features": features, "mu": mu, "sigma": sigma, "path": path}


def fid_between(real_source, fake, n=MIN_SAMPLES, image_size=64, crop=None, preprocessing="pytorch-fid",
                batch_size=32, weights=None, cache=None, seed=0, kid_subsets=100, verbose=True, n_real=None,
                raw=False):
    """FID (and KID) between the first n_real real images (default n) and n fakes.

    Returns a dict: fid, kid, kid_std, n, n_real. ``fake`` is uint8 images (N, S, S, 3), a
    folder/zip/tar of images (used whole, no crop), or a checkpoint / run directory / generator
    file (faces for seeds seed .. seed + n - 1, from its averaged G unless ``raw``).
    Real statistics are cached (see :func:`real_statistics`).
    """
    n_real = n if n_real is None else n_real
    real = real_statistics(real_source, n_real, image_size, crop, preprocessing, batch_size, weights, cache,
                           verbose=verbose)
    if isinstance(fake, np.ndarray):
        fake_images = fake[:n]
    elif _is_generator_source(fake):
        fake_images = generated_images(fake, n, seed, raw=raw)
    else:
        fake_images = load_images(fake, n, image_size, 1.0, cache, verbose)
    if len(fake_images) < n:
        raise ValueError(f"got {len(fake_images)} fake images, expected n={n}")
    model = fid_inception_v3(weights, cache, verbose=verbose)
    fake_features = images_to_features(fake_images, batch_size, preprocessing, model, verbose)
    fid = statistics_to_fid(real["mu"], real["sigma"], *features_to_statistics(fake_features))
    kid_mean, kid_std = kid(real["features"], fake_features, subsets=kid_subsets)
    one_subset = min(KID_SUBSET_SIZE, len(fake_features), len(real["features"])) == len(fake_features) == len(
        real["features"])                    # both sets whole: KID is computed once (see kid)
    return {"fid": fid, "kid": kid_mean, "kid_std": kid_std, "kid_subsets": 1 if one_subset else kid_subsets,
            "n": int(n), "n_real": int(n_real)}
