"""Where face images come from: a folder, a .zip or a .tar(.gz), read the same way.

``scan_source`` lists a source's image files (and every entry passed over, with the reason: other file types,
links, folders named like images, members pointing outside the archive, macOS metadata); ``_readers`` yields
each wanted file's bytes in the order the source stores them; ``source_signature`` is what a cache must match.
"""
import hashlib
import os
import stat
import tarfile
import zipfile
from functools import partial
from pathlib import Path, PurePosixPath

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _skip_reason(name):
    """Why an entry with this name is not a face image, or None if it may be one."""
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts:
        return "points outside the archive"
    if any(part.startswith("__MACOSX") for part in parts):
        return "macOS metadata (__MACOSX)"
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    if not name.lower().endswith(IMAGE_EXTENSIONS):
        suffix = PurePosixPath(name).suffix.lower() or "no extension"
        return f"not an image type tinygan reads ({suffix}; expected {'/'.join(IMAGE_EXTENSIONS)})"
    return None


def _member_name(name):
    """An archive member's name without a leading './', so it matches the folder's name for the same file."""
    return PurePosixPath(name).as_posix()


def source_kind(source):
    """'folder', 'zip' or 'tar' (.tar, .tar.gz, .tgz, ...), judged by the content, not by the name."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"face image source {source} does not exist; expected a folder of images, "
                                "a .zip or a .tar(.gz) (see `python -m tinygan train --help` for CelebA)")
    if source.is_dir():
        return "folder"
    if zipfile.is_zipfile(source):
        return "zip"
    if tarfile.is_tarfile(source):
        return "tar"
    raise ValueError(f"{source} is not a folder, a .zip or a .tar(.gz); expected one of those, holding "
                     f"{'/'.join(IMAGE_EXTENSIONS)} images")


def _folder_entries(source):
    """(name, problem) for every entry under a folder; problem is None for a readable regular file.

    Links to files are followed (a folder of links is common); links to folders are not,
    so a link loop cannot make the walk endless.
    """
    for root, dirs, names in os.walk(source, followlinks=False):
        root = Path(root)
        for name in dirs:
            if name.lower().endswith(IMAGE_EXTENSIONS) or (root / name).is_symlink():
                kind = "a link to a folder" if (root / name).is_symlink() else "a folder"
                yield (root / name).relative_to(source).as_posix(), f"{kind}, not an image file"
        for name in names:
            path = root / name
            relative = path.relative_to(source).as_posix()
            try:
                mode = path.stat().st_mode                     # follows a link to its target
            except FileNotFoundError:
                yield relative, "dangling link (its target does not exist)"
                continue
            except OSError as err:
                yield relative, f"unreadable link ({err.strerror or err})"   # e.g. a link loop (ELOOP)
                continue
            yield relative, None if stat.S_ISREG(mode) else "not a regular file (a FIFO, socket or device)"


def _zip_entries(source):
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            if info.is_dir():
                if info.filename.rstrip("/").lower().endswith(IMAGE_EXTENSIONS):
                    yield _member_name(info.filename.rstrip("/")), "a folder, not an image file"
                continue
            is_link = stat.S_ISLNK(info.external_attr >> 16)
            yield _member_name(info.filename), "a link, not an image file" if is_link else None


def _tar_entries(source):
    with tarfile.open(source, "r:*") as archive:
        for member in archive:
            name = _member_name(member.name)
            if member.isdir():
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    yield name, "a folder, not an image file"
            elif member.issym() or member.islnk():
                yield name, "a link, not an image file"
            elif not member.isfile():
                yield name, "not a regular file (a FIFO or device)"
            else:
                yield name, None


def scan_source(source):
    """(image names, skipped) of a source: sorted names of its image files, and ``(name, reason)``
    for every other entry that was passed over (wrong type, links, folders named like images,
    members pointing outside the archive, macOS metadata, ...)."""
    source = Path(source)
    kind = source_kind(source)
    entries = {"folder": _folder_entries, "zip": _zip_entries, "tar": _tar_entries}[kind](source)
    names, skipped = [], []
    for name, problem in entries:
        problem = problem or _skip_reason(name)
        (skipped.append((name, problem)) if problem else names.append(name))
    return sorted(names), sorted(skipped)


def list_images(source):
    """Sorted names of the image files in a source: paths relative to the folder, or member names."""
    return scan_source(source)[0]


def _read_tar_member(archive, member):
    return archive.extractfile(member).read()


def _readers(source, wanted):
    """Yield ``(name, read)`` for each wanted image, in the order the source stores them.

    ``read()`` returns the file's bytes. It is called by the consumer inside its
    own try, so one unreadable file cannot stop the loop. A tar is walked front to
    back: jumping around a .tar.gz would decompress it again and again.
    """
    kind = source_kind(source)
    if kind == "folder":
        for name in sorted(wanted):
            yield name, (source / name).read_bytes
    elif kind == "zip":
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if _member_name(info.filename) in wanted:
                    yield _member_name(info.filename), partial(archive.read, info)
    else:
        with tarfile.open(source, "r:*") as archive:
            for member in archive:
                if member.isfile() and _member_name(member.name) in wanted:
                    yield _member_name(member.name), partial(_read_tar_member, archive, member)


def source_signature(source):
    """What a cache must match to be reused: the path, and the size and mtime of the source.

    An archive changes only as a whole, so its size and mtime are enough. A folder
    signs the listing of its images (name, size, mtime), so adding, removing or
    editing a single image is noticed.
    """
    source = Path(source).resolve()
    kind = source_kind(source)
    if kind != "folder":
        stat = source.stat()
        return {"kind": kind, "path": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    listing = hashlib.sha256()
    names = list_images(source)
    for name in names:
        stat = (source / name).stat()
        listing.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return {"kind": kind, "path": str(source), "files": len(names), "listing_sha256": listing.hexdigest()}
