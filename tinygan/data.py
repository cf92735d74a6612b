"""Face images -> cropped, normalised batches (folder, .zip or .tar; cached).

The pipeline, in the order the code below follows it::

    source (folder / .zip / .tar)      list_images: sorted image names
      -> one file's bytes              decode + preprocess_image: centre crop, resize
      -> uint8 (S, S, 3)               written once into a memory-mapped .npy cache
      -> FaceDataset.images            uint8 (N, S, S, 3), read straight from disk
      -> BatchLoader.get_batch         gather, mirror, to_float: float32 (B, 3, S, S) in [-1, 1]

Decoding a JPEG costs about a millisecond, but reading 64x64x3 bytes from a cache is almost free. So every
image is decoded exactly once into the cache, and later epochs and runs only read it. The cache holds uint8
values, a quarter of the size of float32; the conversion to float happens one batch at a time. It lives in the
user's cache folder (:func:`tinygan.files.cache_dir`), never beside the data: a student's data folder or a
read-only course mirror stays exactly as it was.

Batches are *stateless*. Batch ``i`` of epoch ``e`` depends only on
``(seed, e, i)``, so to resume training bit-identically you only need to know
where you stopped. There is no random generator state to save.

One image's crop and resize is in tinygan.images, reading folders, zips and tars in tinygan.image_sources; this
module is the cache, the dataset and the batches. Where to get CelebA: ``tinygan.download.CELEBA_HELP``.
"""
import errno
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from . import backend, files
# one image (tinygan.images) and the sources (tinygan.image_sources), under the names tinygan.data always had
from .image_sources import (IMAGE_EXTENSIONS, _readers, list_images, scan_source, source_kind,  # noqa: F401
                            source_signature)
from .images import (CELEBA_CROP, _check_count, _checked_options, _decode, load_for_judging,  # noqa: F401
                     load_image, prepare_for_judging, preprocess_image)
CACHE_VERSION = 2         # bump when preprocessing changes, so that old caches are rebuilt
CACHE_SUFFIX = ".tinygan-cache.npy"
RESAMPLE = "lanczos"      # recorded in the cache sidecar, see preprocess_image
PROGRESS_SECONDS = 2.0    # between the progress lines of a cache build (the first after 1 s)

# SeedSequence pads a short seed with zeros ([seed, e] = [seed, e, 0]): these tags keep order and flips apart.
_ORDER_STREAM, _FLIP_STREAM = 0, 1


def _say(verbose, message):
    if verbose:
        print(f"tinygan.data: {message}", flush=True)


# ---------------------------------------------------------------- judging many images

def load_source_for_judging(source, image_size, crop=None, limit=None):
    """Every image of a folder, .zip or .tar (the first ``limit`` by name) as D sees it.

    Returns (uint8 (N, S, S, 3), names, skipped): a file that is not a usable image is
    skipped and listed in ``skipped`` as (name, reason), as the training data's are.
    """
    source = Path(source).expanduser()
    names, skipped = scan_source(source)
    names = names[:limit] if limit else names
    images = {}
    for name, read in _readers(source, set(names)):
        try:
            images[name] = prepare_for_judging(read(), image_size, crop)[0]
        except (ValueError, OSError) as err:
            skipped.append((name, str(err)))
    kept = [name for name in names if name in images]
    if not kept:
        raise ValueError(f"no usable image in {source}" + (f" ({skipped_summary(skipped, len(names), source)})"
                                                          if skipped else ""))
    return np.stack([images[name] for name in kept]), kept, skipped


# ---------------------------------------------------------------- the uint8 cache

def cache_paths(source, options, cache_dir=None):
    """(.npy, .json) paths of the cache for ``source`` preprocessed with ``options``.

    The cache goes into ``cache_dir`` or the user's cache folder (:func:`tinygan.files.cache_dir`),
    never next to the data. The file name records the options, so caches at 64 and
    128 px live side by side, and a hash of the source's path keeps two sources with
    the same name apart. The sidecar records the source's size and mtime (or a folder's
    listing), so a changed source is decoded again, never served from a stale cache.
    """
    source = Path(source).resolve()
    crop = options["crop"]
    tag = f"{options['image_size']}px-crop" + (f"{crop:.4f}" if isinstance(crop, float) else f"{crop}px")
    if options["limit"] is not None:
        tag += f"-first{options['limit']}"
    stem = f"{source.name}-{hashlib.sha256(str(source).encode()).hexdigest()[:8]}"
    npy_path = files.cache_dir(cache_dir) / f"{stem}.{tag}{CACHE_SUFFIX}"
    return npy_path, npy_path.with_suffix(".json")


