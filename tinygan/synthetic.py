"""Cartoon faces drawn with PIL, for runs without CelebA (lessons' and examples' --quick, tests, the demo's tests).

They are no substitute for real faces, but they have a face's structure (symmetric, framed like
CelebA's aligned crops, eyes above a mouth), so that quick runs show something face-like.
"""
from pathlib import Path

import numpy as np


def synthetic_face(rng, width=89, height=109):
    """A cartoon face framed like CelebA's aligned crops: skin ellipse, hair, eyes, brows, nose, mouth."""
    from PIL import Image, ImageDraw, ImageFilter

    def colour(low, high):
        return tuple(int(v) for v in rng.integers(low, high, 3))
    img = Image.new("RGB", (width, height), colour(30, 230))
    draw = ImageDraw.Draw(img)
    cx, cy = width / 2 + rng.normal(0, 2), height * 0.55 + rng.normal(0, 2)
    fw, fh = rng.uniform(17, 23), rng.uniform(24, 30)            # half width and half height of the face
    tone = rng.uniform(0.35, 1.0)
    skin = tuple(int(c * tone + rng.integers(-10, 10)) for c in (235, 190, 160))
    hair = tuple(int(c * rng.uniform(0.15, 1.0)) for c in (150, 110, 60))         # black .. blond
    draw.ellipse([cx - fw - 3, cy - fh - 6, cx + fw + 3, cy + fh * 0.3], fill=hair)
    draw.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    eye_y, eye_dx = cy - fh * 0.15, fw * rng.uniform(0.35, 0.5)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse([ex - 4, eye_y - 2, ex + 4, eye_y + 2], fill=(245, 245, 245))
        draw.ellipse([ex - 2, eye_y - 2, ex + 2, eye_y + 2], fill=colour(0, 90))
        draw.line([ex - 5, eye_y - 6, ex + 5, eye_y - 6 - side * rng.uniform(-1, 1)], fill=(60, 40, 30), width=2)
    draw.line([cx, eye_y + 3, cx - 2, cy + fh * 0.25], fill=tuple(int(c * 0.8) for c in skin), width=2)
    mouth_y, mouth_w = cy + fh * 0.5, fw * rng.uniform(0.3, 0.55)
    smile = rng.uniform(1, 6)
    draw.chord([cx - mouth_w, mouth_y - smile, cx + mouth_w, mouth_y + smile], 0, 180, fill=(170, 60, 70))
    return img.filter(ImageFilter.GaussianBlur(0.7))


def write_synthetic_faces(folder, count, seed=0):
    """Write ``count`` synthetic faces as 89x109 JPEGs (CelebA's half size) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 424242])
    for i in range(count):
        synthetic_face(rng).save(folder / f"{i:06d}.jpg", quality=92)
    return folder


def synthetic_faces(n, size=64, seed=0):
    """uint8 (n, size, size, 3): ``n`` synthetic faces, cropped and resized like the training data."""
    from .data import CELEBA_CROP, preprocess_image
    rng = np.random.default_rng([seed, 424242])
    return np.stack([preprocess_image(synthetic_face(rng), size, CELEBA_CROP) for _ in range(n)])


def cartoon_face_folder(count, seed=0, cache=None, say=print):
    """A folder of ``count`` synthetic faces in tinygan's cache (written once, ~15 s for 20,000): training data for a
    first run with no download (``python -m tinygan train --cartoon-faces 2000``)."""
    from .files import cache_dir
    folder = cache_dir(cache) / f"cartoon_faces_{count}_seed{seed}"
    if len(list(folder.glob("*.jpg"))) != count:
        say(f"drawing {count:,} cartoon faces into {folder} (tinygan.synthetic; no download)")
        write_synthetic_faces(folder, count, seed)
    return folder
