"""Images to Inception inputs, and Inception inputs to features.

    uint8 images (N, H, W, 3)      preprocess: [0, 1] -> bilinear resize to 299 -> [-1, 1]
      -> float32 (N, 3, 299, 299)  FIDInceptionV3
      -> features (N, 2048)
"""
import time

import numpy as np

from .. import backend
from ..nn.fast import nchw
from .inception import FEATURE_DIM, INPUT_SIZE

PREPROCESSING = ("pytorch-fid", "legacy-tf")


def resize_matrix(in_size, out_size, half_pixel=True):
    """The (out_size, in_size) float32 matrix of 1-D bilinear resizing: y = R @ x.

    Output pixel d reads the source coordinate
        half_pixel=True  (PyTorch, align_corners=False):  u = max((d + 0.5) in/out - 0.5, 0)
        half_pixel=False (TF1 resize_bilinear, legacy):    u = d in/out
    and mixes its two neighbours: y[d] = (1 - t) x[floor u] + t x[floor u + 1], t = u - floor u,
    with the right neighbour clamped at the border. Only two taps at any scale:
    no antialiasing when shrinking, exactly like ``F.interpolate(..., antialias=False)``.
    The coordinates are computed in float32, as PyTorch does.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    d = np.arange(out_size, dtype=np.float32)
    if half_pixel:
        u = np.maximum(scale * (d + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    else:
        u = scale * d
    left = np.floor(u).astype(np.int64)
    t = u - left.astype(np.float32)
    right = np.minimum(left + 1, in_size - 1)
    rows = np.arange(out_size)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    matrix[rows, left] = np.float32(1) - t
    matrix[rows, right] += t              # at the border right == left and the weights sum to 1
    return matrix


def resize_bilinear(images, size, half_pixel=True):
    """Resize float32 NHWC images (N, H, W, C) to (N, size, size, C), one axis at a time.

        y = R_h x R_w^T   for each image and channel (R from :func:`resize_matrix`)
    """
    n, h, w, c = images.shape
    xp = backend.get_array_module(images)
    r_h = backend.to_device(resize_matrix(h, size, half_pixel))
    r_w = backend.to_device(resize_matrix(w, size, half_pixel))
    rows = xp.matmul(r_w, images)                                            # (N, H, size, C)
    return xp.matmul(r_h, rows.reshape(n, h, size * c)).reshape(n, size, size, c)


def preprocess(images, preprocessing="pytorch-fid"):
    """uint8 RGB images (N, H, W, 3) -> the network input, float32 (N, 3, 299, 299) (NHWC memory).

    "pytorch-fid" (pytorch-fid, torch-fidelity, clean-fid's legacy_pytorch):
        x / 255 -> bilinear resize, half-pixel centres (align_corners=False) -> 2x - 1, in [-1, 1]
    "legacy-tf" (clean-fid's legacy_tensorflow, the StyleGAN tools, TF1 FID code):
        x -> bilinear resize with corner-aligned grid u = d in/out (TF1 resize_bilinear; the
        TorchScript model does it with grid_sample) -> (x - 128) / 128, in [-1, 0.9921875]
    The two differ by a shift of up to half an input pixel and a 1/128 offset in
    scale; FIDs computed with them differ slightly and must not be mixed.
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images of shape (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    x = backend.to_device(images).astype(np.float32)
    if preprocessing == "pytorch-fid":
        x *= np.float32(1 / 255)
        x = resize_bilinear(x, INPUT_SIZE, half_pixel=True)
        x *= np.float32(2)
        x -= np.float32(1)
    else:
        x = resize_bilinear(x, INPUT_SIZE, half_pixel=False)
        x -= np.float32(128)
        x *= np.float32(1 / 128)
    return nchw(x)


def images_to_features(images, batch_size=32, preprocessing="pytorch-fid", model=None, verbose=False):
    """uint8 images (N, H, W, 3) -> float32 Inception features (N, 2048), ``batch_size`` at a time.

    ``images`` may be a memory-mapped array: only one batch is in memory at a time.
    """
    if model is None:
        from .weights import fid_inception_v3      # weights.py builds the network: imported when needed
        model = fid_inception_v3(verbose=verbose)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    features = np.empty((n, FEATURE_DIM), dtype=np.float32)
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        batch = np.asarray(images[i:i + batch_size])
        features[i:i + len(batch)] = backend.to_numpy(model(preprocess(batch, preprocessing)))
        if verbose:
            done = i + len(batch)
            rate = done / (time.perf_counter() - start)
            print(f"\rInception features: {done}/{n} images ({rate:.1f} images/s)", end="", flush=True)
    if verbose and n:
        print()
    return features