def _open_cache(npy_path, json_path, expected):
    """(images memmap, sidecar dict) if a finished cache matches ``expected``, else None."""
    try:
        meta = json.loads(json_path.read_text())
        images = np.load(npy_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if any(meta.get(key) != value for key, value in expected.items()):
        return None
    size = expected["options"]["image_size"]
    if images.dtype != np.uint8 or images.shape != (len(meta["names"]), size, size, 3):
        return None
    return images, meta


def _keep_rows(path, keep, out_path, chunk=4096):
    """Write the rows of the .npy at ``path`` where ``keep`` is True to ``out_path``, a chunk at a time."""
    rows = np.load(path, mmap_mode="r")
    kept = np.flatnonzero(keep)
    out = _open_reserved_memmap(out_path, (len(kept),) + rows.shape[1:])
    for start in range(0, len(kept), chunk):
        out[start:start + chunk] = rows[kept[start:start + chunk]]
    out.flush()
    del out, rows


def _open_reserved_memmap(path, shape):
    """A new uint8 .npy memmap whose disk blocks are reserved up front.

    A memory-mapped write to a full disk kills the process with SIGBUS and no
    message. Reserving the blocks first (posix_fallocate) turns a full disk into
    an ordinary OSError here, before any image is decoded.
    """
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
            except OSError as err:
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):   # this file system cannot reserve
                    del rows
                    raise OSError(err.errno, f"cannot reserve {os.path.getsize(path) / 1e6:,.0f} MB for the "
                                             f"image cache {path}: {err.strerror}") from None
    return rows


