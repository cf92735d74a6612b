"""Pictures of training: image grids, loss and FID plots, a training GIF.

Images from the generator are float arrays ``(N, 3, H, W)`` in [-1, 1] (the
range of its tanh output), on NumPy or CuPy. Everything that touches pixels
first goes through ``to_uint8_images``, which maps -1 -> 0 and 1 -> 255 and
gives uint8 ``(N, H, W, 3)`` on the host; from there on it is Pillow.

Plots use ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot, so
they need no display and change no global state. All files are written
atomically (temp file + ``os.replace``), and the same input gives the same
PNG bytes.
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import backend
from .files import atomic_write
from .logs import ACCURACY_FIELDS, LOSS_FIELDS, read_log


# --- arrays -> uint8 images ---------------------------------------------------

def to_uint8_images(images):
    """Float ``(N, 3, H, W)`` in [-1, 1] or uint8 ``(N, H, W, 3)`` -> uint8 ``(N, H, W, 3)``.

    Floats are clipped to [-1, 1] and mapped by ``round((x + 1) * 127.5)``,
    rounding half to even, so -1 -> 0, 0 -> 128 and 1 -> 255.
    """
    images = backend.to_numpy(images)
    if images.dtype == np.uint8:
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"uint8 images must have shape (N, H, W, 3), got {images.shape}")
        return np.ascontiguousarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be float in [-1, 1] or uint8, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"float images must have shape (N, 3, H, W), got {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError(f"images contain NaN or inf ({np.count_nonzero(~np.isfinite(images))} values); "
                         "expected finite values in [-1, 1]")
    scaled = np.empty(images.transpose(0, 2, 3, 1).shape)          # float64 (N, H, W, 3)
    np.clip(images.transpose(0, 2, 3, 1), -1.0, 1.0, out=scaled)   # reorders to NHWC once, in floats
    scaled += 1.0
    scaled *= 127.5
    return np.rint(scaled, out=scaled).astype(np.uint8)


def to_uint8_image(image):
    """One image: float ``(3, H, W)`` in [-1, 1] or uint8 ``(H, W, 3)`` -> uint8 ``(H, W, 3)``."""
    image = backend.to_numpy(image)
    if image.ndim != 3:
        raise ValueError(f"one image must have shape (3, H, W) float or (H, W, 3) uint8, got {image.shape}")
    return to_uint8_images(image[None])[0]


def make_grid(images, nrow=8, padding=2, pad_value=0):
    """Tile images into one uint8 ``(H, W, 3)`` picture, ``nrow`` images per row.

    The layout follows torchvision's ``make_grid``: ``padding`` pixels of
    ``pad_value`` (0..255) around and between the tiles.
    """
    tiles = to_uint8_images(images)                      # (N, h, w, 3)
    n, h, w, _ = tiles.shape
    if n == 0:
        raise ValueError("make_grid needs at least one image, got an empty batch (0, ...)")
    if isinstance(nrow, bool) or not isinstance(nrow, (int, np.integer)) or nrow < 1:
        raise ValueError(f"nrow must be an int >= 1, got {nrow!r}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be in 0..255, got {pad_value!r}")
    cols = min(nrow, n)
    rows = -(-n // cols)                                 # ceil(n / cols)
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((rows * cell_h + padding, cols * cell_w + padding, 3), pad_value, dtype=np.uint8)
    for k in range(n):
        top, left = (k // cols) * cell_h + padding, (k % cols) * cell_w + padding
        grid[top:top + h, left:left + w] = tiles[k]
    return grid


# --- writing images -------------------------------------------------------------

def _write_image(pixels, path, fmt="PNG"):
    """Save a uint8 ``(H, W, 3)`` array as a PNG (or ``fmt``: "JPEG", ...), atomically. Returns the Path."""
    path = Path(path)
    options = {"quality": 95} if fmt == "JPEG" else {}
    with atomic_write(path) as handle:
        Image.fromarray(pixels).save(handle, format=fmt, **options)
    return path


def save_grid(images, path, nrow=8, padding=2, fmt="PNG"):
    """Save a grid of images (see :func:`make_grid`) as a PNG (or ``fmt``)."""
    return _write_image(make_grid(images, nrow=nrow, padding=padding), path, fmt)


def save_image(image, path, fmt="PNG"):
    """Save one image, float ``(3, H, W)`` or uint8 ``(H, W, 3)``, as a PNG (or ``fmt``)."""
    return _write_image(to_uint8_image(image), path, fmt)


def save_seed_images(images, seeds, folder):
    """Save one PNG per image as ``folder/seed_000042.png`` (a z file's face as ``folder/<its name>.png``);
    returns the file names' pattern."""
    folder = Path(folder)
    if len(seeds) != len(images):
        raise ValueError(f"save_seed_images: {len(images)} images but {len(seeds)} seeds")
    names = [f"seed_{int(seed):06d}" if isinstance(seed, (int, np.integer)) else Path(str(seed)).stem
             for seed in seeds]
    owner = {}
    for name, seed in zip(names, seeds):
        other = owner.setdefault(name.lower(), str(seed))
        if other != str(seed):
            raise ValueError(f"{other} and {seed} would both be written as {folder / name}.png; rename a z file")
    for name, image in zip(names, images):
        save_image(image, folder / f"{name}.png")
    return folder / ("seed_*.png" if all(isinstance(seed, (int, np.integer)) for seed in seeds) else "*.png")


def save_strip(images, path, padding=2):
    """Save images side by side in a single row, as a PNG."""
    return save_grid(images, path, nrow=max(1, len(images)), padding=padding)


def _load_frame(frame):
    """A GIF frame given as a PNG path or an image array -> uint8 ``(H, W, 3)``."""
    if isinstance(frame, (str, Path)):
        with Image.open(frame) as picture:
            return np.asarray(picture.convert("RGB"))
    return to_uint8_image(frame)


def _add_caption(pixels, text, font):
    """``pixels`` with a black band on top holding ``text`` in white."""
    left, top, right, bottom = font.getbbox(text or "Ag")
    band = bottom + 4
    picture = Image.new("RGB", (pixels.shape[1], pixels.shape[0] + band))
    picture.paste(Image.fromarray(pixels), (0, band))
    ImageDraw.Draw(picture).text((2, 2 - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def save_gif(frames, path, duration_ms=200, loop=0, captions=None):
    """Save an animated GIF, e.g. the same latent grid at successive steps.

    ``frames``: PNG paths or image arrays (uint8 ``(H, W, 3)`` or float
    ``(3, H, W)``), all the same size. ``captions``: one label per frame
    (e.g. ``"step 400"``), drawn with Pillow's default font in a band above
    the image. ``loop=0`` loops forever. Note that Pillow merges consecutive
    identical frames into one.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("save_gif needs at least one frame, got an empty list")
    if captions is not None and len(captions) != len(frames):
        raise ValueError(f"got {len(captions)} captions for {len(frames)} frames; expected one per frame")
    pixels = [_load_frame(f) for f in frames]
    sizes = {p.shape for p in pixels}
    if len(sizes) != 1:
        raise ValueError(f"all GIF frames must have the same shape, got {sorted(sizes)}")
    if captions is not None:
        font = ImageFont.load_default()
        pixels = [_add_caption(p, str(c), font) for p, c in zip(pixels, captions)]
    pictures = [Image.fromarray(p) for p in pixels]
    path = Path(path)
    with atomic_write(path) as handle:
        pictures[0].save(handle, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=duration_ms, loop=loop)
    return path


# --- plots ---------------------------------------------------------------------

def moving_average(values, window):
    """Trailing mean over ``window`` values; the first few average what there is so far."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def _column(rows, name):
    return np.array([float(row[name]) for row in rows], dtype=np.float64)


def _plot_smoothed(ax, steps, values, label, color):
    """A faint raw curve and a moving average on top. Non-finite values are skipped."""
    ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
    finite = np.isfinite(values)
    window = max(1, min(50, int(finite.sum()) // 10))
    ax.plot(steps[finite], moving_average(values[finite], window), color=color, linewidth=1.6,
            label=f"{label} (moving avg, {window})" if window > 1 else label)


def _save_figure(fig, path):
    """Render a Figure with the Agg canvas into a PNG, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=100, metadata={"Software": None})
    return path


def plot_losses(rows_or_csv_path, path, title=None, judge_rows=None):
    """Plot D loss and G loss against step; a second panel shows mean D(x) and D(G(z)), a third D's accuracy.

    ``rows_or_csv_path``: a list of dicts or the path of a CSV loss log, with
    the columns of ``LOSS_FIELDS`` (``d_real``, ``d_fake`` and the accuracies optional:
    a panel is drawn when its columns are there). ``judge_rows``: rows of a run's judge_log.csv
    (tinygan.logs.JUDGE_FIELDS), D's eval-mode accuracy on held-out faces, drawn as points in the
    accuracy panel beside the train-mode curves.
    """
    if isinstance(rows_or_csv_path, (str, Path)):
        rows = read_log(rows_or_csv_path)
    else:
        rows = list(rows_or_csv_path)
    if not rows:
        raise ValueError("plot_losses needs at least one row, got none")
    missing = [name for name in LOSS_FIELDS[:3] if name not in rows[0]]
    if missing:
        raise ValueError(f"loss rows lack {missing}; expected keys {LOSS_FIELDS[:3]} "
                         f"(and optionally {LOSS_FIELDS[3:] + ACCURACY_FIELDS}), got {sorted(rows[0])}")
    steps = _column(rows, "step")
    has_d_outputs = all(name in rows[0] for name in ("d_real", "d_fake"))
    has_accuracy = all(name in rows[0] for name in ACCURACY_FIELDS)
    panels = 1 + has_d_outputs + has_accuracy

    from matplotlib.figure import Figure     # imported here: matplotlib takes ~1 s to import
    fig = Figure(figsize=(8, 2 + 2 * panels), layout="constrained")
    axes = list(fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0])
    _plot_smoothed(axes[0], steps, _column(rows, "d_loss"), "D loss", "tab:blue")
    _plot_smoothed(axes[0], steps, _column(rows, "g_loss"), "G loss", "tab:orange")
    axes[0].set_ylabel("loss (BCE)")
    if has_d_outputs:
        ax = axes[1]
        _plot_smoothed(ax, steps, _column(rows, "d_real"), "mean D(x), real", "tab:green")
        _plot_smoothed(ax, steps, _column(rows, "d_fake"), "mean D(G(z)), fake", "tab:red")
        ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)  # where D cannot tell them apart
        ax.set_ylim(0.0, 1.0)
        ax.set_ylabel("D output (probability real)")
    if has_accuracy:
        ax = axes[-1]
        _plot_smoothed(ax, steps, _column(rows, "d_acc_real"), "real called real", "tab:green")
        _plot_smoothed(ax, steps, _column(rows, "d_acc_fake"), "fake called fake", "tab:red")
        _plot_smoothed(ax, steps, _column(rows, "d_acc"), "both", "black")
        if judge_rows:                             # the same D in eval mode, one image at a time: as a judge
            judge_steps = _column(judge_rows, "step")
            ax.plot(judge_steps, _column(judge_rows, "real_called_real"), "o--", color="tab:green", markersize=4,
                    linewidth=0.8, label="held-out real called real, eval mode")
            ax.plot(judge_steps, _column(judge_rows, "fake_called_fake"), "s--", color="tab:red", markersize=4,
                    linewidth=0.8, label="fresh fake called fake, eval mode")
        ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)  # a D that guesses
        ax.set_ylim(0.0, 1.02)
        ax.set_ylabel("D's accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if has_accuracy and ax is axes[-1] else "upper right", fontsize="small",
                  ncol=2 if judge_rows and ax is axes[-1] else 1)
    axes[-1].set_xlabel("training step")
    axes[0].set_title(title or "GAN training losses")
    return _save_figure(fig, path)


def plot_fid(steps, fids, path, label=None, others=None):
    """Plot FID (lower is better) against training step; the best point is marked.

    ``label`` names the curve; ``others`` maps more curves' labels to their (steps, fids),
    such as a run's raw G beside its averaged G.
    """
    steps = np.asarray(steps, dtype=np.float64)
    fids = np.asarray(fids, dtype=np.float64)
    if steps.ndim != 1 or steps.shape != fids.shape or len(steps) == 0:
        raise ValueError(f"steps and fids must be two non-empty 1-D sequences of the same length, "
                         f"got shapes {steps.shape} and {fids.shape}")
    if not (np.isfinite(steps).all() and np.isfinite(fids).all()):
        raise ValueError(f"steps and fids must be finite, got steps={steps.tolist()} fids={fids.tolist()}")
    best = int(np.argmin(fids))
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(steps, fids, marker="o", color="tab:purple", label=label)
    for (name, (other_steps, other_fids)), color in zip((others or {}).items(), ("tab:gray", "tab:orange")):
        ax.plot(other_steps, other_fids, marker=".", color=color, label=name)
    ax.annotate(f"best {fids[best]:.1f} at step {steps[best]:g}", (steps[best], fids[best]),
                textcoords="offset points", xytext=(0, 10), ha="center", fontsize="small")
    ax.set_xlabel("training step")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title("FID during training")
    ax.grid(alpha=0.3)
    if label or others:
        ax.legend(fontsize="small")
    return _save_figure(fig, path)
