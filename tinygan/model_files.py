"""Model files: a trained generator (and its D, and the judge) on disk, from a training checkpoint, a run folder,
a generator file (``save_generator``) or a PyTorch-layout state_dict; and the shipped pretrained file.

A checkpoint and a generator file store the ModelConfig, so a model is rebuilt from its file alone (nanoGPT's
``model_args``); a PyTorch state_dict stores none, and its shape is read off its weights.
"""
from pathlib import Path

import numpy as np

from . import checkpoint, run_folder
from .dcgan import Discriminator, Generator, ModelConfig

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "generator.npz"
GENERATOR_FORMAT = "tinygan-generator"
WHICH_D = ("judge", "gan")      # a file's D fitted for judging (where it has one), or the D the GAN trained against


# --- loading ---------------------------------------------------------------------
def _is_torch_layout(tree):
    return "format" not in tree and any(k.startswith("main.") for k in tree)


def _conv_weights(state):
    """The 4-D (conv / convT) weights of a DCGAN state_dict (keys main.N.weight), in layer order."""
    convs = {int(k.split(".")[1]): np.asarray(v) for k, v in state.items()
             if k.startswith("main.") and k.endswith(".weight") and np.asarray(v).ndim == 4}
    if not convs:
        raise ValueError(f"no conv weights (main.N.weight) among the keys {sorted(state)[:8]}")
    return [convs[i] for i in sorted(convs)]


def _load_float32(module, state):
    module.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
    return module.eval()


def generator_from_state_dict(state, z_dist="normal"):
    """A Generator for a PyTorch-layout state_dict, which stores no config: its shape is read off the weights."""
    convs = _conv_weights(state)            # first: (nz, ngf * 2^(n-2), 4, 4), last: (ngf, nc, 4, 4)
    n = len(convs)
    G = Generator(nz=convs[0].shape[0], ngf=convs[0].shape[1] // 2 ** (n - 2), nc=convs[-1].shape[1],
                  image_size=4 * 2 ** (n - 1), z_dist=z_dist, rng=0)
    return _load_float32(G, state)


def discriminator_from_state_dict(state):
    """A Discriminator for a PyTorch-layout state_dict, its shape read off the weights."""
    convs = _conv_weights(state)            # first: (ndf, nc, 4, 4)
    D = Discriminator(ndf=convs[0].shape[0], nc=convs[0].shape[1], image_size=4 * 2 ** (len(convs) - 1), rng=0)
    return _load_float32(D, state)


def model_config_of(tree, path):
    """The ModelConfig stored in a checkpoint or generator file.

    Files written before configs were stored under "model" keep the same settings in "config"
    (a training config, or a generator file's nz/ngf/nc/image_size/z_dist).
    """
    stored = tree.get("model", tree.get("config"))
    if not isinstance(stored, dict):
        raise ValueError(f"{path} stores no model config (expected a tinygan checkpoint or generator file)")
    try:
        return ModelConfig.from_dict(stored)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def load_tree(path):
    """Read a training checkpoint, a run directory, a generator file or a PyTorch-layout .npz."""
    path = Path(path)
    if path.is_dir():
        path = run_folder.find_checkpoint(path)
    return checkpoint.load(path), path


def load_generator(path=None, raw=False):
    """The generator (eval mode) from ``path``; with no path, the pretrained one shipped with tinygan.

    A checkpoint with an averaged generator (``G_ema``, see tinygan.ema) gives that one, unless ``raw``.
    """
    tree, path = load_tree(_pretrained() if path is None else path)
    if _is_torch_layout(tree):
        return generator_from_state_dict(tree)
    key = "G_ema" if "G_ema" in tree and not raw else "G"
    if key not in tree:
        raise ValueError(f"{path} holds no generator (expected a tinygan checkpoint with G/... arrays)")
    return _load_float32(model_config_of(tree, path).generator(rng=0), tree[key])


def load_discriminator(path=None, which="judge"):
    """A discriminator (eval mode) from a checkpoint, run directory, generator file with D, or PyTorch .npz.

    which: "judge" (default) gives the D fitted for judging where the file has one (see tinygan.judge and
    ``examples/package_generator.py --data``), else the GAN's D; "gan" gives the D the GAN trained against.
    With no path, the one shipped beside the pretrained generator. ``D.role`` says which it is.
    """
    if which not in WHICH_D:
        raise ValueError(f"which must be 'judge' or 'gan', got {which!r}")
    tree, path = load_tree(_pretrained() if path is None else path)
    if _is_torch_layout(tree):
        D = discriminator_from_state_dict(tree)
        D.role = "gan"
        return D
    fitted = which == "judge" and isinstance(tree.get("judge"), dict) and "D" in tree["judge"]
    if not fitted and "D" not in tree:
        raise ValueError(f"{path} holds no discriminator: judging needs a training checkpoint "
                         f"({run_folder.CHECKPOINT_PATTERN}) or a generator file saved with its D")
    D = _load_float32(model_config_of(tree, path).discriminator(rng=0), tree["judge"]["D"] if fitted else tree["D"])
    D.role = "judge" if fitted else "gan"
    return D


def load_face_model(path=None):
    """The file's tinygan.judge.FaceModel (how face-like an image is), or None where it has none."""
    from .judge import FaceModel
    tree, path = load_tree(_pretrained() if path is None else path)
    faces = tree.get("judge", {}).get("faces") if isinstance(tree.get("judge"), dict) else None
    return FaceModel.from_dict(faces) if faces else None


def _pretrained():
    if not PRETRAINED.exists():
        raise FileNotFoundError(f"no pretrained generator at {PRETRAINED}; pass --checkpoint PATH")
    return PRETRAINED


# --- writing: a generator file, PyTorch-layout state_dicts ----------------------------
def export_torch(module, path):
    """Write ``module.state_dict()`` with exactly PyTorch's keys (main.0.weight, ...) to an .npz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = module.state_dict()
    with checkpoint.atomic_write(path) as f:
        np.savez(f, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()})
    return path


def save_generator(G, path, provenance=None, dtype=np.float16, D=None, judge=None):
    """A generator file (float16 by default: half the size, invisible in the images), with D if given.

    It stores the ModelConfig under "model", so ``load_generator`` rebuilds G from it. ``judge``: the D
    fitted for judging and its tinygan.judge.FaceModel, as (D, face_model), stored under "judge".
    """
    some_D = D if D is not None else judge[0] if judge is not None else None
    model = ModelConfig(nz=G.config["nz"], ngf=G.config["ngf"], nc=G.config["nc"], image_size=G.config["image_size"],
                        z_dist=G.config["z_dist"], **({"ndf": some_D.config["ndf"]} if some_D is not None else {}))
    tree = {"format": GENERATOR_FORMAT, "model": model.to_dict(),
            "G": {k: v.astype(dtype) for k, v in G.state_dict().items()}}
    if D is not None:
        tree["D"] = {k: v.astype(dtype) for k, v in D.state_dict().items()}
    if judge is not None:
        judge_D, faces = judge
        tree["judge"] = {"D": {k: v.astype(dtype) for k, v in judge_D.state_dict().items()}, "faces": faces.to_dict()}
    if provenance:
        tree["provenance"] = provenance
    checkpoint.save(path, tree)
    return Path(path)
