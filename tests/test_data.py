"""Tests for tinygan.data: sources, the uint8 cache, broken files, batches and download."""
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, ImageFile

from tinygan import backend, data, download, images

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CELEBA_TAR = SHARED_DATA / "celeba_align_89x109_10k.tar"


def face(seed, width=89, height=109, mode="RGB"):
    """A smooth random picture of CelebA's half size (smooth, so JPEG keeps it close)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.BILINEAR).convert(mode)


def make_folder(root, count=6):
    """A folder of faces, some in a subfolder, some PNG, plus a text file to ignore."""
    (root / "sub").mkdir(parents=True)
    for i in range(count):
        face(i).save(root / (f"{i:06d}.jpg" if i % 2 == 0 else f"sub/{i:06d}.png"))
    (root / "README.txt").write_text("not an image, and not named like one\n")
    return root


def jpeg_bytes(img):
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def quiet(source, **kwargs):
    return data.FaceDataset(source, verbose=False, **kwargs)


# ---------------------------------------------------------------- sources and cache

def test_folder_zip_tar_give_identical_arrays(tmp_path):
    folder = make_folder(tmp_path / "faces")
    names = data.list_images(folder)
    assert names == sorted(names) and len(names) == 6
    # Archives store the files in reverse order: rows must still follow the sorted names.
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as archive:
        for name in reversed(names):
            archive.write(folder / name, name)
    for suffix, mode in ((".tar", "w"), (".tgz", "w:gz")):
        with tarfile.open(tmp_path / f"faces{suffix}", mode) as archive:
            for name in reversed(names):
                archive.add(folder / name, f"./{name}")
    reference = quiet(folder, cache_dir=tmp_path / "cache")
    assert reference.names == names and reference.images.dtype == np.uint8
    assert reference.images.shape == (6, 64, 64, 3)
    for archive in ("faces.zip", "faces.tar", "faces.tgz"):
        other = quiet(tmp_path / archive, cache_dir=tmp_path / "cache")
        assert other.names == names, archive
        np.testing.assert_array_equal(other.images, reference.images, err_msg=archive)


def test_cache_is_reused_without_decoding(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "faces")
    first = quiet(folder, cache_dir=tmp_path / "cache")
    assert isinstance(first.images, np.memmap)
    assert first.cache_path.name.endswith(".tinygan-cache.npy")   # matches the .gitignore pattern

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been reused")
    monkeypatch.setattr(images, "preprocess_image", no_decoding)      # what decoding an image calls
    second = quiet(folder, cache_dir=tmp_path / "cache")
    assert second.cache_path == first.cache_path and second.names == first.names
    np.testing.assert_array_equal(second.images, first.images)
    with pytest.raises(ValueError, match="none of the 6 images"):   # rebuild=True decodes again
        quiet(folder, cache_dir=tmp_path / "cache", rebuild=True)


def test_cache_is_rebuilt_when_options_or_source_change(tmp_path):
    folder = make_folder(tmp_path / "faces")
    base = quiet(folder, cache_dir=tmp_path / "cache")
    wider = quiet(folder, cache_dir=tmp_path / "cache", crop=1.0)
    small = quiet(folder, cache_dir=tmp_path / "cache", image_size=32, crop=60)
    assert len({base.cache_path, wider.cache_path, small.cache_path}) == 3
    assert not np.array_equal(base.images, wider.images)
    assert small.images.shape == (6, 32, 32, 3)
    face(99).save(folder / "zzz.jpg")                   # the source changes: same file, new content
    grown = quiet(folder, cache_dir=tmp_path / "cache")
    assert grown.cache_path == base.cache_path and len(grown) == 7 and grown.names[-1] == "zzz.jpg"


def test_limit_keeps_the_first_names_in_sorted_order(tmp_path):
    folder = make_folder(tmp_path / "faces")
    full, first3 = quiet(folder, cache_dir=tmp_path), quiet(folder, cache_dir=tmp_path, limit=3)
    assert first3.names == full.names[:3]
    np.testing.assert_array_equal(first3.images, full.images[:3])


def test_the_cache_never_goes_into_the_data_folder(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "data" / "faces")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*"))
    monkeypatch.setenv("TINYGAN_CACHE", str(tmp_path / "env_cache"))
    assert quiet(folder).cache_path.parent == tmp_path / "env_cache"
    assert quiet(folder, cache_dir=tmp_path / "mine").cache_path.parent == tmp_path / "mine"
    monkeypatch.delenv("TINYGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert quiet(folder).cache_path.parent == tmp_path / "xdg" / "tinygan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert quiet(folder).cache_path.parent == tmp_path / "home" / ".cache" / "tinygan"
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*")) == before   # untouched


def test_a_changed_archive_is_never_served_from_a_stale_cache(tmp_path):
    names = [f"{i:06d}.jpg" for i in range(3)]
    with tarfile.open(tmp_path / "faces.tar", "w") as archive:
        for i, name in enumerate(names):
            info = tarfile.TarInfo(name)
            raw = jpeg_bytes(face(i))
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    first = np.array(quiet(tmp_path / "faces.tar").images)
    with tarfile.open(tmp_path / "faces.tar", "w") as archive:     # same names, other pictures
        for i, name in enumerate(names):
            info = tarfile.TarInfo(name)
            raw = jpeg_bytes(face(i + 10))
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    again = quiet(tmp_path / "faces.tar")
    assert not np.array_equal(first, np.asarray(again.images))


def test_bad_sources_and_options_raise_errors_that_name_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        quiet(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        quiet(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a folder, a .zip or a .tar"):
        quiet(tmp_path / "notes.txt")
    folder = make_folder(tmp_path / "faces")
    for crop in (0, 0.0, 1.5, -3, "half", True):
        with pytest.raises(ValueError, match="crop must be"):
            quiet(folder, crop=crop)
    for size in (0, 6.5, None):
        with pytest.raises(ValueError, match="image_size must be"):
            quiet(folder, image_size=size)
    with pytest.raises(ValueError, match="limit must be"):
        quiet(folder, limit=0)
    with pytest.raises(ValueError, match="none of the 6 images"):   # a crop larger than every image
        quiet(folder, crop=200, cache_dir=tmp_path)


# ---------------------------------------------------------------- broken and odd files

def test_broken_files_are_skipped_or_converted_and_reported_once(tmp_path, capsys):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False     # importing tinygan.data must not change it
    folder = tmp_path / "faces"
    folder.mkdir()
    face(0).save(folder / "good.jpg")
    full = jpeg_bytes(face(1))
    (folder / "truncated.jpg").write_bytes(full[:len(full) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    face(2, mode="L").save(folder / "gray.jpg")
    face(3, mode="CMYK").save(folder / "cmyk.jpg")
    rgba = face(4, mode="RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.r_[np.zeros(44), np.full(45, 255)].astype(np.uint8), (109, 1))))
    rgba.save(folder / "rgba.png")                      # left half fully transparent
    palette = face(5).convert("P")
    palette.info["transparency"] = 0
    palette.save(folder / "palette.png")
    face(6, 1, 1).save(folder / "tiny.png")
    face(7, 400, 40).save(folder / "wide.png")

    faces = data.FaceDataset(folder, cache_dir=tmp_path / "cache")
    printed = capsys.readouterr().out
    assert faces.names == ["cmyk.jpg", "good.jpg", "gray.jpg", "palette.png", "rgba.png"]
    reasons = dict(faces.skipped)
    assert sorted(reasons) == ["empty.jpg", "notes.jpg", "tiny.png", "truncated.jpg", "wide.png"]
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "too small" in reasons["tiny.png"] and "does not fit" in reasons["wide.png"]
    summary = [line for line in printed.splitlines() if line.startswith("tinygan.data: skipped")]
    assert len(summary) == 1 and "skipped 5 of 10 files" in summary[0]
    for name in reasons:
        assert printed.count(name) == 1, name

    gray = faces.images[faces.names.index("gray.jpg")].astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 2     # gray stays gray in RGB
    left_of_rgba = faces.images[faces.names.index("rgba.png")][:, :20]
    assert left_of_rgba.min() >= 250                          # transparent pixels land on white

    again = data.FaceDataset(folder, cache_dir=tmp_path / "cache")   # from the cache: no second report
    assert again.skipped == faces.skipped and "truncated.jpg" not in capsys.readouterr().out


def test_16_bit_greyscale_png_is_scaled_not_clipped_to_white(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    levels = np.tile(np.linspace(0, 65535, 89), (109, 1)).astype(np.uint16)      # black -> white, left to right
    Image.fromarray(levels).save(folder / "deep.png")
    with Image.open(folder / "deep.png") as check:
        assert check.mode.startswith("I")                                     # Pillow reads it as 16-bit
    faces = quiet(folder)
    assert faces.skipped == []
    row = faces.images[0, 32, :, 0].astype(int)
    assert row[0] < 70 and row[-1] > 185 and np.all(np.diff(row) >= -1)       # a ramp, not 93% white
    assert (faces.images[0] >= 250).mean() < 0.1


def test_entries_that_are_not_images_are_counted_and_named_never_followed(tmp_path, capsys):
    folder = tmp_path / "faces"
    (folder / "__MACOSX").mkdir(parents=True)
    face(0).save(folder / "good.jpg")
    (folder / "notes.txt").write_text("hello")
    face(1).save(folder / "animated.gif")
    (folder / "__MACOSX" / "._good.jpg").write_bytes(b"\x00\x05\x16\x07")
    (folder / "folder.jpg").mkdir()
    (folder / "dangling.jpg").symlink_to(folder / "missing.jpg")
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    (folder / "linked.jpg").symlink_to(folder / "good.jpg")                    # a link to a file: read it
    os.mkfifo(folder / "pipe.jpg")                                            # opening it would block forever
    faces = data.FaceDataset(folder)
    printed = capsys.readouterr().out
    assert faces.names == ["good.jpg", "linked.jpg"]
    reasons = dict(faces.skipped)
    assert sorted(reasons) == ["__MACOSX/._good.jpg", "animated.gif", "dangling.jpg", "folder.jpg",
                               "loop_a.jpg", "loop_b.jpg", "notes.txt", "pipe.jpg"]
    assert "dangling" in reasons["dangling.jpg"] and "folder" in reasons["folder.jpg"]
    assert "regular file" in reasons["pipe.jpg"] and ".gif" in reasons["animated.gif"]
    assert "macOS" in reasons["__MACOSX/._good.jpg"] and "link" in reasons["loop_a.jpg"]
    assert "skipped 8 of 10 files" in printed


def test_archive_links_and_members_outside_the_archive_are_skipped(tmp_path):
    good = jpeg_bytes(face(0))
    with tarfile.open(tmp_path / "faces.tar", "w") as archive:
        for name in ("a/good.jpg", "../escape.jpg", "/etc/absolute.jpg"):
            info = tarfile.TarInfo(name)
            info.size = len(good)
            archive.addfile(info, io.BytesIO(good))
        for kind, name in ((tarfile.SYMTYPE, "a/sym.jpg"), (tarfile.LNKTYPE, "a/hard.jpg"),
                           (tarfile.FIFOTYPE, "a/fifo.jpg"), (tarfile.DIRTYPE, "a/dir.jpg")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "a/good.jpg" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            archive.addfile(info)
    faces = quiet(tmp_path / "faces.tar")
    assert faces.names == ["a/good.jpg"]
    reasons = dict(faces.skipped)
    assert sorted(reasons) == ["../escape.jpg", "/etc/absolute.jpg", "a/dir.jpg", "a/fifo.jpg", "a/hard.jpg",
                               "a/sym.jpg"]
    assert "outside the archive" in reasons["../escape.jpg"] and "outside" in reasons["/etc/absolute.jpg"]
    assert "link" in reasons["a/sym.jpg"] and "link" in reasons["a/hard.jpg"]
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as archive:
        archive.writestr("good.jpg", good)
        archive.writestr("../up.jpg", good)
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (0o120777 << 16)                               # a symlink entry
        archive.writestr(link, "good.jpg")
    faces = quiet(tmp_path / "faces.zip")
    assert faces.names == ["good.jpg"] and sorted(dict(faces.skipped)) == ["../up.jpg", "link.jpg"]


def test_a_full_disk_during_the_cache_build_is_one_clear_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "faces")
    cache = tmp_path / "cache"

    def disk_full(fd, offset, length):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", disk_full, raising=False)
    with pytest.raises(OSError, match="cannot reserve .* MB for the image cache .*No space left"):
        quiet(folder, cache_dir=cache)
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(data.files.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    with pytest.raises(OSError, match="not enough disk space for the 64x64 cache of 6 images"):
        quiet(folder, cache_dir=cache)


def test_temp_files_of_killed_cache_builds_are_removed_on_the_next_start(tmp_path, capsys):
    import subprocess
    folder = make_folder(tmp_path / "faces")
    cache = tmp_path / "cache"
    cache.mkdir()
    finished = subprocess.Popen(["true"])
    finished.wait()                                                           # its PID runs no more
    orphan = cache / f".faces.64px.tinygan-cache.npy.{finished.pid}.0123456789ab.tmp"
    orphan.write_bytes(b"x" * 1000)
    mine = cache / f".other.npy.{os.getpid()}.0123456789ab.tmp"                # a live process's temp: kept
    mine.write_bytes(b"y")
    data.FaceDataset(folder, cache_dir=cache)
    assert not orphan.exists() and mine.exists()
    assert "removed 1 unfinished cache file(s) of killed runs" in capsys.readouterr().out


def test_load_image_returns_uint8_or_names_the_file(tmp_path):
    face(0, 178, 218).save(tmp_path / "big.jpg")
    image = data.load_image(tmp_path / "big.jpg")
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert data.load_image(tmp_path / "big.jpg", image_size=16, crop=1.0).shape == (16, 16, 3)
    (tmp_path / "fake.jpg").write_text("nope")
    with pytest.raises(ValueError, match="fake.jpg"):
        data.load_image(tmp_path / "fake.jpg")


@settings(max_examples=30, deadline=None)
@given(width=st.integers(1, 80), height=st.integers(1, 80), image_size=st.integers(1, 24),
       crop=st.one_of(st.floats(0.05, 1.0), st.integers(1, 90)), colour=st.integers(0, 255))
def test_preprocess_keeps_a_flat_colour_flat(width, height, image_size, crop, colour):
    img = Image.new("RGB", (width, height), (colour, 255 - colour, colour // 2))
    try:
        out = data.preprocess_image(img, image_size, crop)
    except ValueError as err:
        assert "does not fit" in str(err) or "too small" in str(err)
        return
    assert out.dtype == np.uint8 and out.shape == (image_size, image_size, 3)
    assert np.abs(out.astype(int) - [colour, 255 - colour, colour // 2]).max() <= 1


# ---------------------------------------------------------------- batches

def random_images(count, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_to_float_is_float32_nchw_in_minus_one_to_one():
    images = random_images(5)
    images[0] = 0
    images[1] = 255
    x = backend.to_numpy(data.to_float(images))
    assert x.dtype == np.float32 and x.shape == (5, 3, 8, 8)
    assert x[0].min() == -1.0 and x[1].max() == 1.0 and -1.0 <= x.min() <= x.max() <= 1.0
    np.testing.assert_array_equal(x, images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - 1)
    if backend.name() == "numpy":
        assert x.transpose(0, 2, 3, 1).flags.c_contiguous    # NCHW view of NHWC memory
    with pytest.raises(ValueError, match="uint8"):
        data.to_float(images.astype(np.float32))


def test_flip_is_a_left_right_mirror_and_leaves_the_input_alone():
    images = random_images(4)
    before = images.copy()
    mask = np.array([True, False, True, False])
    flipped = backend.to_numpy(data.to_float(images, mask))
    plain = backend.to_numpy(data.to_float(images))
    np.testing.assert_array_equal(flipped[mask], plain[mask][..., ::-1])
    np.testing.assert_array_equal(flipped[~mask], plain[~mask])
    np.testing.assert_array_equal(images, before)


def test_loader_flips_follow_its_flip_streams():
    images = random_images(32)
    with_flips = data.BatchLoader(images, batch_size=8, seed=3)
    no_flips = data.BatchLoader(images, batch_size=8, seed=3, flip=False)
    masks = []
    for index in range(len(with_flips)):
        mask = with_flips.flips(0, index, 8)
        a = backend.to_numpy(with_flips.get_batch(0, index))
        b = backend.to_numpy(no_flips.get_batch(0, index))
        np.testing.assert_array_equal(a[mask], b[mask][..., ::-1])
        np.testing.assert_array_equal(a[~mask], b[~mask])
        masks.append(mask)
    assert 0 < np.concatenate(masks).mean() < 1


def test_batches_are_stateless_and_resume_bit_identically():
    images = random_images(64)
    loader = data.BatchLoader(images, batch_size=8, seed=7)
    twin = data.BatchLoader(images, batch_size=8, seed=7)
    assert len(loader) == 8
    assert not np.array_equal(loader.order(0), loader.order(1))
    assert not np.array_equal(loader.order(0), data.BatchLoader(images, 8, seed=8).order(0))
    epoch2 = [backend.to_numpy(b) for b in loader.epoch(2)]
    resumed = [backend.to_numpy(b) for b in twin.epoch(2, start=3)]   # a fresh loader, mid-epoch
    for a, b in zip(epoch2[3:], resumed, strict=True):
        assert a.tobytes() == b.tobytes()
    assert backend.to_numpy(loader.get_batch(2, 5)).tobytes() == epoch2[5].tobytes()
    with pytest.raises(IndexError, match="out of range"):
        loader.get_batch(0, 8)
    with pytest.raises(ValueError, match="larger than the dataset"):
        data.BatchLoader(images, batch_size=65)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 40), batch_size=st.integers(1, 16), seed=st.integers(0, 2**32),
       epoch=st.integers(0, 10**6), shuffle=st.booleans())
def test_an_epoch_visits_every_image_once(count, batch_size, seed, epoch, shuffle):
    images = np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 2, 2, 3))
    loader = data.BatchLoader(images, batch_size, seed, shuffle=shuffle, drop_last=False)
    batches = [backend.to_numpy(b) for b in loader.epoch(epoch)]
    assert all(len(b) == batch_size for b in batches[:-1])
    seen = np.rint((np.concatenate(batches)[:, 0, 0, 0] + 1) * 127.5).astype(int)
    assert sorted(seen) == list(range(count))
    assert shuffle or list(seen) == list(range(count))


# ---------------------------------------------------------------- download

def test_download_a_file_url_with_good_and_bad_checksums(tmp_path):
    source = tmp_path / "faces.zip"
    source.write_bytes(os.urandom(5000))
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    (tmp_path / "into").mkdir()
    got = download.download(source.as_uri(), tmp_path / "into", sha256=good, verbose=False)
    assert got == tmp_path / "into" / "faces.zip" and got.read_bytes() == source.read_bytes()
    assert download.download("file:///gone.zip", got, sha256=good.upper(), verbose=False) == got  # kept, not fetched
    with pytest.raises(ValueError, match="checksum mismatch.*expected sha256 " + "0" * 64):
        download.download(source.as_uri(), tmp_path / "bad.zip", sha256="0" * 64, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["faces.zip", "into"]   # no bad.zip, no .part left
    with pytest.raises(ValueError, match="64 hex digits"):
        download.download(source.as_uri(), tmp_path / "x.zip", sha256="abc")
    assert "img_align_celeba.zip" in download.CELEBA_HELP
    with pytest.raises(OSError, match="cannot download file:///no/such/faces.zip"):   # no network, a 404: one line
        download.download("file:///no/such/faces.zip", tmp_path / "new.zip", verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["faces.zip", "into"]                  # nothing half-written


# ---------------------------------------------------------------- the real faces

@pytest.mark.skipif(not CELEBA_TAR.exists(), reason=f"shared CelebA subset not found at {CELEBA_TAR}")
def test_celeba_tar_first_256_faces(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_CACHE", str(tmp_path))   # the shared folder is read-only
    faces = quiet(CELEBA_TAR, limit=256)
    assert faces.cache_path.parent == tmp_path
    assert len(faces) == 256 and faces.skipped == []
    assert faces.names[0] == "celeba_align_89x109/000001.jpg" and faces.images.shape == (256, 64, 64, 3)
    with tarfile.open(CELEBA_TAR) as archive:
        (tmp_path / "000001.jpg").write_bytes(archive.extractfile(faces.names[0]).read())
    np.testing.assert_array_equal(faces.images[0], data.load_image(tmp_path / "000001.jpg"))
    batch = backend.to_numpy(data.BatchLoader(faces, batch_size=128, seed=0).get_batch(0, 1))
    assert batch.shape == (128, 3, 64, 64) and batch.dtype == np.float32
    assert -0.9 < batch.mean() < 0.5 and batch.std() > 0.2   # real photos, not a blank
    assert not any("tinygan-cache" in name for name in os.listdir(SHARED_DATA))


def test_a_folder_with_no_usable_image_names_every_file_it_passed_over(tmp_path, capsys):
    from tinygan.data import FaceDataset
    for i in range(3):
        (tmp_path / f"note{i}.txt").write_text("not a face")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError) as info:
        FaceDataset(tmp_path, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "the one image in" in message and "skipped 4 of 4 files" in message and "broken.jpg" in message
    assert "decoding 1 image from" in capsys.readouterr().out