def counted(n, noun):
    """'1 image', '2,000 images'."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def skipped_summary(skipped, total, source, most=20):
    """One line that names every skipped file (the first ``most`` of them) and says why."""
    listed = "; ".join(f"{name} ({reason})" for name, reason in skipped[:most])
    more = f"; and {len(skipped) - most} more" if len(skipped) > most else ""
    return f"skipped {len(skipped):,} of {counted(total, 'file')} in {source}: {listed}{more}"


def _decode_into(rows, source, names, options, verbose):
    """Decode each image of ``names`` into its row of ``rows``. Returns (kept mask, skipped list).

    A file that cannot be used leaves its row empty and is listed as
    (name, reason).
    """
    size, crop = options["image_size"], options["crop"]
    row_of = {name: row for row, name in enumerate(names)}
    kept = np.zeros(len(names), dtype=bool)
    skipped = []
    start = time.perf_counter()
    next_report = start + 1.0
    for done, (name, read) in enumerate(_readers(source, row_of), start=1):
        try:
            rows[row_of[name]] = _decode(read(), size, crop)
            kept[row_of[name]] = True
        except Exception as err:   # a bad file must never stop a 200k-image build
            skipped.append((name, str(err) if isinstance(err, ValueError) else f"unreadable ({err})"))
        now = time.perf_counter()
        if now >= next_report:
            next_report = now + PROGRESS_SECONDS
            rate = done / (now - start)
            _say(verbose, f"decoding {done:,}/{len(names):,} images ({rate:,.0f} images/s, "
                          f"ETA {(len(names) - done) / rate:.0f} s)")
    return kept, skipped


def build_cache(source, names, npy_path, json_path, header, verbose=True, unlisted=()):
    """Decode ``names`` from ``source`` once into a uint8 .npy (N, S, S, 3) and its .json sidecar.

    ``unlisted``: (name, reason) of the source's entries that are no images (see
    :func:`scan_source`); they are reported and recorded with the files that fail to decode.

    Each image is written straight into a memory-mapped file
    (``np.lib.format.open_memmap``), so the 202,599 CelebA faces (2.5 GB at 64x64)
    never have to fit in RAM together. Row ``i`` is ``names[i]``, in sorted
    order, whatever order the archive stores them in. Rows of skipped files are
    dropped at the end. Everything is written under temporary names and renamed
    with ``os.replace``, which is atomic. A run that is cut short therefore
    leaves no half-written cache that a later run could take for a good one.

    Returns ``(images memmap, sidecar dict)``.
    """
    size = header["options"]["image_size"]
    npy_path.parent.mkdir(parents=True, exist_ok=True)
    files.check_free_space(npy_path.parent, int(len(names) * size * size * 3 * 1.05) + (1 << 20),
                           f"the {size}x{size} cache of {len(names):,} images")
    start = time.perf_counter()
    json_path.unlink(missing_ok=True)       # no stale sidecar may ever describe the new .npy
    with files.atomic_path(npy_path) as tmp_path:
        rows = _open_reserved_memmap(tmp_path, (len(names), size, size, 3))
        kept, skipped = _decode_into(rows, source, names, header["options"], verbose)
        rows.flush()
        del rows
        passed_over = sorted(skipped + list(unlisted))   # the unusable images and the files that are none
        if not kept.any():
            raise ValueError(("the one image" if len(names) == 1 else f"none of the {len(names):,} images") +
                             f" in {source} {'could not' if len(names) == 1 else 'could'} be used; "
                             f"expected RGB-convertible images larger than the crop. "
                             + skipped_summary(passed_over, len(names) + len(unlisted), source, most=3))
        if skipped:
            with files.atomic_path(tmp_path) as compact:   # the kept rows, renamed over the full build
                _keep_rows(tmp_path, kept, compact)
    seconds = time.perf_counter() - start
    skipped = passed_over
    meta = dict(header, names=[name for name, keep in zip(names, kept) if keep], skipped=skipped,
                build_seconds=round(seconds, 3))
    files.write_text(json_path, json.dumps(meta, indent=1))
    if skipped:
        _say(verbose, skipped_summary(skipped, len(names) + len(unlisted), source))
    _say(verbose, f"cached {counted(int(kept.sum()), 'image')} of {size}x{size} in {seconds:.1f} s "
                  f"({len(names) / max(seconds, 1e-9):,.0f} images/s) -> {npy_path}")
    return np.load(npy_path, mmap_mode="r"), meta


class FaceDataset:
    """Face images from a folder, .zip or .tar, cropped and resized once into a uint8 cache.

    Attributes:
        images      np.memmap uint8 (N, S, S, 3), the cache on disk
        names       list of N names (sorted), row i is names[i]
        skipped     list of (name, reason) for files that could not be used
        cache_path  Path of the .npy cache (its .json sidecar sits beside it)

    source: a folder, .zip or .tar of images; image_size: the side S of the cached faces; crop:
    the centred square crop, a fraction of the width (or pixels, an int); cache_dir: where the
    cache goes (default: tinygan.files.cache_dir); verbose: print progress and what was skipped.

    The cache is rebuilt when the source (path, size, mtime, or a folder's
    listing) or the options differ from what its sidecar recorded, or when
    ``rebuild=True``. ``limit`` keeps only the first ``limit`` files in sorted
    order. If some of those are skipped, fewer images remain.
    """

    def __init__(self, source, image_size=64, crop=CELEBA_CROP, cache_dir=None, rebuild=False,
                 verbose=True, limit=None):
        image_size, crop = _checked_options(image_size, crop)
        limit = None if limit is None else _check_count(limit, "limit", low=1)
        self.source = Path(source).expanduser().resolve()
        options = {"image_size": image_size, "crop": crop, "limit": limit, "resample": RESAMPLE}
        expected = {"version": CACHE_VERSION, "source": source_signature(self.source), "options": options}
        self.cache_path, meta_path = cache_paths(self.source, options, cache_dir)
        size = f"{image_size}x{image_size}"
        cached = None if rebuild else _open_cache(self.cache_path, meta_path, expected)
        if cached is None:
            stale = files.remove_stale_temp_files(self.cache_path.parent)
            if stale:
                _say(verbose, f"removed {len(stale)} unfinished cache file(s) of killed runs "
                              f"({sum(size for _, size in stale) / 1e6:,.1f} MB) from {self.cache_path.parent}")
            names, unlisted = scan_source(self.source)
            names = names[:limit]
            if not names:
                raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {self.source}"
                                 + (f"; {skipped_summary(unlisted, len(unlisted), self.source, most=5)}"
                                    if unlisted else ""))
            _say(verbose, f"decoding {counted(len(names), 'image')} from {self.source} into a {size} cache")
            cached = build_cache(self.source, names, self.cache_path, meta_path, expected, verbose, unlisted)
        else:
            _say(verbose, f"{len(cached[1]['names']):,} images of {size} from cache {self.cache_path}")
        self.images, meta = cached
        self.names = meta["names"]
        self.skipped = [tuple(item) for item in meta["skipped"]]
        self.image_size, self.crop = image_size, crop

    def __len__(self):
        return len(self.names)

    def __repr__(self):
        return (f"FaceDataset({str(self.source)!r}, {len(self)} images of {self.image_size}x{self.image_size}, "
                f"{len(self.skipped)} skipped, cache={str(self.cache_path)!r})")


# ---------------------------------------------------------------- batches

def gather(images, indices):
    """``images[indices]`` as a new uint8 array (B, S, S, 3).

    A memory-mapped file reads fastest front to back, so the rows are read in
    sorted order and then put back in the order that was asked for.
    """
    indices = np.asarray(indices)
    order = np.argsort(indices, kind="stable")
    batch = np.empty((len(indices),) + images.shape[1:], dtype=np.uint8)
    batch[order] = images[indices[order]]
    return batch


def to_float(batch_uint8_nhwc, flip_mask=None):
    """uint8 (B, H, W, 3) in [0, 255] -> float32 (B, 3, H, W) in [-1, 1] on the active backend.

    ``x = pixel / 127.5 - 1`` maps 0 to -1 and 255 to 1 exactly. Images where
    ``flip_mask`` is True are mirrored left-right first, while they are still
    uint8 (4x fewer bytes to move than float32), and on a GPU the conversion to
    float happens there, after the uint8 copy. The input is never changed.
    The result has the logical NCHW shape that the layers expect, but it is a
    transposed view of contiguous NHWC memory. The conv layers read that memory
    without copying it.
    """
    batch = np.asarray(batch_uint8_nhwc)
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"to_float expects uint8 images (B, H, W, 3), got {batch.dtype} {batch.shape}")
    if flip_mask is not None:
        flip_mask = np.asarray(flip_mask, dtype=bool)
        if flip_mask.shape != (len(batch),):
            raise ValueError(f"flip_mask must have shape ({len(batch)},), got {flip_mask.shape}")
        batch = batch.copy()
        batch[flip_mask] = batch[flip_mask, :, ::-1]               # reverse the W axis
    x = backend.to_device(batch).astype(np.float32)    # uint8 crosses to a GPU: 4x fewer bytes than float32
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return x.transpose(0, 3, 1, 2)                                 # (B, 3, H, W) view


class BatchLoader:
    """Shuffled, mirrored float batches. Each one is a pure function of (seed, epoch, index).

    Epoch ``e`` visits the images in the order
    ``np.random.default_rng([seed, 0, e]).permutation(N)``. The mirror flips of
    batch ``i`` come from ``np.random.default_rng([seed, 1, e, i])``. Nothing in
    the loader changes as it is used. A run that stopped after batch ``i`` of
    epoch ``e`` resumes with ``loader.epoch(e, start=i + 1)`` and sees exactly
    the batches it would have seen.

    ``dataset`` is a FaceDataset, or any uint8 array (N, S, S, 3); batch_size: images per batch;
    seed: of the order and the flips; shuffle, flip: on or off; drop_last: drop the last, smaller batch.
    """

    def __init__(self, dataset, batch_size=128, seed=0, shuffle=True, flip=True, drop_last=True):
        self.images = getattr(dataset, "images", dataset)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"BatchLoader expects uint8 images (N, S, S, 3), got "
                             f"{self.images.dtype} {self.images.shape}")
        self.batch_size = _check_count(batch_size, "batch_size", low=1)
        self.seed = _check_count(seed, "seed")
        self.shuffle, self.flip, self.drop_last = bool(shuffle), bool(flip), bool(drop_last)
        if len(self) == 0:
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({len(self.images)} images) "
                             "and drop_last=True: expected a smaller batch_size or drop_last=False")
        self._order_of = (None, None)   # (epoch, order): the last permutation, kept to save recomputing it

    def __len__(self):
        """Batches per epoch."""
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch):
        """The order (indices into the images) of ``epoch``, read-only."""
        epoch = _check_count(epoch, "epoch")
        if self._order_of[0] != epoch:
            if self.shuffle:
                order = np.random.default_rng([self.seed, _ORDER_STREAM, epoch]).permutation(len(self.images))
            else:
                order = np.arange(len(self.images))
            order.flags.writeable = False
            self._order_of = (epoch, order)
        return self._order_of[1]

    def state(self, step):
        """What a checkpoint keeps to tell the data apart: the epoch of ``step`` and its order."""
        return {"epoch": step // len(self), "order": self.order(step // len(self))}

    def check_state(self, state, data):
        """ValueError unless a checkpoint's ``state()`` is this loader's order too (the same ``data``)."""
        if not np.array_equal(state["order"], self.order(int(state["epoch"]))):
            raise ValueError(f"the data differs from the data this checkpoint was trained on ({data}): the batch "
                             f"order of epoch {state['epoch']} does not match")

    def flips(self, epoch, index, count):
        """Which of the ``count`` images of batch ``index`` of ``epoch`` are mirrored (bool array)."""
        if not self.flip:
            return np.zeros(count, dtype=bool)
        return np.random.default_rng([self.seed, _FLIP_STREAM, epoch, index]).random(count) < 0.5

    def get_batch(self, epoch, index):
        """Batch ``index`` of ``epoch``: float32 (B, 3, S, S) in [-1, 1] on the active backend."""
        index = _check_count(index, "batch index")
        if index >= len(self):
            raise IndexError(f"batch index {index} is out of range: an epoch has {len(self)} batches")
        indices = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        return to_float(gather(self.images, indices), self.flips(epoch, index, len(indices)))

    def epoch(self, epoch, start=0):
        """Iterate over batches ``start, ..., len(self) - 1`` of ``epoch``."""
        for index in range(_check_count(start, "start"), len(self)):
            yield self.get_batch(epoch, index)
