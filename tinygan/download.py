"""Getting data and weights: where CelebA lives, and a download that checks what it got.

    python -m tinygan train --help     (shows CELEBA_HELP at the end)
"""
import hashlib
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from . import files

CELEBA_HELP = """\
Getting CelebA for tinygan
--------------------------
tinygan trains on the aligned and cropped CelebA faces, img_align_celeba.zip
(1.4 GB, 202,599 JPEGs of 178x218 px). CelebA is for non-commercial research and
education only (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015).

1. Download img_align_celeba.zip yourself, from one of these:
   - the official page, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html
     (look for "Align&Cropped Images"; the links go to Google Drive or Baidu), or
   - the Kaggle mirror, https://www.kaggle.com/datasets/jessicali9530/celeba-dataset
     (`kaggle datasets download -d jessicali9530/celeba-dataset`). Its archive.zip
     holds the same JPEGs in a nested img_align_celeba/ folder. You can point
     tinygan at archive.zip as it is.
   The official zip has MD5 00d2c5bc6d35e252742224ab0c1e8fcb (check with `md5sum`).
   Google Drive needs a browser for files this large. tinygan.download.download(url,
   dest, sha256) only fetches from a plain http(s):// or file:// URL.

2. Give tinygan the zip (no need to unpack it), or the unpacked folder:
       python -m tinygan train --data ~/data/img_align_celeba.zip --out runs/celeba
   The first run decodes every image once into a uint8 cache (about 2.5 GB at
   64x64) in ~/.cache/tinygan ($XDG_CACHE_HOME/tinygan, or $TINYGAN_CACHE if set);
   your data folder is never written to. Later runs open the cache at once. The
   89x109 half-size copies work the same way: the crop is a fraction of the image
   width, so the face is framed the same at either size.
"""


def _say(verbose, message):
    if verbose:
        print(f"tinygan.download: {message}", flush=True)


def sha256_of(path):
    """The SHA-256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class DownloadError(OSError):
    """A URL that could not be fetched (no network, a 404); the message names the URL."""


def _open_url(url):
    """urlopen, with a failure as a DownloadError."""
    try:
        return urllib.request.urlopen(url)
    except urllib.error.URLError as err:       # HTTPError is one too
        raise DownloadError(f"cannot download {url}: {getattr(err, 'reason', err)}") from None


def download(url, dest, sha256=None, verbose=True):
    """Download ``url`` to the file ``dest`` (or into the folder ``dest``) and check its SHA-256.

    The bytes go to a temp file beside ``dest`` first (tinygan.files.atomic_path).
    It replaces ``dest`` only when the download is complete and the checksum
    matches, so ``dest`` is either missing or whole. If ``dest`` already exists and its checksum matches
    (or no checksum was given), it is kept and nothing is downloaded. On a
    mismatch the download is deleted and a ValueError shows both checksums.
    Returns the Path of the file. See CELEBA_HELP for where CelebA lives.
    """
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / (PurePosixPath(urllib.parse.urlparse(url).path).name or "download")
    if dest.exists() and (sha256 is None or sha256_of(dest) == sha256.lower()):
        _say(verbose, f"{dest} is already there, not downloading {url}")
        return dest
    with files.atomic_path(dest) as part, _open_url(url) as response:
        with open(part, "wb") as out:
            total, done, last_report = int(response.headers.get("Content-Length") or 0), 0, time.perf_counter()
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if time.perf_counter() - last_report > 2.0:
                    last_report = time.perf_counter()
                    of_total = f" of {total / 1e6:,.1f}" if total else ""
                    _say(verbose, f"downloading {url}: {done / 1e6:,.1f}{of_total} MB")
        got = sha256_of(part)
        if sha256 is not None and got != sha256.lower():
            raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {got}; "
                             "the download was deleted. Check the URL and the expected checksum.")
    _say(verbose, f"downloaded {url} -> {dest} ({done / 1e6:,.1f} MB, sha256 {got})")
    return dest
