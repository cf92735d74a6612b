"""One image file -> what the networks see: a centred square crop, resized, as uint8 (S, S, 3).

Used for every training image (through the cache in tinygan.data), for ``judge`` and the demo's uploads, and
by FID. Any mode Pillow opens (grey, palette, RGBA, CMYK, 16-bit grey) becomes RGB; transparent pixels go on
white; a phone photo is turned by its EXIF orientation; a bad file is a ValueError that says why.
"""
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

CELEBA_CROP = 128 / 178   # the usual CelebA face crop: 128 px of the 178 px wide aligned images


def _check_count(value, what, low=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value!r}")
    return int(value)


def _checked_options(image_size, crop):
    """(image_size, crop) as plain int/float, or a ValueError that says what is allowed."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive int (pixels), got {image_size!r}")
    if isinstance(crop, (int, np.integer)) and not isinstance(crop, bool) and crop >= 1:
        return int(image_size), int(crop)
    if isinstance(crop, (float, np.floating)) and 0.0 < crop <= 1.0:
        return int(image_size), float(crop)
    raise ValueError(f"crop must be a fraction of the image width in (0, 1] (float) "
                     f"or a side in pixels (int >= 1), got {crop!r}")


ORIENTATION = 0x0112                # the EXIF tag


def _to_rgb(img):
    """Any PIL mode (L, CMYK, P, RGBA, 16-bit grey, ...) -> RGB.

    Transparent pixels are put on white. A plain ``convert("RGB")`` would show
    whatever colour they happen to store, which is often black. 16-bit greyscale
    (mode I;16 or I) is scaled by 255/65535: ``convert`` would clip every value
    above 255 to white.
    """
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode == "I":
        levels = np.asarray(img)
        if levels.min() < 0 or levels.max() > 65535:
            raise ValueError(f"{img.mode} image with values outside 0..65535")
        # round(v * 255/65535) = round(v / 257), never a tie for whole v: (v + 128) // 257, in 4-byte integers
        grey = (levels.astype(np.uint32) + 128) // 257
        return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        raise ValueError("floating-point image (mode F): its brightness scale is unknown")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        on_white = Image.alpha_composite(white, rgba)
        del white, rgba                     # a 16-megapixel image is 64 MB in each of these copies
        return on_white.convert("RGB")
    return img.convert("RGB")


def preprocess_image(img, image_size=64, crop=CELEBA_CROP):
    """Centre-crop a square and resize it: PIL image -> uint8 (S, S, 3).

    The side of the crop is ``crop * width`` for a float ``crop``, or ``crop``
    pixels for an int. A fraction frames the face the same way at any scale:
    128/178 of the width is 128 px of a 178x218 CelebA image and 64 px of its
    89x109 copy. The crop box may start half-way through a pixel (89 - 64 = 25,
    so the left edge is at 12.5). PIL's ``resize(box=...)`` takes the box in
    float coordinates and samples exactly there, with no rounding.

    Filter: LANCZOS. PIL's resize is a convolution whose kernel widens by the
    shrink factor, so every filter is antialiased at any scale.
    (``reducing_gap`` is only a speed-up that gives some of that accuracy
    away.) Lanczos keeps more detail than bicubic. It is slower, but each image
    is resized only once, when the cache is built.

    Raises ValueError when the crop does not fit in the image (a very wide
    image, or an int crop larger than the image), or when the crop is smaller
    than a quarter of the output (a 1x1 image): such a picture is not a face
    framed like the others.
    """
    image_size, crop = _checked_options(image_size, crop)
    img = _to_rgb(img)
    width, height = img.size
    side = crop * width if isinstance(crop, float) else float(crop)
    if side > width or side > height:
        raise ValueError(f"a {side:g} px square crop does not fit in a {width}x{height} image")
    if side < image_size / 4:
        raise ValueError(f"{width}x{height} image is too small: its {side:g} px crop "
                         f"would be stretched more than 4x to {image_size} px")
    left, top = (width - side) / 2, (height - side) / 2
    box = (left, top, left + side, top + side)
    resized = img.resize((image_size, image_size), Image.LANCZOS, box=box)
    return np.asarray(resized, dtype=np.uint8)                    # (S, S, 3)


def _decode(raw, image_size, crop):
    """Bytes of one image file -> uint8 (S, S, 3), or a ValueError that says why not.

    PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False and ``load()`` runs
    inside the try, so a truncated JPEG fails here. Otherwise it would come out
    half grey.
    """
    if len(raw) == 0:
        raise ValueError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if img.getexif().get(ORIENTATION, 1) != 1:       # phone photos store "rotate me" in EXIF
                img = ImageOps.exif_transpose(img)         # (a copy: so only when there is something to turn)
            return preprocess_image(img, image_size, crop)
    except Image.UnidentifiedImageError:
        raise ValueError("not an image (PIL cannot identify the format)") from None
    except ValueError:
        raise
    except Exception as err:   # decoders raise OSError, SyntaxError, DecompressionBombError, ...
        raise ValueError(f"corrupt or truncated ({type(err).__name__}: {err})") from err


def load_image(path, image_size=64, crop=CELEBA_CROP):
    """One image file -> uint8 (S, S, 3). Raises ValueError naming the file if it cannot be used."""
    path = Path(path).expanduser()
    try:
        return _decode(path.read_bytes(), image_size, crop)
    except ValueError as err:
        raise ValueError(f"cannot use image {path}: {err}") from err


def prepare_for_judging(raw, image_size, crop=None):
    """The bytes of an image file -> what D sees: (uint8 (S, S, 3), which crop was used, in words).

    A photo gets the training crop (``crop``, default CelebA's) and resize. An image
    that already has the model's size, such as a face written by ``generate``, is
    taken as it is: cropping it again would zoom into the middle of the face.
    """
    try:
        with Image.open(io.BytesIO(raw)) as img:
            size = img.size
    except Exception as err:   # PIL raises many kinds for what is not an image
        raise ValueError(f"not an image ({type(err).__name__})") from None
    if crop is None and size == (image_size, image_size):
        return _decode(raw, image_size, 1.0), f"already {image_size}x{image_size}: judged as it is"
    crop = CELEBA_CROP if crop is None else crop
    return _decode(raw, image_size, crop), f"centre crop {crop:.3g} of the width, resized to {image_size}"


def load_for_judging(path, image_size, crop=None):
    """:func:`prepare_for_judging` of an image file; the ValueError names the file."""
    path = Path(path).expanduser()
    try:
        return prepare_for_judging(path.read_bytes(), image_size, crop)
    except ValueError as err:
        raise ValueError(f"cannot use image {path}: {err}") from None
