"""One image file -> what the networks see: a centred square crop, resized, as uint8 (S, S, 3).

Used for every training image (through the cache in tinygan.data), for ``judge`` and the demo's uploads, and
by FID. Any mode Pillow opens (grey, palette, RGBA, CMYK, 16-bit grey) becomes RGB; transparent pixels go on
white; a phone photo is turned by its EXIF orientation; a bad file is a ValueError that says why.
"""
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

CELEBA_CROP = 128 / 178   # the usual CelebA face crop: 128 px of the 178 px wide aligned images
# Where the training faces have their eyes and mouth, as fractions of the judged square (x right, y down):
# the darkest spots (dark_centroid) of the mean of the 10,000 aligned faces (celeba_align_89x109_10k.tar) after the
# centre crop CELEBA_CROP. tests/test_judge.py measures them again from the data when it is there.
GUIDE = {"left_eye": (0.330, 0.515), "right_eye": (0.668, 0.515), "mouth": (0.503, 0.844)}
# One photo to judge or project (the CLI; the demo's uploads have tighter bounds): a 108-megapixel phone photo
# passes, a file that would take gigabytes to decode does not.
MAX_PHOTO_BYTES = 200 * 1024 * 1024
MAX_PHOTO_PIXELS = 120_000_000


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


def _decode(raw, image_size, crop, frame=None):
    """Bytes of one image file -> uint8 (S, S, 3), or a ValueError that says why not.

    ``frame(img, image_size)``, if given, replaces the centre crop (see :func:`box_frame`, :func:`eyes_frame`).
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
            return preprocess_image(img, image_size, crop) if frame is None else frame(_to_rgb(img), image_size)
    except Image.UnidentifiedImageError:
        raise ValueError("not an image (PIL cannot identify the format)") from None
    except ValueError:
        raise
    except Exception as err:   # decoders raise OSError, SyntaxError, DecompressionBombError, ...
        raise ValueError(f"corrupt or truncated ({type(err).__name__}: {err})") from err


# --- framing a face by hand: a square box, or the two eyes ------------------------------------------
def dark_centroid(grey, x0, x1, y0, y1):
    """Where an eye or the mouth is in a mean face: the centroid of the darker half of the window
    grey[y0:y1, x0:x1] (float (H, W)), weighted by how much darker than the middle of its range, as (x, y) in
    pixels (pixel centres at +0.5)."""
    window = grey[y0:y1, x0:x1]
    weight = np.clip(window.max() - window - (window.max() - window.min()) / 2, 0, None)
    rows, cols = np.mgrid[y0:y1, x0:x1] + 0.5
    return (weight * cols).sum() / weight.sum(), (weight * rows).sum() / weight.sum()


def parse_numbers(text, count, what):
    """'12,30.5,200' -> (12.0, 30.5, 200.0); a ValueError that says what was expected."""
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        raise ValueError(f"{what} must be {count} numbers separated by commas, got {text!r}")
    return values


def parse_eyes(text, what):
    """'XL,YL,XR,YR' -> ((xl, yl), (xr, yr)); a ValueError that says what was expected."""
    xl, yl, xr, yr = parse_numbers(text, 4, what)
    return (xl, yl), (xr, yr)


def box_frame(box):
    """A frame (see _decode) that takes the square ``box`` = (left, top, side) in the photo's pixels."""
    left, top, side = box
    if side <= 0:
        raise ValueError(f"the box's side must be > 0, got {side:g}")

    def frame(img, image_size):
        width, height = img.size
        if left < 0 or top < 0 or left + side > width or top + side > height:
            raise ValueError(f"the box (left {left:g}, top {top:g}, side {side:g}) reaches outside the "
                             f"{width}x{height} photo")
        if side < image_size / 4:
            raise ValueError(f"the box's side {side:g} px would be stretched more than 4x to {image_size} px")
        return np.asarray(img.resize((image_size, image_size), Image.LANCZOS, box=(left, top, left + side,
                                                                                   top + side)), dtype=np.uint8)
    return frame


def eyes_box(eyes):
    """The eyes ((x, y), (x, y), in either order) -> (angle in degrees that levels them, the box in the
    levelled photo that puts them where GUIDE has them), as CelebA's alignment did."""
    (xl, yl), (xr, yr) = sorted(eyes)                   # the eye on the left as seen first, whichever came first
    distance = float(np.hypot(xr - xl, yr - yl))
    if distance < 1:
        raise ValueError(f"the two eyes must be at least 1 px apart, got {eyes}")
    (gl, gy), (gr, _) = GUIDE["left_eye"], GUIDE["right_eye"]
    side = distance / (gr - gl)
    centre_x, centre_y = (xl + xr) / 2, (yl + yr) / 2
    return float(np.degrees(np.arctan2(yr - yl, xr - xl))), (centre_x - side * (gl + gr) / 2, centre_y - side * gy,
                                                              side)


def eyes_frame(eyes):
    """A frame (see _decode) that turns the photo about the eyes' midpoint until they are level, then takes the
    square that puts them where the training faces have theirs."""
    angle, box = eyes_box(eyes)
    centre = ((eyes[0][0] + eyes[1][0]) / 2, (eyes[0][1] + eyes[1][1]) / 2)
    boxed = box_frame(box)

    def frame(img, image_size):
        level = img.rotate(angle, resample=Image.BICUBIC, center=centre) if abs(angle) > 0.01 else img
        return boxed(level, image_size)
    return frame


def load_image(path, image_size=64, crop=CELEBA_CROP):
    """One image file -> uint8 (S, S, 3). Raises ValueError naming the file if it cannot be used."""
    path = Path(path).expanduser()
    try:
        return _decode(path.read_bytes(), image_size, crop)
    except ValueError as err:
        raise ValueError(f"cannot use image {path}: {err}") from err


def prepare_for_judging(raw, image_size, crop=None, box=None, eyes=None):
    """:func:`framed_for_judging`, without Pillow's warning about images over 89 megapixels: MAX_PHOTO_PIXELS is
    this function's bound, and a refusal is one ValueError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return framed_for_judging(raw, image_size, crop, box, eyes)


def framed_for_judging(raw, image_size, crop=None, box=None, eyes=None):
    """The bytes of an image file -> what D sees: (uint8 (S, S, 3), how it was framed, in words).

    ``box`` (left, top, side) or ``eyes`` ((x, y), (x, y)), in the photo's pixels as it is shown (after its
    EXIF turn), frame the face by hand. Else a photo gets the training crop (``crop``, default CelebA's) and
    resize, and an image that already has the model's size, such as a face written by ``generate``, is
    taken as it is: cropping it again would zoom into the middle of the face.
    """
    if box is not None and eyes is not None:
        raise ValueError("give a box or the eyes, not both")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            size = img.size
    except Image.DecompressionBombError as err:                  # over twice Pillow's own limit of 89 megapixels
        raise ValueError(f"too large a photo ({err})") from None
    except Exception as err:   # PIL raises many kinds for what is not an image
        raise ValueError(f"not an image ({type(err).__name__})") from None
    if size[0] * size[1] > MAX_PHOTO_PIXELS:
        raise ValueError(f"{size[0]}x{size[1]} pixels is too large a photo (at most {MAX_PHOTO_PIXELS:,} pixels)")
    if box is not None:
        return _decode(raw, image_size, None, box_frame(box)), (f"the box left {box[0]:g}, top {box[1]:g}, side "
                                                                f"{box[2]:g} px, resized to {image_size}")
    if eyes is not None:
        return _decode(raw, image_size, None, eyes_frame(eyes)), (f"aligned by the eyes at {eyes[0]} and "
                                                                  f"{eyes[1]}, resized to {image_size}")
    if crop is None and size == (image_size, image_size):
        return _decode(raw, image_size, 1.0), f"already {image_size}x{image_size}: judged as it is"
    crop = CELEBA_CROP if crop is None else crop
    return _decode(raw, image_size, crop), f"centre crop {crop:.3g} of the width, resized to {image_size}"


def load_for_judging(path, image_size, crop=None, box=None, eyes=None):
    """:func:`prepare_for_judging` of an image file; the ValueError names the file."""
    path = Path(path).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_PHOTO_BYTES:
            raise ValueError(f"{size:,} bytes is too large a photo (at most {MAX_PHOTO_BYTES:,})")
        return prepare_for_judging(path.read_bytes(), image_size, crop, box, eyes)
    except ValueError as err:
        raise ValueError(f"cannot use image {path}: {err}") from None
